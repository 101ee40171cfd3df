"""The engine's version, kept apart so that the CLI can print it without heavy imports."""

__version__ = "0.1.0"

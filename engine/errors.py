"""Errors the engine raises for bad input: each carries a one-line message for the CLI."""


class EngineError(Exception):
    """Base class: a problem with the user's input, reported as one line without a traceback."""


class StoreError(EngineError):
    """A population store is missing, foreign, of a newer format, corrupt or inconsistent."""


class WriterError(EngineError):
    """A writer was given data of the wrong shape, or networks it does not own."""


class ConfigError(EngineError):
    """A flag, option or configuration value is out of range or inconsistent."""

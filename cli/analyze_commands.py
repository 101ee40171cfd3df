"""`engine` commands of the analyze issue; they register on the app in :func:`register`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app (filled in by the analyze work)."""

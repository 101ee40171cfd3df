"""The `engine` command line: a thin typer shell over :mod:`engine`."""

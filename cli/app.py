"""The `engine` console command.

Each command module registers its commands on the one typer app: ``store_commands`` (info,
merge), ``train_commands`` (train-population, quickstart), ``analyze_commands`` (analyze,
compare), ``pairwise_commands`` (pairwise) and ``select_commands`` (select); options several
commands share are defined once in ``cli.options``. A command parses its flags, calls one engine
function and prints the result. Command bodies import the engine lazily, so that ``engine --help``
and ``engine --version`` stay instant. Errors the engine raises for bad input
(:class:`engine.errors.EngineError`) become one line on stderr and exit status 1; ``--debug``
shows the traceback instead. Usage errors (a missing or malformed flag) are click's: its message
and exit status 2.
``import_commands`` registers ``import`` (docs/import.md).
"""

from __future__ import annotations

import sys

import typer

from cli import (
    analyze_commands,
    compact,
    import_commands,
    pairwise_commands,
    select_commands,
    store_commands,
    train_commands,
)
from engine._version import __version__

app = typer.Typer(
    name="engine",
    help="Created Equal: train populations of networks and measure how they agree.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"created-equal {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    # --debug is declared here for --help and parsing; main() reads it from the arguments itself,
    # since it must know before the app runs (errors can come from parsing).
    pass


for _module in (
    store_commands,
    train_commands,
    analyze_commands,
    pairwise_commands,
    select_commands,
    import_commands,
    compact,
):
    _module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the app; turn the engine's errors into one line and a non-zero exit."""
    from engine.errors import EngineError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        app(args=args, standalone_mode=False)
    except typer.Exit as stop:
        return stop.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except (EngineError, OSError) as error:
        if debug:
            raise
        typer.echo(f"error: {error}", err=True)
        return 1
    except Exception as error:  # click's usage errors and anything unexpected
        import click

        # typer from 0.2x raises its own copy of click's exceptions, all TyperExceptions.
        usage = (click.exceptions.ClickException, getattr(typer, "TyperException", ()))
        if isinstance(error, usage) and callable(getattr(error, "show", None)):
            error.show()
            return int(getattr(error, "exit_code", 1))
        if debug:
            raise
        typer.echo(
            f"error: {type(error).__name__}: {error} (rerun with --debug for details)", err=True
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `engine` console command.

Each command module registers its commands on the one typer app: ``store_commands`` (info,
merge), ``train_commands`` (train-population, quickstart), ``analyze_commands`` (analyze,
compare), ``pairwise_commands`` (pairwise) and ``select_commands`` (select); options several
commands share are defined once in ``cli.options``. A command parses its flags, calls one engine
function and prints the result. Command bodies import the engine lazily, so that ``engine --help``
and ``engine --version`` stay instant. Errors the engine raises for bad input
(:class:`engine.errors.EngineError`) become one line on stderr and exit status 1; ``--debug``
shows the traceback instead. Usage errors (a missing or malformed flag) are click's message on one
line and exit status 2. Ctrl-C exits 130 and SIGTERM 143, each with a line saying whether a rerun
resumes.
``import_commands`` registers ``import`` (docs/import.md).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

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
from cli.help import EngineGroup, suggestion
from engine._version import __version__

app = typer.Typer(
    cls=EngineGroup,
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


#: Commands whose store keeps what an interrupted run recorded: a rerun resumes it.
RESUMABLE = ("train-population", "import", "quickstart")
#: Exit statuses of a run stopped by SIGINT (Ctrl-C) and by SIGTERM, as shells report them.
INTERRUPTED, TERMINATED = 130, 143


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt, so that context
    managers close (progress bars, Dask clusters) and no ``except Exception`` swallows it."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While the app runs, SIGTERM raises :class:`Terminated` (a second one kills at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stopped(args: list[str], what: str) -> str:
    """The line said when a run is interrupted or terminated."""
    command = next((a for a in args if a in RESUMABLE), None)
    if command is None:
        return what
    return (
        f"{what}; the store keeps every checkpoint recorded so far: rerun the same command "
        "to resume"
    )


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _usage_error(error: Any) -> int:
    """Print a usage error as one line (bare ``engine`` prints its help); its exit status."""
    if type(error).__name__ == "NoArgsIsHelpError":
        error.show()
    else:
        ctx = getattr(error, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        message = suggestion(_one_line(error.format_message()))
        typer.echo(f"Error: {message}{hint}", err=True)
    return int(getattr(error, "exit_code", 2))


#: What each optional package is needed for, and its ``pip install`` name.
OPTIONAL_PACKAGES = {
    "distributed": ("--workers and --cluster (a Dask cluster)", "distributed"),
    "s3fs": ("s3:// stores", "s3fs"),
    "gcsfs": ("gs:// stores", "gcsfs"),
    "adlfs": ("az:// stores", "adlfs"),
    "aiohttp": ("http:// stores", "aiohttp"),
    "plotly": ("the report's interactive figures", "plotly"),
    "lightning": ("the Lightning callback", "lightning"),
    "pytorch_lightning": ("the Lightning callback", "lightning"),
    "transformers": ("the Hugging Face callback", "transformers"),
}


def _missing_package(error: ImportError) -> str:
    """The line naming the package to install for a failed import."""
    name = (getattr(error, "name", None) or "").partition(".")[0]
    if name in OPTIONAL_PACKAGES:
        purpose, package = OPTIONAL_PACKAGES[name]
        return f"{purpose} needs the optional package {package}: pip install {package}"
    if name:
        return f"a package this needs is missing: {name} (pip install {name})"
    return f"a package this needs is missing: {_one_line(str(error))}"


def main(argv: list[str] | None = None) -> int:
    """Run the app; turn the engine's errors into one line and a non-zero exit."""
    from engine.errors import EngineError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        with _sigterm_raises():
            result = app(args=args, prog_name="engine", standalone_mode=False)
    except typer.Exit as stop:
        return stop.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return INTERRUPTED
    except KeyboardInterrupt:
        result = INTERRUPTED
    except Terminated:
        typer.echo(f"error: {_stopped(args, 'terminated (SIGTERM)')}", err=True)
        return TERMINATED
    except (EngineError, OSError) as error:
        if debug:
            raise
        typer.echo(f"error: {_one_line(str(error))}", err=True)
        return 1
    except ImportError as error:  # an optional package a flag needs is not installed
        if debug:
            raise
        typer.echo(f"error: {_missing_package(error)}", err=True)
        return 1
    except Exception as error:  # click's usage errors and anything unexpected
        import click

        # typer from 0.2x raises its own copy of click's exceptions, all TyperExceptions.
        usage = (click.exceptions.ClickException, getattr(typer, "TyperException", ()))
        if isinstance(error, usage) and callable(getattr(error, "format_message", None)):
            return _usage_error(error)
        if debug:
            raise
        typer.echo(
            f"error: {type(error).__name__}: {_one_line(str(error))} (rerun with --debug for "
            "details)",
            err=True,
        )
        return 1
    # typer turns Ctrl-C into the status it returns (130), not an exception.
    if result == INTERRUPTED:
        typer.echo(f"error: {_stopped(args, 'interrupted (Ctrl-C)')}", err=True)
        return INTERRUPTED
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())

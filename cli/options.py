"""Options that several commands share, defined once so that each means the same everywhere.

Every command that computes takes ``--scheduler``, ``--workers`` and ``--cluster`` and hands them
to :func:`engine.scheduling.dask_scheduler`: ``--workers N`` starts a local Dask cluster of N
single-threaded worker processes, ``--cluster ADDRESS`` uses a running Dask scheduler, and
without either ``--scheduler`` picks the local scheduler (threads or processes).

Use them as parameter types with their default: ``workers: options.Workers = None``.

Flags that take one of a few names are enumerations here, so that ``--help`` lists the names
and click refuses another as a usage error (exit 2) naming the flag and the choices. The
engine's own tuples of names cannot be imported here (``engine --help`` imports no engine);
``tests/test_cli_options.py`` checks that each enumeration equals the engine's.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from cli import checks


class SchedulerName(StrEnum):
    """``engine.scheduling.SCHEDULERS``."""

    threads = "threads"
    processes = "processes"


class AnalysisDevice(StrEnum):
    """Where the pairwise measures count: ``engine.pairwise`` takes cpu or cuda."""

    cpu = "cpu"
    cuda = "cuda"


class AccessibilityFrom(StrEnum):
    """``engine.measures.ACCESSIBILITY_FROM``."""

    first_trained = "first-trained"
    initialisation = "initialisation"


Store = Annotated[str, typer.Argument(help="Population store (folder or URL).")]
Stores = Annotated[
    list[str], typer.Argument(help="Two or more stores of the same data set (folders or URLs).")
]
Splits = Annotated[
    list[str] | None,
    typer.Option("--split", help="Split to use (repeatable; default: every split)."),
]
#: The one spelling of progress bars on every command (``--quiet``/``-q`` of the training
#: commands is a hidden alias of ``--no-progress`` kept for old scripts).
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
Overwrite = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace an existing output (refused without it; the old one is kept until the "
        "new one is written).",
    ),
]

Scheduler = Annotated[
    SchedulerName,
    typer.Option(
        "--scheduler",
        help="Local Dask scheduler without --workers or --cluster.",
    ),
]
Device = Annotated[
    AnalysisDevice, typer.Option("--device", help="Where the pairwise measures count.")
]
Accessibility = Annotated[
    AccessibilityFrom,
    typer.Option(
        "--accessibility-from",
        help="Accessibility (and its split-half reliability) averages TP-agreement from the "
        "first trained checkpoint (an initialisation checkpoint, epoch 0 and step 0, left out: "
        "it adds the same chance-level term to every example) or from checkpoint 0.",
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Start a local Dask distributed cluster of N single-threaded "
        "worker processes. (engine pairwise used to read N as local Dask threads; the threads "
        "scheduler, the default, uses every core.)",
    ),
]
Cluster = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        callback=checks.cluster_address,
        help="Address of an existing Dask scheduler (tcp://host:8786).",
    ),
]

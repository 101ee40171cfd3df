"""Options that several commands share, defined once so that each means the same everywhere.

Every command that computes takes ``--scheduler``, ``--workers`` and ``--cluster`` and hands them
to :func:`engine.scheduling.dask_scheduler`: ``--workers N`` starts a local Dask cluster of N
single-threaded worker processes, ``--cluster ADDRESS`` uses a running Dask scheduler, and
without either ``--scheduler`` picks the local scheduler (threads or processes).

Use them as parameter types with their default: ``workers: options.Workers = None``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli import checks

Store = Annotated[str, typer.Argument(help="Population store (folder or URL).")]
Stores = Annotated[
    list[str], typer.Argument(help="Two or more stores of the same data set (folders or URLs).")
]
Splits = Annotated[
    list[str] | None,
    typer.Option("--split", help="Split to use (repeatable; default: every split)."),
]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")]

Scheduler = Annotated[
    str,
    typer.Option(
        "--scheduler",
        help="Local Dask scheduler without --workers or --cluster: threads or processes.",
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

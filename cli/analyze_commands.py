"""`engine analyze` and `engine compare`: the paper's measures of one store, or across stores."""

from __future__ import annotations

from pathlib import Path

import typer

_SCHEDULER = typer.Option("threads", "--scheduler",
                          help="Local Dask scheduler: threads or processes.")
_WORKERS = typer.Option(None, "--workers", min=1,
                        help="Start a local Dask distributed cluster of N worker processes.")
_CLUSTER = typer.Option(None, "--cluster",
                        help="Address of an existing Dask scheduler (tcp://host:8786).")
_PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show a progress bar.")
_OUT = typer.Option(..., "--out", "-o", help="Folder for the outputs.")
_SPLIT = typer.Option(None, "--split", help="Split to use (repeatable; default: all).")
_STORE = typer.Argument(..., help="Population store (folder or URL).")
_STORES = typer.Argument(..., help="Two or more stores of the same data set (folders or URLs).")


def analyze(
    store: str = _STORE,
    out: Path = _OUT,
    split: list[str] = _SPLIT,
    scheduler: str = _SCHEDULER,
    workers: int = _WORKERS,
    cluster: str = _CLUSTER,
    require_complete: bool = typer.Option(False, "--require-complete",
                                          help="Refuse a store with incomplete networks."),
    pairwise_checkpoints: str = typer.Option(
        "last", "--pairwise-checkpoints",
        help="Checkpoints of the pairwise measures: last, all, a comma list, or none."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (pairwise measures)."),
    progress: bool = _PROGRESS,
) -> None:
    """Every measure of one store: agreement histograms and their nulls, learning order,
    learning events, consensus, hold-out consistency; summary.json, tables, figures, report.html."""
    from engine.report import analyze_store

    report = analyze_store(store, out, splits=split or None, scheduler=scheduler,
                           workers=workers, cluster=cluster, require_complete=require_complete,
                           pairwise_checkpoints=pairwise_checkpoints, device=device,
                           progress=progress)
    typer.echo(f"wrote {report}")


def compare(
    stores: list[str] = _STORES,
    out: Path = _OUT,
    split: list[str] = _SPLIT,
    scheduler: str = _SCHEDULER,
    workers: int = _WORKERS,
    cluster: str = _CLUSTER,
    require_complete: bool = typer.Option(False, "--require-complete",
                                          help="Refuse stores with incomplete networks."),
    pairwise: bool = typer.Option(True, "--pairwise/--no-pairwise",
                                  help="Also agreement and kappa between the stores' networks."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (pairwise measures)."),
    progress: bool = _PROGRESS,
) -> None:
    """Learning-order agreement between populations on the same examples."""
    from engine.report import compare_stores

    report = compare_stores(stores, out, splits=split or None, scheduler=scheduler,
                            workers=workers, cluster=cluster, require_complete=require_complete,
                            pairwise=pairwise, device=device, progress=progress)
    typer.echo(f"wrote {report}")


def register(app: typer.Typer) -> None:
    app.command()(analyze)
    app.command()(compare)

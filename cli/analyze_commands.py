"""`engine analyze` and `engine compare`: the paper's measures of one store, or across stores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import checks, options

Out = Annotated[Path, typer.Option("--out", "-o", help="Folder for the outputs.")]
#: What marks a folder as an earlier output of these commands, for --overwrite.
MARKS = ("summary.json", "report.html")


def analyze(
    store: options.Store,
    out: Out,
    split: options.Splits = None,
    scheduler: options.Scheduler = options.SchedulerName.threads,
    workers: options.Workers = None,
    cluster: options.Cluster = None,
    require_complete: Annotated[
        bool, typer.Option("--require-complete", help="Refuse a store with incomplete networks.")
    ] = False,
    pairwise_checkpoints: Annotated[
        str,
        typer.Option(
            "--pairwise-checkpoints",
            help="Checkpoints of the pairwise measures: last, all, a comma list, or none.",
        ),
    ] = "last",
    device: options.Device = options.AnalysisDevice.cpu,
    matrices: Annotated[
        bool | None,
        typer.Option(
            "--matrices/--no-matrices",
            help="Write the full N x N pairwise matrices (default: only up to 4,096 networks).",
        ),
    ] = None,
    progress: options.Progress = True,
    overwrite: options.Overwrite = False,
    accessibility_from: options.Accessibility = options.AccessibilityFrom.first_trained,
    network_table: Annotated[
        bool,
        typer.Option(
            "--network-table",
            help="Also write network_examples.parquet: the soft measures of every network on "
            "every example (networks x examples rows).",
        ),
    ] = False,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="An example-metadata column: also the measures of each of its values "
            "(at most 100).",
        ),
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option(
            "--data-dir",
            help="The folder of a data set read from files (as given to train-population): "
            "the report shows the browsed examples' pictures.",
        ),
    ] = None,
) -> None:
    """Every measure of one store: agreement histograms and their nulls, learning order,
    learning events, consensus, hold-out consistency, data maps and the area under the margin
    of soft verdicts; summary.json, tables, figures, report.html."""
    from engine.report import analyze_store

    checks.analysis_device(device.value)
    checks.store_metadata(store)
    checks.checkpoints("--pairwise-checkpoints", store, pairwise_checkpoints)
    checks.splits(store, split)
    with checks.output_folder(out, overwrite=overwrite, made_by="analyze", marks=MARKS):
        report = analyze_store(
            store,
            out,
            splits=split or None,
            scheduler=scheduler.value,
            workers=workers,
            cluster=cluster,
            require_complete=require_complete,
            pairwise_checkpoints=pairwise_checkpoints,
            device=device.value,
            matrices=matrices,
            progress=progress,
            network_table=network_table,
            by=by,
            accessibility_from=accessibility_from.value,
            data_dir=data_dir,
        )
    typer.echo(f"wrote {report}")


def compare(
    stores: options.Stores,
    out: Out,
    split: options.Splits = None,
    scheduler: options.Scheduler = options.SchedulerName.threads,
    workers: options.Workers = None,
    cluster: options.Cluster = None,
    require_complete: Annotated[
        bool, typer.Option("--require-complete", help="Refuse stores with incomplete networks.")
    ] = False,
    pairwise: Annotated[
        bool,
        typer.Option(
            "--pairwise/--no-pairwise",
            help="Also agreement and kappa between the stores' networks.",
        ),
    ] = True,
    device: options.Device = options.AnalysisDevice.cpu,
    progress: options.Progress = True,
    overwrite: options.Overwrite = False,
    accessibility_from: options.Accessibility = options.AccessibilityFrom.first_trained,
) -> None:
    """Learning-order agreement between populations on the same examples."""
    from engine.report import compare_stores

    if pairwise:
        checks.analysis_device(device.value)
    for path in stores:
        checks.store_metadata(path)
    with checks.output_folder(out, overwrite=overwrite, made_by="compare", marks=MARKS):
        report = compare_stores(
            stores,
            out,
            splits=split or None,
            scheduler=scheduler.value,
            workers=workers,
            cluster=cluster,
            require_complete=require_complete,
            pairwise=pairwise,
            device=device.value,
            progress=progress,
            accessibility_from=accessibility_from.value,
        )
    _warn(Path(report).parent / "summary.json")
    typer.echo(f"wrote {report}")


def _warn(summary: Path) -> None:
    """Print the comparison's warnings (checkpoints that differ between populations)."""
    import json

    grids = json.loads(summary.read_text()).get("checkpoint_grids") or {}
    for warning in grids.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
    if grids.get("warnings"):
        typer.echo(f"note: {grids['how']}", err=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command()(analyze)
    app.command()(compare)

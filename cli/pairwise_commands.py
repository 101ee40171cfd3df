"""`engine pairwise`: agreement and error consistency between every two networks of a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import checks, options

#: Bootstrap replicates: a few thousand give stable intervals (the default is 200); 10^8 (a typo)
#: had not finished after two minutes on a store of four networks.
MAX_BOOTSTRAP = 10_000
#: Tile side in networks: a tile of 65,536 x 65,536 counts is already 16 GiB of int32.
MAX_BLOCK = 65_536
#: What marks a folder as an earlier output of engine pairwise, for --overwrite.
MARKS = ("pairwise.json", "pairwise.zarr")


def pairwise(
    store: options.Store,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for pairwise.zarr, figures and JSON.")
    ],
    split: options.Splits = None,
    checkpoints: Annotated[
        str, typer.Option("--checkpoints", help="'last', 'all' or a comma list such as 0,9,29.")
    ] = "last",
    device: options.Device = options.AnalysisDevice.cpu,
    block: Annotated[
        int | None,
        typer.Option(
            "--block",
            min=1,
            max=MAX_BLOCK,
            help="Networks per tile side (default 512 on cpu, 2048 on cuda).",
        ),
    ] = None,
    scheduler: options.Scheduler = options.SchedulerName.threads,
    workers: options.Workers = None,
    cluster: options.Cluster = None,
    bootstrap: Annotated[
        int,
        typer.Option(
            "--bootstrap", min=0, max=MAX_BOOTSTRAP, help="Bootstrap replicates (0: none)."
        ),
    ] = 200,
    seed: Annotated[
        int,
        typer.Option("--seed", min=0, max=2**63 - 1, help="Seed of the bootstrap and of sampling."),
    ] = 0,
    figures: Annotated[
        bool, typer.Option("--figures/--no-figures", help="Draw the figures.")
    ] = True,
    matrices: Annotated[
        bool | None,
        typer.Option(
            "--matrices/--no-matrices",
            help="Write the full N x N matrices to pairwise.zarr (default: only up to 4,096 "
            "networks; the summaries are always written).",
        ),
    ] = None,
    overwrite: options.Overwrite = False,
) -> None:
    """Pairwise agreement, error consistency (kappa) and prediction agreement: summaries
    streamed over tiles, and the N x N matrices where asked for."""
    from engine.pairwise import pairwise_report
    from engine.scheduling import dask_scheduler
    from engine.store import open_population

    checks.analysis_device(device.value)
    checks.store_metadata(store)
    checks.checkpoints("--checkpoints", store, checkpoints)
    checks.splits(store, split)
    population = open_population(store)
    with (
        checks.output_folder(out, overwrite=overwrite, made_by="pairwise", marks=MARKS),
        dask_scheduler(scheduler.value, workers, cluster),
    ):
        report = pairwise_report(
            population,
            out,
            splits=split or None,
            checkpoints=checkpoints,
            device=device.value,
            block=block,
            bootstrap=bootstrap,
            seed=seed,
            figures=figures,
            matrices=matrices,
        )
    _render(report, out)


def _render(report: dict, out: Path) -> None:
    """The summary table of every split and checkpoint, and the files written."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        "split",
        "checkpoint",
        "pairs",
        "agreement",
        "kappa",
        "kappa 95% (networks)",
        "kappa 95% (examples)",
        "prediction agreement",
    )
    for name, split_report in report["splits"].items():
        for t, summary in split_report["checkpoints"].items():
            kappa = summary["kappa"]["all"]
            prediction = summary.get("prediction_agreement", {}).get("all", {}).get("mean")
            table.add_row(
                name,
                t,
                f"{summary['pairs']:,}",
                _number(summary["agreement"]["all"]["mean"]),
                _number(kappa["mean"]),
                _range(kappa["networks_ci"]),
                _range(kappa["examples_ci"]),
                _number(prediction),
            )
    console.print(table)
    for name, split_report in report["splits"].items():
        if split_report.get("undefined"):
            console.print(f"{name}: {split_report['undefined']['why']}")
    written = [report.get("zarr"), "pairwise.json", *report.get("tables", {}).values()]
    written += report["figures"]
    console.print("wrote " + ", ".join(str(out / f) for f in written if f))


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _range(values: list[float] | None) -> str:
    return "-" if not values else f"[{values[0]:.4f}, {values[1]:.4f}]"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command()(pairwise)

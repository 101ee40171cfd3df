"""`engine pairwise`: agreement and error consistency between every two networks of a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def pairwise(
    store: Annotated[str, typer.Argument(help="Population store (folder or URL).")],
    out: Annotated[Path, typer.Option("--out", "-o",
                                      help="Folder for pairwise.zarr, figures and JSON.")],
    split: Annotated[list[str] | None, typer.Option(
        "--split", help="Split to compare (repeatable); default every split.")] = None,
    checkpoints: str = typer.Option("last", "--checkpoints",
                                    help="'last', 'all' or a comma list such as 0,9,29."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (same counts)."),
    block: int = typer.Option(None, "--block", help="Networks per tile side (default 512 on "
                              "cpu, 2048 on cuda)."),
    scheduler: str = typer.Option("threads", "--scheduler", help="threads or processes."),
    workers: int = typer.Option(None, "--workers", help="Dask workers (default: cores)."),
    bootstrap: int = typer.Option(200, "--bootstrap", help="Bootstrap replicates (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap and of sampling."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Draw the figures."),
) -> None:
    """Pairwise agreement, error consistency (kappa) and prediction agreement, N x N."""
    import dask
    from rich.console import Console
    from rich.table import Table

    from engine.errors import ConfigError
    from engine.pairwise import pairwise_report
    from engine.store import open_population

    if scheduler not in ("threads", "processes"):
        raise ConfigError(f"--scheduler must be threads or processes, got {scheduler!r}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    population = open_population(store)
    settings = {"scheduler": scheduler}
    if workers is not None:
        settings["num_workers"] = workers
    with dask.config.set(settings):
        report = pairwise_report(population, out, splits=split or None, checkpoints=checkpoints,
                                 device=device, block=block, bootstrap=bootstrap, seed=seed,
                                 figures=figures)
    console = Console()
    table = Table("split", "checkpoint", "pairs", "agreement", "kappa", "kappa 95% (networks)",
                  "kappa 95% (examples)", "prediction agreement")
    for name, split_report in report["splits"].items():
        for t, summary in split_report["checkpoints"].items():
            kappa = summary["kappa"]["all"]
            prediction = summary.get("prediction_agreement", {}).get("all", {}).get("mean")
            table.add_row(name, t, f"{summary['pairs']:,}",
                          _number(summary["agreement"]["all"]["mean"]), _number(kappa["mean"]),
                          _range(kappa["networks_ci"]), _range(kappa["examples_ci"]),
                          _number(prediction))
    console.print(table)
    console.print(f"wrote {out / 'pairwise.zarr'}, {out / 'pairwise.json'}"
                  + "".join(f", {out / f}" for f in report["figures"]))


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _range(values) -> str:
    return "-" if not values else f"[{values[0]:.4f}, {values[1]:.4f}]"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command()(pairwise)

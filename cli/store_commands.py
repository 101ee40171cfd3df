"""`engine info` and `engine merge`: look into stores and combine them."""

from __future__ import annotations

from pathlib import Path

import typer


def info(
    store: str = typer.Argument(..., help="Population store (folder or URL)."),
    verify: bool = typer.Option(False, "--verify", help="Read every chunk to check checksums."),
) -> None:
    """Splits, networks, checkpoints, examples, completeness and size on disk of a store."""
    from rich.console import Console
    from rich.table import Table

    from engine.store import open_population

    population = open_population(store)
    console = Console()
    attrs = population.attrs
    completed = population.checkpoints_completed()
    complete = int((completed >= population.num_checkpoints).sum())
    console.print(f"[bold]{store}[/bold]  format {attrs['format_version']}, "
                  f"engine {attrs['engine_version']}")
    console.print(f"data set: {attrs['dataset']['name']} "
                  f"(fingerprint {attrs['dataset']['fingerprint'][:16]})")
    console.print(f"networks: {population.num_networks} ({complete} complete), "
                  f"checkpoints: {population.num_checkpoints}, groups: "
                  + ", ".join(f"{g['name']} ({g['architecture']})" for g in attrs["groups"]))
    table = Table("split", "examples", "labels", "predictions", "correct on disk",
                  "bits / entry")
    for split in population.splits:
        entries = population.num_networks * population.num_checkpoints
        entries *= population.num_examples(split)
        stored = population.stored_bytes(f"splits/{split}/correct_packed")
        bits = f"{8 * stored / entries:.3f}" if entries else "-"
        table.add_row(split, str(population.num_examples(split)),
                      "yes" if population.has_labels(split) else "no (probe)",
                      "yes" if attrs["splits"][split]["predictions"] else "no",
                      _size(stored), bits)
    console.print(table)
    console.print(f"size on disk: {_size(population.stored_bytes())}")
    if verify:
        for split in population.splits:
            population.correct(split).sum().compute()
            predictions = population.predictions(split)
            if predictions is not None:
                predictions.max().compute()
        console.print("every chunk read back with a matching checksum")


def merge(
    stores: list[str] = typer.Argument(..., help="Two or more stores of the same data set."),
    output: Path = typer.Option(..., "--output", "-o", help="New store to write."),
) -> None:
    """Merge stores of the same data set and checkpoints into a new store."""
    import sys

    from engine.store import merge_populations

    merged = merge_populations(stores, output, command=" ".join(["engine", *sys.argv[1:]]))
    typer.echo(f"wrote {output}: {merged.num_networks} networks from {len(stores)} stores")


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"


def register(app: typer.Typer) -> None:
    app.command()(info)
    app.command()(merge)

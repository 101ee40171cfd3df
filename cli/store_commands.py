"""`engine info` and `engine merge`: look into stores and combine them."""

from __future__ import annotations

from pathlib import Path

import typer

from cli import checks, options

#: What marks a folder as a store, which --overwrite may replace.
STORE_MARKS = ("zarr.json",)


def info(
    store: str = typer.Argument(..., help="Population store (folder or URL)."),
    verify: bool = typer.Option(
        False, "--verify", help="Read every chunk of every array to check checksums."
    ),
) -> None:
    """Splits, networks, checkpoints, examples, completeness and size on disk of a store."""
    from rich.console import Console
    from rich.table import Table

    from engine.store import open_population, summarize_population, verify_population

    checks.store_metadata(store)  # a damaged zarr.json is named; damaged chunks are described
    # Without the check on opening, so that a damaged store is still described; --verify
    # then names the damage.
    population = open_population(store, check=False)
    summary = summarize_population(population)
    console = Console()
    console.print(
        f"[bold]{store}[/bold]  format {summary.format_version}, engine {summary.engine_version}"
    )
    console.print(
        f"data set: {summary.dataset_name} (fingerprint {summary.dataset_fingerprint[:16]})"
    )
    console.print(
        f"networks: {summary.num_networks} ({summary.complete_networks} complete), "
        f"checkpoints: {summary.num_checkpoints}, groups: "
        + ", ".join(f"{name} ({architecture})" for name, architecture in summary.groups)
    )
    table = Table("split", "examples", "labels", "predictions", "correct on disk", "bits / entry")
    for split in summary.splits:
        bits = f"{split.bits_per_entry:.3f}" if split.bits_per_entry is not None else "-"
        table.add_row(
            split.name,
            str(split.examples),
            "yes" if split.has_labels else "no (probe)",
            "yes" if split.predictions else "no",
            _size(split.correct_bytes),
            bits,
        )
    console.print(table)
    for split in summary.splits:
        if split.soft_bits_per_entry:
            sizes = ", ".join(
                f"{name} {value:.2f}" if value is not None else f"{name} -"
                for name, value in split.soft_bits_per_entry.items()
            )
            console.print(f"soft verdicts of {split.name}: {sizes} bits / entry")
    console.print(f"size on disk: {_size(summary.stored_bytes)}")
    if verify:
        checked = verify_population(population)
        console.print(
            f"every chunk of the {len(checked.arrays)} arrays read back with a matching checksum"
        )


def merge(
    stores: list[str] = typer.Argument(..., help="Two or more stores of the same data set."),
    output: Path = typer.Option(..., "--output", "-o", help="New store to write."),
    overwrite: options.Overwrite = False,
) -> None:
    """Merge stores of the same data set and checkpoints into a new store."""
    import sys

    from engine.store import merge_populations

    for path in stores:
        checks.store_metadata(path)
    with checks.output_folder(
        output, overwrite=overwrite, made_by="merge", marks=STORE_MARKS, flag="--output"
    ):
        merged = merge_populations(stores, output, command=" ".join(["engine", *sys.argv[1:]]))
    typer.echo(f"wrote {output}: {merged.num_networks} networks from {len(stores)} stores")


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"


def register(app: typer.Typer) -> None:
    app.command()(info)
    app.command()(merge)

"""`engine compact`: rewrite a store into blocks of many networks (docs/recording.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from cli import checks, options
from cli.store_commands import STORE_MARKS


def compact(
    store: str = typer.Argument(..., help="Population store to compact (folder or URL)."),
    output: Path = typer.Option(..., "--output", "-o", help="New store to write."),
    network_block: int = typer.Option(
        32, "--network-block", min=1, help="Networks per stored object of the new store."
    ),
    checkpoint_block: int | None = typer.Option(
        None,
        "--checkpoint-block",
        min=1,
        help="Checkpoints per stored object of the new store (default: the source's).",
    ),
    require_complete: bool = typer.Option(
        False, "--require-complete", help="Refuse a store with incomplete networks."
    ),
    overwrite: options.Overwrite = False,
) -> None:
    """Rewrite a store (one filled by many runs, one network per object) into blocks of
    networks, keeping every array, attribute and network as it is."""
    from engine.store import compact_population

    with checks.output_folder(
        output, overwrite=overwrite, made_by="compact", marks=STORE_MARKS, flag="--output"
    ):
        compacted = compact_population(
            store,
            output,
            network_block,
            checkpoint_block=checkpoint_block,
            require_complete=require_complete,
        )
    complete = compacted.complete_networks().size
    typer.echo(
        f"wrote {output}: {compacted.num_networks} networks ({complete} complete) in blocks "
        f"of {network_block}"
    )
    if complete < compacted.num_networks:
        typer.echo(
            f"note: {compacted.num_networks - complete} incomplete networks were copied as they "
            "are; in the new store a writer owns whole blocks, so rerun them in the source"
        )


def register(app: typer.Typer) -> None:
    app.command()(compact)

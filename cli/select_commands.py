"""`engine select`: export the ids of the examples a data-map filter takes, to train on."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli import checks, options


class Region(StrEnum):
    easy = "easy"
    ambiguous = "ambiguous"
    hard = "hard"


class Score(StrEnum):
    aum = "aum"
    confidence = "confidence"
    variability = "variability"
    accessibility = "accessibility"


def select(
    store: options.Store,
    out: Annotated[Path, typer.Option("--out", "-o", help="The .npy file of example ids.")],
    fraction: Annotated[
        float, typer.Option("--fraction", help="Share of the split's examples to take, in (0, 1].")
    ],
    region: Annotated[
        Region | None,
        typer.Option(
            "--region",
            help="ambiguous: highest variability; easy: highest confidence; hard: lowest "
            "confidence (population means over networks).",
        ),
    ] = None,
    by: Annotated[
        Score | None,
        typer.Option(
            "--by",
            help="A score instead of a region: aum (lowest first: likely mislabelled), "
            "confidence, variability or accessibility (highest first); accessibility needs "
            "only the verdicts.",
        ),
    ] = None,
    ascending: Annotated[
        bool | None,
        typer.Option("--ascending/--descending", help="Take the lowest (or highest) scores first."),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Split whose examples to take.")] = "train",
    scheduler: options.Scheduler = options.SchedulerName.threads,
    workers: options.Workers = None,
    cluster: options.Cluster = None,
    progress: options.Progress = True,
    overwrite: options.Overwrite = False,
    accessibility_from: options.Accessibility = options.AccessibilityFrom.first_trained,
) -> None:
    """Write the example ids (the split's example_ids, best first) that a data-map filter
    takes, as dataset cartography selects examples to train on."""
    from engine.report import select_examples

    checks.store_metadata(store)
    with checks.output_folder(
        out, overwrite=overwrite, made_by="select", marks=(".npy",), flag="--out"
    ):
        result = select_examples(
            store,
            out,
            fraction=fraction,
            region=region.value if region is not None else None,
            by=by.value if by is not None else None,
            ascending=ascending,
            split=split,
            scheduler=scheduler.value,
            workers=workers,
            cluster=cluster,
            progress=progress,
            accessibility_from=accessibility_from.value,
        )
    typer.echo(
        f"wrote {result.path}: {result.chosen} of {result.scored} examples of {result.split} "
        f"({result.rule}, over {result.networks} networks)"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command()(select)

"""`engine import`: bring a population that exists elsewhere (dumps of logits or predictions,
folders of runs, datamodels stores, trial tables) into a store, streamed and resumable."""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli import checks, options


class Format(StrEnum):
    auto = "auto"
    npy = "npy"
    npz = "npz"
    runs = "runs"
    datamodels = "datamodels"
    trials = "trials"


class Kind(StrEnum):
    logits = "logits"
    probabilities = "probabilities"
    predictions = "predictions"
    correct = "correct"
    margins = "margins"


def import_command(
    source: Annotated[
        Path,
        typer.Argument(
            help="A .npy or .npz array, a folder of runs, a datamodels folder or a trial table."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The store to create or resume.")],
    format: Annotated[
        Format, typer.Option("--format", help="What SOURCE is (auto: by suffix and contents).")
    ] = Format.auto,
    kind: Annotated[
        Kind | None,
        typer.Option("--kind", help="What the arrays hold (default: inferred from dtype, shape)."),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="Labels, one per example (.npy, .npz or text)."),
    ] = None,
    labels_from_dataset: Annotated[
        str | None,
        typer.Option("--labels-from-dataset", help="A data set the engine knows (digits, ...)."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Files of --labels-from-dataset.")
    ] = None,
    dataset_split: Annotated[
        str, typer.Option("--dataset-split", help="Split of --labels-from-dataset.")
    ] = "test",
    example_ids: Annotated[
        Path | None, typer.Option("--example-ids", help="Index of each example in its data set.")
    ] = None,
    inputs: Annotated[
        Path | None, typer.Option("--inputs", help="The examples' inputs (.npy), fingerprinted.")
    ] = None,
    class_names: Annotated[
        str | None, typer.Option("--class-names", help="Comma-separated class names.")
    ] = None,
    example_metadata: Annotated[
        Path | None,
        typer.Option("--example-metadata", help="CSV or Parquet, one row per example."),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Name of the store's split.")] = "test",
    dataset_name: Annotated[
        str | None, typer.Option("--dataset-name", help="The store's data set name.")
    ] = None,
    epochs: Annotated[
        str | None,
        typer.Option(
            "--epochs", help="Epoch of each checkpoint, e.g. 0,1,2 (one checkpoint: 'final')."
        ),
    ] = None,
    networks: Annotated[
        str | None,
        typer.Option("--networks", help="START:STOP, on whole blocks: import only these."),
    ] = None,
    network_block: Annotated[
        int | None,
        typer.Option(
            "--network-block",
            min=1,
            max=1024,
            help="Networks per stored block of a new store (default: up to 128, 32 MiB).",
        ),
    ] = None,
    member: Annotated[
        str | None, typer.Option("--member", help="The .npz member or .pt key to read.")
    ] = None,
    order: Annotated[
        str,
        typer.Option("--order", help="Runs in order of: name, natural, or a FILE listing them."),
    ] = "name",
    key: Annotated[
        str | None, typer.Option("--key", help="Datamodels array to import (logits, margins).")
    ] = None,
    masks: Annotated[
        str | None,
        typer.Option("--masks", help="Datamodels training masks (default masks; 'none': none)."),
    ] = None,
    observer_column: Annotated[str, typer.Option("--observer-column")] = "subj",
    example_column: Annotated[str, typer.Option("--example-column")] = "imagename",
    response_column: Annotated[str, typer.Option("--response-column")] = "object_response",
    label_column: Annotated[str, typer.Option("--label-column")] = "category",
    checkpoint_column: Annotated[str | None, typer.Option("--checkpoint-column")] = None,
    group: Annotated[str, typer.Option("--group", help="Name of the networks' group.")] = (
        "imported"
    ),
    architecture: Annotated[
        str, typer.Option("--architecture", help="The networks' architecture.")
    ] = "unknown",
    progress: options.Progress = True,
) -> None:
    """The command: open the source, load its examples, import. Long because it declares
    every flag of every source format (the help is :data:`HELP`)."""
    from engine.importers import TrialColumns, import_population, load_examples, open_source

    checks.local_path("--out", out)
    checks.store_metadata(out)
    columns = TrialColumns(
        observer=observer_column,
        example=example_column,
        response=response_column,
        label=label_column,
        checkpoint=checkpoint_column,
    )
    with open_source(
        source,
        format=format.value,
        kind=kind.value if kind is not None else None,
        member=member,
        order=order,
        key=key,
        masks="" if masks == "none" else masks,
        columns=columns,
        split=split,
        dataset_name=dataset_name,
    ) as opened:
        examples = None
        if opened.examples is None:
            examples = load_examples(
                labels=labels,
                dataset=labels_from_dataset,
                data_dir=data_dir,
                dataset_split=dataset_split,
                example_ids=example_ids,
                inputs=inputs,
                class_names=class_names.split(",") if class_names else None,
                metadata=example_metadata,
                split=split,
                dataset_name=dataset_name,
            )
        elif labels is not None or labels_from_dataset is not None:
            _refuse("a trial table holds its own labels: drop --labels / --labels-from-dataset")
        report = import_population(
            opened,
            out,
            examples=examples,
            epochs=_epochs(epochs),
            networks=_range(networks),
            network_block=network_block,
            group=group,
            architecture=architecture,
            progress=progress,
        )
    shape = report.shape
    start, stop = report.networks
    already = f", {report.skipped_networks} already there" if report.skipped_networks else ""
    typer.echo(
        f"{out}: networks {start}:{stop} of {shape.networks} ({report.imported_networks} "
        f"imported{already}), {shape.checkpoints} checkpoint{'s' * (shape.checkpoints != 1)}, "
        f"{shape.examples} examples, {shape.kind}; {report.seconds:.1f} s, "
        f"{report.megabytes_per_second:.0f} MB/s"
    )


def _refuse(message: str) -> None:
    from engine.errors import ConfigError

    raise ConfigError(message)


def _epochs(text: str | None) -> list[float] | None:
    if text is None:
        return None
    if text.strip() == "final":
        return [float("nan")]
    try:
        epochs = [float(part) for part in text.split(",")]
    except ValueError:
        _refuse(f"--epochs {text!r}: give numbers separated by commas, or 'final'")
        raise  # unreachable: _refuse raises
    # NaN is the store's "unknown epoch", which 'final' asks for; inf and negatives are typos.
    if not all(math.isfinite(epoch) and epoch >= 0 for epoch in epochs):
        _refuse(f"--epochs {text!r}: epochs must be finite numbers >= 0 (or 'final')")
    return epochs


def _range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    start, sep, stop = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(start), int(stop)
    except ValueError:
        _refuse(f"--networks {text!r}: give START:STOP, such as 0:1024")
        raise  # unreachable: _refuse raises


HELP = (
    "Import logits, probabilities, predictions or correctness into a store, a block of "
    "networks at a time; rerun the same command to resume (docs/import.md)."
)


def register(app: typer.Typer) -> None:
    app.command("import", help=HELP)(import_command)

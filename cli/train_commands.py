"""`engine train-population` and `engine quickstart`: train populations into a store.

The commands parse flags into :class:`engine.train.StudyFlags` and
:class:`engine.train.RunOptions`; :func:`engine.train.study_from_command_line` merges them into a
study, and the engine trains it (here, or on a Dask cluster with ``--cluster``).
"""

from __future__ import annotations

import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli import checks, options

if TYPE_CHECKING:
    from engine.train.loop import TrainSummary


def _int_list(text: str | None, flag: str) -> tuple[int, ...]:
    from engine.errors import ConfigError

    if not text:
        return ()
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise ConfigError(f"{flag} takes comma-separated integers, got {text!r}") from error


def _name_list(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def _parse_networks(values: list[str] | None) -> tuple[int | None, tuple[int, int] | None]:
    """``--networks N`` (study size) and/or ``--networks A:B`` (ids this process trains)."""
    from engine.errors import ConfigError

    count, network_range = None, None
    for value in values or []:
        try:
            if ":" in value:
                start, stop = (int(p) for p in value.split(":"))
                network_range = (start, stop)
            else:
                count = int(value)
        except ValueError as error:
            raise ConfigError(f"--networks takes N or A:B, got {value!r}") from error
    return count, network_range


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    from engine.errors import ConfigError

    if value is None:
        return None
    try:
        index, count = (int(p) for p in value.split("/"))
    except ValueError as error:
        raise ConfigError(f"--shard takes I/K (e.g. 0/4), got {value!r}") from error
    return index, count


class DatasetName(StrEnum):
    """``engine.train.data.DATASETS``."""

    digits = "digits"
    mnist1d = "mnist1d"
    gaussian = "gaussian"
    teacher = "teacher"
    npz = "npz"
    mnist = "mnist"
    fashion_mnist = "fashion-mnist"
    cifar10 = "cifar10"
    cifar100 = "cifar100"
    svhn = "svhn"
    imagefolder = "imagefolder"


class ArchName(StrEnum):
    """``engine.train.config.ARCHITECTURES``."""

    linear = "linear"
    mlp = "mlp"
    cnn = "cnn"
    resnet = "resnet"
    vgg = "vgg"


class OptimizerName(StrEnum):
    """``engine.train.config.OPTIMIZERS``."""

    sgd = "sgd"
    adam = "adam"


class ScheduleName(StrEnum):
    """``engine.train.config.SCHEDULES``."""

    constant = "constant"
    cosine = "cosine"
    step = "step"


class PrecisionName(StrEnum):
    """``engine.train.config.PRECISIONS``."""

    fp32 = "fp32"
    bf16 = "bf16"


#: ``--device`` of training: the names, or ``cuda:N`` (so not a plain choice).
TRAIN_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def _train_device(value: str) -> str:
    """``--device``'s callback: auto, cpu, cuda or cuda:N, else a usage error."""
    if not TRAIN_DEVICE.fullmatch(value):
        raise typer.BadParameter(f"{value!r} is not one of 'auto', 'cpu', 'cuda', 'cuda:N'")
    return value


def _name(choice: StrEnum | None) -> str | None:
    return None if choice is None else choice.value


# Each flag is declared once here, so that the command's signature is one line per flag.
Out = Annotated[str, typer.Option("--out", "-o", help="Population store to create or resume.")]
StudyFile = Annotated[str | None, typer.Option("--study", help="TOML study file (several groups).")]
Dataset = Annotated[DatasetName | None, typer.Option("--dataset", help="The data set.")]
Arch = Annotated[ArchName | None, typer.Option("--arch", help="The architecture.")]
Networks = Annotated[
    list[str] | None,
    typer.Option(
        "--networks",
        help="N: networks in the study; A:B, the network ids this process trains "
        "(whole blocks). May be given twice.",
    ),
]
Shard = Annotated[str | None, typer.Option("--shard", help="I/K: train the I-th of K shares.")]
Epochs = Annotated[int | None, typer.Option("--epochs", help="Epochs (default 20).")]
Seed = Annotated[int | None, typer.Option("--seed", help="Population seed (default 0).")]
Vary = Annotated[
    str | None,
    typer.Option(
        "--vary", help="Randomness that differs between networks: init,order (default both)."
    ),
]
RecordEvery = Annotated[
    int | None,
    typer.Option("--record-every", help="Extra checkpoints every STEPS optimiser steps."),
]
SubsetFraction = Annotated[
    float | None,
    typer.Option(
        "--subset-fraction", help="Each network trains on its own random subset (C-score)."
    ),
]
Soft = Annotated[
    bool | None,
    typer.Option(
        "--soft/--no-soft",
        help="Also record each network's true-class probability and margin (soft verdicts).",
    ),
]
Width = Annotated[int | None, typer.Option("--width", help="Hidden units or channels.")]
Depth = Annotated[int | None, typer.Option("--depth", help="Hidden layers or stages.")]
BatchNorm = Annotated[bool | None, typer.Option("--batch-norm/--no-batch-norm")]
Optimizer = Annotated[OptimizerName | None, typer.Option("--optimizer", help="The optimiser.")]
LearningRate = Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")]
Momentum = Annotated[float | None, typer.Option("--momentum")]
WeightDecay = Annotated[float | None, typer.Option("--weight-decay")]
Schedule = Annotated[
    ScheduleName | None, typer.Option("--schedule", help="The learning-rate schedule.")
]
Milestones = Annotated[str | None, typer.Option("--milestones", help="Epochs of step decays.")]
Gamma = Annotated[float | None, typer.Option("--gamma", help="Step decay factor.")]
BatchSize = Annotated[int | None, typer.Option("--batch-size")]
Augment = Annotated[
    bool | None, typer.Option("--augment/--no-augment", help="Random crop and flip (images).")
]
Precision = Annotated[
    PrecisionName | None,
    typer.Option(
        "--precision", help="fp32 (default), or bf16: mixed-precision forward passes, fp32 weights."
    ),
]
DataDir = Annotated[str | None, typer.Option("--data-dir", help="Folder or .npz of users' data.")]
Download = Annotated[bool, typer.Option("--download", help="Fetch a public data set.")]
Samples = Annotated[
    int | None, typer.Option("--samples", help="Examples to generate (mnist1d, gaussian, teacher).")
]
HoldoutClasses = Annotated[
    str | None,
    typer.Option(
        "--holdout-classes", help="Classes kept out of training, recorded as a probe split."
    ),
]
Probes = Annotated[str | None, typer.Option("--probes", help="Artificial probes: noise,patterns.")]
NetworkBlock = Annotated[
    int | None, typer.Option("--network-block", help="Networks per stored block (default 32).")
]
GroupSize = Annotated[
    int, typer.Option("--group-size", help="Networks per batched computation (0: the whole group).")
]
Device = Annotated[
    str,
    typer.Option(
        "--device",
        metavar="[auto|cpu|cuda|cuda:N]",
        callback=_train_device,
        help="Where to train (auto: CUDA where there is one).",
    ),
]
Threads = Annotated[int, typer.Option("--threads", help="CPU threads for torch (0: its default).")]
KeepState = Annotated[bool, typer.Option("--keep-state", help="Keep final weights.")]
#: Hidden: the old spelling of --no-progress, kept so that scripts that use it still run.
Quiet = Annotated[bool, typer.Option("--quiet", "-q", hidden=True, help="Like --no-progress.")]
Progress = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Show progress bars and the result line.")
]
ClusterTasks = Annotated[
    int,
    typer.Option(
        "--cluster-tasks", help="Shards to submit with --cluster (0: one per stored block)."
    ),
]
WorkerResources = Annotated[
    str | None,
    typer.Option(
        "--worker-resources", help="Resources each task needs with --cluster, e.g. GPU=1."
    ),
]


def train_population(
    out: Out,
    study: StudyFile = None,
    dataset: Dataset = None,
    arch: Arch = None,
    networks: Networks = None,
    shard: Shard = None,
    epochs: Epochs = None,
    seed: Seed = None,
    vary: Vary = None,
    record_every: RecordEvery = None,
    subset_fraction: SubsetFraction = None,
    soft: Soft = None,
    width: Width = None,
    depth: Depth = None,
    batch_norm: BatchNorm = None,
    optimizer: Optimizer = None,
    lr: LearningRate = None,
    momentum: Momentum = None,
    weight_decay: WeightDecay = None,
    schedule: Schedule = None,
    milestones: Milestones = None,
    gamma: Gamma = None,
    batch_size: BatchSize = None,
    augment: Augment = None,
    precision: Precision = None,
    data_dir: DataDir = None,
    download: Download = False,
    samples: Samples = None,
    holdout_classes: HoldoutClasses = None,
    probes: Probes = None,
    network_block: NetworkBlock = None,
    group_size: GroupSize = 0,
    device: Device = "auto",
    threads: Threads = 0,
    keep_state: KeepState = False,
    progress: Progress = True,
    quiet: Quiet = False,
    cluster: options.Cluster = None,
    cluster_tasks: ClusterTasks = 0,
    worker_resources: WorkerResources = None,
) -> None:
    """Train a population of networks many at a time and record every verdict in a store.

    Rerun the same command to resume after a crash; run it with --shard I/K (or --networks A:B)
    in several processes to fill one store together, or give --cluster to train one shard per
    task on the workers of a Dask scheduler (the store must be on a file system they share).
    \f
    Long only because it declares all 40 flags, one parameter each, and hands 29 of them to
    :class:`engine.train.StudyFlags` by name; the steps are few: parse the flags, let
    :func:`engine.train.study_from_command_line` merge them, train, print one line.
    """
    from engine.errors import ConfigError
    from engine.train.config import RunOptions
    from engine.train.study import StudyFlags, study_from_command_line

    quiet = quiet or not progress
    if not out.strip():
        raise ConfigError("--out must name the store to create or resume")
    checks.local_path("--out", out)
    count, network_range = _parse_networks(networks)
    flags = StudyFlags(
        study_file=study,
        dataset=_name(dataset),
        arch=_name(arch),
        networks=count,
        data_dir=data_dir,
        download=download,
        epochs=epochs,
        seed=seed,
        vary=vary,
        record_every=record_every,
        subset_fraction=subset_fraction,
        network_block=network_block,
        soft=soft,
        samples=samples,
        probes=_name_list(probes) or None,
        holdout_classes=_int_list(holdout_classes, "--holdout-classes") or None,
        width=width,
        depth=depth,
        batch_norm=batch_norm,
        optimizer=_name(optimizer),
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        schedule=_name(schedule),
        gamma=gamma,
        batch_size=batch_size,
        augment=augment,
        precision=_name(precision),
        milestones=_int_list(milestones, "--milestones") if milestones else None,
    )
    run = RunOptions(
        device=device,
        networks=network_range,
        shard=_parse_shard(shard),
        group_size=group_size,
        threads=threads,
        quiet=quiet,
        keep_state=keep_state,
        command=" ".join(["engine", *sys.argv[1:]]),
    )
    config = study_from_command_line(flags)
    run.validate()
    checks.store_metadata(out)
    if cluster is not None:
        from engine.train.cluster import parse_resources, train_on_cluster

        summaries = train_on_cluster(
            config,
            out,
            cluster,
            run,
            tasks=cluster_tasks,
            resources=parse_resources(worker_resources),
        )
        trained = sum(s.trained_networks for s in summaries)
        typer.echo(f"{out}: trained {trained} networks in {len(summaries)} tasks on {cluster}")
        return
    from engine.train.loop import train_population as train

    summary = train(config, out, run)
    if not quiet:
        typer.echo(_trained_line(out, summary))


def _trained_line(out: str, summary: TrainSummary) -> str:
    rate = summary.timings["network_epochs"] / max(summary.seconds, 1e-9)
    return (
        f"{out}: trained {summary.trained_networks} networks "
        f"({summary.skipped_networks} already complete) of "
        f"{summary.networks[0]}:{summary.networks[1]} on {summary.device} in "
        f"{summary.seconds:.1f} s ({rate:.1f} network-epochs/s)"
    )


QUICKSTART_STUDY = """\
# engine quickstart: two architectures on scikit-learn's digits, with artificial probes.
epochs = 10
seed = 0
# Soft verdicts (true-class probability and margin) too: the report then draws data maps.
soft = true

[data]
name = "digits"
probes = ["noise", "patterns"]
probe_examples = 300

[defaults]
batch_size = 64
lr = 0.05
schedule = "cosine"

[[groups]]
name = "linear"
arch = "linear"
networks = 64

[[groups]]
name = "mlp"
arch = "mlp"
networks = 64
width = 64
"""


def quickstart(
    out: Path = typer.Option(
        Path("quickstart-results"),
        "--out",
        "-o",
        help="Folder for the study file, the store and the report.",
    ),
    progress: Progress = True,
    quiet: Quiet = False,
) -> None:
    """Train a small study on digits (linear and MLP populations, CPU), analyse it, and say where
    the results are. Rerunning resumes or reuses the finished store."""
    from engine.train.config import RunOptions
    from engine.train.loop import train_population as train
    from engine.train.study import load_study

    quiet = quiet or not progress
    out.mkdir(parents=True, exist_ok=True)
    study_file = out / "study.toml"
    if not study_file.exists() or study_file.read_text() != QUICKSTART_STUDY:
        study_file.write_text(QUICKSTART_STUDY)
    store = out / "population.zarr"
    summary = train(
        load_study(study_file),
        store,
        RunOptions(device="cpu", quiet=quiet, command="engine quickstart"),
    )
    typer.echo(
        f"trained {summary.trained_networks} networks in {summary.seconds:.1f} s; store: {store}"
    )
    from engine.report import analyze_store

    report = analyze_store(str(store), out / "report", progress=not quiet)
    typer.echo(f"report: {report}")
    typer.echo(
        f"study: {study_file}  (edit it and run engine train-population --study "
        f"{study_file} --out other.zarr)"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("train-population")(train_population)
    app.command()(quickstart)

"""Studies from a TOML file (several groups, one store) or from plain command-line flags.

:func:`study_from_command_line` is where ``engine train-population``'s flags become a study: a
study file, or a one-group study built from ``--dataset``, ``--arch``, ``--networks N`` and the
hyper-parameter flags (never both).

A study file::

    epochs = 20            # every group trains this long; the store has one checkpoint axis
    seed = 0
    vary = ["init", "order"]
    record_every = 0       # extra checkpoints every this many steps
    subset_fraction = 1.0
    soft = false           # true: record true-class probability and margin on every split

    [data]                 # engine.train.data.DataConfig fields
    name = "digits"
    probes = ["noise", "patterns"]

    [defaults]             # hyper-parameters every group starts from (GroupConfig fields)
    lr = 0.05
    batch_size = 64

    [[groups]]
    name = "mlp"
    arch = "mlp"
    networks = 64

    [[groups]]
    name = "cnn"
    arch = "cnn"
    networks = 32
    lr = 0.02
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.train.config import GroupConfig, StudyConfig
from engine.train.data import DataConfig

#: Study-wide settings: top-level keys of a study file, and the flags that set them.
_STUDY_FIELDS = (
    "epochs",
    "seed",
    "vary",
    "record_every",
    "subset_fraction",
    "network_block",
    "soft",
)
_STUDY_KEYS = set(_STUDY_FIELDS)
_TUPLE_FIELDS = {"milestones", "holdout_classes", "probes"}


def _typed(cls, values: dict, where: str):
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} in {where}; known keys: {', '.join(sorted(known))}"
        )
    converted = {}
    for key, value in values.items():
        if key in _TUPLE_FIELDS:
            if not isinstance(value, list):
                raise ConfigError(f"{where}: {key} must be a list")
            value = tuple(value)
        converted[key] = value
    try:
        return cls(**converted)
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from error


def load_study(
    path: str | Path, *, data_dir: str | None = None, download: bool = False
) -> StudyConfig:
    """Read a study from TOML; ``data_dir`` and ``download`` override the file's."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"study file {path} does not exist")
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"study file {path} is not valid TOML: {error}") from error
    unknown = sorted(set(document) - _STUDY_KEYS - {"data", "defaults", "groups"})
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} in {path}; known: "
            f"{', '.join(sorted(_STUDY_KEYS | {'data', 'defaults', 'groups'}))}"
        )
    data_values = dict(document.get("data", {}))
    if data_dir is not None:
        data_values["data_dir"] = data_dir
    if download:
        data_values["download"] = True
    data = _typed(DataConfig, data_values, f"[data] of {path}")
    defaults = dict(document.get("defaults", {}))
    raw_groups = document.get("groups", [])
    if not isinstance(raw_groups, list) or not raw_groups:
        raise ConfigError(f"{path} has no [[groups]]")
    groups = []
    for number, raw in enumerate(raw_groups):
        values = {**defaults, **raw}
        values.setdefault("name", values.get("arch", f"group{number}"))
        if "arch" not in values or "networks" not in values:
            raise ConfigError(f"group {number} of {path} needs arch and networks")
        groups.append(_typed(GroupConfig, values, f"group {values['name']!r} of {path}"))
    study_values = {k: document[k] for k in _STUDY_KEYS if k in document}
    if "vary" in study_values:
        study_values["vary"] = tuple(study_values["vary"])
    study = StudyConfig(data=data, groups=tuple(groups), **study_values)
    study.validate()
    return study


def parse_vary(text: str) -> tuple[str, ...]:
    return tuple(sorted({part.strip() for part in text.split(",") if part.strip()}))


def study_from_flags(
    *,
    dataset: str,
    arch: str,
    networks: int,
    epochs: int,
    seed: int = 0,
    vary: str = "init,order",
    record_every: int = 0,
    subset_fraction: float = 1.0,
    network_block: int = 32,
    soft: bool = False,
    data: DataConfig | None = None,
    **hyperparameters,
) -> StudyConfig:
    """A one-group study, named after its architecture (the plain-flags case)."""
    data = data if data is not None else DataConfig(name=dataset)
    group = GroupConfig(name=arch, arch=arch, networks=networks, **hyperparameters)
    study = StudyConfig(
        data=data,
        groups=(group,),
        epochs=epochs,
        seed=seed,
        vary=parse_vary(vary),
        record_every=record_every,
        subset_fraction=subset_fraction,
        network_block=network_block,
        soft=soft,
    )
    study.validate()
    return study


@dataclass(frozen=True)
class StudyFlags:
    """A study as the command line gives it: ``None`` wherever a flag was not given.

    ``study_file`` excludes every other field but ``data_dir`` and ``download``; without it
    ``dataset``, ``arch`` and ``networks`` are needed. The remaining fields override
    :class:`StudyConfig` (``epochs`` ... ``soft``), :class:`DataConfig` (``samples``,
    ``probes``, ``holdout_classes``) and :class:`GroupConfig` (``width`` ... ``milestones``)
    defaults, except that a study from flags trains 20 epochs by default.
    """

    study_file: str | None = None
    dataset: str | None = None
    arch: str | None = None
    networks: int | None = None
    data_dir: str | None = None
    download: bool = False
    # The study
    epochs: int | None = None
    seed: int | None = None
    vary: str | None = None
    record_every: int | None = None
    subset_fraction: float | None = None
    network_block: int | None = None
    soft: bool | None = None
    # The data
    samples: int | None = None
    probes: tuple[str, ...] | None = None
    holdout_classes: tuple[int, ...] | None = None
    # The group's hyper-parameters
    width: int | None = None
    depth: int | None = None
    batch_norm: bool | None = None
    optimizer: str | None = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    schedule: str | None = None
    gamma: float | None = None
    batch_size: int | None = None
    augment: bool | None = None
    precision: str | None = None
    milestones: tuple[int, ...] | None = None


_FLAG_DATA_FIELDS = ("samples", "probes", "holdout_classes")
_FLAG_GROUP_FIELDS = (
    "width",
    "depth",
    "batch_norm",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "schedule",
    "gamma",
    "batch_size",
    "augment",
    "precision",
    "milestones",
)


def _given(flags: StudyFlags, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(flags, name) for name in names if getattr(flags, name) is not None}


def study_from_command_line(flags: StudyFlags) -> StudyConfig:
    """The study that ``engine train-population``'s flags describe, validated.

    Raises
    ------
    ConfigError
        Where a study file and study flags are both given, neither is complete, or a value is
        out of range.
    """
    hyperparameters = _given(flags, _FLAG_GROUP_FIELDS)
    study_values = _given(flags, _STUDY_FIELDS)
    data_values = _given(flags, _FLAG_DATA_FIELDS)
    if flags.study_file is not None:
        given = [
            f"--{name.replace('_', '-')}"
            for name in [*hyperparameters, *study_values, *data_values]
        ]
        given += ["--dataset"] * (flags.dataset is not None)
        given += ["--arch"] * (flags.arch is not None)
        given += ["--networks N"] * (flags.networks is not None)
        if given:
            raise ConfigError(
                f"--study defines the study; drop {', '.join(given)} (or put "
                "them in the study file)"
            )
        return load_study(flags.study_file, data_dir=flags.data_dir, download=flags.download)
    if flags.dataset is None or flags.arch is None or flags.networks is None:
        raise ConfigError("give --study FILE, or --dataset, --arch and --networks N")
    data = replace(
        DataConfig(name=flags.dataset, data_dir=flags.data_dir, download=flags.download),
        **data_values,
    )
    return study_from_flags(
        dataset=flags.dataset,
        arch=flags.arch,
        networks=flags.networks,
        data=data,
        **{"epochs": 20, **study_values},
        **hyperparameters,
    )

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
import types
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

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


def _shown(value: Any) -> str:
    """A value as an error quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _typed_value(key: str, value: Any, hint: Any, where: str) -> Any:
    """``value`` of a study file checked against the field's type ``hint`` (ints stay ints,
    a float field takes ints too, lists become tuples); ConfigError naming ``key`` otherwise."""
    if get_origin(hint) in (Union, types.UnionType):  # str | None: TOML has no None
        hint = next(option for option in get_args(hint) if option is not type(None))
    if get_origin(hint) is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where}{key} must be a list, got {_shown(value)}")
        item = get_args(hint)[0]
        return tuple(_typed_value(f"{key}[{i}]", v, item, where) for i, v in enumerate(value))
    # bool is an int in Python: `networks = true` must not count as 1, nor `soft = 1` as true.
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}{key} must be true or false, got {_shown(value)}")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where}{key} must be an integer, got {_shown(value)}")
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}{key} must be a number, got {_shown(value)}")
        return float(value)
    if hint is str and not isinstance(value, str):
        raise ConfigError(f"{where}{key} must be a string, got {_shown(value)}")
    return value


def _typed(cls, values: dict, where: str):
    """``cls(**values)`` with every value of the file type-checked, errors naming ``where``."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} in {where}; known keys: {', '.join(sorted(known))}"
        )
    hints = get_type_hints(cls)
    converted = {k: _typed_value(k, v, hints[k], f"{where}: ") for k, v in values.items()}
    return cls(**converted)


def _table(document: dict, key: str, path: Path) -> dict:
    """The TOML table ``key`` (empty where absent)."""
    value = document.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key} in {path} must be a table ([{key}]), got {_shown(value)}")
    return dict(value)


def load_study(
    path: str | Path, *, data_dir: str | None = None, download: bool = False
) -> StudyConfig:
    """Read a study from TOML; ``data_dir`` and ``download`` override the file's."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"study file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read study file {path}: {error}") from error
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"study file {path} is not valid TOML: {error}") from error
    unknown = sorted(set(document) - _STUDY_KEYS - {"data", "defaults", "groups"})
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} in {path}; known: "
            f"{', '.join(sorted(_STUDY_KEYS | {'data', 'defaults', 'groups'}))}"
        )
    data_values = _table(document, "data", path)
    if data_dir is not None:
        data_values["data_dir"] = data_dir
    if download:
        data_values["download"] = True
    data = _typed(DataConfig, data_values, f"[data] of {path}")
    groups = _groups(document, path)
    study_values = {k: document[k] for k in _STUDY_FIELDS if k in document}
    hints = get_type_hints(StudyConfig)
    study_values = {k: _typed_value(k, v, hints[k], "") for k, v in study_values.items()}
    study = StudyConfig(data=data, groups=groups, **study_values)
    study.validate()
    return study


def _groups(document: dict, path: Path) -> tuple[GroupConfig, ...]:
    """The ``[[groups]]`` of a study file, each over the ``[defaults]``, type-checked."""
    defaults = _table(document, "defaults", path)
    raw_groups = document.get("groups", [])
    if not isinstance(raw_groups, list) or not raw_groups:
        raise ConfigError(f"{path} has no [[groups]]")
    groups = []
    for number, raw in enumerate(raw_groups):
        if not isinstance(raw, dict):
            raise ConfigError(f"group {number} of {path} must be a table ([[groups]])")
        values = {**defaults, **raw}
        arch = values.get("arch")
        values.setdefault("name", arch if isinstance(arch, str) else f"group{number}")
        if "arch" not in values or "networks" not in values:
            raise ConfigError(f"group {number} of {path} needs arch and networks")
        groups.append(_typed(GroupConfig, values, f"group {_shown(values['name'])} of {path}"))
    return tuple(groups)


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

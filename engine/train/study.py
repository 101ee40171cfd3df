"""Studies from a TOML file (several groups, one store) or from plain command-line flags.

A study file::

    epochs = 20            # every group trains this long; the store has one checkpoint axis
    seed = 0
    vary = ["init", "order"]
    record_every = 0       # extra checkpoints every this many steps
    subset_fraction = 1.0

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
from dataclasses import fields
from pathlib import Path

from engine.train.data import DataConfig
from engine.errors import ConfigError
from engine.train.config import GroupConfig, StudyConfig

_STUDY_KEYS = {"epochs", "seed", "vary", "record_every", "subset_fraction", "network_block"}
_TUPLE_FIELDS = {"milestones", "holdout_classes", "probes"}


def _typed(cls, values: dict, where: str):
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in {where}; known keys: "
                          f"{', '.join(sorted(known))}")
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


def load_study(path: str | Path, *, data_dir: str | None = None,
               download: bool = False) -> StudyConfig:
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
        raise ConfigError(f"unknown key {unknown[0]!r} in {path}; known: "
                          f"{', '.join(sorted(_STUDY_KEYS | {'data', 'defaults', 'groups'}))}")
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


def study_from_flags(*, dataset: str, arch: str, networks: int, epochs: int, seed: int = 0,
                     vary: str = "init,order", record_every: int = 0,
                     subset_fraction: float = 1.0, network_block: int = 32,
                     data: DataConfig | None = None, **hyperparameters) -> StudyConfig:
    """A one-group study, named after its architecture (the plain-flags case)."""
    data = data if data is not None else DataConfig(name=dataset)
    group = GroupConfig(name=arch, arch=arch, networks=networks, **hyperparameters)
    study = StudyConfig(data=data, groups=(group,), epochs=epochs, seed=seed,
                        vary=parse_vary(vary), record_every=record_every,
                        subset_fraction=subset_fraction, network_block=network_block)
    study.validate()
    return study

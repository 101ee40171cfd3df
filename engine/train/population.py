"""The population store a study trains into: created once, and checked against the study and
its data whenever a run reopens it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.errors import ConfigError, StoreError
from engine.train.config import StudyConfig, config_differences
from engine.train.data import Dataset
from engine.train.seeds import Checkpoints
from engine.train.state import state_folder


def create_or_open(
    study: StudyConfig,
    dataset: Dataset,
    path: Path,
    checkpoints: Checkpoints,
    seeds: dict[str, np.ndarray],
    command: str | None,
) -> None:
    """Create the store once; where several shards start together, the losers open it.

    Parameters
    ----------
    seeds : dict of str to ndarray of int64, dims (networks,)
        :func:`engine.train.seeds.study_seeds` of the study.
    command : str, optional
        The command line, kept in the store's attributes.

    Raises
    ------
    ConfigError
        Where the store exists but holds another study, other data, or no training run.
    """
    from engine.store import GroupSpec, SplitSpec, create_population

    fingerprints = dataset.fingerprints()
    config_json = study.to_json()
    if not path.exists():
        splits = {
            name: SplitSpec(
                labels=split.labels,
                example_ids=split.example_ids,
                predictions=True,
                fingerprint=fingerprints[name],
                soft=study.soft,
            )
            for name, split in dataset.splits.items()
        }
        groups = [GroupSpec(g.name, g.arch, g.networks, g.hyperparameters()) for g in study.groups]
        try:
            create_population(
                path,
                dataset_name=dataset.name,
                splits=splits,
                groups=groups,
                checkpoint_epochs=checkpoints.epochs.tolist(),
                checkpoint_steps=checkpoints.steps.tolist(),
                class_names=dataset.class_names,
                init_seeds=seeds["init"],
                order_seeds=seeds["order"],
                membership_split="train" if study.subset_fraction < 1 else None,
                network_block=study.network_block,
                command=command,
                extra_attrs={"train_config": config_json, "state_folder": state_folder(path).name},
            )
        except (StoreError, OSError):
            # Another shard made it first (create_population removed its staging folder).
            if not path.exists():
                raise
    _check_existing(path, fingerprints, config_json)


def _check_existing(path: Path, fingerprints: dict[str, str], config_json: dict) -> None:
    """Refuse a store made by something else, with another configuration or from other data."""
    from engine.store import dataset_fingerprint, open_population

    population = open_population(path)
    saved = population.attrs.get("extra", {}).get("train_config")
    if saved is None:
        raise ConfigError(
            f"{path} exists but was not made by engine train-population; choose another --out"
        )
    for group in saved.get("groups", []):
        group.setdefault("precision", "fp32")  # stores made before the option trained in fp32
    saved.setdefault("soft", False)  # and before this one recorded no soft verdicts
    differences = config_differences(saved, json.loads(json.dumps(config_json)))
    if differences:
        raise ConfigError(
            f"{path} was made with a different configuration: "
            + "; ".join(differences[:3])
            + (f" (and {len(differences) - 3} more)" if len(differences) > 3 else "")
        )
    if population.dataset_fingerprint != dataset_fingerprint(fingerprints):
        raise ConfigError(
            f"{path} was made from different data (fingerprint "
            f"{population.dataset_fingerprint[:12]}); same settings, other files?"
        )

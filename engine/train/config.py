"""Typed configuration of a population study: one :class:`StudyConfig` of :class:`GroupConfig`.

A study is one store with groups: every group shares the data set, the seed, the epochs and the
checkpoints (the store has one checkpoint axis); a group has its own architecture and
hyper-parameters. The configuration is saved in the store (``attrs["extra"]["train_config"]``) and
compared when a command is rerun on an existing store.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, replace

from engine.errors import ConfigError
from engine.train.data import DataConfig
from engine.train.limits import (
    MAX_BATCH_SIZE,
    MAX_DEPTH,
    MAX_EPOCHS,
    MAX_NETWORK_BLOCK,
    MAX_NETWORKS,
    MAX_SEED,
    MAX_WIDTH,
    Bound,
)

ARCHITECTURES = ("linear", "mlp", "cnn", "resnet", "vgg")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine", "step")
RANDOMNESS = ("init", "order")
#: Floating-point precision of forward passes: ``fp32``, or ``bf16`` mixed precision (autocast).
PRECISIONS = ("fp32", "bf16")

#: Names a group may take: they name files of the training state, so letters, digits and
#: ``_ - . +`` only, starting with a letter or digit, never ``..``, at most 64 characters.
GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
#: Width and depth an architecture gets when a group leaves them at 0.
DEFAULT_WIDTH = {"linear": 0, "mlp": 128, "cnn": 32, "resnet": 16, "vgg": 16}
DEFAULT_DEPTH = {"linear": 0, "mlp": 2, "cnn": 2, "resnet": 3, "vgg": 3}


@dataclass(frozen=True)
class GroupConfig:
    """One group: networks of one architecture with shared hyper-parameters.

    Attributes
    ----------
    name : str
        Group name in the store.
    arch : str
        ``linear``, ``mlp``, ``cnn``, ``resnet`` or ``vgg``.
    networks : int
        Networks in the group.
    width : int
        Hidden units (mlp) or channels of the first stage (cnn, resnet, vgg); 0 = default.
    depth : int
        Hidden layers (mlp) or stages (cnn, resnet, vgg); 0 = default.
    batch_norm : bool
        Batch norm after each convolution (statistics kept per network); ignored by linear/mlp.
    optimizer : str
        ``sgd`` (with momentum, Nesterov off) or ``adam``.
    lr : float
        Peak learning rate (per step).
    momentum : float
        SGD momentum; Adam's beta1.
    weight_decay : float
        L2 penalty coefficient added to the gradient.
    schedule : str
        ``constant``, ``cosine`` (to 0 at the last step, per step) or ``step`` (times ``gamma``
        at each epoch in ``milestones``).
    milestones : tuple of int
        Epochs at which the ``step`` schedule decays.
    gamma : float
        Decay factor of the ``step`` schedule.
    batch_size : int
        Examples per mini-batch per network.
    augment : bool
        Random crop (padding of 1/8 of the side) and horizontal flip, images only.
    precision : str
        ``fp32``, or ``bf16``: mixed precision, forward passes (training and evaluation) under
        ``torch.autocast(dtype=bfloat16)``; parameters, optimiser state and losses stay fp32.
        Recorded predictions are those of the bf16 forward pass.
    """

    name: str
    arch: str
    networks: int
    width: int = 0
    depth: int = 0
    batch_norm: bool = True
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    batch_size: int = 64
    augment: bool = False
    precision: str = "fp32"

    @property
    def resolved_width(self) -> int:
        return self.width or DEFAULT_WIDTH[self.arch]

    @property
    def resolved_depth(self) -> int:
        return self.depth or DEFAULT_DEPTH[self.arch]

    def hyperparameters(self) -> dict:
        """JSON hyper-parameters as the store keeps them (defaults resolved)."""
        values = asdict(self)
        for key in ("name", "arch", "networks"):
            values.pop(key)
        values["width"], values["depth"] = self.resolved_width, self.resolved_depth
        values["milestones"] = list(self.milestones)
        return values

    def validate(self, epochs: int) -> None:
        where = f"group {self.name!r}"
        for option, value, choices in (
            ("architecture", self.arch, ARCHITECTURES),
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
            ("precision", self.precision, PRECISIONS),
        ):
            if value not in choices:
                listed = (
                    " or ".join(choices) if len(choices) == 2 else "one of " + ", ".join(choices)
                )
                raise ConfigError(f"unknown {option} {value!r} in {where}; choose {listed}")
        if (
            not isinstance(self.name, str)
            or not GROUP_NAME.fullmatch(self.name)
            or (".." in self.name)
        ):
            raise ConfigError(
                f"group name {self.name!r}: use at most 64 letters, digits, '_', '-', '.' or '+', "
                "starting with a letter or digit, without '..' (the name names files)"
            )
        for key, bound in GROUP_BOUNDS.items():
            bound.check(f"{where}: {key}", getattr(self, key))
        if any(not 0 < m <= epochs for m in self.milestones):
            raise ConfigError(f"{where}: milestones must lie in 1..{epochs}")


#: The range of every number of a group (``width`` and ``depth`` 0: the architecture's default).
GROUP_BOUNDS = {
    "networks": Bound(1, MAX_NETWORKS),
    "width": Bound(0, MAX_WIDTH),
    "depth": Bound(0, MAX_DEPTH),
    "lr": Bound(0, low_open=True),
    "momentum": Bound(0.0, 1.0, high_open=True),
    "weight_decay": Bound(0),
    "gamma": Bound(0.0, 1.0, low_open=True),
    "batch_size": Bound(1, MAX_BATCH_SIZE),
}


@dataclass(frozen=True)
class StudyConfig:
    """A population study: the data, the seed, the schedule of checkpoints and the groups.

    Attributes
    ----------
    data : DataConfig
    groups : tuple of GroupConfig
        In network-id order: group 0 holds networks ``0..n0-1``, and so on.
    epochs : int
        Passes over each network's training set.
    seed : int
        Population seed: network i's randomness derives from (seed, i) alone.
    vary : tuple of str
        Sources of randomness that differ between networks (``init``, ``order``); a source not
        listed is shared by every network (seeded from (seed, shared)).
    record_every : int
        Extra checkpoints every this many optimiser steps (0: only at epoch ends).
    subset_fraction : float
        Share of the training split each network trains on (its own random subset); 1 = all.
    network_block : int
        Networks per stored block (the unit a shard owns).
    soft : bool
        Record soft verdicts on every split at every checkpoint: each network's true-class
        probability and margin, computed on the training device from the logits and stored as
        the codes of :mod:`engine.store.format` (one byte each per entry).
    """

    data: DataConfig
    groups: tuple[GroupConfig, ...]
    epochs: int = 20
    seed: int = 0
    vary: tuple[str, ...] = RANDOMNESS
    record_every: int = 0
    subset_fraction: float = 1.0
    network_block: int = 32
    soft: bool = False

    @property
    def num_networks(self) -> int:
        return sum(g.networks for g in self.groups)

    def group_ranges(self) -> list[tuple[int, int]]:
        """Network-id range ``[start, stop)`` of each group."""
        ranges, start = [], 0
        for group in self.groups:
            ranges.append((start, start + group.networks))
            start += group.networks
        return ranges

    def validate(self) -> None:
        self.data.validate()
        if not self.groups:
            raise ConfigError("a study needs at least one group")
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ConfigError(f"group names must be unique, got {names}")
        for name, bound in STUDY_BOUNDS.items():
            bound.check(name, getattr(self, name.lstrip("-").replace("-", "_")))
        if not self.vary or any(v not in RANDOMNESS for v in self.vary):
            raise ConfigError(
                f"--vary takes one or both of {','.join(RANDOMNESS)}, got "
                f"{','.join(self.vary) or 'nothing'}"
            )
        # TOML hands over whatever the file says; a string "yes" would silently count as true.
        if not isinstance(self.soft, bool):
            raise ConfigError(f"soft must be true or false, got {self.soft!r}")
        for group in self.groups:
            group.validate(self.epochs)
        Bound(1, MAX_NETWORKS).check("networks of all groups", self.num_networks)
        if self.record_every and len({g.batch_size for g in self.groups}) > 1:
            raise ConfigError(
                "--record-every needs one batch size for every group (the store "
                "has one checkpoint axis)"
            )

    def to_json(self) -> dict:
        """The settings that determine the store's content (not where or how fast it runs)."""
        return {
            "data": self.data.to_json(),
            "groups": [
                {"name": g.name, "arch": g.arch, "networks": g.networks, **g.hyperparameters()}
                for g in self.groups
            ],
            "epochs": self.epochs,
            "seed": self.seed,
            "vary": sorted(self.vary),
            "record_every": self.record_every,
            "subset_fraction": self.subset_fraction,
            "network_block": self.network_block,
            "soft": self.soft,
        }

    def fingerprint_json(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)


#: The range of every number of a study, by the name its errors give (the flag's where the
#: message has long used it).
STUDY_BOUNDS = {
    "epochs": Bound(1, MAX_EPOCHS),
    "--seed": Bound(0, MAX_SEED),
    "--record-every": Bound(0, MAX_SEED),
    "--subset-fraction": Bound(0.0, 1.0, low_open=True),
    "network_block": Bound(1, MAX_NETWORK_BLOCK),
}


def config_differences(saved: dict, wanted: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configuration dicts."""
    keys = sorted(set(saved) | set(wanted))
    differences = []
    for key in keys:
        a, b = saved.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            differences += config_differences(a, b, f"{prefix}{key}.")
        elif (
            isinstance(a, list)
            and isinstance(b, list)
            and len(a) == len(b)
            and all(isinstance(x, dict) for x in a + b)
        ):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                differences += config_differences(x, y, f"{prefix}{key}[{i}].")
        elif a != b:
            differences.append(f"{prefix}{key} ({a!r} in the store, {b!r} now)")
    return differences


@dataclass(frozen=True)
class RunOptions:
    """How and where a study runs; none of it changes the store's content.

    Attributes
    ----------
    device : str
        ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    networks : (int, int), optional
        Network-id range this process trains (whole stored blocks).
    shard : (int, int), optional
        ``(index, count)``: train the index-th of count equal runs of stored blocks.
    group_size : int
        Networks trained together in one batched computation (0: all owned networks of a group).
    eval_batch : int
        Examples per evaluation batch (all networks at once).
    threads : int
        CPU threads torch uses while training (0: torch's default).
    quiet : bool
        No progress bars.
    keep_state : bool
        Keep each block's final weights in the state folder instead of deleting them.
    command : str, optional
        The command line, kept in the store's attributes.
    """

    device: str = "auto"
    networks: tuple[int, int] | None = None
    shard: tuple[int, int] | None = None
    group_size: int = 0
    eval_batch: int = 1024
    threads: int = 0
    quiet: bool = False
    keep_state: bool = False
    command: str | None = None
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.group_size < 0:
            raise ConfigError("--group-size must be >= 0 (0: the whole group)")
        if self.eval_batch < 1:
            raise ConfigError("eval_batch must be >= 1 examples")
        if self.threads < 0:
            raise ConfigError("--threads must be >= 0 (0: torch's default)")
        # More threads than CPUs only contend for them; 100,000 exhausted the machine's threads
        # and hung.
        cpus = os.cpu_count() or 1
        if self.threads > cpus:
            raise ConfigError(
                f"--threads must be <= {cpus} (this machine's CPUs; 0: torch's default), "
                f"got {self.threads}"
            )
        Bound(0, MAX_NETWORKS).check("--group-size", self.group_size)
        Bound(1, MAX_BATCH_SIZE).check("eval_batch", self.eval_batch)

    def with_(self, **changes) -> RunOptions:
        return replace(self, **changes)

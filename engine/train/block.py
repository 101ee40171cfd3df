"""The unit of work, a *block* of networks trained together, and what its training shares.

:class:`TrainContext` holds what every block of one run shares (the study, the data on the device,
the seeds, where verdicts and state go); :class:`BlockRun` one block's model, tensors, optimiser
and position while it trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.train.config import GroupConfig, StudyConfig
from engine.train.data import Dataset
from engine.train.device import DeviceData
from engine.train.recorders import Recorder
from engine.train.seeds import Checkpoints

if TYPE_CHECKING:
    import torch

    from engine.train.models import BatchedModel
    from engine.train.progress import TrainProgress


@dataclass(frozen=True)
class Block:
    """Networks ``[start, stop)`` of group ``group_index``, trained together."""

    group_index: int
    group: GroupConfig
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def networks(self) -> tuple[int, int]:
        """The id range, as recorders take it."""
        return self.start, self.stop

    @property
    def key(self) -> str:
        """Names the block's state file."""
        return f"{self.group.name}-{self.start}-{self.stop}"


def _no_timings() -> dict[str, float]:
    return {"train": 0.0, "record": 0.0, "network_epochs": 0}


@dataclass
class TrainContext:
    """What every block of one run shares.

    Attributes
    ----------
    init_seeds, order_seeds, subset_seeds : ndarray of int64, dims (networks,)
        Of every network of the study (:func:`engine.train.seeds.study_seeds`).
    state_dir : Path or None
        The state folder; None trains without saving state (no store).
    config_json : str
        The study's fingerprint, which a saved state must match to be resumed.
    timings : dict
        Seconds spent training and recording, and network-epochs trained, summed over blocks.
    """

    study: StudyConfig
    dataset: Dataset
    data: DeviceData
    device: torch.device
    checkpoints: Checkpoints
    init_seeds: np.ndarray
    order_seeds: np.ndarray
    subset_seeds: np.ndarray
    recorder: Recorder
    state_dir: Path | None
    eval_batch: int = 1024
    keep_state: bool = False
    progress: TrainProgress | None = None
    config_json: str = ""
    timings: dict[str, float] = field(default_factory=_no_timings)


@dataclass
class BlockRun:
    """One block while it trains: its model, stacked tensors, optimiser and position.

    Attributes
    ----------
    params, buffers : dict of str to Tensor, dims (networks, *shape)
        Stacked parameters and batch-norm statistics.
    subsets : list of ndarray of int64, dims (examples,)
        Each network's training examples.
    members : Tensor of float32, dims (networks, train examples), or None
        1 where a network trains on an example, where networks train on subsets.
    checkpoint_steps : list of int
        The optimiser step of each checkpoint for this group's batch size.
    crop : int
        Padding of the random crop (0: no augmentation).
    checkpoint, step : int
        The last checkpoint recorded and the optimiser steps taken.
    """

    block: Block
    model: BatchedModel
    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer
    subsets: list[np.ndarray]
    members: torch.Tensor | None
    steps_per_epoch: int
    checkpoint_steps: list[int]
    crop: int
    checkpoint: int = 0
    step: int = 0

    @property
    def finished(self) -> bool:
        """Whether the last checkpoint is recorded."""
        return self.checkpoint + 1 >= len(self.checkpoint_steps)

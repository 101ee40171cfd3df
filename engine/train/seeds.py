"""Randomness and schedules as pure functions of (population seed, network id, epoch, step).

Each network's initial weights come from its init seed, each epoch's mini-batch order (and
augmentation draws) from ``numpy.random.default_rng([order_seed, epoch])``, its training subset
from its subset seed. Nothing depends on which block, shard or process trains a network, or on
where a resumed run starts: every network sees the same data in the same order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.train.config import GroupConfig, StudyConfig
from engine.train.data import Dataset

#: The tag that keeps each source of randomness apart in a network's seed sequence.
STREAMS = {"init": 0, "order": 1, "subset": 2}


def network_seeds(seed: int, networks: np.ndarray, stream: str, vary: bool = True) -> np.ndarray:
    """Seed of one source of randomness for each network id, from (population seed, id) alone.

    Parameters
    ----------
    seed : int
        The population seed.
    networks : ndarray of int, dims (networks,)
        Network ids.
    stream : str
        ``init``, ``order`` or ``subset``.
    vary : bool
        With False every network gets the same, shared seed of that stream.

    Returns
    -------
    ndarray of int64, dims (networks,), non-negative
    """
    tag = STREAMS[stream]
    out = np.empty(len(networks), np.int64)
    for position, network in enumerate(np.asarray(networks)):
        key = [int(seed), tag, int(network) + 1 if vary else 0]
        state = np.random.SeedSequence(key).generate_state(2, np.uint32)
        out[position] = ((int(state[0]) << 32) | int(state[1])) >> 1  # non-negative int64
    return out


def study_seeds(study: StudyConfig) -> dict[str, np.ndarray]:
    """Init, order and subset seeds of every network of the study, by stream name.

    Each value is an int64 array of dims (networks,) over all the study's networks.
    """
    ids = np.arange(study.num_networks)
    return {
        "init": network_seeds(study.seed, ids, "init", "init" in study.vary),
        "order": network_seeds(study.seed, ids, "order", "order" in study.vary),
        "subset": network_seeds(study.seed, ids, "subset", True),
    }


def subset_size(train_examples: int, fraction: float) -> int:
    """Training examples in each network's subset.

    >>> subset_size(1000, 0.5), subset_size(1000, 1.0), subset_size(3, 0.01)
    (500, 1000, 1)
    """
    return train_examples if fraction >= 1 else max(1, int(round(fraction * train_examples)))


def subset_indices(subset_seed: int, train_examples: int, fraction: float) -> np.ndarray:
    """Sorted training-example indices of one network's subset (all of them at fraction 1).

    Returns
    -------
    ndarray of int64, dims (examples,)
    """
    if fraction >= 1:
        return np.arange(train_examples)
    count = subset_size(train_examples, fraction)
    rng = np.random.default_rng(int(subset_seed))
    return np.sort(rng.choice(train_examples, count, replace=False))


def epoch_order(
    order_seed: int, epoch: int, subset: np.ndarray, crop: int = 0
) -> tuple[np.ndarray, np.ndarray | None]:
    """One network's training examples for one epoch, in order, and its augmentation draws.

    Parameters
    ----------
    order_seed : int
    epoch : int
        Counted from 0.
    subset : ndarray of int64, dims (examples,)
        The network's training examples (:func:`subset_indices`).
    crop : int
        Zero padding of the random crop; 0 for no augmentation.

    Returns
    -------
    order : ndarray of int64, dims (examples,)
        Indices into the training split.
    draws : ndarray of int64, dims (examples, 3), or None
        Crop offsets (row, column) in ``0..2*crop`` and a flip bit, where ``crop > 0``.
    """
    rng = np.random.default_rng([int(order_seed), int(epoch)])
    order = subset[rng.permutation(subset.size)]
    if not crop:
        return order, None
    draws = np.empty((subset.size, 3), np.int64)
    draws[:, :2] = rng.integers(0, 2 * crop + 1, size=(subset.size, 2))
    draws[:, 2] = rng.random(subset.size) < 0.5
    return order, draws


# ----------------------------------------------------------------------------------------------
# Schedules


@dataclass(frozen=True)
class Checkpoints:
    """The study's checkpoints: epoch (fractional for step checkpoints) and optimiser step.

    Attributes
    ----------
    epochs : ndarray of float64, dims (checkpoints,)
    steps : ndarray of int64, dims (checkpoints,)
        -1 throughout in a store whose groups differ in steps per epoch.
    """

    epochs: np.ndarray
    steps: np.ndarray

    @staticmethod
    def build(epochs: int, steps_per_epoch: int, record_every: int) -> Checkpoints:
        """Checkpoint 0 (initialisation), every ``record_every`` steps, and every epoch end."""
        at_epochs, at_steps = [0.0], [0]
        for epoch in range(1, epochs + 1):
            if record_every:
                for step in range((epoch - 1) * steps_per_epoch + 1, epoch * steps_per_epoch):
                    if step % record_every == 0:
                        at_epochs.append(step / steps_per_epoch)
                        at_steps.append(step)
            at_epochs.append(float(epoch))
            at_steps.append(epoch * steps_per_epoch)
        return Checkpoints(np.asarray(at_epochs), np.asarray(at_steps, np.int64))


def steps_per_epoch(study: StudyConfig, group: GroupConfig, train_examples: int) -> int:
    """Optimiser steps in one epoch of one network of ``group``."""
    return math.ceil(subset_size(train_examples, study.subset_fraction) / group.batch_size)


def study_checkpoints(study: StudyConfig, dataset: Dataset) -> Checkpoints:
    """The store's checkpoints; steps are -1 where groups differ in steps per epoch."""
    train_count = len(dataset.splits["train"])
    per_epoch = {steps_per_epoch(study, g, train_count) for g in study.groups}
    checkpoints = Checkpoints.build(study.epochs, min(per_epoch), study.record_every)
    if len(per_epoch) > 1:
        return Checkpoints(checkpoints.epochs, np.full_like(checkpoints.steps, -1))
    return checkpoints


def learning_rate(group: GroupConfig, step: int, steps_per_epoch: int, epochs: int) -> float:
    """Learning rate of optimiser step ``step`` (counted from 0)."""
    if group.schedule == "cosine":
        return group.lr * 0.5 * (1 + math.cos(math.pi * step / (steps_per_epoch * epochs)))
    if group.schedule == "step":
        epoch = step // steps_per_epoch
        return group.lr * group.gamma ** sum(epoch >= m for m in group.milestones)
    return group.lr

"""What the Lightning and Hugging Face callbacks share, with neither library imported.

A callback names splits (inputs and labels) and a cadence (every N epochs or every K optimiser
steps). When the fit starts it knows how long the fit will be, so :meth:`FitRecording.open` lays
out the checkpoints (0: the initialisation, then one per cadence mark, and the end of training
always) and opens one recorder for the fit's network; at each mark :meth:`FitRecording.record`
evaluates the model on every split and records the logits with the training loss (NaN where
the fit has none: the store's own fill, which readers take as "not recorded").
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError, WriterError
from engine.record.evaluate import model_outputs
from engine.record.recorder import Recorder, StoreLayout, open_recorder


@dataclass(frozen=True)
class Plan:
    """The checkpoints of one fit.

    Attributes
    ----------
    marks : list of int
        The epoch (epoch cadence) or optimiser step (step cadence) at which each checkpoint is
        taken, dims (checkpoints,); 0 is the initialisation.
    epochs : list of float
        Epoch of each checkpoint, fractional for step checkpoints, dims (checkpoints,).
    steps : list of int, optional
        Optimiser step of each checkpoint, where the fit's length in steps is known.
    """

    marks: list[int]
    epochs: list[float]
    steps: list[int] | None


def cadence_marks(total: int, every: int) -> list[int]:
    """``0, every, 2 * every, ...`` up to ``total``, with ``total`` itself always included (the
    trained model is recorded even when ``every`` does not divide the fit)."""
    marks = list(range(0, total + 1, every))
    if marks[-1] != total:
        marks.append(total)
    return marks


class FitRecording:
    """The splits, the cadence and the store of one callback; one recorder per fit.

    Parameters
    ----------
    store : str or path
        The population store; created by the first fit that finds it missing.
    network : int
        The network id this fit trains, in ``0:num_networks``.
    splits : mapping of str to (inputs, labels)
        Inputs: a tensor or array with examples along the first axis, or a mapping of such
        tensors (a tokenised split for a Hugging Face model). Labels: ints, dims (examples,),
        ``-1`` for examples without one.
    every_n_epochs, every_n_steps : int, optional
        The cadence: one of them (every epoch by default).
    num_networks : int
        Networks of the whole population (every fit that fills the store gives the same).
    soft : bool
        Store true-class probabilities and margins besides the verdicts.
    class_names : sequence of str, optional
    num_classes : int, optional
        Defaults to the number of class names, else one more than the largest label.
    dataset : str
        Name of the data set in the store.
    batch_size : int
        Examples per forward pass when evaluating.
    overwrite : bool
        Record a network that is already complete again; otherwise such a fit is refused.
    """

    def __init__(
        self,
        store: str | os.PathLike,
        network: int,
        splits: Mapping[str, tuple[Any, Any]],
        *,
        every_n_epochs: int | None = None,
        every_n_steps: int | None = None,
        num_networks: int = 1,
        soft: bool = False,
        class_names: Sequence[str] | None = None,
        num_classes: int | None = None,
        dataset: str = "custom",
        batch_size: int = 1024,
        overwrite: bool = False,
    ):
        if every_n_epochs is not None and every_n_steps is not None:
            raise ConfigError("give every_n_epochs or every_n_steps, not both")
        every = every_n_steps if every_n_steps is not None else (every_n_epochs or 1)
        if int(every) < 1:
            which = "every_n_steps" if every_n_steps is not None else "every_n_epochs"
            raise ConfigError(f"{which} must be at least 1, got {every}")
        if not 0 <= int(network) < int(num_networks):
            raise ConfigError(f"network {network} is not in 0:{num_networks} (num_networks)")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.store = Path(store)
        self.network = int(network)
        self.by_steps = every_n_steps is not None
        self.every = int(every)
        self.inputs, labels = _splits(splits)
        self.labels = labels
        self.num_networks = int(num_networks)
        self.soft = bool(soft)
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.num_classes = num_classes
        if self.num_classes is None and self.class_names is not None:
            self.num_classes = len(self.class_names)
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.overwrite = bool(overwrite)
        self.plan: Plan | None = None
        self.recorder: Recorder | None = None

    # -- the fit's checkpoints --------------------------------------------------------------

    def plan_fit(
        self, epochs: int | None, total_steps: int | None, steps_per_epoch: int | None
    ) -> Plan:
        """The checkpoints of a fit of ``epochs`` epochs and ``total_steps`` optimiser steps,
        ``steps_per_epoch`` steps an epoch (any of them ``None`` where the fit does not say)."""
        if not steps_per_epoch:
            steps_per_epoch = None
        if self.by_steps:
            if total_steps is None or total_steps < 1:
                raise ConfigError(
                    "every_n_steps needs a fit of known length in steps (a step limit, or an "
                    "epoch count with a train dataloader that has a length)"
                )
            if steps_per_epoch is None:
                raise ConfigError(
                    "every_n_steps needs a train dataloader with a length, to place the "
                    "checkpoints in epochs"
                )
            marks = cadence_marks(total_steps, self.every)
            return Plan(marks, [step / steps_per_epoch for step in marks], marks)
        if total_steps is not None and steps_per_epoch is not None:
            # A step limit may end the fit before its epochs do, inside its last epoch.
            reached = math.ceil(total_steps / steps_per_epoch)
            epochs = reached if epochs is None else min(epochs, reached)
        if epochs is None or epochs < 1:
            raise ConfigError(
                "every_n_epochs needs a fit of a known number of epochs; or record every_n_steps"
            )
        marks = cadence_marks(epochs, self.every)
        if total_steps is None or steps_per_epoch is None:
            return Plan(marks, [float(epoch) for epoch in marks], None)
        steps = [min(epoch * steps_per_epoch, total_steps) for epoch in marks]
        return Plan(marks, [step / steps_per_epoch for step in steps], steps)

    def open(self, plan: Plan) -> None:
        """Open (or create) the store for this fit's network; refuse a network already
        complete unless ``overwrite``."""
        self.close_quietly()
        layout = StoreLayout(
            labels=self.labels,
            num_networks=self.num_networks,
            checkpoints=plan.epochs,
            num_classes=self.num_classes,
            class_names=self.class_names,
            soft=self.soft,
            steps=plan.steps,
            dataset=self.dataset,
        )
        recorder = open_recorder(self.store, self.network, layout=layout, overwrite=self.overwrite)
        if recorder.complete:  # only without overwrite: open_recorder restarts it otherwise
            recorder.close()  # lets go of the network's claim
            raise WriterError(
                f"network {self.network} of {self.store} is already complete; pass "
                "overwrite=True to record it again, or give this fit another network id"
            )
        self.plan = plan
        self.recorder = recorder

    def checkpoint_at(self, mark: int) -> int | None:
        """The checkpoint taken at ``mark`` (an epoch or a step) if it is one not recorded
        yet, else None."""
        if self.plan is None or self.recorder is None or mark not in self.plan.marks:
            return None
        checkpoint = self.plan.marks.index(mark)
        return checkpoint if checkpoint >= self.recorder.next_checkpoint else None

    # -- recording --------------------------------------------------------------------------

    def evaluate(self, model: Any, device: Any = None) -> dict[str, Any]:
        """The model's logits on every split, float32 on the CPU, dims (examples, classes)."""
        return {
            name: model_outputs(model, inputs, batch_size=self.batch_size, device=device)
            for name, inputs in self.inputs.items()
        }

    def record(self, checkpoint: int, outputs: Mapping[str, Any], loss: float | None) -> None:
        """Record the outputs of every split at ``checkpoint``, with the loss (NaN if None:
        written all the same, so that a loss a crashed earlier run left there is not kept)."""
        if self.recorder is None:
            raise WriterError("the recording of this fit is not open (the fit has not started)")
        value = math.nan if loss is None else float(loss)
        self.recorder.record(dict(outputs), checkpoint=checkpoint, loss=value)

    def close(self) -> None:
        """Close the recorder at the end of the fit; warn where the fit stopped before its
        last checkpoint (early stopping, a step limit): the network stays incomplete, and
        readers do not see it."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        recorder.close()
        if not recorder.complete:
            warnings.warn(
                f"the fit ended after {recorder.completed} of {recorder.num_checkpoints} "
                f"checkpoints: network {self.network} of {self.store} stays incomplete and "
                "readers do not see it",
                UserWarning,
                stacklevel=3,
            )

    def close_quietly(self) -> None:
        """Drop the recorder of a failed fit: nothing more is marked."""
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.__exit__(RuntimeError, None, None)


def _splits(splits: Mapping[str, tuple[Any, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inputs and labels (int64 ndarrays) per split, checked to hold as many examples."""
    if not isinstance(splits, Mapping) or not splits:
        raise ConfigError("splits must map at least one split name to (inputs, labels)")
    inputs, labels = {}, {}
    for name, pair in splits.items():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ConfigError(f"split {name!r} must be a pair (inputs, labels)")
        given, targets = pair
        array = _labels_array(targets)
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
            raise ConfigError(f"the labels of split {name!r} must be a 1-D integer array")
        count = _examples(given)
        if count != array.size:
            raise ConfigError(f"split {name!r} has {count} examples but {array.size} labels")
        inputs[name], labels[name] = given, array.astype(np.int64)
    return inputs, labels


def _labels_array(labels: Any) -> np.ndarray:
    if hasattr(labels, "detach") and hasattr(labels, "cpu"):  # a torch tensor
        return labels.detach().cpu().numpy()
    return np.asarray(labels)


def _examples(inputs: Any) -> int:
    if isinstance(inputs, Mapping):
        sizes = {len(value) for value in inputs.values()}
        if len(sizes) != 1:
            raise ConfigError("the input tensors of a split hold different numbers of examples")
        return sizes.pop()
    return len(inputs)

"""A Hugging Face ``TrainerCallback`` that records a fit's verdicts on named splits
(docs/recording.md).

Needs the extra ``created-equal[transformers]`` (transformers, and accelerate, which ``Trainer``
requires). One ``Trainer.train()`` trains one network of the population: give each run its own
``network`` id, and every run fills the same store.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from engine.errors import ConfigError
from engine.record.callbacks import FitRecording

try:
    from transformers import TrainerCallback
except ImportError as error:  # pragma: no cover - the extra is installed where this is tested
    raise ImportError(
        "engine.record.transformers needs transformers: pip install 'created-equal[transformers]'"
    ) from error


class RecordVerdicts(TrainerCallback):
    """Record the model's verdicts on named splits when training begins and every N epochs
    (or every K optimiser steps), into one network of a population store.

    Checkpoint 0 is the initialisation, before any step; then one checkpoint per ``N`` epochs
    (or ``K`` steps), and the end of training always. The number of checkpoints comes from the
    trainer's state (``max_steps``, ``num_train_epochs``) when training begins. Only the world
    process zero evaluates and records. The training loss of a checkpoint is the ``loss`` the
    trainer logs at that step (``logging_strategy``, ``logging_steps``), else the last one it
    logged since the previous checkpoint, else NaN (checkpoint 0 always).

    A run whose network is already complete in the store is refused (unless ``overwrite``);
    rerunning one that crashed starts its network over; training resumed from a trainer
    checkpoint is refused.

    Parameters
    ----------
    store : str or path
        The population store; created by the first run that finds it missing.
    splits : mapping of str to (inputs, labels)
        Inputs: a tensor of input ids (the model is called as ``model(batch)``), or a mapping
        of tensors such as a tokenizer's output (``model(**batch)``), examples along the
        first axis; the logits are the output's ``logits``. Labels: ints, dims (examples,),
        ``-1`` where unknown.
    network : int
        This run's network id, in ``0:num_networks``.
    every_n_epochs, every_n_steps : int, optional
        One of them; every epoch by default.
    num_networks : int
        Networks of the whole population; every run into the store gives the same.
    soft : bool
        Store true-class probabilities and margins too.
    class_names : sequence of str, optional
    num_classes : int, optional
    dataset : str
    batch_size : int
        Examples per forward pass when evaluating.
    overwrite : bool
        Record a network that is already complete again.

    Examples
    --------
    >>> import torch
    >>> from engine.record.transformers import RecordVerdicts
    >>> ids = {"input_ids": torch.randint(0, 17, (6, 8)), "attention_mask": torch.ones(6, 8)}
    >>> callback = RecordVerdicts("runs.zarr", splits={"test": (ids, [0, 1, 2, 0, 1, 2])})
    >>> callback.recording.every, callback.recording.by_steps
    (1, False)
    """

    def __init__(
        self,
        store: str | os.PathLike,
        *,
        splits: Mapping[str, tuple[Any, Any]],
        network: int = 0,
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
        self.recording = FitRecording(
            store,
            network,
            splits,
            every_n_epochs=every_n_epochs,
            every_n_steps=every_n_steps,
            num_networks=num_networks,
            soft=soft,
            class_names=class_names,
            num_classes=num_classes,
            dataset=dataset,
            batch_size=batch_size,
            overwrite=overwrite,
        )
        self._epochs = 0  # epochs ended since training began
        self._last_step = 0  # optimiser step of the last checkpoint recorded
        # A checkpoint evaluated but not yet recorded: (checkpoint, step, outputs). The trainer
        # logs a step's loss after the callbacks' on_step_end and on_epoch_end, so the outputs
        # wait for that log (on_log) or for the next event, whichever comes first.
        self._pending: tuple[int, int, dict[str, Any]] | None = None

    # -- training ---------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._pending = None
        if not state.is_world_process_zero:
            return
        if state.global_step > 0:
            raise ConfigError(
                f"RecordVerdicts cannot go on from a trainer checkpoint (step {state.global_step}):"
                " the store's checkpoints come from one run from the initialisation; train "
                "from the start"
            )
        self._epochs = 0
        self._last_step = 0
        self.recording.open(self.recording.plan_fit(*_fit_length(args, state, kwargs)))
        self.recording.record(0, self.recording.evaluate(kwargs["model"]), loss=None)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.recording.by_steps and state.is_world_process_zero:
            self._evaluate(state, state.global_step, kwargs["model"])

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # A step checkpoint taken at the epoch's last step stays pending: with
        # logging_strategy="epoch" its loss is logged after this event.
        self._epochs += 1
        if not self.recording.by_steps and state.is_world_process_zero:
            self._evaluate(state, self._epochs, kwargs["model"])

    def on_log(
        self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kw: Any
    ) -> None:
        if self._pending is not None and logs and "loss" in logs:
            if self._pending[1] == state.global_step:
                self._record(float(logs["loss"]))

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._flush(state)

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._flush(state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._flush(state)
        if state.is_world_process_zero:
            self.recording.close()

    # -- the checkpoints --------------------------------------------------------------------

    def _evaluate(self, state: Any, mark: int, model: Any) -> None:
        checkpoint = self.recording.checkpoint_at(mark)
        if checkpoint is not None:
            self._flush(state)
            self._pending = (checkpoint, state.global_step, self.recording.evaluate(model))

    def _flush(self, state: Any) -> None:
        """Record the pending checkpoint with the last loss logged since the one before."""
        if self._pending is None:
            return
        step = self._pending[1]
        logged = [
            entry["loss"]
            for entry in state.log_history
            if "loss" in entry and self._last_step < entry.get("step", -1) <= step
        ]
        self._record(float(logged[-1]) if logged else None)

    def _record(self, loss: float | None) -> None:
        assert self._pending is not None
        checkpoint, step, outputs = self._pending
        self._pending = None
        self.recording.record(checkpoint, outputs, loss)
        self._last_step = step


def _fit_length(args: Any, state: Any, kwargs: Mapping[str, Any]) -> tuple[int | None, ...]:
    """(epochs, optimiser steps, steps an epoch) of the run, ``None`` where unknown."""
    loader = kwargs.get("train_dataloader")
    try:
        batches = len(loader) if loader is not None else None
    except TypeError:  # an iterable dataset without a length
        batches = None
    per_epoch = max(math.ceil(batches / args.gradient_accumulation_steps), 1) if batches else None
    total = state.max_steps if state.max_steps and state.max_steps > 0 else None
    # Without a length the trainer loops "forever" (sys.maxsize epochs) until max_steps.
    epochs = state.num_train_epochs
    if not epochs or epochs >= sys.maxsize:
        epochs = math.ceil(args.num_train_epochs) if per_epoch else None
    return epochs, total, per_epoch

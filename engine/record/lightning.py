"""A Lightning ``Callback`` that records a fit's verdicts on named splits (docs/recording.md).

Needs the extra ``created-equal[lightning]`` (the ``lightning`` package; ``pytorch_lightning``
alone works too). One fit trains one network of the population: give each fit (each process of
a job array) its own ``network`` id, and every fit fills the same store.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from engine.errors import ConfigError
from engine.record.callbacks import FitRecording

#: Names under which Lightning logs the training loss, tried in order: at an epoch's end its
#: mean first (``self.log(..., on_epoch=True)`` adds ``_epoch``), at a step the step's own.
EPOCH_LOSS_KEYS = ("train_loss_epoch", "train_loss", "loss_epoch", "loss")
STEP_LOSS_KEYS = ("train_loss_step", "train_loss", "loss_step", "loss")


def _lightning() -> ModuleType:
    for name in ("lightning.pytorch", "pytorch_lightning"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(
        "engine.record.lightning needs Lightning: pip install 'created-equal[lightning]'"
    )


#: Lightning's callback base class, from whichever package is installed.
Callback: Any = _lightning().Callback


class RecordVerdicts(Callback):
    """Record the model's verdicts on named splits at the start of the fit and every N epochs
    (or every K optimiser steps), into one network of a population store.

    Checkpoint 0 is the initialisation, before any step; then one checkpoint per ``N`` epochs
    (or ``K`` steps), and the end of the fit always. The number of checkpoints comes from the
    trainer's ``max_epochs`` (or ``max_steps``) when the fit starts. Only global rank zero
    evaluates and records. The training loss of a checkpoint is the one logged as
    ``train_loss`` or ``loss`` (``self.log("train_loss", loss)``), else that of the step's
    output in step cadence, else NaN.

    A fit whose network is already complete in the store is refused (unless ``overwrite``);
    rerunning a fit that crashed starts its network over.

    Parameters
    ----------
    store : str or path
        The population store; created by the first fit that finds it missing.
    network : int
        This fit's network id, in ``0:num_networks``.
    splits : mapping of str to (inputs, labels)
        Inputs: a tensor (or array) with examples along the first axis, passed to the module
        as ``pl_module(batch)``; labels: ints, dims (examples,), ``-1`` where unknown.
    every_n_epochs, every_n_steps : int, optional
        One of them; every epoch by default.
    num_networks : int
        Networks of the whole population; every fit into the store gives the same.
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
    >>> from engine.record.lightning import RecordVerdicts
    >>> x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    >>> callback = RecordVerdicts("runs.zarr", network=0, splits={"test": (x, y)})
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
        super().__init__()
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

    # -- the fit ----------------------------------------------------------------------------

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        if trainer.ckpt_path is not None:
            raise ConfigError(
                f"RecordVerdicts cannot go on from a Lightning checkpoint ({trainer.ckpt_path}): "
                "the store's checkpoints come from one fit from the initialisation; start the "
                "fit over"
            )
        self.recording.open(self.recording.plan_fit(*_fit_length(trainer)))
        self._record(trainer, pl_module, 0, loss=None)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.recording.by_steps or not trainer.is_global_zero:
            return
        checkpoint = self.recording.checkpoint_at(trainer.current_epoch + 1)
        if checkpoint is not None:
            self._record(trainer, pl_module, checkpoint, _logged_loss(trainer, EPOCH_LOSS_KEYS))

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self.recording.by_steps or not trainer.is_global_zero:
            return
        # global_step counts optimiser steps: with gradient accumulation several batches end
        # on one step, and checkpoint_at takes only the first of them.
        checkpoint = self.recording.checkpoint_at(trainer.global_step)
        if checkpoint is not None:
            # The loss the step just optimised, where training_step returns it; an epoch's
            # logged mean would be the last epoch's here.
            loss = _step_loss(outputs)
            if loss is None:
                loss = _logged_loss(trainer, STEP_LOSS_KEYS)
            self._record(trainer, pl_module, checkpoint, loss)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero:
            self.recording.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.recording.close_quietly()

    def _record(self, trainer: Any, pl_module: Any, checkpoint: int, loss: float | None) -> None:
        # The precision plugin's context: under mixed precision the model is evaluated as it
        # trains (autocast), and the logits come back as float32 all the same.
        with trainer.precision_plugin.forward_context():
            outputs = self.recording.evaluate(pl_module, device=pl_module.device)
        self.recording.record(checkpoint, outputs, loss)


def _fit_length(trainer: Any) -> tuple[int | None, int | None, int | None]:
    """(epochs, optimiser steps, steps an epoch) of the fit, ``None`` where unknown."""
    epochs = (
        trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
    )
    total = trainer.estimated_stepping_batches  # loads the train dataloader if need be
    total_steps = int(total) if math.isfinite(total) and total > 0 else None
    batches = trainer.num_training_batches
    per_epoch = (
        math.ceil(batches / trainer.accumulate_grad_batches)
        if math.isfinite(batches) and batches > 0
        else None
    )
    return epochs, total_steps, per_epoch


def _logged_loss(trainer: Any, keys: Sequence[str]) -> float | None:
    metrics = trainer.callback_metrics
    for key in keys:
        if key in metrics:
            return float(metrics[key])
    return None


def _step_loss(outputs: Any) -> float | None:
    if isinstance(outputs, Mapping):
        outputs = outputs.get("loss")
    if outputs is None or not hasattr(outputs, "detach"):
        return None
    return float(outputs.detach())

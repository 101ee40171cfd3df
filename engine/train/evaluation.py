"""Evaluating a block at a checkpoint: every split's predictions and the training loss, written
to the recorder, then the checkpoint marked complete."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from engine.train.block import BlockRun, TrainContext
from engine.train.device import DeviceData

if TYPE_CHECKING:
    import torch

    from engine.train.models import BatchedModel

#: Floats of activations per evaluation batch (all networks together). On a CPU, batches whose
#: activations stay in cache (8 MB) evaluate fastest: 64 MLPs of width 128 on digits took 35 ms
#: per checkpoint at 256 examples per batch against 59 ms at 1,024, 32 small CNNs 166 ms against
#: 591 ms (copies between the batched layers dominate once activations spill). A GPU takes
#: batches as large as memory allows.
EVAL_ACTIVATION_BUDGET_CPU = 2 * 2**20
EVAL_ACTIVATION_BUDGET_CUDA = 512 * 2**20


def evaluate(
    model: BatchedModel,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    data: DeviceData,
    split: str,
    eval_batch: int,
    members: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions of every network on a split, and mean loss over each network's members.

    The forward pass runs in the group's precision (bf16 autocast or fp32); the predictions
    are the argmax of those logits, the loss is computed from them in fp32.

    Parameters
    ----------
    params, buffers : dict of str to Tensor, dims (networks, *shape)
    eval_batch : int
        Examples per forward pass (all networks at once).
    members : Tensor of float32, dims (networks, examples), optional
        Weights of each network's training examples in its loss (``train`` only).

    Returns
    -------
    predictions : ndarray of int16, dims (networks, examples)
    loss : ndarray of float32, dims (networks,), or None except on the ``train`` split
    """
    import torch
    import torch.nn.functional as F

    from engine.train.models import forward_precision

    inputs, labels = data.inputs[split], data.labels[split]
    networks = next(iter(params.values())).shape[0]
    count = inputs.shape[0]
    predictions = torch.empty((networks, count), dtype=torch.int16, device=inputs.device)
    loss_sum = torch.zeros(networks, dtype=torch.float64, device=inputs.device)
    with torch.no_grad():
        for start in range(0, count, eval_batch):
            stop = min(start + eval_batch, count)
            with forward_precision(inputs.device, model.group.precision):
                logits = model.forward(
                    params, buffers, inputs[start:stop], train=False, shared=True
                )
            logits = logits.float()
            predictions[:, start:stop] = logits.argmax(dim=2).to(torch.int16)
            batch_labels = labels[start:stop]
            if split == "train":
                log_probabilities = F.log_softmax(logits, dim=2)
                target = batch_labels.clamp(min=0).view(1, -1, 1).expand(networks, -1, 1)
                per_example = -log_probabilities.gather(2, target).squeeze(2)
                if members is not None:
                    per_example = per_example * members[:, start:stop]
                loss_sum += per_example.sum(dim=1, dtype=torch.float64)
    loss = None
    if split == "train":
        total = members.sum(dim=1) if members is not None else torch.full_like(loss_sum, count)
        loss = (loss_sum / total.clamp(min=1)).float().cpu().numpy()
    return predictions.cpu().numpy(), loss


def eval_batch_size(context: TrainContext, run: BlockRun) -> int:
    """Examples per evaluation pass: as many as the device's activation budget allows."""
    budget = (
        EVAL_ACTIVATION_BUDGET_CUDA if context.device.type == "cuda" else EVAL_ACTIVATION_BUDGET_CPU
    )
    return max(
        16, min(context.eval_batch, budget // max(1, run.block.size * run.model.activation_size))
    )


def record_checkpoint(context: TrainContext, run: BlockRun) -> tuple[float, float]:
    """Evaluate and write every split at the run's checkpoint, then mark it.

    Returns
    -------
    loss : float
        Mean training loss over the block's networks.
    accuracy : float
        Mean test accuracy (NaN without a labelled test split).
    """
    started = time.perf_counter()
    networks = run.block.networks
    batch = eval_batch_size(context, run)
    loss = accuracy = float("nan")
    for split in context.dataset.splits:
        predictions, split_loss = evaluate(
            run.model, run.params, run.buffers, context.data, split, batch, run.members
        )
        context.recorder.record(split, run.checkpoint, networks, predictions)
        if split_loss is not None:
            context.recorder.record_loss(run.checkpoint, networks, split_loss)
            loss = float(np.nanmean(split_loss))
        if split == "test":
            labels = context.dataset.splits["test"].labels
            accuracy = float((predictions == labels[None]).mean()) if labels.size else accuracy
    context.recorder.mark(run.checkpoint, networks)
    context.timings["record"] += time.perf_counter() - started
    return loss, accuracy

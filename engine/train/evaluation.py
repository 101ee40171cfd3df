"""Evaluating a block at a checkpoint: every split's predictions, the training loss and, where
the study records them, the soft verdicts, written to the recorder, then the checkpoint marked
complete.

Soft verdicts are computed where the logits are (the training device), inside the evaluation's
batches, and encoded there to the store's one-byte codes (:mod:`engine.store.format`): only
(networks, examples) int16 predictions and uint8/int8 codes are copied to the host, never the
(networks, examples, classes) logits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.store.format import (
    MARGIN_LIMIT,
    MARGIN_MISSING,
    MARGIN_SCALE,
    NO_LABEL,
    PROBABILITY_MISSING,
    PROBABILITY_SCALE,
)
from engine.train.block import BlockRun, TrainContext
from engine.train.device import DeviceData

if TYPE_CHECKING:
    import torch

    from engine.train.models import BatchedModel

#: Floats of activations per evaluation batch (all networks together). On a CPU, batches whose
#: activations stay in cache evaluate fastest: 64 MLPs of width 128 on digits took 35 ms
#: per checkpoint at 256 examples per batch against 59 ms at 1,024, 32 small CNNs 166 ms against
#: 591 ms (copies between the batched layers dominate once activations spill). Half that budget
#: (128 examples) was tried again with other jobs sharing the cache (load average 10): no
#: better in the trainer's evaluation (110-122 ms of CPU against 106-107 ms), so it stays.
#: A GPU takes batches as large as memory allows.
EVAL_ACTIVATION_BUDGET_CPU = 2 * 2**20
EVAL_ACTIVATION_BUDGET_CUDA = 512 * 2**20


@dataclass(frozen=True)
class SplitVerdicts:
    """What the evaluation of one split gives, on the host.

    Attributes
    ----------
    predictions : ndarray of int16, dims (networks, examples)
    loss : ndarray of float32, dims (networks,), or None except on the ``train`` split
    probability : ndarray of uint8, dims (networks, examples), or None without soft verdicts
        Code of the true-class probability (:func:`engine.store.format.encode_probability`).
    margin : ndarray of int8, dims (networks, examples), or None without soft verdicts
        Code of the margin (:func:`engine.store.format.encode_margin`).
    """

    predictions: np.ndarray
    loss: np.ndarray | None
    probability: np.ndarray | None = None
    margin: np.ndarray | None = None


def soft_values(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """True-class probability and margin of a batch of logits, on the logits' device.

    Parameters
    ----------
    logits : Tensor of float32, dims (networks, examples, classes)
    labels : Tensor of int64, dims (examples,)
        True classes, ``NO_LABEL`` where there is none.

    Returns
    -------
    probability : Tensor of float32, dims (networks, examples)
        ``softmax(logits)[label]``, through ``logsumexp`` (stable); NaN without a label.
    margin : Tensor of float32, dims (networks, examples)
        The true-class logit minus the largest other logit; NaN without a label.
    """
    import torch

    networks = logits.shape[0]
    target = labels.clamp(min=0).view(1, -1, 1).expand(networks, -1, 1)
    true_logit = logits.gather(2, target).squeeze(2)
    probability = torch.exp(true_logit - torch.logsumexp(logits, dim=2))
    # One copy of the batch's logits, the size the loss's log-softmax makes too; on a CPU this
    # is 4x faster than topk(2).
    largest_other = logits.scatter(2, target, -torch.inf).amax(dim=2)
    margin = true_logit - largest_other
    unlabelled = (labels == NO_LABEL).view(1, -1)
    return probability.masked_fill(unlabelled, np.nan), margin.masked_fill(unlabelled, np.nan)


def encode_soft(
    probability: torch.Tensor, margin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The store's codes of soft verdicts, on their device: the formulas of
    :func:`engine.store.format.encode_probability` and ``encode_margin``.

    ``rint(clip(p, 0, 1) * PROBABILITY_SCALE)`` and ``clip(rint(m * MARGIN_SCALE), +-LIMIT)``
    in float64 (``torch.round`` rounds half to even, as NumPy's ``rint``), so that a code does
    not depend on the device; the missing codes where a value is NaN (no label, or a diverged
    network's: its verdicts are not invented).

    Parameters
    ----------
    probability, margin : Tensor of float, dims (networks, examples)

    Returns
    -------
    probability : Tensor of uint8, dims (networks, examples)
    margin : Tensor of int8, dims (networks, examples)
    """
    import torch

    probability = probability.double()
    probability_code = torch.round(probability.clamp(0.0, 1.0) * PROBABILITY_SCALE)
    # masked_fill, not boolean-mask assignment: on CUDA the latter finds the mask's indices on
    # the host first (a synchronisation per batch); this stays one kernel on the device.
    probability_code.masked_fill_(probability.isnan(), PROBABILITY_MISSING)
    margin = margin.double()
    # As NumPy's nan_to_num: infinite margins are clipped, not missing.
    margin_code = torch.round(margin * MARGIN_SCALE).clamp(-MARGIN_LIMIT, MARGIN_LIMIT)
    margin_code.masked_fill_(margin.isnan(), MARGIN_MISSING)
    return probability_code.to(torch.uint8), margin_code.to(torch.int8)


def evaluate(
    model: BatchedModel,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    data: DeviceData,
    split: str,
    eval_batch: int,
    members: torch.Tensor | None = None,
    soft: bool = False,
) -> SplitVerdicts:
    """Predictions of every network on a split, mean loss over each network's members and,
    with ``soft``, the codes of each network's true-class probability and margin.

    The forward pass runs in the group's precision (bf16 autocast or fp32); the predictions
    are the argmax of those logits, the loss and the soft verdicts are computed from them in
    fp32, batch by batch (no tensor larger than one batch's logits is made).

    Parameters
    ----------
    params, buffers : dict of str to Tensor, dims (networks, *shape)
    eval_batch : int
        Examples per forward pass (all networks at once).
    members : Tensor of float32, dims (networks, examples), optional
        Weights of each network's training examples in its loss (``train`` only).
    soft : bool
        Also compute the codes of the soft verdicts (:func:`soft_values`, :func:`encode_soft`).
    """
    import torch
    import torch.nn.functional as F

    from engine.train.models import forward_precision

    inputs, labels = data.inputs[split], data.labels[split]
    networks = next(iter(params.values())).shape[0]
    count = inputs.shape[0]
    predictions = torch.empty((networks, count), dtype=torch.int16, device=inputs.device)
    probability = margin = None
    if soft:
        probability = torch.empty((networks, count), dtype=torch.uint8, device=inputs.device)
        margin = torch.empty((networks, count), dtype=torch.int8, device=inputs.device)
    loss_sum = torch.zeros(networks, dtype=torch.float64, device=inputs.device)
    with torch.no_grad():
        for start in range(0, count, eval_batch):
            stop = min(start + eval_batch, count)
            with forward_precision(inputs.device, model.group.precision):
                logits = model.forward(
                    params, buffers, inputs[start:stop], train=False, shared=True
                )
            # Each reduction on the layout its CPU kernel runs fastest on (measured on (64, 256,
            # 10) logits: argmax over a contiguous last dim 4x faster than over a strided one,
            # log-softmax over the classes of class-major logits 20x faster than over a last
            # dim of 10); making the missing layout costs one small copy.
            logits = logits.float().contiguous()  # (networks, batch, classes)
            predictions[:, start:stop] = logits.argmax(dim=2).to(torch.int16)
            batch_labels = labels[start:stop]
            if probability is not None and margin is not None:
                codes = encode_soft(*soft_values(logits, batch_labels))
                probability[:, start:stop], margin[:, start:stop] = codes
            if split == "train":
                by_class = logits.transpose(1, 2).contiguous()  # (networks, classes, batch)
                log_probabilities = F.log_softmax(by_class, dim=1)
                target = batch_labels.clamp(min=0).view(1, 1, -1).expand(networks, 1, -1)
                per_example = -log_probabilities.gather(1, target).squeeze(1)
                if members is not None:
                    per_example = per_example * members[:, start:stop]
                loss_sum += per_example.sum(dim=1, dtype=torch.float64)
    loss = None
    if split == "train":
        total = members.sum(dim=1) if members is not None else torch.full_like(loss_sum, count)
        loss = (loss_sum / total.clamp(min=1)).float().cpu().numpy()
    return SplitVerdicts(
        predictions=predictions.cpu().numpy(),
        loss=loss,
        probability=probability.cpu().numpy() if probability is not None else None,
        margin=margin.cpu().numpy() if margin is not None else None,
    )


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
    soft = context.study.soft
    for split in context.dataset.splits:
        verdicts = evaluate(
            run.model, run.params, run.buffers, context.data, split, batch, run.members, soft
        )
        if soft:
            context.recorder.record(
                split,
                run.checkpoint,
                networks,
                verdicts.predictions,
                probability=verdicts.probability,
                margin=verdicts.margin,
            )
        else:
            # Without soft verdicts, recorders that take predictions alone keep working.
            context.recorder.record(split, run.checkpoint, networks, verdicts.predictions)
        if verdicts.loss is not None:
            context.recorder.record_loss(run.checkpoint, networks, verdicts.loss)
            loss = float(np.nanmean(verdicts.loss))
        if split == "test":
            labels = context.dataset.splits["test"].labels
            predictions = verdicts.predictions
            accuracy = float((predictions == labels[None]).mean()) if labels.size else accuracy
    context.recorder.mark(run.checkpoint, networks)
    context.timings["record"] += time.perf_counter() - started
    return loss, accuracy

"""Soft verdicts from logits or probabilities: what the writer records in one pass.

Layout letters: n networks, x examples, c classes. From a block of logits (or probabilities) of
one split at one checkpoint come the predicted class (argmax), the probability of the true class
(softmax) and the margin (true-class logit minus the largest other logit; from probabilities,
the same in log space, which is the logit margin up to the softmax's shift). Examples without a
true label have neither probability nor margin (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import WriterError
from engine.store.format import NO_LABEL

#: How far a row of probabilities may sum from 1 (float16 dumps round their rows).
PROBABILITY_SUM_TOLERANCE = 1e-3
#: Up to this many classes the argmax goes class by class over whole planes (faster than
#: NumPy's argmax along a short axis); beyond it, NumPy's argmax.
FEW_CLASSES = 32


@dataclass(frozen=True)
class SoftVerdicts:
    """What one block of logits says, per (network, example).

    Parameters
    ----------
    predictions : ndarray of int64, dims (networks, examples)
        The argmax class.
    probability : ndarray of float32, dims (networks, examples)
        Probability of the true class; NaN where the example has no label.
    margin : ndarray of float32, dims (networks, examples)
        True-class logit minus the largest other logit (+-inf where a probability is 0); NaN
        where the example has no label.
    """

    predictions: np.ndarray
    probability: np.ndarray
    margin: np.ndarray


def soft_verdicts(
    values: np.ndarray,
    labels: np.ndarray,
    num_classes: int | None,
    expected: tuple[int, int],
    *,
    kind: str,
) -> SoftVerdicts:
    """Check a block of logits or probabilities and derive its verdicts.

    Parameters
    ----------
    values : ndarray of float, dims (networks, examples, classes)
    labels : ndarray of int, dims (examples,)
        True classes, -1 where there is none.
    num_classes : int, optional
        Classes of the store; where None, at least one more than the largest label.
    expected : (int, int)
        (networks, examples) of the block.
    kind : "logits" or "probabilities"

    Raises
    ------
    WriterError
        If the shape, dtype, class count or values are wrong (non-finite values, probabilities
        outside [0, 1] or rows that do not sum to 1); nothing is derived then.
    """
    rows = _checked_rows(values, labels, num_classes, expected, kind)
    classes = rows.shape[0]
    # Class by class over (networks, examples) planes: NumPy reduces a short trailing axis of
    # classes one row at a time, several times slower than these whole-plane operations.
    largest = np.maximum.reduce(rows, axis=0)
    if classes <= FEW_CLASSES:
        predictions = np.zeros(expected, np.int64)
        for k in range(classes - 1, -1, -1):  # downwards, so that a tie goes to the first class
            np.copyto(predictions, k, where=rows[k] == largest)
    else:
        predictions = np.argmax(rows, axis=0)
    labelled = labels != NO_LABEL
    true_class = np.where(labelled, labels, 0).astype(np.int64)
    examples = np.arange(expected[1])
    true_value = rows[true_class, :, examples].T  # (networks, examples)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if kind == "logits":
            shifted = rows - largest
            np.exp(shifted, out=shifted)
            log_total = largest + np.log(np.add.reduce(shifted, axis=0))
            probability = np.exp(true_value - log_total)
        else:
            probability = true_value
        rows[true_class, :, examples] = -np.inf if kind == "logits" else -1.0
        largest_other = np.maximum.reduce(rows, axis=0)
        if kind == "logits":
            margin = true_value - largest_other
        else:
            margin = np.log(true_value) - np.log(largest_other)
    missing = ~labelled[None, :]
    return SoftVerdicts(
        predictions=predictions,
        probability=np.where(missing, np.nan, probability).astype(np.float32),
        margin=np.where(missing, np.nan, margin).astype(np.float32),
    )


def _checked_rows(
    values: np.ndarray,
    labels: np.ndarray,
    num_classes: int | None,
    expected: tuple[int, int],
    kind: str,
) -> np.ndarray:
    """The values checked, as a float32 copy of dims (classes, networks, examples)."""
    values = np.asarray(values)
    if values.ndim != 3 or values.shape[:2] != expected:
        raise WriterError(
            f"{kind} have shape {values.shape}, expected (networks, examples, classes) with "
            f"(networks, examples) = {expected}"
        )
    if not np.issubdtype(values.dtype, np.floating):
        raise WriterError(f"{kind} must be floating point, got {values.dtype}")
    classes = values.shape[2]
    if num_classes is not None and classes != num_classes:
        raise WriterError(f"{kind} have {classes} classes; the store has {num_classes}")
    labelled = labels[labels != NO_LABEL]
    if classes < 2 or (labelled.size and int(labelled.max()) >= classes):
        raise WriterError(
            f"{kind} have {classes} classes: too few for the labels (largest "
            f"{int(labelled.max()) if labelled.size else 'none'})"
        )
    # float32 keeps the arithmetic exact enough for codes of 1/32 and halves the memory; the
    # copy that converts also moves classes first (one pass over float16 dumps).
    networks, examples = expected
    rows = np.ascontiguousarray(values.reshape(networks * examples, classes).T, dtype=np.float32)
    rows = rows.reshape(classes, networks, examples)
    if not np.isfinite(rows).all():
        raise WriterError(f"{kind} hold NaN or infinite values")
    if kind == "probabilities":
        if rows.size and (rows.min() < 0 or rows.max() > 1):
            raise WriterError("probabilities must lie in [0, 1]")
        sums = np.add.reduce(rows, axis=0, dtype=np.float64)
        error = np.abs(sums - 1)
        if rows.size and error.max() > PROBABILITY_SUM_TOLERANCE:
            worst = float(sums.flat[error.argmax()])
            raise WriterError(
                f"probabilities must sum to 1 over the classes (within "
                f"{PROBABILITY_SUM_TOLERANCE}); a row sums to {worst:.4f}"
            )
    return rows

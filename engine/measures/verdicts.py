"""The measures of one split that come from its verdict counts, one function per statistic.

Layout letters: n networks (of the pooled groups), t checkpoints, x labelled examples,
s split-halvings. Definitions: docs/measures.md. Plain NumPy on the
computed counts of :func:`engine.measures.verdict_statistics`, which are small (checkpoints x
examples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.measures.numbers import nan_to_none, nan_to_none_list, spearman, spearman_brown
from engine.measures.selection import NetworkSelection


@dataclass(frozen=True)
class PooledVerdicts:
    """The verdict counts of the networks of some groups pooled together, on the labelled
    examples only."""

    #: Networks pooled, N (at least one).
    size: int
    #: bool (networks,) over the whole population: the pooled networks.
    in_groups: np.ndarray
    #: int64 (t, x): networks right on each example at each checkpoint.
    tpa_count: np.ndarray
    #: float64 (n, t): accuracy of each pooled network.
    network_accuracy: np.ndarray
    #: int64 (s, x): correct verdicts, over checkpoints, of the first half of each halving.
    half_sum: np.ndarray
    #: int64 (s, x): the same at checkpoint 0 alone.
    half_first: np.ndarray
    #: int64 (x, t + 1): networks whose first-learned checkpoint is k (k = t: never learned).
    first_learned_histogram: np.ndarray
    #: int64 (x,): forgetting events.
    forgetting_count: np.ndarray
    #: int64 (t, x): networks right on each example among those that did not train on it.
    holdout_count: np.ndarray
    #: int64 (x,): networks that did not train on each example.
    holdout_networks: np.ndarray

    @classmethod
    def pool(
        cls,
        counts: dict[str, np.ndarray],
        groups: list[int],
        in_groups: np.ndarray,
        labelled: np.ndarray,
    ) -> PooledVerdicts:
        """Sum the computed counts of :func:`~engine.measures.verdict_statistics` over
        ``groups`` and keep the ``labelled`` examples (bool (x,) of the split)."""

        def pooled(name: str) -> np.ndarray:
            return counts[name][groups].sum(axis=0)[labelled]

        tpa_count = pooled("tpa_count").T
        return cls(
            size=int(in_groups.sum()),
            in_groups=in_groups,
            tpa_count=tpa_count,
            network_accuracy=counts["network_count"][in_groups] / tpa_count.shape[1],
            half_sum=counts["half_sum"][groups].sum(axis=0)[:, labelled],
            half_first=counts["half_first"][groups].sum(axis=0)[:, labelled].astype(np.int64),
            first_learned_histogram=pooled("first_learned_histogram"),
            forgetting_count=pooled("forgetting_count"),
            holdout_count=pooled("holdout_count").T,
            holdout_networks=pooled("holdout_networks"),
        )

    @property
    def num_checkpoints(self) -> int:
        return self.tpa_count.shape[0]

    @property
    def num_examples(self) -> int:
        return self.tpa_count.shape[1]

    @property
    def tpa(self) -> np.ndarray:
        """TP-agreement, float64 (t, x)."""
        return self.tpa_count / self.size


def accuracy_summary(network_accuracy: np.ndarray) -> dict[str, list[float]]:
    """Mean, standard deviation, min and max over networks of the accuracy at each checkpoint
    (``network_accuracy`` float64 (n, t))."""
    return {
        "accuracy_mean": network_accuracy.mean(axis=0).tolist(),
        "accuracy_std": network_accuracy.std(axis=0).tolist(),
        "accuracy_min": network_accuracy.min(axis=0).tolist(),
        "accuracy_max": network_accuracy.max(axis=0).tolist(),
    }


def tpa_histogram(tpa_count: np.ndarray, size: int) -> np.ndarray:
    """Examples on which k of the ``size`` networks are right, int64 (t, N + 1), from
    ``tpa_count`` int (t, x)."""
    return np.stack([np.bincount(row, minlength=size + 1) for row in tpa_count])


def independence_null_histogram(network_accuracy: np.ndarray, num_examples: int) -> np.ndarray:
    """Expected TP-agreement histogram of independent networks of the same accuracies: the
    Poisson-binomial law times the examples, float64 (t, N + 1).

    ``network_accuracy`` float64 (n, t).
    """
    from kernels.agreement import poisson_binomial

    return (
        np.stack(
            [
                poisson_binomial(np.ascontiguousarray(network_accuracy[:, t]))
                for t in range(network_accuracy.shape[1])
            ]
        )
        * num_examples
    )


def binomial_null_histogram(accuracy_mean: np.ndarray, size: int, num_examples: int) -> np.ndarray:
    """The null of equal accuracies: Binomial(N, mean accuracy) times the examples, float64
    (t, N + 1), from ``accuracy_mean`` float64 (t,)."""
    from scipy.stats import binom

    return np.stack([binom.pmf(np.arange(size + 1), size, p) for p in accuracy_mean]) * num_examples


def extreme_fraction(histogram: np.ndarray, num_examples: int) -> np.ndarray:
    """Share of examples that none or all networks get right, float64 (t,), from a histogram
    (t, N + 1) of :func:`tpa_histogram` or a null."""
    return (histogram[:, 0] + histogram[:, -1]) / num_examples


def agreement_excess(tpa: np.ndarray, accuracy_mean: np.ndarray, size: int) -> np.ndarray:
    """The bimodality index beta_t = (Var_x TPA / (p (1 - p)) - 1/N) / (1 - 1/N), float64 (t,);
    NaN where undefined (one network, or every network always right or always wrong)."""
    total = tpa.shape[0]
    variance = tpa.var(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = (
            ((variance / (accuracy_mean * (1 - accuracy_mean)) - 1 / size) / (1 - 1 / size))
            if size > 1
            else np.full(total, np.nan)
        )
    return np.where(np.isfinite(excess), excess, np.nan)


#: The two readings of accessibility's checkpoints (``--accessibility-from``): from the first
#: trained checkpoint (an initialisation checkpoint left out), or from checkpoint 0 whatever it is.
ACCESSIBILITY_FROM = ("first-trained", "initialisation")


@dataclass(frozen=True)
class AccessibilityWindow:
    """The checkpoints accessibility averages TP-agreement over: ``start`` to the last.

    An untrained network is right on an example with the chance of its output, so an
    initialisation checkpoint adds about the same term to every example's accessibility: it
    moves no rank but shrinks the spread and pulls every value towards chance.
    """

    #: One of :data:`ACCESSIBILITY_FROM`.
    rule: str
    #: First checkpoint averaged (0 or 1).
    start: int
    #: Checkpoints of the store, T.
    num_checkpoints: int
    #: Checkpoint 0 is an initialisation checkpoint (epoch 0, step 0 or unknown).
    initialisation: bool

    @property
    def checkpoints(self) -> int:
        """Checkpoints averaged."""
        return self.num_checkpoints - self.start

    def summary(self) -> dict[str, Any]:
        """``summary.json``'s ``accessibility_from`` entry of a split."""
        return {
            "rule": self.rule,
            "first_checkpoint": self.start,
            "checkpoints": self.checkpoints,
            "initialisation_checkpoint": self.initialisation,
            "initialisation_left_out": self.start == 1,
        }


def accessibility_window(
    epochs: np.ndarray, steps: np.ndarray, rule: str = "first-trained"
) -> AccessibilityWindow:
    """The checkpoints accessibility averages over, from the store's checkpoint table.

    Checkpoint 0 is left out only where ``rule`` is ``first-trained``, it is an initialisation
    checkpoint (epoch 0 and step 0, or step unknown: -1) and there is another checkpoint.

    Parameters
    ----------
    epochs : float64 (t,)
        Epoch of each checkpoint (NaN: unknown).
    steps : int64 (t,)
        Optimiser step of each checkpoint (-1: unknown).
    rule : str
        One of :data:`ACCESSIBILITY_FROM`.

    Raises
    ------
    ConfigError
        For another rule.

    Examples
    --------
    >>> accessibility_window(np.array([0.0, 1.0, 2.0]), np.array([0, 10, 20])).start
    1
    >>> accessibility_window(np.array([1.0, 2.0]), np.array([10, 20])).start
    0
    """
    from engine.errors import ConfigError

    if rule not in ACCESSIBILITY_FROM:
        raise ConfigError(
            f"accessibility from {rule!r}: choose one of {', '.join(ACCESSIBILITY_FROM)}"
        )
    epochs, steps = np.asarray(epochs, np.float64), np.asarray(steps, np.int64)
    total = int(epochs.size)
    initialisation = bool(total and epochs[0] == 0 and steps[0] in (0, -1))
    start = int(rule == "first-trained" and initialisation and total > 1)
    return AccessibilityWindow(rule, start, total, initialisation)


#: Accessibility over every checkpoint: what a caller that names no window gets.
EVERY_CHECKPOINT = AccessibilityWindow("initialisation", 0, 0, False)


def example_accessibility(tpa: np.ndarray, start: int = 0) -> np.ndarray:
    """Accessibility of each example, the mean of its TP-agreement over checkpoints ``start``
    to the last, float64 (x,), from ``tpa`` float64 (t, x)."""
    return tpa[start:].mean(axis=0)


def learning_order(accessibility: np.ndarray) -> np.ndarray:
    """Rank of each example by accessibility, most accessible first (ties in example order),
    int64 (x,)."""
    order = np.argsort(-accessibility, kind="stable")
    ranks = np.empty(accessibility.size, np.int64)
    ranks[order] = np.arange(accessibility.size)
    return ranks


def split_half_reliabilities(
    verdicts: PooledVerdicts, network_half: np.ndarray, start: int = 0
) -> list[float]:
    """Spearman-Brown corrected Spearman correlation of the accessibilities of each halving's
    two halves (over checkpoints ``start`` to the last, ``start`` 0 or 1); halvings with an
    empty half are skipped.

    ``network_half`` uint8 (s, networks) over the whole population.
    """
    row_total = verdicts.tpa_count[start:].sum(axis=0)
    size, half = verdicts.size, verdicts.half_sum
    if start:
        half = half - verdicts.half_first
    reliabilities = []
    for s in range(half.shape[0]):
        first = int((network_half[s] & verdicts.in_groups).sum())
        if first == 0 or first == size:
            continue
        rho = spearman(half[s] / first, (row_total - half[s]) / (size - first))
        reliabilities.append(spearman_brown(rho))
    return reliabilities


def first_learned_statistics(
    first_learned_histogram: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and median first-learned checkpoint of the networks that learn each example, and
    the share that never learns it; float64 (x,) each, from int (x, t + 1)."""
    from kernels.learning import histogram_mean_median

    mean, median = histogram_mean_median(first_learned_histogram.astype(np.int64))
    return mean, median, first_learned_histogram[:, -1] / size


def first_learned_epochs(
    first_learned_histogram: np.ndarray, epochs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and median first-learned **epoch** of the networks that learn each example.

    The same order statistics as :func:`first_learned_statistics` (the median is the mean of
    the two middle values for an even count), taken over the epochs of the checkpoints rather
    than their indices: epochs need not be evenly spaced (step checkpoints), so the epoch of
    the mean checkpoint is not the mean epoch.

    Parameters
    ----------
    first_learned_histogram : int (x, t + 1)
        Networks whose first-learned checkpoint is k; the last bin counts those that never
        learn the example.
    epochs : float (t,)
        The epoch of each checkpoint, NaN where unknown.

    Returns
    -------
    mean, median : float64 (x,)
        NaN where no network learns the example, or where an epoch they need is unknown.
    """
    counts = np.asarray(first_learned_histogram)[:, :-1].astype(np.int64)
    epochs = np.asarray(epochs, np.float64)
    total = counts.sum(axis=1)
    weighted = np.where(counts > 0, counts * epochs, 0.0).sum(axis=1)
    cumulative = counts.cumsum(axis=1)
    # Order statistics (0-based) (total - 1) // 2 and total // 2: the first bin whose
    # cumulative count passes each.
    last = max(counts.shape[1] - 1, 0)
    low = np.minimum((cumulative <= ((total - 1) // 2)[:, None]).sum(axis=1), last)
    high = np.minimum((cumulative <= (total // 2)[:, None]).sum(axis=1), last)
    learned = total > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(learned, weighted / np.maximum(total, 1), np.nan)
    if epochs.size == 0:
        return mean, np.full(total.shape, np.nan)
    median = np.where(learned, 0.5 * (epochs[low] + epochs[high]), np.nan)
    return mean, median


def learning_curves(
    tpa: np.ndarray, accessibility: np.ndarray, bins: int = 5
) -> dict[str, list[Any]]:
    """Mean TP-agreement per checkpoint of the examples in each accessibility quantile bin."""
    if accessibility.size == 0:
        return {"edges": [], "curves": []}
    edges = np.quantile(accessibility, np.linspace(0, 1, bins + 1))
    index = np.clip(np.searchsorted(edges, accessibility, side="right") - 1, 0, bins - 1)
    curves = [
        tpa[:, index == b].mean(axis=1).tolist() if (index == b).any() else None
        for b in range(bins)
    ]
    return {"edges": edges.tolist(), "curves": curves}


def holdout_consistency(holdout_count: np.ndarray, holdout_networks: np.ndarray) -> np.ndarray:
    """C-score: mean correctness on each example of the networks that did not train on it,
    float64 (t, x), NaN where every network trained on it."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            holdout_networks > 0, holdout_count / np.maximum(holdout_networks, 1), np.nan
        )


def _on_every_example(labelled: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values of the labelled examples on all of the split's, NaN elsewhere, float64 (x,)."""
    out = np.full(labelled.size, np.nan)
    out[labelled] = values
    return out


def first_learned_epoch_measures(
    verdicts: PooledVerdicts, labelled: np.ndarray, epochs: np.ndarray
) -> dict[str, np.ndarray]:
    """The first-learned epoch's mean and median per example (float64 (x,), NaN without a
    label), from the checkpoints' ``epochs`` (float (t,))."""
    mean, median = first_learned_epochs(verdicts.first_learned_histogram, epochs)
    return {
        "first_learned_epoch_mean": _on_every_example(labelled, mean),
        "first_learned_epoch_median": _on_every_example(labelled, median),
    }


def correctness_measures(
    verdicts: PooledVerdicts,
    selection: NetworkSelection,
    labelled: np.ndarray,
    window: AccessibilityWindow = EVERY_CHECKPOINT,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every measure of correctness: the summary's entries and the arrays per example;
    accessibility (and its split-half reliability) over the checkpoints of ``window``."""
    size, x_count = verdicts.size, verdicts.num_examples
    tpa = verdicts.tpa
    accuracy_mean = verdicts.network_accuracy.mean(axis=0)
    histogram = tpa_histogram(verdicts.tpa_count, size)
    null = independence_null_histogram(verdicts.network_accuracy, x_count)
    window = _fitted(window, verdicts.num_checkpoints)
    accessibility = example_accessibility(tpa, window.start)
    reliabilities = split_half_reliabilities(verdicts, selection.network_half, window.start)
    first_mean, first_median, never_learned = first_learned_statistics(
        verdicts.first_learned_histogram, size
    )
    forgetting = verdicts.forgetting_count / size
    summary = {
        "checkpoints": verdicts.num_checkpoints,
        "examples": int(x_count),
        **accuracy_summary(verdicts.network_accuracy),
        "tpa_histogram": histogram.astype(int).tolist(),
        "null_histogram": null.tolist(),
        "binomial_histogram": binomial_null_histogram(accuracy_mean, size, x_count).tolist(),
        "extreme_fraction": extreme_fraction(histogram, x_count).tolist(),
        "extreme_fraction_null": extreme_fraction(null, x_count).tolist(),
        "agreement_excess": nan_to_none_list(agreement_excess(tpa, accuracy_mean, size)),
        "split_half_spearman": nan_to_none(np.mean(reliabilities)) if reliabilities else None,
        "split_half_spearman_each": nan_to_none_list(np.asarray(reliabilities)),
        "accessibility_mean": nan_to_none(accessibility.mean()),
        "accessibility_from": window.summary(),
        "never_learned_share": nan_to_none(never_learned.mean()),
        "forgetting_mean": nan_to_none(forgetting.mean()),
        "tpa_mean_by_accessibility": learning_curves(tpa, accessibility),
    }
    order = np.full(labelled.size, -1, np.int64)
    order[labelled] = learning_order(accessibility)
    per_example = {
        "accessibility": _on_every_example(labelled, accessibility),
        "tpa_last": _on_every_example(labelled, tpa[-1]),
        "first_learned_mean": _on_every_example(labelled, first_mean),
        "first_learned_median": _on_every_example(labelled, first_median),
        "never_learned_share": _on_every_example(labelled, never_learned),
        "forgetting_mean": _on_every_example(labelled, forgetting),
        "learning_order": order,
        "tpa": tpa,  # (t, x) over labelled examples, for comparisons
    }
    return summary, per_example


def _fitted(window: AccessibilityWindow, num_checkpoints: int) -> AccessibilityWindow:
    """``window`` on counts of ``num_checkpoints`` (the default names no store's count)."""
    if window.num_checkpoints == num_checkpoints:
        return window
    if window.num_checkpoints:
        raise ValueError(
            f"accessibility window of {window.num_checkpoints} checkpoints on counts of "
            f"{num_checkpoints}"
        )
    return AccessibilityWindow(window.rule, 0, num_checkpoints, window.initialisation)


def holdout_measures(
    verdicts: PooledVerdicts,
    labelled: np.ndarray,
    window: AccessibilityWindow = EVERY_CHECKPOINT,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Hold-out consistency per checkpoint and its rank correlation with accessibility (over
    the checkpoints of ``window``) at the last checkpoint: the summary's entries and the array
    per example."""
    consistency = holdout_consistency(verdicts.holdout_count, verdicts.holdout_networks)
    accessibility = example_accessibility(
        verdicts.tpa, _fitted(window, verdicts.num_checkpoints).start
    )
    mean = (
        nan_to_none_list(np.nanmean(consistency, axis=1))
        if np.isfinite(consistency).any()
        else [None] * verdicts.num_checkpoints
    )
    last = consistency[-1]
    finite = np.isfinite(last)
    correlation = (
        nan_to_none(spearman(last[finite], accessibility[finite])) if finite.sum() > 1 else None
    )
    return (
        {"holdout_consistency_mean": mean, "holdout_accessibility_spearman": correlation},
        {"holdout_consistency": _on_every_example(labelled, last)},
    )

"""Consensus of one split, where examples may have no true label, against its null.

Layout letters: n networks (of the pooled groups), t checkpoints, x examples, k classes.
Definitions: docs/measures.md, "Consensus". Plain NumPy on the computed counts of
:func:`engine.measures.class_statistics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.measures.numbers import nan_to_none_list

#: Samples of the consensus null per checkpoint.
CONSENSUS_NULL_SAMPLES = 512


def plurality_count(class_count: np.ndarray) -> np.ndarray:
    """Networks that predict each example's plurality class, int (x, t), from ``class_count``
    int (x, t, k)."""
    examples, kept, classes = class_count.shape
    if classes and examples:
        return class_count.max(axis=2)
    return np.zeros((examples, kept), np.int64)


def consensus_null(
    network_class_count: np.ndarray, examples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Expected consensus histogram (times the number of examples) and mean under the null.

    Each network draws its class independently from its own predicted-class frequencies.

    Parameters
    ----------
    network_class_count : int32 (n, t, k)
        Examples each network assigns to each class.
    examples : int
    seed : int
        Seed of the draws.

    Returns
    -------
    histograms : float64 (t, n + 1)
    means : float64 (t,)
    """
    from kernels.consensus import plurality_histogram_of_draws

    networks, kept, classes = network_class_count.shape
    rng = np.random.default_rng(seed)
    histograms, means = [], []
    for t in range(kept):
        counts = network_class_count[:, t].astype(np.float64)
        total = counts.sum(axis=1, keepdims=True)
        cumulative = np.cumsum(
            np.divide(counts, total, out=np.zeros_like(counts), where=total > 0), axis=1
        )
        uniforms = rng.random((CONSENSUS_NULL_SAMPLES, networks))
        drawn = plurality_histogram_of_draws(np.ascontiguousarray(cumulative), uniforms)
        law = drawn / CONSENSUS_NULL_SAMPLES
        histograms.append(law * examples)
        means.append(float((np.arange(networks + 1) / max(networks, 1) * law).sum()))
    return np.asarray(histograms), np.asarray(means)


def consensus_measures(
    class_count: np.ndarray, network_class_count: np.ndarray, last_only: bool, seed: int
) -> tuple[dict[str, Any], np.ndarray]:
    """The consensus summary and each example's consensus at the last checkpoint.

    Parameters
    ----------
    class_count : int (x, t, k)
        Networks of the pooled groups that predict each class.
    network_class_count : int (n, t, k)
        The pooled networks' class counts (at least one network).
    last_only : bool
        The counts cover the last checkpoint only.
    seed : int
        Seed of the null's draws.

    Returns
    -------
    summary : dict
        ``checkpoints``, ``mean`` and ``histogram`` of the plurality share per checkpoint, and
        the null's ``null_mean`` and ``null_histogram``.
    consensus_last : float64 (x,)
    """
    size = network_class_count.shape[0]
    examples = class_count.shape[0]
    plurality = plurality_count(class_count)
    share = plurality / size
    last = share[:, -1] if share.shape[1] else np.full(examples, np.nan)
    histograms = np.stack(
        [np.bincount(plurality[:, t], minlength=size + 1) for t in range(plurality.shape[1])]
    )
    null_histograms, null_means = consensus_null(network_class_count, examples, seed)
    summary = {
        "checkpoints": "last" if last_only else "all",
        "mean": nan_to_none_list(share.mean(axis=0)) if examples else [],
        "histogram": histograms.astype(int).tolist(),
        "null_mean": nan_to_none_list(null_means),
        "null_histogram": null_histograms.tolist(),
    }
    return summary, last

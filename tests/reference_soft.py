"""NumPy references of the soft-verdict measures: slow, plain, obviously right.

Each has the name and signature of its kernel in ``kernels/soft.py``. The definitions are not in
``../shared/docs/science.md`` yet; they are those of the papers: confidence, variability
(population standard deviation) and correctness of Swayamdipta et al. 2020, "Dataset
Cartography: Mapping and Diagnosing Datasets with Training Dynamics" (the mean, the standard
deviation and the share of correct verdicts over epochs); the area under the margin of Pleiss et
al. 2020, "Identifying Mislabeled Data using the Area Under the Margin Ranking" (the mean over
checkpoints of the true-class logit minus the largest other logit); and the mean cross-entropy
loss -log p. Blocks are in the store's order, dims (x, n, t).
"""

from __future__ import annotations

import numpy as np

from kernels.soft import P_MIN, REGIONS, STATISTICS, RegionThresholds

__all__ = ["accumulate_soft", "finish_soft"]


def accumulate_soft(probability, margin, correct, sums):
    """Sums over the recorded checkpoints (probability and margin both not NaN) of p, p^2, the
    verdict, the margin and the loss (-log p, or below P_MIN its bound from the margin,
    max(-log P_MIN, softplus(-m))), and their number."""
    count, probability_sum, probability_square_sum, correct_count, margin_sum, loss_sum = sums
    recorded = ~np.isnan(probability) & ~np.isnan(margin)
    p = np.where(recorded, probability, 0).astype(np.float64)
    count += recorded.sum(axis=2, dtype=np.int32)
    probability_sum += p.sum(axis=2)
    probability_square_sum += (p * p).sum(axis=2)
    correct_count += np.where(recorded, correct, 0).sum(axis=2, dtype=np.int32)
    margin_sum += np.where(recorded, margin, 0).astype(np.float64).sum(axis=2)
    m = np.where(recorded, margin, 0).astype(np.float64)
    with np.errstate(divide="ignore"):
        known = -np.log(p)
    bound = np.maximum(-np.log(P_MIN), np.logaddexp(0.0, -m))
    loss = np.where(p >= P_MIN, known, bound)
    loss_sum += np.where(recorded, loss, 0).sum(axis=2)


def _statistics(sums):
    """The statistics of every (x, n) in the order of STATISTICS, NaN where nothing was
    recorded: dims (k, x, n)."""
    count, probability_sum, probability_square_sum, correct_count, margin_sum, loss_sum = sums
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = probability_sum / count
        # Population variance E[p^2] - E[p]^2 (ddof 0, as cartography), rounding below 0 cut.
        variance = np.maximum(probability_square_sum / count - confidence * confidence, 0.0)
        return np.stack(
            [
                confidence,
                np.sqrt(variance),
                correct_count / count,
                margin_sum / count,
                loss_sum / count,
            ]
        )


def finish_soft(
    sums, network_group, example_sums, network_statistics=None, thresholds=RegionThresholds()
):
    """Per (x, n) the five statistics; per group and example the number of networks that
    recorded it, the sums of the statistics and of their squares over those networks, and the
    number of networks for which it is easy (confidence high), ambiguous (variability high) or
    hard (confidence low), by the fixed thresholds of kernels.soft.RegionThresholds."""
    network_count, statistic_sum, statistic_square_sum, region_count = example_sums
    values = _statistics(sums)
    recorded = sums.checkpoint_count > 0
    if network_statistics is not None:
        network_statistics[...] = values.astype(np.float32)
    confidence = values[STATISTICS.index("confidence")]
    ambiguous = values[STATISTICS.index("variability")] >= thresholds.ambiguous_variability
    # At most one region each, in this order of precedence: ambiguous, easy, hard.
    easy = ~ambiguous & (confidence >= thresholds.easy_confidence)
    hard = ~ambiguous & ~easy & (confidence < thresholds.hard_confidence)
    region = {"easy": easy, "ambiguous": ambiguous, "hard": hard}
    for n in range(sums.checkpoint_count.shape[1]):
        group = network_group[n]
        if group < 0:
            continue
        kept = recorded[:, n]
        network_count[group] += kept
        statistic_sum[group] += np.where(kept, values[:, :, n], 0.0)
        statistic_square_sum[group] += np.where(kept, values[:, :, n] ** 2, 0.0)
        for r, name in enumerate(REGIONS):
            region_count[group, r] += kept & region[name][:, n]

"""Kernels of soft verdicts: data maps (dataset cartography) and the area under the margin.

Layout letters: n networks, t checkpoints, x examples, g groups, k statistics (the order of
:data:`STATISTICS`), r regions (the order of :data:`REGIONS`). Blocks are read in the store's
order, dims (x, n, t): the probability p[x,n,t] a network gives the true class, and its margin
m[x,n,t] (true-class logit minus the largest other logit), both NaN where not recorded.

Per (x, n), over the checkpoints where both are recorded (c of them), after Swayamdipta et al.
2020 ("Dataset Cartography") and Pleiss et al. 2020 ("Identifying Mislabeled Data using the Area
Under the Margin Ranking"):

- confidence = (1/c) sum_t p; variability = sqrt((1/c) sum_t p^2 - confidence^2), the population
  standard deviation (ddof 0) as in cartography; correctness = (1/c) sum_t C;
- area under the margin = (1/c) sum_t m; loss = (1/c) sum_t l, with l = -log p where p >= P_MIN
  and, where p < P_MIN (a stored code 0), its lower bound max(-log P_MIN, softplus(-m)): the
  probability is not known there, but p <= sigmoid(m) always.

:func:`accumulate_soft` adds a block of checkpoints to the sums of :class:`SoftSums` (in place,
one block after another); :func:`finish_soft` turns them into those five statistics and adds, per
group and example, the count of networks that recorded the example, the sums of each statistic
and of its square over those networks (mean and spread across networks, which add up over blocks
of networks), and the count of networks for which the example falls in each region.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from kernels._jit import kernel

#: The statistics per (network, example), in the order of the k axis.
STATISTICS = ("confidence", "variability", "correctness", "area_under_margin", "loss")

#: Cartography's regions, in the order of the r axis.
REGIONS = ("easy", "ambiguous", "hard")
EASY, AMBIGUOUS, HARD = range(len(REGIONS))

#: The smallest probability the loss takes as known. The store keeps p as a uint8 code of step
#: 1/32 (engine.store.format.PROBABILITY_SCALE), so a stored 0 stands for any p below half a step,
#: 1/64; every non-zero decoded p is at least 1/32. Below it the loss is taken from the margin
#: (:func:`_entry_loss`), which bounds the mean loss error by 1.2 nats on a real population
#: (benchmarks/RESULTS.md) instead of 6 with a clamp alone.
P_MIN = 1.0 / 64.0


@kernel
def _entry_loss(p: float, m: float) -> float:
    """The loss -log p of one entry; below P_MIN, its lower bound max(-log P_MIN,
    softplus(-m)), since p <= sigmoid(m) = 1 / (1 + exp(-m))."""
    if p >= P_MIN:
        return -math.log(p)
    softplus = max(-m, 0.0) + math.log1p(math.exp(-abs(m)))
    return max(-math.log(P_MIN), softplus)


class RegionThresholds(NamedTuple):
    """Fixed thresholds of cartography's regions of one (network, example).

    Cartography draws its regions relatively, per network: the third of the examples with the
    highest variability is ambiguous, the third with the highest confidence easy-to-learn and the
    third with the lowest hard-to-learn (Swayamdipta et al. 2020). Thirds need every example of a
    network at once, which a block of examples does not have, so the kernel uses fixed thresholds
    instead, meant to approximate those thirds on typical data maps (the paper gives no fixed
    values; its variability axis runs from 0 to about 0.5). An example is ambiguous if its
    variability is at least ``ambiguous_variability``; otherwise easy if its confidence is at least
    ``easy_confidence``; otherwise hard if its confidence is below ``hard_confidence``; otherwise
    in no region ("other"). Callers who want relative thresholds compute them in a first pass
    over the per-network statistics and pass them here.
    """

    ambiguous_variability: float = 0.2
    easy_confidence: float = 0.75
    hard_confidence: float = 0.25


class SoftSums(NamedTuple):
    """What :func:`accumulate_soft` adds to (in place) for one block of examples x networks,
    carried from one block of checkpoints to the next; all (x, n)."""

    #: int32: checkpoints where both probability and margin are recorded.
    checkpoint_count: np.ndarray
    #: float64: sum of p over those checkpoints.
    probability_sum: np.ndarray
    #: float64: sum of p^2.
    probability_square_sum: np.ndarray
    #: int32: checkpoints where the network is right (the argmax verdict).
    correct_count: np.ndarray
    #: float64: sum of the margin.
    margin_sum: np.ndarray
    #: float64: sum of -log(max(p, P_MIN)).
    loss_sum: np.ndarray

    @classmethod
    def start(cls, examples: int, networks: int) -> SoftSums:
        """The sums before the first checkpoint."""
        shape = (examples, networks)
        return cls(
            np.zeros(shape, np.int32),
            np.zeros(shape),
            np.zeros(shape),
            np.zeros(shape, np.int32),
            np.zeros(shape),
            np.zeros(shape),
        )


class ExampleSoftSums(NamedTuple):
    """What :func:`finish_soft` adds to (in place), per group and example; they add up over
    blocks of networks."""

    #: int32 (g, x): networks of g with at least one recorded checkpoint on x.
    network_count: np.ndarray
    #: float64 (g, k, x): sum over those networks of each statistic of :data:`STATISTICS`.
    statistic_sum: np.ndarray
    #: float64 (g, k, x): sum over those networks of its square.
    statistic_square_sum: np.ndarray
    #: int32 (g, r, x): those networks for which x is in each region of :data:`REGIONS`.
    region_count: np.ndarray

    @classmethod
    def start(cls, groups: int, examples: int) -> ExampleSoftSums:
        """Zero sums."""
        statistics, regions = len(STATISTICS), len(REGIONS)
        return cls(
            np.zeros((groups, examples), np.int32),
            np.zeros((groups, statistics, examples)),
            np.zeros((groups, statistics, examples)),
            np.zeros((groups, regions, examples), np.int32),
        )


def accumulate_soft(
    probability: np.ndarray, margin: np.ndarray, correct: np.ndarray, sums: SoftSums
) -> None:
    """Add one block of checkpoints of soft verdicts to the sums (in place).

    An entry counts where both its probability and its margin are recorded (not NaN); the store
    writes them together, so one without the other is skipped rather than counted in part.

    Parameters
    ----------
    probability : float32 (x, n, t)
        Probability of the true class; NaN where not recorded or the example has no label.
    margin : float32 (x, n, t)
        True-class logit minus the largest other logit; NaN where not recorded.
    correct : uint8 (x, n, t)
        Verdicts, 0 or 1 (the unpacked verdict bits).
    sums : SoftSums
    """
    _accumulate_soft(probability, margin, correct, *sums)


@kernel
def _accumulate_soft(
    probability,
    margin,
    correct,
    checkpoint_count,
    probability_sum,
    probability_square_sum,
    correct_count,
    margin_sum,
    loss_sum,
):
    examples, networks, checkpoints = probability.shape
    for x in range(examples):
        for n in range(networks):
            recorded = checkpoint_count[x, n]
            right = correct_count[x, n]
            p_sum = probability_sum[x, n]
            p_square_sum = probability_square_sum[x, n]
            m_sum = margin_sum[x, n]
            l_sum = loss_sum[x, n]
            for j in range(checkpoints):
                p = np.float64(probability[x, n, j])
                m = np.float64(margin[x, n, j])
                if math.isnan(p) or math.isnan(m):
                    continue
                recorded += 1
                right += correct[x, n, j]
                p_sum += p
                p_square_sum += p * p
                m_sum += m
                l_sum += _entry_loss(p, m)
            checkpoint_count[x, n] = recorded
            correct_count[x, n] = right
            probability_sum[x, n] = p_sum
            probability_square_sum[x, n] = p_square_sum
            margin_sum[x, n] = m_sum
            loss_sum[x, n] = l_sum


def accumulate_soft_codes(
    probability_codes: np.ndarray,
    margin_codes: np.ndarray,
    correct: np.ndarray,
    probability_values: np.ndarray,
    margin_values: np.ndarray,
    sums: SoftSums,
) -> None:
    """:func:`accumulate_soft` on the store's one-byte codes, decoded inside the kernel.

    The sums equal those of :func:`accumulate_soft` on the decoded floats bit for bit: each entry
    takes the same float32 values, and its loss is the same expression, looked up per code
    (-log p depends on p alone where p >= P_MIN, the margin's bound on m alone below it).
    Decoding whole blocks to float32 first cost as much as the sums themselves.

    Parameters
    ----------
    probability_codes : uint8 (x, n, t)
    margin_codes : int8 (x, n, t)
    correct : uint8 (x, n, t)
        Verdicts, 0 or 1.
    probability_values : float32 (256,)
        The probability of each code, NaN for the code of an entry not recorded.
    margin_values : float32 (256,)
        The margin of each code c at c + 128, NaN for the code of an entry not recorded.
    sums : SoftSums
    """
    _accumulate_soft_codes(
        probability_codes, margin_codes, correct, probability_values, margin_values, *sums
    )


@kernel
def _accumulate_soft_codes(
    probability_codes,
    margin_codes,
    correct,
    probability_values,
    margin_values,
    checkpoint_count,
    probability_sum,
    probability_square_sum,
    correct_count,
    margin_sum,
    loss_sum,
):
    # The loss of each code: -log p where p >= P_MIN (probability codes), and below it the bound
    # from the margin, whatever p (margin codes); _entry_loss's two branches.
    loss_of_probability = np.empty(256)
    loss_of_margin = np.empty(256)
    for c in range(256):
        loss_of_probability[c] = _entry_loss(max(np.float64(probability_values[c]), P_MIN), 0.0)
        loss_of_margin[c] = _entry_loss(0.0, np.float64(margin_values[c]))
    examples, networks, checkpoints = probability_codes.shape
    for x in range(examples):
        for n in range(networks):
            recorded = checkpoint_count[x, n]
            right = correct_count[x, n]
            p_sum = probability_sum[x, n]
            p_square_sum = probability_square_sum[x, n]
            m_sum = margin_sum[x, n]
            l_sum = loss_sum[x, n]
            for j in range(checkpoints):
                pc = np.int64(probability_codes[x, n, j])
                mc = np.int64(margin_codes[x, n, j]) + 128
                p = np.float64(probability_values[pc])
                m = np.float64(margin_values[mc])
                if math.isnan(p) or math.isnan(m):
                    continue
                recorded += 1
                right += correct[x, n, j]
                p_sum += p
                p_square_sum += p * p
                m_sum += m
                l_sum += loss_of_probability[pc] if p >= P_MIN else loss_of_margin[mc]
            checkpoint_count[x, n] = recorded
            correct_count[x, n] = right
            probability_sum[x, n] = p_sum
            probability_square_sum[x, n] = p_square_sum
            margin_sum[x, n] = m_sum
            loss_sum[x, n] = l_sum


def finish_soft(
    sums: SoftSums,
    network_group: np.ndarray,
    example_sums: ExampleSoftSums,
    network_statistics: np.ndarray | None = None,
    thresholds: RegionThresholds = RegionThresholds(),
) -> None:
    """Turn the sums of every checkpoint into statistics and add them per example (in place).

    Variability comes from the one-pass sums: where the true one is near 0 it can be off by the
    square root of their rounding (1e-7 on 1,000 equal values), far below the store's
    quantisation step of p (1/32).

    Parameters
    ----------
    sums : SoftSums
        The sums after the last block of :func:`accumulate_soft`.
    network_group : int64 (n,)
        Group of each network; -1 leaves the network out of ``example_sums``.
    example_sums : ExampleSoftSums
    network_statistics : float32 (k, x, n), optional
        Filled with every network's statistics (whatever its group), NaN where it recorded
        nothing: the per-(network, example) table.
    thresholds : RegionThresholds
        Fixed region thresholds (see :class:`RegionThresholds` for why they are fixed).
    """
    if network_statistics is None:
        network_statistics = np.empty((len(STATISTICS), 0, 0), np.float32)
    _finish_soft(*sums, network_group, *example_sums, network_statistics, *thresholds)


@kernel
def _finish_soft(
    checkpoint_count,
    probability_sum,
    probability_square_sum,
    correct_count,
    margin_sum,
    loss_sum,
    network_group,
    network_count,
    statistic_sum,
    statistic_square_sum,
    region_count,
    network_statistics,
    ambiguous_variability,
    easy_confidence,
    hard_confidence,
):
    examples, networks = checkpoint_count.shape
    has_table = network_statistics.shape[1] > 0
    statistics = len(STATISTICS)
    values = np.empty(statistics)
    for x in range(examples):
        for n in range(networks):
            recorded = checkpoint_count[x, n]
            group = network_group[n]
            if recorded == 0:
                if has_table:
                    network_statistics[:, x, n] = np.nan
                continue
            confidence = probability_sum[x, n] / recorded
            variance = probability_square_sum[x, n] / recorded - confidence * confidence
            values[0] = confidence
            values[1] = math.sqrt(max(variance, 0.0))
            values[2] = correct_count[x, n] / recorded
            values[3] = margin_sum[x, n] / recorded
            values[4] = loss_sum[x, n] / recorded
            if has_table:
                for k in range(statistics):
                    network_statistics[k, x, n] = values[k]
            if group < 0:
                continue
            network_count[group, x] += 1
            for k in range(statistics):
                statistic_sum[group, k, x] += values[k]
                statistic_square_sum[group, k, x] += values[k] * values[k]
            if values[1] >= ambiguous_variability:
                region_count[group, AMBIGUOUS, x] += 1
            elif confidence >= easy_confidence:
                region_count[group, EASY, x] += 1
            elif confidence < hard_confidence:
                region_count[group, HARD, x] += 1

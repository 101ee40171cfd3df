"""Kernels of the agreement and learning measures (see docs/measures.md).

Layout letters: n networks, t checkpoints, x examples, b example bytes (8 examples each, little
bit order: bit j of byte b is example 8b + j), g groups, s split-halvings. The verdict kernels
read the store's ``correct_packed`` chunks in their stored order, dims (b, n, t): one byte holds
eight examples' verdicts of one network at one checkpoint, and a pair's verdicts over training lie
side by side, which is what the learning events need.

Verdicts change rarely between checkpoints (a learned example is a run of ones), so the kernels
do per-entry work only where a bit changes; everything returned is a count or a change of count,
so that blocks of networks and examples add up exactly:

- ``tpa_change[g, x, t]``: +1 where a network of g turns right on x at t, -1 where it turns
  wrong; its cumulative sum along t is sum over n in g of C[n,t,x] (the TP-agreement numerator);
- ``holdout_change[g, x, t]``: the same over the networks that did not train on x (C-score);
- ``network_count[n, t]`` = sum over x of C[n,t,x] (accuracy numerator);
- ``forgetting_count[g, x]``, ``network_forgetting[n]``: forgetting events, the t where
  C[n,t-1,x] = 1 and C[n,t,x] = 0;
- ``first_learned_histogram[g, x, k]``: networks whose first-learned checkpoint is k (k = T: never
  learned, i.e. wrong at the last checkpoint);
- ``half_sum[g, s, x]`` = sum over n in half s, over t, of C[n,t,x] (split-half accessibility).

A block of checkpoints is processed at a time; (b, n) and (x, n) state arrays carry each pair's
last verdicts, the start of its current run of correct verdicts and its running count of
correct verdicts from one block of checkpoints to the next, so that memory is bounded by one
stored chunk whatever T is.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kernels._jit import kernel

#: Set bits of each byte value.
POPCOUNT = np.array([bin(v).count("1") for v in range(256)], dtype=np.int32)


@kernel
def _accumulate(
    packed,
    checkpoint_start,
    network_group,
    network_nonmember,
    previous,
    run_start,
    row_sum,
    tpa_change,
    holdout_change,
    network_count,
    forgetting_count,
    network_forgetting,
    popcount,
):
    example_bytes, networks, checkpoints = packed.shape
    total = tpa_change.shape[2]
    has_membership = network_nonmember.shape[0] > 0
    for b in range(example_bytes):
        for n in range(networks):
            group = network_group[n]
            if group < 0:
                continue
            last = previous[b, n]
            nonmember = network_nonmember[b, n] if has_membership else 0
            for j in range(checkpoints):
                checkpoint = checkpoint_start + j
                current = packed[b, n, j]
                network_count[n, checkpoint] += popcount[current]
                changed = current ^ last
                if changed:
                    for bit in range(8):
                        if (changed >> bit) & 1:
                            x = 8 * b + bit
                            if (current >> bit) & 1:
                                tpa_change[group, x, checkpoint] += 1
                                if (nonmember >> bit) & 1:
                                    holdout_change[group, x, checkpoint] += 1
                                run_start[x, n] = checkpoint
                                row_sum[x, n] -= checkpoint
                            else:
                                tpa_change[group, x, checkpoint] -= 1
                                if (nonmember >> bit) & 1:
                                    holdout_change[group, x, checkpoint] -= 1
                                run_start[x, n] = total
                                row_sum[x, n] += checkpoint
                                forgetting_count[group, x] += 1
                                network_forgetting[n] += 1
                last = current
            previous[b, n] = last


class LearningState(NamedTuple):
    """What :func:`accumulate_verdicts` carries from one block of checkpoints to the next, for
    one block of networks x example bytes (updated in place)."""

    #: uint8 (b, n): the verdict bits at the checkpoint before the block (0 before the first).
    previous: np.ndarray
    #: int32 (x, n), x = 8 b: first checkpoint of the current run of correct verdicts (T when
    #: wrong).
    run_start: np.ndarray
    #: int32 (x, n): minus the start of every run begun, plus the end of every run ended; adding
    #: T for a run still open gives the number of correct verdicts (see finish_verdicts).
    row_sum: np.ndarray

    @classmethod
    def start(cls, example_bytes: int, networks: int, num_checkpoints: int) -> LearningState:
        """The state before the first checkpoint."""
        return cls(
            np.zeros((example_bytes, networks), np.uint8),
            np.full((8 * example_bytes, networks), num_checkpoints, np.int32),
            np.zeros((8 * example_bytes, networks), np.int32),
        )


class VerdictCounts(NamedTuple):
    """The counts :func:`accumulate_verdicts` adds to (in place), all int32."""

    tpa_change: np.ndarray  # (g, x, T)
    holdout_change: np.ndarray  # (g, x, T)
    network_count: np.ndarray  # (n, T)
    forgetting_count: np.ndarray  # (g, x)
    network_forgetting: np.ndarray  # (n,)


class LearnedCounts(NamedTuple):
    """The counts :func:`finish_verdicts` adds to (in place), all int32."""

    first_learned_histogram: np.ndarray  # (g, x, T + 1)
    half_sum: np.ndarray  # (g, s, x)
    #: (g, x): networks not trained on each example.
    holdout_networks: np.ndarray


def accumulate_verdicts(
    packed: np.ndarray,
    checkpoint_start: int,
    network_group: np.ndarray,
    network_nonmember: np.ndarray,
    state: LearningState,
    counts: VerdictCounts,
) -> None:
    """Add one block of checkpoints of packed verdicts to the counts (in place).

    Parameters
    ----------
    packed : uint8 (b, n, t)
        Verdict bits of checkpoints ``checkpoint_start .. checkpoint_start + t``.
    checkpoint_start : int
    network_group : int64 (n,)
        Group of each network; -1 leaves the network out (incomplete networks).
    network_nonmember : uint8 (b, n) or (0, 0)
        Bits set where the network did not train on the example; (0, 0) without membership.
    state : LearningState
    counts : VerdictCounts
    """
    _accumulate(
        packed, checkpoint_start, network_group, network_nonmember, *state, *counts, POPCOUNT
    )


def finish_verdicts(
    state: LearningState,
    network_group: np.ndarray,
    network_nonmember: np.ndarray,
    network_half: np.ndarray,
    learned: LearnedCounts,
) -> None:
    """Turn the carried state into counts once every checkpoint has been seen (in place).

    Parameters
    ----------
    state : LearningState
        The state after the last block of :func:`accumulate_verdicts`.
    network_group : int64 (n,)
    network_nonmember : uint8 (b, n) or (0, 0)
    network_half : uint8 (s, n)
        1 for the networks in the first half of halving s.
    learned : LearnedCounts
    """
    _finish(*state, network_group, network_nonmember, network_half, *learned)


@kernel
def _finish(
    previous,
    run_start,
    row_sum,
    network_group,
    network_nonmember,
    network_half,
    first_learned_histogram,
    half_sum,
    holdout_networks,
):
    example_bytes, networks = previous.shape
    total = first_learned_histogram.shape[2] - 1
    halvings = network_half.shape[0]
    has_membership = network_nonmember.shape[0] > 0
    for b in range(example_bytes):
        for n in range(networks):
            group = network_group[n]
            if group < 0:
                continue
            for bit in range(8):
                x = 8 * b + bit
                count = row_sum[x, n]
                if (previous[b, n] >> bit) & 1:
                    first_learned_histogram[group, x, run_start[x, n]] += 1
                    count += total
                else:
                    first_learned_histogram[group, x, total] += 1
                for s in range(halvings):
                    if network_half[s, n]:
                        half_sum[group, s, x] += count
                if has_membership and (network_nonmember[b, n] >> bit) & 1:
                    holdout_networks[group, x] += 1


@kernel
def poisson_binomial(probabilities):
    """Law of the number of successes of independent trials, float64 (n + 1,).

    Exact dynamic programme over the trials, O(n^2); ``probabilities`` float64 (n,).
    """
    size = probabilities.shape[0]
    law = np.zeros(size + 1)
    law[0] = 1.0
    for i in range(size):
        p = probabilities[i]
        for k in range(i + 1, 0, -1):
            law[k] = law[k] * (1.0 - p) + law[k - 1] * p
        law[0] *= 1.0 - p
    return law

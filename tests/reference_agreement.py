"""NumPy references of the agreement and learning measures: slow, plain, obviously right.

Each has the name and signature of its kernel in ``kernels/agreement.py``, ``kernels/consensus.py``
or ``kernels/learning.py`` and follows the definitions of ``../shared/docs/science.md``,
"Measures". Blocks are in the store's order: packed verdicts dims (b, n, t) with b bytes of
eight examples (little bit order), predictions dims (x, n, t).
"""

from __future__ import annotations

import numpy as np


def _bits(packed):
    """Unpack along the first axis (bytes of eight examples, little bit order)."""
    return np.unpackbits(np.asarray(packed, np.uint8), axis=0, bitorder="little").astype(bool)


def accumulate_verdicts(packed, checkpoint_start, network_group, network_nonmember, state, counts):
    """Changes of the TP-agreement numerator (TPA[t,x] = 1/N sum_n C[n,t,x]) and of the
    hold-out numerator (C-score: correctness of the networks that did not train on x), the
    accuracy numerator (a[n,t] = mean_x C), forgetting events (C[n,t-1,x] = 1 and
    C[n,t,x] = 0) and the state the first-learned checkpoint needs (science.md, "Measures")."""
    previous, run_start, row_sum = state
    tpa_change, holdout_change, network_count, forgetting_count, network_forgetting = counts
    correct = _bits(packed)  # (x, n, t)
    before = _bits(previous)  # (x, n)
    nonmember = _bits(network_nonmember) if network_nonmember.shape[0] else None
    examples, networks, checkpoints = correct.shape
    total = tpa_change.shape[2]
    times = checkpoint_start + np.arange(checkpoints)
    for n in range(networks):
        group = network_group[n]
        if group < 0:
            continue
        network_count[n, times] += correct[:, n, :].sum(axis=0)
        for x in range(examples):
            series = correct[x, n]
            prior = np.concatenate([[before[x, n]], series[:-1]])
            turn_on, turn_off = series & ~prior, ~series & prior
            tpa_change[group, x, times] += turn_on.astype(int) - turn_off
            if nonmember is not None and nonmember[x, n]:
                holdout_change[group, x, times] += turn_on.astype(int) - turn_off
            forgetting_count[group, x] += turn_off.sum()
            network_forgetting[n] += turn_off.sum()
            row_sum[x, n] += times[turn_off].sum() - times[turn_on].sum()
            changes = np.flatnonzero(turn_on | turn_off)
            if changes.size:
                run_start[x, n] = times[changes[-1]] if series[changes[-1]] else total
            if checkpoints:
                before[x, n] = series[-1]
    previous[:] = np.packbits(before, axis=0, bitorder="little")[: previous.shape[0]]


def finish_verdicts(state, network_group, network_nonmember, network_half, learned):
    """First-learned checkpoint: the first t from which n stays correct on x to the last
    checkpoint, none (bin T) if wrong at the last; split-half sums of correct verdicts; the
    number of networks that did not train on x (science.md, "Measures")."""
    previous, run_start, row_sum = state
    first_learned_histogram, half_sum, holdout_networks = learned
    last = _bits(previous)
    nonmember = _bits(network_nonmember) if network_nonmember.shape[0] else None
    examples, networks = last.shape
    total = first_learned_histogram.shape[2] - 1
    for x in range(examples):
        for n in range(networks):
            group = network_group[n]
            if group < 0:
                continue
            first = run_start[x, n] if last[x, n] else total
            first_learned_histogram[group, x, first] += 1
            count = row_sum[x, n] + (total if last[x, n] else 0)
            half_sum[group, :, x] += network_half[:, n].astype(bool) * count
            if nonmember is not None and nonmember[x, n]:
                holdout_networks[group, x] += 1


def poisson_binomial(probabilities):
    """Law of the number of successes of independent trials with these probabilities: the
    independence null of N * TPA[t, x] (science.md, "Independence null"), by convolution."""
    law = np.ones(1)
    for p in np.asarray(probabilities, dtype=np.float64):
        law = np.convolve(law, [1.0 - p, p])
    return law


def count_classes(
    predictions, checkpoint_start, checkpoint_first, network_group, class_count, network_class_count
):
    """Per (t, x) class counts over networks, whose maximum is the plurality count of
    consensus, and each network's predicted-class counts (science.md, "Consensus")."""
    examples, networks, checkpoints = predictions.shape
    kept, classes = class_count.shape[2], class_count.shape[3]
    for n in range(networks):
        group = network_group[n]
        if group < 0:
            continue
        for j in range(checkpoints):
            out = checkpoint_start + j - checkpoint_first
            if not 0 <= out < kept:
                continue
            labels = predictions[:, n, j].astype(np.int64)
            valid = (labels >= 0) & (labels < classes)
            np.add.at(class_count[group, :, out], (np.flatnonzero(valid), labels[valid]), 1)
            network_class_count[n, out] += np.bincount(labels[valid], minlength=classes)


def plurality_histogram_of_draws(class_cumulative, uniforms):
    """Consensus null: each network draws its class from its own predicted-class frequencies
    (science.md, "Consensus"); histogram of the plurality count over samples."""
    networks, classes = class_cumulative.shape
    histogram = np.zeros(networks + 1, np.int64)
    active = class_cumulative[:, -1] > 0
    for sample in uniforms:
        drawn = [
            min(
                int(
                    np.searchsorted(
                        class_cumulative[n], sample[n] * class_cumulative[n, -1], side="right"
                    )
                ),
                classes - 1,
            )
            for n in range(networks)
            if active[n]
        ]
        best = np.bincount(np.asarray(drawn, np.int64), minlength=classes).max() if drawn else 0
        histogram[best] += 1
    return histogram


def histogram_mean_median(histogram):
    """Mean and median (numpy.median) of first-learned checkpoints over the networks that
    learn the example, from their histogram (science.md, "First-learned checkpoint")."""
    examples, bins = histogram.shape
    mean = np.full(examples, np.nan)
    median = np.full(examples, np.nan)
    for x in range(examples):
        values = np.repeat(np.arange(bins - 1), histogram[x, :-1])
        if values.size:
            mean[x] = values.mean()
            median[x] = np.median(values)
    return mean, median

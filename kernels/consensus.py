"""Kernels of consensus: which class the networks give, where there may be no true label.

Layout letters: n networks, t checkpoints, x examples, k classes, g groups, s samples. Predictions
are read in the store's stored order, dims (x, n, t). Counts add up over blocks exactly:

- ``class_count[g, x, t, k]``   = number of networks of g that predict k on x at t
- ``network_class_count[n, t, k]`` = number of examples network n assigns to k at t

The consensus of (t, x) is max_k class_count / N (the plurality share). Its null
(docs/measures.md, "Consensus") lets each network draw a class independently from its own
predicted-class frequencies; :func:`plurality_histogram_of_draws` samples that null from uniforms
the caller draws, so the kernel itself is deterministic.
"""

from __future__ import annotations

import numpy as np

from kernels._jit import kernel


@kernel
def count_classes(
    predictions,
    checkpoint_start,
    checkpoint_first,
    network_group,
    class_count,
    network_class_count,
):
    """Add one block of predictions to the class counts (in place).

    Parameters
    ----------
    predictions : int16 (x, n, t)
        Predicted classes at checkpoints ``checkpoint_start ..``; -1 (not recorded) and classes
        past the last one are skipped.
    checkpoint_start : int
    checkpoint_first : int
        First checkpoint counted; output index ``t - checkpoint_first``.
    network_group : int64 (n,)
        Group of each network, -1 to leave it out.
    class_count : int32 (g, x, t_out, k)
    network_class_count : int32 (n, t_out, k)
    """
    examples, networks, checkpoints = predictions.shape
    kept = class_count.shape[2]
    classes = class_count.shape[3]
    for x in range(examples):
        for n in range(networks):
            group = network_group[n]
            if group < 0:
                continue
            for j in range(checkpoints):
                out = checkpoint_start + j - checkpoint_first
                if out < 0 or out >= kept:
                    continue
                label = predictions[x, n, j]
                if label < 0 or label >= classes:
                    continue
                class_count[group, x, out, label] += 1
                network_class_count[n, out, label] += 1


@kernel
def plurality_histogram_of_draws(class_cumulative, uniforms):
    """Histogram of the plurality count when each network draws its class independently.

    Parameters
    ----------
    class_cumulative : float64 (n, k)
        Cumulative predicted-class frequencies of each network (last column 1; a row of zeros
        leaves the network out).
    uniforms : float64 (s, n)
        Uniform draws in [0, 1), one per sample and network.

    Returns
    -------
    int64 (n + 1,)
        Number of samples whose plurality class was drawn by k networks.
    """
    networks, classes = class_cumulative.shape
    samples = uniforms.shape[0]
    histogram = np.zeros(networks + 1, np.int64)
    counts = np.zeros(classes, np.int64)
    for s in range(samples):
        counts[:] = 0
        for n in range(networks):
            if class_cumulative[n, classes - 1] <= 0.0:
                continue
            u = uniforms[s, n] * class_cumulative[n, classes - 1]
            chosen = classes - 1
            for k in range(classes):
                if u < class_cumulative[n, k]:
                    chosen = k
                    break
            counts[chosen] += 1
        best = 0
        for k in range(classes):
            if counts[k] > best:
                best = counts[k]
        histogram[best] += 1
    return histogram

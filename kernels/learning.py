"""Kernels that summarise learning events per example (see docs/measures.md).

Layout letters: x examples, k bins. A first-learned histogram counts, per example, the networks
whose first-learned checkpoint is k (0 <= k < T) and, in its last bin, those that never learn the
example. Mean and median are taken over the networks that learn it; the median follows
``numpy.median`` (the mean of the two middle values for an even count).
"""

from __future__ import annotations

import numpy as np

from kernels._jit import kernel


@kernel
def histogram_mean_median(histogram):
    """Mean and median of the values 0 .. k-2 counted in ``histogram`` (last bin ignored).

    Parameters
    ----------
    histogram : int64 (x, k)

    Returns
    -------
    mean, median : float64 (x,)
        NaN for an example with no count outside the last bin.
    """
    examples, bins = histogram.shape
    mean = np.full(examples, np.nan)
    median = np.full(examples, np.nan)
    for x in range(examples):
        total = 0
        weighted = 0.0
        for k in range(bins - 1):
            total += histogram[x, k]
            weighted += k * histogram[x, k]
        if total == 0:
            continue
        mean[x] = weighted / total
        # Order statistics (0-based) low = (total - 1) // 2 and high = total // 2.
        low = (total - 1) // 2
        high = total // 2
        seen = 0
        low_value = -1
        high_value = -1
        for k in range(bins - 1):
            seen += histogram[x, k]
            if low_value < 0 and seen > low:
                low_value = k
            if seen > high:
                high_value = k
                break
        median[x] = 0.5 * (low_value + high_value)
    return mean, median

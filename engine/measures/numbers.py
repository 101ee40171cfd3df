"""Small numeric helpers of the measures: rank correlation, its Spearman-Brown correction and
JSON-able floats."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two vectors, NaN where either is constant or too short.

    Parameters
    ----------
    a, b : ndarray of float, dims (x,)

    Examples
    --------
    >>> spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 5.0, 9.0]))
    1.0
    >>> spearman(np.array([1.0, 1.0]), np.array([0.0, 1.0]))
    nan
    """
    from scipy.stats import spearmanr

    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def spearman_brown(correlation: float) -> float:
    """Reliability of the whole from the correlation of two halves.

    Examples
    --------
    >>> spearman_brown(0.5)
    0.6666666666666666
    """
    return 2.0 * correlation / (1.0 + correlation) if correlation > -1 else float("nan")


def nan_to_none(value: Any) -> float | None:
    """A float for JSON: None where it is NaN or infinite.

    Examples
    --------
    >>> nan_to_none(0.25), nan_to_none(float("nan"))
    (0.25, None)
    """
    value = float(value)
    return value if math.isfinite(value) else None


def nan_to_none_list(values: Any) -> list[float | None]:
    """:func:`nan_to_none` of every entry, flattened.

    Examples
    --------
    >>> nan_to_none_list(np.array([[1.0, np.inf]]))
    [1.0, None]
    """
    return [nan_to_none(v) for v in np.asarray(values, dtype=np.float64).ravel()]

"""From co-correct counts to agreement and error consistency: the algebra in one place.

With c_i the examples network i gets right and B_ij the examples both i and j get right, over X
examples: the correctness agreement count is A_ij = X - c_i - c_j + 2 B_ij, the agreement
expected by chance (times X^2) is E_ij = c_i c_j + (X - c_i)(X - c_j), and error consistency is
kappa_ij = (A_ij X - E_ij) / (X^2 - E_ij), computed from integers (see docs/pairwise.md). The
tiles get kappa from the numba pass :func:`kernels.pairwise.tile_statistics`, which uses the same
formula; everything else in :mod:`engine.pairwise` uses the functions here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import numpy as np

#: The summary's statistics, in the order of :func:`kernels.pairwise.tile_statistics`' sums.
STATISTICS = ("agreement", "kappa", "prediction_agreement")


def agreement_counts(both_correct: Any, correct_0: Any, correct_1: Any, num_examples: Any) -> Any:
    """Correctness agreement counts A = X - c_0 - c_1 + 2 B, in int64.

    Parameters
    ----------
    both_correct : ndarray or dask array of int
        Co-correct counts B, any dims.
    correct_0, correct_1 : ndarray of int64
        Examples each network gets right, broadcastable against ``both_correct`` (e.g. dims
        (networks_0, 1) and (1, networks_1)).
    num_examples : int
        X.

    Returns
    -------
    ndarray or dask array of int64, the broadcast dims
        Lazy where ``both_correct`` is a dask array; nothing larger than the operands of one
        side is computed eagerly.
    """
    return 2 * both_correct.astype(np.int64) + (num_examples - correct_0) - correct_1


def kappa_from_counts(
    agree: np.ndarray, correct_0: np.ndarray, correct_1: np.ndarray, num_examples: Any
) -> np.ndarray:
    """Error consistency from agreement counts, in float64; NaN where undefined.

    Parameters
    ----------
    agree : ndarray of int64
        Correctness agreement counts A, any dims.
    correct_0, correct_1 : ndarray of int64
        Examples each network gets right, broadcastable against ``agree``.
    num_examples : int or int64
        X.

    Returns
    -------
    ndarray of float64, the broadcast dims
        (A X - E) / (X^2 - E); NaN where X^2 == E (both networks always right or both always
        wrong, or X == 0).

    Examples
    --------
    Two networks right on 6 and 4 of 10 examples that agree on 8 (both right on 4):

    >>> float(kappa_from_counts(np.int64(8), np.int64(6), np.int64(4), 10))
    0.6153846153846154
    """
    expected = correct_0 * correct_1 + (num_examples - correct_0) * (num_examples - correct_1)
    denominator = (num_examples * num_examples - expected).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, (agree * num_examples - expected) / denominator, np.nan)


def add_up(arrays: Iterable[np.ndarray]) -> np.ndarray:
    """The sum of the arrays (of tiles or blocks) in their order, as the built-in ``sum`` adds
    them, so that the result is the same bit for bit however the caller is written."""
    return cast(np.ndarray, sum(arrays))


def count_dtype(num_examples: int) -> type[np.unsignedinteger]:
    """Stored dtype of counts: uint16 up to 65,535 examples, else uint32."""
    return np.uint16 if num_examples <= np.iinfo(np.uint16).max else np.uint32

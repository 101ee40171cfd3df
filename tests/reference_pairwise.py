"""NumPy references of the pairwise kernels in :mod:`kernels.pairwise`: slow and obviously right.

Definitions: ../shared/docs/science.md, "Pairwise agreement" (correctness agreement c_obs,
prediction agreement, error consistency kappa = (c_obs - c_exp) / (1 - c_exp) with
c_exp = a_i a_j + (1 - a_i)(1 - a_j)). Degenerate case, as in the kernels: kappa is NaN where
c_exp == 1 (both networks always right, or both always wrong) and where there are no examples.
"""

from __future__ import annotations

import numpy as np


def pack_bits(correct):
    """bool (networks, examples) -> uint64 (networks, words), little-endian bits."""
    correct = np.asarray(correct, bool)
    num_networks, num_examples = correct.shape
    num_words = (num_examples + 63) // 64
    padded = np.zeros((num_networks, 64 * num_words), bool)
    padded[:, :num_examples] = correct
    as_bytes = np.packbits(padded, axis=1, bitorder="little")
    return (
        np.ascontiguousarray(as_bytes)
        .view("<u8")
        .astype(np.uint64)
        .reshape(num_networks, num_words)
    )


def pack_classes(predictions, num_classes):
    """int (networks, examples) -> uint64 (networks, classes * words): one bit plane per class."""
    predictions = np.asarray(predictions)
    planes = [pack_bits(predictions == k) for k in range(num_classes)]
    if not planes:
        return np.zeros((predictions.shape[0], 0), np.uint64)
    return np.concatenate(planes, axis=1)


def _unpack(packed):
    bits = np.unpackbits(np.ascontiguousarray(packed).view(np.uint8), axis=1, bitorder="little")
    return bits.astype(np.int64)


def co_correct_counts(packed_0, packed_1):
    """B[i, j] = sum_x C[i, x] C[j, x] from the unpacked bits (a plain integer matrix product)."""
    return (_unpack(packed_0) @ _unpack(packed_1).T).astype(np.int32)


def prediction_agreement_counts(predictions_0, predictions_1):
    """Number of examples with P[i, x] == P[j, x] (and a prediction recorded, P >= 0)."""
    p0 = np.asarray(predictions_0)[:, None, :]
    p1 = np.asarray(predictions_1)[None, :, :]
    return ((p0 == p1) & (p0 >= 0)).sum(axis=2).astype(np.int32)


def agreement_and_kappa(both_correct, correct_0, correct_1, num_examples):
    """Agreement counts and kappa straight from science.md's definitions, in floats."""
    both_correct = np.asarray(both_correct, np.int64)
    ci = np.asarray(correct_0, np.int64)[:, None]
    cj = np.asarray(correct_1, np.int64)[None, :]
    agree = num_examples - ci - cj + 2 * both_correct
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = agree / num_examples
        accuracy_i = ci / num_examples
        accuracy_j = cj / num_examples
        expected = accuracy_i * accuracy_j + (1 - accuracy_i) * (1 - accuracy_j)
        kappa = (observed - expected) / (1 - expected)
        exact_expected = ci * cj + (num_examples - ci) * (num_examples - cj)
        degenerate = (exact_expected == num_examples * num_examples) | (num_examples == 0)
    kappa = np.where(degenerate, np.nan, kappa)
    return agree.astype(np.int32), kappa.astype(np.float32)


def pairwise_matrices(correct, predictions=None):
    """Direct (untiled) N x N matrices of one checkpoint, for testing the engine.

    Parameters
    ----------
    correct : bool (networks, examples)
    predictions : int (networks, examples), optional

    Returns
    -------
    dict with both_correct, agree (int32), kappa (float32) and prediction_agree (int32 or None)
    """
    correct = np.asarray(correct, bool)
    c = correct.astype(np.int64)
    both = (c @ c.T).astype(np.int32)
    counts = c.sum(axis=1)
    agree, kappa = agreement_and_kappa(both, counts, counts, correct.shape[1])
    result = {"both_correct": both, "agree": agree, "kappa": kappa, "prediction_agree": None}
    if predictions is not None:
        result["prediction_agree"] = prediction_agreement_counts(predictions, predictions)
    return result


def tile_statistics(
    both_correct,
    same,
    correct_0,
    correct_1,
    num_examples,
    groups_0,
    groups_1,
    num_groups_0,
    num_groups_1,
    diagonal,
    same_groups,
    num_bins,
    kappa,
    both_out,
    same_out,
):
    """Kappa, stored counts, per group-pair sums and the kappa histogram of one tile, with
    whole-array NumPy (kappa from :func:`agreement_and_kappa`, science.md's definition)."""
    both_correct = np.asarray(both_correct)
    n0, n1 = both_correct.shape
    # Kappa as the integer form (A X - E) / (X^2 - E) of science.md's definition, which
    # test_agreement_and_kappa holds equal to the rates' form; here it must match bit for bit.
    ci = np.asarray(correct_0, np.int64)[:, None]
    cj = np.asarray(correct_1, np.int64)[None, :]
    agree = num_examples - ci - cj + 2 * both_correct.astype(np.int64)
    expected = ci * cj + (num_examples - ci) * (num_examples - cj)
    denominator = num_examples * num_examples - expected
    with np.errstate(divide="ignore", invalid="ignore"):
        tile_kappa = np.where(
            denominator != 0,
            (agree * num_examples - expected) / denominator.astype(np.float64),
            np.nan,
        ).astype(np.float32)
    kappa[...] = tile_kappa
    both_out[...] = both_correct
    has_same = same.shape == (n0, n1) and same.size > 0
    if has_same:
        same_out[...] = same
    chosen = np.ones((n0, n1), bool)
    if diagonal:
        chosen &= np.triu(np.ones((n0, n1), bool), 1)
    defined = chosen & ~np.isnan(tile_kappa)
    sums = np.zeros((3, num_groups_0, num_groups_1))
    pairs = np.zeros((2, num_groups_0, num_groups_1), np.int64)
    for g in range(num_groups_0):
        for h in range(num_groups_1):
            cell = chosen & (np.asarray(groups_0) == g)[:, None] & (np.asarray(groups_1) == h)[None]
            cell_defined = cell & defined
            sums[0, g, h] = agree[cell].astype(np.float64).sum()
            sums[1, g, h] = tile_kappa[cell_defined].astype(np.float64).sum()
            if has_same:
                sums[2, g, h] = np.asarray(same)[cell].astype(np.float64).sum()
            pairs[0, g, h] = cell.sum()
            pairs[1, g, h] = cell_defined.sum()
    within = (
        np.equal.outer(np.asarray(groups_0), np.asarray(groups_1))
        if same_groups
        else np.zeros((n0, n1), bool)
    )
    bins = np.clip(np.floor((tile_kappa.astype(np.float64) + 1) * (num_bins / 2)), 0, num_bins - 1)
    histogram = np.zeros((2, num_bins), np.int64)
    for row, selection in enumerate((within, ~within)):
        histogram[row] = np.bincount(bins[defined & selection].astype(np.int64), minlength=num_bins)
    return sums, pairs, histogram


def tile_group_sums(
    both_correct, same, correct_0, correct_1, num_examples, groups_0, groups_1,
    num_groups_0, num_groups_1, diagonal, kappa,
):  # fmt: skip
    """Each network's sums with each group of the other side by matrix products over one-hot
    groups, per statistic (agreement counts, kappa with NaN as 0, prediction agreement counts)."""
    agree = (
        num_examples - correct_0[:, None] - correct_1[None, :] + 2 * both_correct.astype(np.int64)
    ).astype(np.float64)
    values = [agree, np.nan_to_num(kappa.astype(np.float64), nan=0.0)]
    if same.size:
        values.append(same.astype(np.float64))
    onehot_0 = (groups_0[:, None] == np.arange(num_groups_0)).astype(np.float64)
    onehot_1 = (groups_1[:, None] == np.arange(num_groups_1)).astype(np.float64)
    rows, columns = [], []
    for matrix in values:
        if diagonal:
            matrix = np.triu(matrix, 1)
        rows.append(matrix @ onehot_1)
        columns.append(matrix.T @ onehot_0)
    return np.stack(rows), np.stack(columns)

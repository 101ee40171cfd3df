"""Pairwise kernels: co-correct and prediction-agreement counts for one tile of network pairs.

Layout letters: n networks, x examples, w 64-bit words (``w = ceil(x / 64)``), k classes.
A tile is block 0 of networks against block 1; every kernel returns integer counts for that tile,
so tiles add up exactly and the caller assembles the N x N matrix tile by tile.

Algebra. With C[n, x] in {0, 1} (correct), c_i = sum_x C[i, x] and the co-correct count
B_ij = sum_x C[i, x] C[j, x] = popcount(pack(C_i) AND pack(C_j)), the correctness agreement count
is A_ij = X - c_i - c_j + 2 B_ij, so one bit-packed AND + popcount per pair is all the tile needs.
Prediction agreement, sum_x [P_ix == P_jx], is the same popcount over one bit plane per class
(:func:`pack_classes`), or a direct comparison when there are many classes.

Error consistency (Cohen's kappa, docs/measures.md): with E_ij = c_i c_j + (X - c_i)(X - c_j),
kappa_ij = (A_ij X - E_ij) / (X^2 - E_ij), which is (c_obs - c_exp) / (1 - c_exp) computed from
integers. It is NaN where c_exp == 1 (both networks always right or both always wrong) or X == 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import llvmlite.ir as llvm_ir
import numpy as np
from numba import types
from numba.extending import intrinsic

from kernels._jit import kernel


def _ctpop(typingctx, word):
    """llvm.ctpop on a uint64: LLVM turns the loops below into vpopcntq where the CPU has it."""
    signature = types.uint64(types.uint64)

    def codegen(context, builder, sig, args):
        function = builder.module.declare_intrinsic("llvm.ctpop", [llvm_ir.IntType(64)])
        return builder.call(function, args)

    return signature, codegen


#: Words per row that the counting loops like: an AVX-512 register holds 8, and rows padded
#: with zero words to a multiple of 8 leave no scalar remainder loop (measured 1.16x for
#: :func:`co_correct_counts` and 1.38x for :func:`same_prediction_counts` at 10,000 examples).
WORD_MULTIPLE = 8

#: Set bits of a uint64, inside kernels only. Numba passes the typing context itself, so kernels
#: call it with the word alone; the cast tells the type checker so.
_popcount = cast(Callable[[Any], Any], intrinsic(_ctpop))


@kernel
def pack_bits(correct):
    """Pack bits along examples into 64-bit words, little-endian within a word.

    Parameters
    ----------
    correct : ndarray of bool, dims (networks, examples), C-contiguous

    Returns
    -------
    ndarray of uint64, dims (networks, words)
        Bit ``b`` of word ``w`` is example ``64 w + b``; padding bits are zero.
    """
    num_networks, num_examples = correct.shape
    num_words = (num_examples + 63) // 64
    full_words = num_examples // 64
    packed = np.zeros((num_networks, num_words), np.uint64)
    tail = np.zeros(64, np.uint8)
    for n in range(num_networks):
        row = correct[n].view(np.uint8)
        for w in range(num_words):
            if w < full_words:
                chunk = row[64 * w : 64 * w + 64]
            else:
                tail[:] = 0
                tail[: num_examples - 64 * w] = row[64 * w :]
                chunk = tail
            # Eight bools read as one little-endian uint64 (bytes 0 or 1); the multiply gathers
            # their low bits into the top byte in order (a classic bit trick, 1.4x a bit loop).
            eight = chunk.view(np.uint64)
            word = np.uint64(0)
            for b in range(8):
                gathered = (eight[b] * np.uint64(0x0102040810204080)) >> np.uint64(56)
                word |= gathered << np.uint64(8 * b)
            packed[n, w] = word
    return packed


@kernel
def pack_classes(predictions, num_classes):
    """Pack one bit plane per class: plane k holds [P[n, x] == k]; -1 (none) sets no bit.

    Parameters
    ----------
    predictions : ndarray of int16, dims (networks, examples)
    num_classes : int

    Returns
    -------
    ndarray of uint64, dims (networks, classes * words)
        Planes one after another, each packed like :func:`pack_bits`, so that
        ``co_correct_counts`` of two packed blocks counts equal predictions.
    """
    num_networks, num_examples = predictions.shape
    num_words = (num_examples + 63) // 64
    packed = np.zeros((num_networks, num_classes * num_words), np.uint64)
    for n in range(num_networks):
        for x in range(num_examples):
            k = predictions[n, x]
            if 0 <= k < num_classes:
                packed[n, k * num_words + x // 64] |= np.uint64(1) << np.uint64(x % 64)
    return packed


@kernel
def co_correct_counts(packed_0, packed_1):
    """Co-correct counts B[i, j] = popcount(packed_0[i] AND packed_1[j]) summed over words.

    Parameters
    ----------
    packed_0 : ndarray of uint64, dims (networks_0, words)
    packed_1 : ndarray of uint64, dims (networks_1, words)

    Returns
    -------
    ndarray of int32, dims (networks_0, networks_1)
    """
    n0, num_words = packed_0.shape
    n1 = packed_1.shape[0]
    counts = np.zeros((n0, n1), np.int32)
    # 2 x 2 register blocking: each loaded word serves two pairs (measured 1.7x over one pair
    # per loop on AVX-512; 4 x 4 spills and does not vectorise).
    even_0 = n0 - n0 % 2
    even_1 = n1 - n1 % 2
    for i in range(0, even_0, 2):
        for j in range(0, even_1, 2):
            s00 = np.uint64(0)
            s01 = np.uint64(0)
            s10 = np.uint64(0)
            s11 = np.uint64(0)
            for w in range(num_words):
                a0 = packed_0[i, w]
                a1 = packed_0[i + 1, w]
                b0 = packed_1[j, w]
                b1 = packed_1[j + 1, w]
                s00 += _popcount(a0 & b0)
                s01 += _popcount(a0 & b1)
                s10 += _popcount(a1 & b0)
                s11 += _popcount(a1 & b1)
            counts[i, j] = s00
            counts[i, j + 1] = s01
            counts[i + 1, j] = s10
            counts[i + 1, j + 1] = s11
        for j in range(even_1, n1):
            s0 = np.uint64(0)
            s1 = np.uint64(0)
            for w in range(num_words):
                b0 = packed_1[j, w]
                s0 += _popcount(packed_0[i, w] & b0)
                s1 += _popcount(packed_0[i + 1, w] & b0)
            counts[i, j] = s0
            counts[i + 1, j] = s1
    for i in range(even_0, n0):
        for j in range(n1):
            s = np.uint64(0)
            for w in range(num_words):
                s += _popcount(packed_0[i, w] & packed_1[j, w])
            counts[i, j] = s
    return counts


@kernel
def prediction_agreement_counts(predictions_0, predictions_1):
    """Counts of examples where two networks predict the same class (and both predict one).

    Direct comparison, for many classes where :func:`pack_classes` would need too many planes.

    Parameters
    ----------
    predictions_0 : ndarray of int16, dims (networks_0, examples)
    predictions_1 : ndarray of int16, dims (networks_1, examples)
        Predicted classes, -1 where none was recorded (never agrees).

    Returns
    -------
    ndarray of int32, dims (networks_0, networks_1)
    """
    n0, num_examples = predictions_0.shape
    n1 = predictions_1.shape[0]
    counts = np.zeros((n0, n1), np.int32)
    for i in range(n0):
        for j in range(n1):
            s = 0
            for x in range(num_examples):
                p = predictions_0[i, x]
                s += (p == predictions_1[j, x]) & (p >= 0)
            counts[i, j] = s
    return counts


@kernel
def _pair_kappa(agree, correct_i, correct_j, num_examples):
    """Error consistency of one pair from integer counts, the formula of the module docstring.

    Parameters
    ----------
    agree : int64
        A, the examples where both networks are right or both are wrong.
    correct_i, correct_j : int64
        c_i and c_j, the examples each network gets right.
    num_examples : int64
        X, the examples compared.

    Returns
    -------
    float64
        kappa; NaN where c_exp == 1 (both always right or both always wrong) or X == 0.
    """
    expected = correct_i * correct_j + (num_examples - correct_i) * (num_examples - correct_j)
    denominator = num_examples * num_examples - expected
    if denominator == 0:
        return np.nan
    return np.float64(agree * num_examples - expected) / np.float64(denominator)


@kernel
def agreement_and_kappa(both_correct, correct_0, correct_1, num_examples):
    """Correctness agreement counts and error consistency from co-correct counts.

    Parameters
    ----------
    both_correct : ndarray of int32, dims (networks_0, networks_1)
        Co-correct counts B.
    correct_0 : ndarray of int64, dims (networks_0,)
    correct_1 : ndarray of int64, dims (networks_1,)
        Examples each network gets right.
    num_examples : int
        X, the examples compared.

    Returns
    -------
    agree : ndarray of int32, dims (networks_0, networks_1)
        Examples where both are right or both are wrong.
    kappa : ndarray of float32, dims (networks_0, networks_1)
        Error consistency; NaN where c_exp == 1 or X == 0.
    """
    n0, n1 = both_correct.shape
    agree = np.empty((n0, n1), np.int32)
    kappa = np.empty((n0, n1), np.float32)
    total = np.int64(num_examples)
    for i in range(n0):
        ci = correct_0[i]
        for j in range(n1):
            cj = correct_1[j]
            count = total - ci - cj + 2 * np.int64(both_correct[i, j])
            agree[i, j] = count
            kappa[i, j] = _pair_kappa(count, ci, cj, total)
    return agree, kappa


@kernel
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
    """One pass over a tile: kappa, stored counts, and the summary's sufficient statistics.

    Parameters
    ----------
    both_correct : ndarray of int32, dims (networks_0, networks_1)
        Co-correct counts B.
    same : ndarray of int32, dims (networks_0, networks_1) or (0, 0)
        Prediction agreement counts; (0, 0) where predictions are not compared.
    correct_0, correct_1 : ndarray of int64, dims (networks_0,), (networks_1,)
    num_examples : int
    groups_0, groups_1 : ndarray of int64, group index (0..num_groups - 1) of each network
    num_groups_0, num_groups_1 : int
    diagonal : bool
        The tile pairs a block with itself: only pairs i < j enter the sums and histogram.
    same_groups : bool
        Both sides share one set of groups: histogram row 0 is within groups, row 1 between;
        otherwise every pair goes to row 1.
    num_bins : int
        Histogram bins over [-1, 1].
    kappa : ndarray of float32, dims (networks_0, networks_1), written
        Error consistency, NaN where undefined (as :func:`agreement_and_kappa`).
    both_out, same_out : ndarray of an unsigned integer dtype, written
        B and the prediction agreement counts in the stored dtype (same shapes as the inputs).

    Returns
    -------
    sums : ndarray of float64, dims (3, groups_0, groups_1)
        Per (group of i, group of j): sums of agreement counts A, of kappa (defined pairs only)
        and of prediction agreement counts.
    pairs : ndarray of int64, dims (2, groups_0, groups_1)
        Pairs summed, and pairs whose kappa is defined.
    histogram : ndarray of int64, dims (2, num_bins)
        Defined kappa binned by int((kappa + 1) * num_bins / 2), clipped to the bins.
    """
    n0, n1 = both_correct.shape
    has_same = same.shape[0] == n0 and same.shape[1] == n1 and same.size > 0
    sums = np.zeros((3, num_groups_0, num_groups_1), np.float64)
    pairs = np.zeros((2, num_groups_0, num_groups_1), np.int64)
    histogram = np.zeros((2, num_bins), np.int64)
    total = np.int64(num_examples)
    half_bins = num_bins / 2.0
    for i in range(n0):
        ci = correct_0[i]
        gi = groups_0[i]
        start = i + 1 if diagonal else 0
        for j in range(n1):
            cj = correct_1[j]
            b = np.int64(both_correct[i, j])
            both_out[i, j] = b
            if has_same:
                same_out[i, j] = same[i, j]
            count = total - ci - cj + 2 * b
            value = np.float32(_pair_kappa(count, ci, cj, total))
            kappa[i, j] = value
            if j < start:
                continue
            gj = groups_1[j]
            sums[0, gi, gj] += count
            pairs[0, gi, gj] += 1
            if has_same:
                sums[2, gi, gj] += same[i, j]
            # Kappa is finite wherever its denominator is not zero: NaN marks the undefined pairs.
            if not np.isnan(value):
                kappa_64 = np.float64(value)
                sums[1, gi, gj] += kappa_64
                pairs[1, gi, gj] += 1
                index = int((kappa_64 + 1.0) * half_bins)
                index = min(max(index, 0), num_bins - 1)
                row = 0 if (same_groups and gi == gj) else 1
                histogram[row, index] += 1
    return sums, pairs, histogram


@kernel
def tile_group_sums(
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
    kappa,
):
    """Per statistic, each row network's sum over a tile's pairs with the columns of each group,
    and each column network's with the rows of each group: what the linearised network
    bootstrap needs (one pass where matrix products over one-hot groups took four).

    Parameters
    ----------
    both_correct, same, correct_0, correct_1, num_examples, groups_0, groups_1, num_groups_0,
    num_groups_1, diagonal
        As :func:`tile_statistics`.
    kappa : ndarray of float32, dims (networks_0, networks_1)
        Error consistency, NaN where undefined (summed as 0).

    Returns
    -------
    row_sums : ndarray of float64, dims (statistics, networks_0, groups_1)
    column_sums : ndarray of float64, dims (statistics, networks_1, groups_0)
        Statistics in the order agreement counts, kappa, prediction agreement counts (the last
        only where ``same`` is given).
    """
    n0, n1 = both_correct.shape
    has_same = same.shape[0] == n0 and same.shape[1] == n1 and same.size > 0
    statistics = 3 if has_same else 2
    row_sums = np.zeros((statistics, n0, num_groups_1), np.float64)
    column_sums = np.zeros((statistics, n1, num_groups_0), np.float64)
    total = np.int64(num_examples)
    for i in range(n0):
        ci = correct_0[i]
        gi = groups_0[i]
        start = i + 1 if diagonal else 0
        for j in range(start, n1):
            gj = groups_1[j]
            agree = np.float64(total - ci - correct_1[j] + 2 * np.int64(both_correct[i, j]))
            value = np.float64(kappa[i, j])
            if np.isnan(value):
                value = np.float64(0.0)
            row_sums[0, i, gj] += agree
            row_sums[1, i, gj] += value
            column_sums[0, j, gi] += agree
            column_sums[1, j, gi] += value
            if has_same:
                count = np.float64(same[i, j])
                row_sums[2, i, gj] += count
                column_sums[2, j, gi] += count
    return row_sums, column_sums


@kernel
def count_histograms(
    both_correct,
    same,
    correct_0,
    correct_1,
    num_examples,
    groups_0,
    groups_1,
    diagonal,
    same_groups,
    agree_histogram,
    same_histogram,
):
    """Add a tile's pairs to the exact histograms of agreement and prediction agreement counts.

    Parameters
    ----------
    both_correct : ndarray of int32, dims (networks_0, networks_1)
    same : ndarray of int32, dims (networks_0, networks_1) or (0, 0)
        Prediction agreement counts; (0, 0) where predictions are not compared.
    correct_0, correct_1 : ndarray of int64, dims (networks_0,), (networks_1,)
    num_examples : int
    groups_0, groups_1 : ndarray of int64, group index of each network
    diagonal : bool
        Only pairs i < j are counted.
    same_groups : bool
        Row 0 counts pairs within a group, row 1 between; otherwise every pair goes to row 1.
    agree_histogram, same_histogram : ndarray of int64, dims (2, examples + 1), added to
        Pairs agreeing (in correctness, in prediction) on exactly a = 0..X examples.
    """
    n0, n1 = both_correct.shape
    has_same = same.shape[0] == n0 and same.shape[1] == n1 and same.size > 0
    total = np.int64(num_examples)
    for i in range(n0):
        ci = correct_0[i]
        gi = groups_0[i]
        start = i + 1 if diagonal else 0
        for j in range(start, n1):
            row = 0 if (same_groups and gi == groups_1[j]) else 1
            count = total - ci - correct_1[j] + 2 * np.int64(both_correct[i, j])
            agree_histogram[row, count] += 1
            if has_same:
                same_histogram[row, same[i, j]] += 1


@kernel
def network_kappa_statistics(
    kappa,
    self_offset,
    column_ids,
    kappa_sum,
    kappa_pairs,
    histogram,
    most,
    most_ids,
    least,
    least_ids,
):
    """Add a tile's kappa to each row network's statistics over the other networks.

    Parameters
    ----------
    kappa : ndarray of float32, dims (networks_0, networks_1)
        NaN where undefined (left out).
    self_offset : int
        Column j is row i's own network where j == i + self_offset (left out); any value out
        of range where no column is.
    column_ids : ndarray of int64, dims (networks_1,)
        Network id of each column.
    kappa_sum : ndarray of float64, dims (networks_0,), added to
    kappa_pairs : ndarray of int64, dims (networks_0,), added to
        Defined kappa summed and counted.
    histogram : ndarray of int32, dims (networks_0, bins), added to
        Defined kappa binned by int((kappa + 1) * bins / 2), clipped to the bins.
    most, least : ndarray of float32, dims (networks_0, k), updated
        The k largest (descending) and smallest (ascending) kappa seen so far (start at -inf
        and +inf); a tie keeps the column seen first.
    most_ids, least_ids : ndarray of int64, dims (networks_0, k), updated
        Their networks.
    """
    n0, n1 = kappa.shape
    bins = histogram.shape[1]
    half_bins = bins / 2.0
    k = most.shape[1]
    for i in range(n0):
        # The row's sum, count and the k-th largest and smallest so far live in registers:
        # written through the arrays on every pair, they cost as much as the co-correct counts
        # (3.3 ms a 512 x 512 tile).
        row_sum = 0.0
        row_pairs = 0
        lowest_most = most[i, k - 1] if k else np.float32(np.inf)
        highest_least = least[i, k - 1] if k else np.float32(-np.inf)
        for j in range(n1):
            if j == i + self_offset:
                continue
            value = kappa[i, j]
            if np.isnan(value):
                continue
            row_sum += np.float64(value)
            row_pairs += 1
            index = int((np.float64(value) + 1.0) * half_bins)
            histogram[i, min(max(index, 0), bins - 1)] += 1
            if value > lowest_most:
                place = k - 1
                while place > 0 and value > most[i, place - 1]:
                    most[i, place] = most[i, place - 1]
                    most_ids[i, place] = most_ids[i, place - 1]
                    place -= 1
                most[i, place] = value
                most_ids[i, place] = column_ids[j]
                lowest_most = most[i, k - 1]
            if value < highest_least:
                place = k - 1
                while place > 0 and value < least[i, place - 1]:
                    least[i, place] = least[i, place - 1]
                    least_ids[i, place] = least_ids[i, place - 1]
                    place -= 1
                least[i, place] = value
                least_ids[i, place] = column_ids[j]
                highest_least = least[i, k - 1]
        kappa_sum[i] += row_sum
        kappa_pairs[i] += row_pairs


#: Bits of a class in :func:`pack_slices`: classes 0..14, and code 15 (every bit set) where no
#: prediction was recorded.
SLICE_BITS = 4
#: Columns of a tile counted against each pair of rows in turn by :func:`same_prediction_counts`
#: (a multiple of 3): their planes stay in the core's cache (48 x 4 planes x 157 words = 240 kB at
#: 10,000 examples) while the pairs of rows stream past; 1.13x against the whole tile's columns.
SLICE_COLUMNS = 48


@kernel
def pack_slices(predictions):
    """Bit-sliced predictions: a plane marking the examples without a prediction, then one
    plane per bit of the class (``SLICE_BITS`` bits), each packed like :func:`pack_bits`. A
    missing prediction (-1) is code 15, which no class below 15 shares, so two networks predict
    the same class on an example where every class bit is equal and not both are missing.

    Parameters
    ----------
    predictions : ndarray of int16, dims (networks, examples)
        Predicted classes in 0..14, -1 where none was recorded (never agrees).

    Returns
    -------
    ndarray of uint64, dims (networks, (1 + SLICE_BITS) * words)
        Planes one after another: missing, then class bits 0..3; each plane padded with zero
        words to a multiple of ``WORD_MULTIPLE`` words.
    """
    num_networks, num_examples = predictions.shape
    num_words = -(-num_examples // (64 * WORD_MULTIPLE)) * WORD_MULTIPLE
    packed = np.zeros((num_networks, (1 + SLICE_BITS) * num_words), np.uint64)
    plane = np.zeros((num_networks, num_examples), np.bool_)
    for b in range(1 + SLICE_BITS):
        # One bool plane at a time, packed by pack_bits' multiply trick (a bit loop per example
        # was 4x slower).
        for n in range(num_networks):
            for x in range(num_examples):
                k = predictions[n, x]
                code = k if k >= 0 else 15
                plane[n, x] = k < 0 if b == 0 else (code >> (b - 1)) & 1 == 1
        bits = pack_bits(plane)
        packed[:, b * num_words : b * num_words + bits.shape[1]] = bits
    return packed


@kernel
def _differ_word(a1, a2, a3, a4, b1, b2, b3, b4):
    """Examples of one word where two networks' class codes differ (the one word-level formula
    of the loops below; LLVM makes it vpternlogq and vpopcntq on AVX-512)."""
    return _popcount((a1 ^ b1) | (a2 ^ b2) | (a3 ^ b3) | (a4 ^ b4))


@kernel
def _differ_pair(a, b, num_words):
    """Examples where the codes of two rows of :func:`pack_slices` differ (the pairs left over
    by the blocks of :func:`same_prediction_counts`)."""
    s = np.uint64(0)
    w1, w2, w3, w4 = num_words, 2 * num_words, 3 * num_words, 4 * num_words
    for w in range(num_words):
        s += _differ_word(
            a[w1 + w], a[w2 + w], a[w3 + w], a[w4 + w], b[w1 + w], b[w2 + w], b[w3 + w], b[w4 + w]
        )
    return s


@kernel
def same_prediction_counts(sliced_0, sliced_1, num_examples):
    """Examples where two networks predict the same class, from :func:`pack_slices`.

    X minus the examples whose 4-bit codes differ (padding bits are equal and not counted), minus
    those where both predictions are missing (code 15 on both sides). Four planes per network
    where one plane per class needs ten for ten classes: 4.9x faster than
    :func:`co_correct_counts` over :func:`pack_classes` at 10 classes (benchmarks/RESULTS.md,
    Scale).

    Parameters
    ----------
    sliced_0 : ndarray of uint64, dims (networks_0, (1 + SLICE_BITS) * words)
    sliced_1 : ndarray of uint64, dims (networks_1, (1 + SLICE_BITS) * words)
    num_examples : int
        X, the examples packed.

    Returns
    -------
    ndarray of int32, dims (networks_0, networks_1)
    """
    n0, width = sliced_0.shape
    n1 = sliced_1.shape[0]
    num_words = width // (1 + SLICE_BITS)
    counts = np.empty((n0, n1), np.int32)
    total = np.int64(num_examples)
    even_0 = n0 - n0 % 2
    w1, w2, w3, w4 = num_words, 2 * num_words, 3 * num_words, 4 * num_words
    # Blocks of SLICE_COLUMNS columns, each against every pair of rows: the columns' planes stay
    # in cache while the rows stream.
    for start in range(0, n1, SLICE_COLUMNS):
        stop = min(n1, start + SLICE_COLUMNS)
        triples = start + (stop - start) // 3 * 3
        for i in range(0, even_0, 2):
            a0, a1 = sliced_0[i], sliced_0[i + 1]
            for j in range(start, triples, 3):
                # Rows i, i + 1 against columns j, j + 1, j + 2 written out here: each loaded
                # word serves two or three pairs (1.13x over 2 x 2; 3 x 3 runs out of AVX-512
                # registers), and a helper taking the rows measured 6% slower.
                b0, b1, b2 = sliced_1[j], sliced_1[j + 1], sliced_1[j + 2]
                d00 = d01 = d02 = d10 = d11 = d12 = np.uint64(0)
                for w in range(num_words):
                    p1, p2, p3, p4 = a0[w1 + w], a0[w2 + w], a0[w3 + w], a0[w4 + w]
                    q1, q2, q3, q4 = a1[w1 + w], a1[w2 + w], a1[w3 + w], a1[w4 + w]
                    r1, r2, r3, r4 = b0[w1 + w], b0[w2 + w], b0[w3 + w], b0[w4 + w]
                    t1, t2, t3, t4 = b1[w1 + w], b1[w2 + w], b1[w3 + w], b1[w4 + w]
                    u1, u2, u3, u4 = b2[w1 + w], b2[w2 + w], b2[w3 + w], b2[w4 + w]
                    d00 += _differ_word(p1, p2, p3, p4, r1, r2, r3, r4)
                    d01 += _differ_word(p1, p2, p3, p4, t1, t2, t3, t4)
                    d02 += _differ_word(p1, p2, p3, p4, u1, u2, u3, u4)
                    d10 += _differ_word(q1, q2, q3, q4, r1, r2, r3, r4)
                    d11 += _differ_word(q1, q2, q3, q4, t1, t2, t3, t4)
                    d12 += _differ_word(q1, q2, q3, q4, u1, u2, u3, u4)
                counts[i, j] = total - d00
                counts[i, j + 1] = total - d01
                counts[i, j + 2] = total - d02
                counts[i + 1, j] = total - d10
                counts[i + 1, j + 1] = total - d11
                counts[i + 1, j + 2] = total - d12
            for j in range(triples, stop):
                counts[i, j] = total - _differ_pair(a0, sliced_1[j], num_words)
                counts[i + 1, j] = total - _differ_pair(a1, sliced_1[j], num_words)
        for i in range(even_0, n0):
            for j in range(start, stop):
                counts[i, j] = total - _differ_pair(sliced_0[i], sliced_1[j], num_words)
    missing_0 = sliced_0[:, :num_words]
    missing_1 = sliced_1[:, :num_words]
    if missing_0.any() and missing_1.any():
        counts -= co_correct_counts(
            np.ascontiguousarray(missing_0), np.ascontiguousarray(missing_1)
        )
    return counts


@kernel
def histogram_medians(histogram, low, high):
    """Median of each row's values from their histogram over equal bins of [low, high].

    Parameters
    ----------
    histogram : ndarray of int32, dims (rows, bins)
    low, high : float

    Returns
    -------
    ndarray of float64, dims (rows,)
        The mean of the centres of the bins holding the values at sorted positions
        (n - 1) // 2 and n // 2; NaN for an empty row.
    """
    rows, bins = histogram.shape
    width = (high - low) / bins
    medians = np.full(rows, np.nan)
    for r in range(rows):
        total = np.int64(0)
        for b in range(bins):
            total += histogram[r, b]
        if total == 0:
            continue
        first = (total - 1) // 2
        second = total // 2
        seen = np.int64(0)
        lower = -1
        upper = -1
        for b in range(bins):
            seen += histogram[r, b]
            if lower < 0 and seen > first:
                lower = b
            if seen > second:
                upper = b
                break
        medians[r] = low + (lower + upper + 1) * width / 2
    return medians

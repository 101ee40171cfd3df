"""The pairwise kernels equal their NumPy references (tests/reference_pairwise.py)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kernels import pairwise as kernels
from tests import reference_pairwise as reference


@st.composite
def verdicts(draw, max_networks=5, max_examples=200):
    """bool (networks, examples): random, all right or all wrong; sizes not multiples of 64."""
    networks = draw(st.integers(1, max_networks))
    examples = draw(st.integers(0, max_examples))
    kind = draw(st.sampled_from(["random", "all right", "all wrong"]))
    if kind == "all right":
        return np.ones((networks, examples), bool)
    if kind == "all wrong":
        return np.zeros((networks, examples), bool)
    return draw(hnp.arrays(bool, (networks, examples)))


@given(verdicts())
def test_pack_bits(correct):
    np.testing.assert_array_equal(kernels.pack_bits(correct), reference.pack_bits(correct))


@given(st.integers(1, 4), st.integers(0, 150), st.integers(1, 6), st.data())
def test_pack_classes(networks, examples, classes, data):
    predictions = data.draw(
        hnp.arrays(np.int16, (networks, examples), elements=st.integers(-1, classes - 1))
    )
    np.testing.assert_array_equal(
        kernels.pack_classes(predictions, classes), reference.pack_classes(predictions, classes)
    )


@given(verdicts(), verdicts())
def test_co_correct_counts(first, second):
    examples = min(first.shape[1], second.shape[1])
    a = kernels.pack_bits(np.ascontiguousarray(first[:, :examples]))
    b = kernels.pack_bits(np.ascontiguousarray(second[:, :examples]))
    np.testing.assert_array_equal(
        kernels.co_correct_counts(a, b), reference.co_correct_counts(a, b)
    )


@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 140), st.integers(1, 4), st.data())
def test_prediction_agreement_counts(n0, n1, examples, classes, data):
    def draw(n):
        return data.draw(hnp.arrays(np.int16, (n, examples), elements=st.integers(-1, classes - 1)))

    p0, p1 = draw(n0), draw(n1)
    expected = reference.prediction_agreement_counts(p0, p1)
    np.testing.assert_array_equal(kernels.prediction_agreement_counts(p0, p1), expected)
    # The bit-plane route counts the same.
    planes = kernels.co_correct_counts(
        kernels.pack_classes(p0, classes), kernels.pack_classes(p1, classes)
    )
    np.testing.assert_array_equal(planes, expected)
    # So does the bit-sliced route (classes below 15).
    sliced = kernels.same_prediction_counts(
        kernels.pack_slices(p0), kernels.pack_slices(p1), examples
    )
    np.testing.assert_array_equal(sliced, expected)


@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 200), st.data())
def test_same_prediction_counts_over_fifteen_classes(n0, n1, examples, data):
    def draw(n):
        return data.draw(hnp.arrays(np.int16, (n, examples), elements=st.integers(-1, 14)))

    p0, p1 = draw(n0), draw(n1)
    np.testing.assert_array_equal(
        kernels.same_prediction_counts(kernels.pack_slices(p0), kernels.pack_slices(p1), examples),
        reference.prediction_agreement_counts(p0, p1),
    )


@given(verdicts(), verdicts())
def test_agreement_and_kappa(first, second):
    examples = min(first.shape[1], second.shape[1])
    c0 = first[:, :examples].astype(np.int64)
    c1 = second[:, :examples].astype(np.int64)
    both = (c0 @ c1.T).astype(np.int32)
    args = (both, c0.sum(axis=1), c1.sum(axis=1), examples)
    agree, kappa = kernels.agreement_and_kappa(*args)
    expected_agree, expected_kappa = reference.agreement_and_kappa(*args)
    np.testing.assert_array_equal(agree, expected_agree)
    np.testing.assert_allclose(kappa, expected_kappa, rtol=1e-5, atol=1e-6, equal_nan=True)
    # Straight from the definition: agreement counts examples where both are right or wrong.
    np.testing.assert_array_equal(agree, (c0[:, None, :] == c1[None, :, :]).sum(axis=2))


def test_one_network_agrees_with_itself():
    correct = np.array([[True, False, True, True, False]])
    packed = kernels.pack_bits(correct)
    both = kernels.co_correct_counts(packed, packed)
    agree, kappa = kernels.agreement_and_kappa(both, np.array([3]), np.array([3]), 5)
    assert both[0, 0] == 3 and agree[0, 0] == 5 and kappa[0, 0] == pytest.approx(1.0)


def test_two_networks_known_kappa():
    # a = 1101, b = 1011: c_obs = 2/4, a_i = a_j = 3/4, c_exp = 10/16, kappa = -1/3.
    correct = np.array([[1, 1, 0, 1], [1, 0, 1, 1]], bool)
    packed = kernels.pack_bits(correct)
    both = kernels.co_correct_counts(packed, packed)
    agree, kappa = kernels.agreement_and_kappa(both, correct.sum(1), correct.sum(1), 4)
    assert agree[0, 1] == 2
    assert kappa[0, 1] == pytest.approx(-1 / 3, rel=1e-6)


def test_degenerate_kappa_is_nan():
    right = np.ones((2, 70), bool)
    packed = kernels.pack_bits(right)
    _, kappa = kernels.agreement_and_kappa(
        kernels.co_correct_counts(packed, packed), np.full(2, 70), np.full(2, 70), 70
    )
    assert np.isnan(kappa).all()
    _, kappa = kernels.agreement_and_kappa(
        np.zeros((1, 1), np.int32), np.zeros(1, np.int64), np.zeros(1, np.int64), 0
    )
    assert np.isnan(kappa).all()


def _tile(first, second, num_groups, diagonal, predictions, data):
    """A tile's inputs in the kernels' order (co-correct counts, prediction agreement counts or
    (0, 0), correct counts, examples, groups) from drawn verdicts; a diagonal tile pairs the
    first block with itself."""
    examples = min(first.shape[1], second.shape[1])
    c0 = first[:, :examples].astype(np.int64)
    c1 = c0 if diagonal else second[:, :examples].astype(np.int64)
    both = (c0 @ c1.T).astype(np.int32)
    n0, n1 = both.shape

    def draw_groups(n):
        return data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, num_groups - 1)))

    groups_0 = draw_groups(n0)
    groups_1 = groups_0 if diagonal else draw_groups(n1)
    if predictions:
        same = data.draw(hnp.arrays(np.int32, (n0, n1), elements=st.integers(0, examples)))
    else:
        same = np.zeros((0, 0), np.int32)
    return both, same, c0.sum(axis=1), c1.sum(axis=1), examples, groups_0, groups_1


@given(
    verdicts(max_networks=7, max_examples=150),
    verdicts(max_networks=7, max_examples=150),
    st.integers(1, 3),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.data(),
)
def test_tile_statistics(first, second, num_groups, diagonal, predictions, wide, data):
    tile = _tile(first, second, num_groups, diagonal, predictions, data)
    both, same = tile[0], tile[1]
    n0, n1 = both.shape
    dtype = np.uint32 if wide else np.uint16
    args = (
        *tile,
        num_groups,
        num_groups,
        diagonal,
        diagonal or wide,
        20,
    )
    outputs = {}
    for name, module in (("kernel", kernels), ("reference", reference)):
        kappa = np.zeros((n0, n1), np.float32)
        both_out = np.zeros((n0, n1), dtype)
        same_out = np.zeros(same.shape, dtype)
        result = module.tile_statistics(*args, kappa, both_out, same_out)
        outputs[name] = (kappa, both_out, same_out) + tuple(result)
    kernel, expected = outputs["kernel"], outputs["reference"]
    np.testing.assert_array_equal(kernel[0], expected[0])  # kappa, bit for bit
    for k in (1, 2, 4, 5):  # stored counts, pair counts, histogram
        np.testing.assert_array_equal(kernel[k], expected[k])
    np.testing.assert_allclose(kernel[3], expected[3], rtol=1e-12, atol=1e-9)
    assert kernel[1].dtype == dtype
    # The sums hold what the tile's definition says: all pairs counted once.
    pairs = n0 * (n0 - 1) // 2 if diagonal else n0 * n1
    assert kernel[4][0].sum() == pairs
    assert kernel[5].sum() == kernel[4][1].sum()


@given(
    verdicts(max_networks=7, max_examples=150),
    verdicts(max_networks=7, max_examples=150),
    st.integers(1, 3),
    st.booleans(),
    st.booleans(),
    st.data(),
)
def test_tile_group_sums(first, second, num_groups, diagonal, predictions, data):
    tile = _tile(first, second, num_groups, diagonal, predictions, data)
    n0 = tile[0].shape[0]
    _, kappa = kernels.agreement_and_kappa(tile[0], tile[2], tile[3], tile[4])
    args = (*tile, num_groups, num_groups, diagonal, kappa)
    rows, columns = kernels.tile_group_sums(*args)
    expected_rows, expected_columns = reference.tile_group_sums(*args)
    assert rows.shape == (3 if predictions else 2, n0, num_groups)
    np.testing.assert_allclose(rows, expected_rows, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(columns, expected_columns, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("missing", ["none", "rows", "both"])
@pytest.mark.parametrize(("n0", "n1", "examples"), [(7, 101, 130), (2, 48, 64), (1, 3, 1)])
def test_same_prediction_counts_across_column_blocks(n0, n1, examples, missing):
    # More columns than one block of SLICE_COLUMNS, an odd row, columns not a multiple of 3,
    # and missing predictions on neither, one or both sides.
    rng = np.random.default_rng(n0 * 1000 + n1)
    p0 = rng.integers(0, 10, (n0, examples)).astype(np.int16)
    p1 = rng.integers(0, 10, (n1, examples)).astype(np.int16)
    if missing in ("rows", "both"):
        p0[rng.random(p0.shape) < 0.2] = -1
    if missing == "both":
        p1[rng.random(p1.shape) < 0.2] = -1
    np.testing.assert_array_equal(
        kernels.same_prediction_counts(kernels.pack_slices(p0), kernels.pack_slices(p1), examples),
        reference.prediction_agreement_counts(p0, p1),
    )

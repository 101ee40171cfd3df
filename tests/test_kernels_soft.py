"""The soft-verdict kernels: data maps and the area under the margin.

``tests/test_kernels_agreement.py::test_kernel_equals_reference`` runs the rows of
``tests/kernel_table.py`` under hypothesis; here the awkward sizes are run once each for certain,
blocks of checkpoints and of networks are checked to add up, the statistics are checked against
their definitions on the raw series, and a small data map is computed by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels.soft as soft
from tests.kernel_table import CASES, run_both
from tests.test_kernels_agreement import _assert_same

SOFT_CASES = [case for case in CASES if case.name in ("accumulate_soft", "finish_soft")]
CONFIDENCE, VARIABILITY, CORRECTNESS, MARGIN, LOSS = range(len(soft.STATISTICS))
EASY, AMBIGUOUS, HARD = range(len(soft.REGIONS))


def test_the_table_has_both_soft_kernels():
    assert [case.name for case in SOFT_CASES] == ["accumulate_soft", "finish_soft"]


_AWKWARD = [
    {"examples": 0, "networks": 1, "checkpoints": 1},
    {"examples": 1, "networks": 1, "checkpoints": 1},
    {"examples": 9, "networks": 1, "checkpoints": 7, "fill": "zero"},
    {"examples": 65, "networks": 3, "checkpoints": 1, "fill": "one"},
    {"examples": 13, "networks": 5, "checkpoints": 3, "fill": "nan"},
    {"examples": 63, "networks": 7, "checkpoints": 5, "fill": "grid", "thresholds": "grid"},
    {"examples": 71, "networks": 9, "checkpoints": 4, "missing": 0.3, "fill": "code"},
]


@pytest.mark.parametrize("case", SOFT_CASES, ids=[c.name for c in SOFT_CASES])
@pytest.mark.parametrize("sizes", _AWKWARD)
@pytest.mark.parametrize("table", [False, True])
def test_soft_kernel_equals_reference_on_awkward_sizes(case, sizes, table):
    """One network, one checkpoint, zero examples, p exactly 0 or 1, all-NaN series, ties with
    the thresholds, sizes not a multiple of 8 or 64."""
    sizes = {**sizes, "groups": 2, "skip": True, "offset": True, "table": table}
    inputs = case.make_inputs(np.random.default_rng(len(str(sizes))), sizes)
    got, expected = run_both(case, inputs)
    _assert_same(got, expected, case.name)


def _series(rng, examples, networks, checkpoints):
    """The store's decoded soft verdicts: p in codes of 1/32, NaN where not recorded."""
    shape = (examples, networks, checkpoints)
    probability = (rng.integers(0, 33, shape) / 32).astype(np.float32)
    probability[rng.random(shape) < 0.2] = np.nan
    probability[:, :1, :][rng.random((examples, 1, checkpoints)) < 0.5] = np.nan
    margin = rng.normal(0.0, 3.0, shape).astype(np.float32)
    margin[np.isnan(probability)] = np.nan
    return probability, margin, (margin > 0).astype(np.uint8)


def _accumulate(probability, margin, correct, bounds):
    examples, networks, _ = probability.shape
    sums = soft.SoftSums.start(examples, networks)
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        block = (np.ascontiguousarray(a[:, :, start:stop]) for a in (probability, margin, correct))
        soft.accumulate_soft(*block, sums)
    return sums


@settings(deadline=None, max_examples=40)
@given(
    examples=st.integers(0, 20),
    networks=st.integers(1, 9),
    checkpoints=st.integers(1, 12),
    cuts=st.lists(st.integers(1, 11), max_size=4),
    seed=st.integers(0, 1000),
)
def test_blocks_of_checkpoints_give_one_block_and_the_definitions(
    examples, networks, checkpoints, cuts, seed
):
    """Any cut of the checkpoints into blocks gives the sums of one block (bit for bit: each
    pair's terms are added in the same order), and finishing them gives cartography's
    statistics and the AUM computed on the raw series."""
    probability, margin, correct = _series(
        np.random.default_rng(seed), examples, networks, checkpoints
    )
    bounds = sorted({0, checkpoints, *[c for c in cuts if c < checkpoints]})
    blocks = _accumulate(probability, margin, correct, bounds)
    whole = _accumulate(probability, margin, correct, [0, checkpoints])
    for a, b in zip(blocks, whole, strict=True):
        np.testing.assert_array_equal(a, b)

    # One group per network, so that the float64 sums of a group are one network's statistics.
    example_sums = soft.ExampleSoftSums.start(networks, examples)
    soft.finish_soft(blocks, np.arange(networks, dtype=np.int64), example_sums)
    recorded = ~np.isnan(probability)
    p = probability.astype(np.float64)
    for x in range(examples):
        for n in range(networks):
            kept = recorded[x, n]
            assert example_sums.network_count[n, x] == int(kept.any())
            got = example_sums.statistic_sum[n, :, x]
            if not kept.any():
                np.testing.assert_array_equal(got, 0.0)
                continue
            series = p[x, n, kept]
            margins = margin[x, n, kept].astype(np.float64)
            # The definition of the loss where p is known, and its margin bound below P_MIN.
            with np.errstate(divide="ignore"):
                loss = np.where(
                    series >= soft.P_MIN,
                    -np.log(series),
                    np.maximum(np.log(64.0), np.logaddexp(0.0, -margins)),
                )
            expected = [
                series.mean(),
                series.std(ddof=0),
                correct[x, n, kept].mean(),
                margin[x, n, kept].astype(np.float64).mean(),
                loss.mean(),
            ]
            np.testing.assert_allclose(got[VARIABILITY], expected[VARIABILITY], atol=1e-7)
            got[VARIABILITY] = expected[VARIABILITY] = 0.0
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_blocks_of_networks_add_up():
    """Finishing two blocks of networks into the same example sums gives one block's sums."""
    rng = np.random.default_rng(3)
    probability, margin, correct = _series(rng, 37, 11, 6)
    sums = _accumulate(probability, margin, correct, [0, 6])
    network_group = rng.integers(-1, 3, 11).astype(np.int64)
    whole = soft.ExampleSoftSums.start(3, 37)
    soft.finish_soft(sums, network_group, whole)
    parts = soft.ExampleSoftSums.start(3, 37)
    for block in (slice(0, 4), slice(4, 11)):
        part = soft.SoftSums(*(np.ascontiguousarray(a[:, block]) for a in sums))
        soft.finish_soft(part, network_group[block], parts)
    for a, b in zip(parts, whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert whole.network_count.sum() > 0 and whole.region_count.sum() > 0


def _data_map_by_hand():
    """One example, six networks, four checkpoints (NaN: not recorded)."""
    nan = np.nan
    probability = [
        [0.2, 0.4, 0.6, 0.8],  # confidence 0.5, variability sqrt(0.05): ambiguous
        [0.9, nan, 1.0, 1.0],  # three recorded, confidence 0.9667: easy
        [0.0, 0.1, 0.1, 0.2],  # confidence 0.1, p = 0 counts as P_MIN in the loss: hard
        [nan, nan, nan, nan],  # never recorded: in no count
        [0.5, 0.5, 0.5, 0.5],  # confidence 0.5, variability 0: no region
        [1.0, 1.0, 1.0, 1.0],  # left out (group -1)
    ]
    margin = [
        [-1.5, -0.5, 0.5, 1.5],
        [2.0, 5.0, 4.0, 6.0],  # the 5 has no probability beside it: skipped
        [-8.0, -3.0, -3.0, -2.0],  # beside p = 0 the loss is softplus(8) = 8.0003 > log 64
        [nan, nan, nan, nan],
        [0.1, -0.1, 0.1, -0.1],
        [9.0, 9.0, 9.0, 9.0],
    ]
    correct = [[0, 0, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0], [1] * 4]
    return (
        np.array([probability], np.float32),
        np.array([margin], np.float32),
        np.array([correct], np.uint8),
        np.array([0, 0, 0, 0, 0, -1], np.int64),
    )


#: (confidence, variability, correctness, area under the margin, loss) of each network.
_BY_HAND = [
    (0.5, math.sqrt(0.05), 0.5, 0.0, -math.log(0.2 * 0.4 * 0.6 * 0.8) / 4),
    (2.9 / 3, math.sqrt((0.81 + 1 + 1) / 3 - (2.9 / 3) ** 2), 1.0, 4.0, -math.log(0.9) / 3),
    # p = 0 beside m = -8: the loss is max(log 64 = 4.159, softplus(8) = 8.0003).
    (0.1, math.sqrt(0.005), 0.0, -4.0, (math.log1p(math.exp(8)) - math.log(0.1 * 0.1 * 0.2)) / 4),
    (math.nan,) * 5,
    (0.5, 0.0, 0.5, 0.0, math.log(2)),
    (1.0, 0.0, 1.0, 9.0, 0.0),
]


def test_a_data_map_computed_by_hand():
    probability, margin, correct, network_group = _data_map_by_hand()
    sums = soft.SoftSums.start(1, 6)
    soft.accumulate_soft(probability[..., :1], margin[..., :1], correct[..., :1], sums)
    soft.accumulate_soft(
        *(np.ascontiguousarray(a[..., 1:]) for a in (probability, margin, correct)), sums
    )
    assert sums.checkpoint_count[0].tolist() == [4, 3, 4, 0, 4, 4]
    assert sums.correct_count[0].tolist() == [2, 3, 0, 0, 2, 4]
    table = np.zeros((5, 1, 6), np.float32)
    example_sums = soft.ExampleSoftSums.start(1, 1)
    soft.finish_soft(sums, network_group, example_sums, table)

    expected = np.array(_BY_HAND).T  # (k, n)
    # float32 inputs: 0.2 and its like are a few 1e-8 away from their decimal values.
    np.testing.assert_allclose(table[:, 0, :], expected, rtol=0, atol=1e-7)
    assert table[VARIABILITY, 0, 0] == pytest.approx(0.2236068, abs=1e-7)
    assert table[LOSS, 0, 2] == pytest.approx(3.553736, abs=1e-6)  # softplus(8) = 8.000335
    counted = expected[:, [0, 1, 2, 4]]
    assert example_sums.network_count.tolist() == [[4]]
    np.testing.assert_allclose(example_sums.statistic_sum[0, :, 0], counted.sum(1), atol=1e-7)
    np.testing.assert_allclose(
        example_sums.statistic_square_sum[0, :, 0], (counted**2).sum(1), atol=1e-7
    )
    # easy: network 1; ambiguous: network 0; hard: network 2; network 4 is in none.
    assert example_sums.region_count[0, :, 0].tolist() == [1, 1, 1]


def test_region_thresholds_are_parameters():
    probability, margin, correct, network_group = _data_map_by_hand()
    sums = soft.SoftSums.start(1, 6)
    soft.accumulate_soft(probability, margin, correct, sums)
    assert soft.RegionThresholds() == (0.2, 0.75, 0.25)

    def regions(thresholds):
        example_sums = soft.ExampleSoftSums.start(1, 1)
        soft.finish_soft(sums, network_group, example_sums, thresholds=thresholds)
        return example_sums.region_count[0, :, 0].tolist()

    assert regions(soft.RegionThresholds()) == [1, 1, 1]
    # Variability 0.2236 is no longer ambiguous; confidence 0.5 is in no region.
    assert regions(soft.RegionThresholds(ambiguous_variability=0.3)) == [1, 0, 1]
    # Ties, on network 4 (p = 0.5 exactly at every checkpoint): variability 0 at a threshold
    # of 0 is ambiguous, confidence 0.5 at the easy threshold easy, at the hard one not hard.
    assert regions(soft.RegionThresholds(0.0, 2.0, 0.25)) == [0, 4, 0]
    assert regions(soft.RegionThresholds(1.0, 0.5, 0.25)) == [3, 0, 1]
    assert regions(soft.RegionThresholds(1.0, 2.0, 0.5)) == [0, 0, 1]


def test_every_soft_kernel_is_compiled_with_the_one_policy():
    """kernels/_jit.py: every kernel releases the GIL and caches its machine code on disk."""
    from numba.core.dispatcher import Dispatcher

    compiled = [value for value in vars(soft).values() if isinstance(value, Dispatcher)]
    assert {kernel.py_func.__name__ for kernel in compiled} == {
        "_accumulate_soft",
        "_accumulate_soft_codes",
        "_entry_loss",
        "_finish_soft",
    }
    for kernel in compiled:
        assert kernel.targetoptions["nogil"] is True, kernel.py_func.__name__
        assert kernel.stats.cache_path is not None, kernel.py_func.__name__


@settings(deadline=None, max_examples=40)
@given(
    examples=st.integers(0, 20),
    networks=st.integers(1, 9),
    checkpoints=st.integers(1, 12),
    missing=st.floats(0.0, 1.0),
    seed=st.integers(0, 1000),
)
def test_codes_kernel_equals_the_kernel_on_decoded_floats(
    examples, networks, checkpoints, missing, seed
):
    # Every code (p codes 0..32 and the missing 255, margins over all of int8 with -128
    # missing), missing in either array alone too: the sums agree bit for bit.
    from engine.store.format import (
        MARGIN_MISSING,
        PROBABILITY_MISSING,
        decode_margin,
        decode_probability,
        margin_values,
        probability_values,
    )

    rng = np.random.default_rng(seed)
    shape = (examples, networks, checkpoints)
    probability = rng.integers(0, 33, shape).astype(np.uint8)
    probability[rng.random(shape) < missing] = PROBABILITY_MISSING
    margin = rng.integers(-128, 128, shape).astype(np.int8)
    margin[rng.random(shape) < missing / 2] = MARGIN_MISSING
    correct = rng.integers(0, 2, shape).astype(np.uint8)
    with_codes = soft.SoftSums.start(examples, networks)
    soft.accumulate_soft_codes(
        probability, margin, correct, probability_values(), margin_values(), with_codes
    )
    with_floats = soft.SoftSums.start(examples, networks)
    soft.accumulate_soft(
        decode_probability(probability), decode_margin(margin), correct, with_floats
    )
    for got, expected in zip(with_codes, with_floats, strict=True):
        np.testing.assert_array_equal(got, expected)
    # And the plain NumPy reference on the decoded floats (it sums in another order).
    from tests import reference_soft

    with_reference = soft.SoftSums.start(examples, networks)
    reference_soft.accumulate_soft(
        decode_probability(probability), decode_margin(margin), correct, with_reference
    )
    for got, expected in zip(with_codes, with_reference, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)

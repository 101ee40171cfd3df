"""The agreement, learning and consensus kernels equal their NumPy references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels.agreement as agreement
import tests.reference_agreement as reference
from tests.kernel_table import CASES, run_both


def _assert_same(got, expected, name):
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected), name
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            _assert_same(a, b, f"{name}[{i}]")
    elif isinstance(expected, np.ndarray):
        assert got.shape == expected.shape, name
        if np.issubdtype(expected.dtype, np.floating):
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=name)
    else:
        assert got == expected or (got is None and expected is None), name


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@settings(deadline=None)
@given(data=st.data())
def test_kernel_equals_reference(case, data):
    sizes = data.draw(case.sizes, label="sizes")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    inputs = case.make_inputs(np.random.default_rng(seed), sizes)
    got, expected = run_both(case, inputs)
    _assert_same(got, expected, case.name)


def _direct_learning_events(correct):
    """First-learned checkpoint and forgetting events of every (x, n) from their definitions."""
    examples, networks, checkpoints = correct.shape
    first = np.full((examples, networks), checkpoints)
    forgets = np.zeros((examples, networks), np.int64)
    for x in range(examples):
        for n in range(networks):
            series = correct[x, n].astype(bool)
            for t in range(checkpoints):
                if series[t:].all():
                    first[x, n] = t
                    break
            forgets[x, n] = sum(series[t - 1] and not series[t] for t in range(1, checkpoints))
    return first, forgets


@settings(deadline=None, max_examples=30)
@given(
    examples=st.integers(0, 20),
    networks=st.integers(1, 9),
    checkpoints=st.integers(1, 12),
    cuts=st.lists(st.integers(1, 11), max_size=4),
    seed=st.integers(0, 1000),
)
def test_blocks_of_checkpoints_carry_state_exactly(examples, networks, checkpoints, cuts, seed):
    """Any cut of the checkpoints into blocks gives the definitions' TP-agreement, accuracy,
    first-learned checkpoints, forgetting events and split-half sums."""
    rng = np.random.default_rng(seed)
    correct = rng.random((examples, networks, checkpoints)) < 0.7
    packed = np.packbits(correct, axis=0, bitorder="little")
    padded = packed.shape[0] * 8
    group = np.zeros(networks, np.int64)
    half = (rng.random((2, networks)) < 0.5).astype(np.uint8)
    state = agreement.LearningState.start(packed.shape[0], networks, checkpoints)
    tpa = np.zeros((1, padded, checkpoints), np.int32)
    hold = np.zeros_like(tpa)
    network_count = np.zeros((networks, checkpoints), np.int32)
    forgetting = np.zeros((1, padded), np.int32)
    network_forgetting = np.zeros(networks, np.int32)
    counts = agreement.VerdictCounts(tpa, hold, network_count, forgetting, network_forgetting)
    none = np.zeros((0, 0), np.uint8)
    bounds = sorted({0, checkpoints, *[c for c in cuts if c < checkpoints]})
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        agreement.accumulate_verdicts(
            np.ascontiguousarray(packed[:, :, start:stop]),
            start,
            group,
            none,
            state,
            counts,
        )
    histogram = np.zeros((1, padded, checkpoints + 1), np.int32)
    half_sum = np.zeros((1, 2, padded), np.int32)
    learned = agreement.LearnedCounts(histogram, half_sum, np.zeros((1, padded), np.int32))
    agreement.finish_verdicts(state, group, none, half, learned)
    first, forgets = _direct_learning_events(correct)
    expected_histogram = np.zeros((examples, checkpoints + 1), np.int64)
    for x in range(examples):
        expected_histogram[x] = np.bincount(first[x], minlength=checkpoints + 1)
    np.testing.assert_array_equal(histogram[0, :examples], expected_histogram)
    np.testing.assert_array_equal(forgetting[0, :examples], forgets.sum(axis=1))
    np.testing.assert_array_equal(network_forgetting, forgets.sum(axis=0))
    np.testing.assert_array_equal(np.cumsum(tpa[0, :examples], axis=1), correct.sum(axis=1))
    np.testing.assert_array_equal(network_count, correct.sum(axis=0))
    np.testing.assert_array_equal(
        half_sum[0, :, :examples], (correct.sum(axis=2) @ half.T.astype(int)).T
    )


def test_poisson_binomial_is_binomial_for_equal_probabilities():
    from scipy.stats import binom

    law = agreement.poisson_binomial(np.full(50, 0.3))
    np.testing.assert_allclose(law, binom.pmf(np.arange(51), 50, 0.3), atol=1e-12)
    assert law.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(
        reference.poisson_binomial(np.full(7, 0.5)), binom.pmf(np.arange(8), 7, 0.5)
    )


def test_every_kernel_is_compiled_with_the_one_policy():
    """kernels/_jit.py: every kernel releases the GIL and caches its machine code on disk."""
    import importlib

    from numba.core.dispatcher import Dispatcher

    kernels = []
    for name in ("agreement", "consensus", "learning", "pairwise"):
        module = importlib.import_module(f"kernels.{name}")
        kernels += [
            value
            for value in vars(module).values()
            if isinstance(value, Dispatcher) and value.py_func.__module__ == module.__name__
        ]
    assert len(kernels) >= 13  # the kernels there were when this test was written
    for kernel in kernels:
        assert kernel.targetoptions["nogil"] is True, kernel.py_func.__name__
        assert kernel.stats.cache_path is not None, kernel.py_func.__name__

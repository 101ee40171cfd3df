"""One table of (kernel, reference, inputs) that drives the kernel tests and the kernel benchmark.

Each case builds its inputs from a generator and a dict of sizes, so that hypothesis can draw
awkward small sizes in ``tests/test_kernels_agreement.py`` and ``benchmarks/bench_kernels.py`` can
build large ones: nothing is benchmarked that is not also tested. Kernels that accumulate in place
are compared on every array argument after the call, and on what they return.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

import kernels.agreement as agreement
import kernels.consensus as consensus
import kernels.learning as learning
import kernels.soft as soft
import tests.reference_agreement as reference
import tests.reference_soft as reference_soft


@dataclass(frozen=True)
class KernelCase:
    name: str
    kernel: Callable
    reference: Callable
    make_inputs: Callable[[np.random.Generator, dict], tuple]
    sizes: st.SearchStrategy
    bench_sizes: dict = field(default_factory=dict)
    #: Entries (verdicts, trials, draws) one call processes, for throughput.
    entries: Callable[[dict], int] = lambda sizes: 1


def _density(rng, sizes):
    """All wrong, all right, or mixed: the cases where kernels break."""
    return {"zero": 0.0, "one": 1.0}.get(sizes.get("fill", "mixed"), sizes.get("p", 0.6))


def _pack(bits):
    return np.packbits(bits, axis=0, bitorder="little")


def verdict_inputs(rng, sizes):
    x, n, t = sizes["examples"], sizes["networks"], sizes["checkpoints"]
    offset = sizes.get("offset", 0)
    total, groups = t + offset, sizes.get("groups", 1)
    padded = 8 * -(-x // 8)
    packed = _pack(rng.random((x, n, t)) < _density(rng, sizes))
    network_group = rng.integers(-1 if sizes.get("skip") else 0, groups, n).astype(np.int64)
    nonmember = (
        _pack(rng.random((x, n)) < 0.5) if sizes.get("membership") else np.zeros((0, 0), np.uint8)
    )
    before = (rng.random((x, n)) < 0.5) if offset else np.zeros((x, n), bool)
    run_start = np.full((padded, n), total, np.int32)
    run_start[:x][before] = rng.integers(0, max(1, offset), int(before.sum()))
    row_sum = rng.integers(-3, 3, (padded, n)).astype(np.int32)
    return (
        packed,
        offset,
        network_group,
        nonmember,
        agreement.LearningState(_pack(before), run_start, row_sum),
        agreement.VerdictCounts(
            np.zeros((groups, padded, total), np.int32),
            np.zeros((groups, padded, total), np.int32),
            np.zeros((n, total), np.int32),
            np.zeros((groups, padded), np.int32),
            np.zeros(n, np.int32),
        ),
    )


def finish_inputs(rng, sizes):
    x, n, total = sizes["examples"], sizes["networks"], sizes["checkpoints"]
    groups, halvings = sizes.get("groups", 1), sizes.get("halvings", 3)
    padded = 8 * -(-x // 8)
    last = rng.random((x, n)) < _density(rng, sizes)
    run_start = np.full((padded, n), total, np.int32)
    run_start[:x][last] = rng.integers(0, max(1, total), int(last.sum()))
    row_sum = rng.integers(-total, total + 1, (padded, n)).astype(np.int32)
    network_group = rng.integers(-1 if sizes.get("skip") else 0, groups, n).astype(np.int64)
    nonmember = (
        _pack(rng.random((x, n)) < 0.5) if sizes.get("membership") else np.zeros((0, 0), np.uint8)
    )
    network_half = (rng.random((halvings, n)) < 0.5).astype(np.uint8)
    return (
        agreement.LearningState(_pack(last), run_start, row_sum),
        network_group,
        nonmember,
        network_half,
        agreement.LearnedCounts(
            np.zeros((groups, padded, total + 1), np.int32),
            np.zeros((groups, halvings, padded), np.int32),
            np.zeros((groups, padded), np.int32),
        ),
    )


def poisson_binomial_inputs(rng, sizes):
    probabilities = rng.random(sizes["networks"])
    fill = sizes.get("fill", "mixed")
    if fill != "mixed":
        probabilities[:] = 1.0 if fill == "one" else 0.0
    return (probabilities,)


def class_inputs(rng, sizes):
    x, n, t = sizes["examples"], sizes["networks"], sizes["checkpoints"]
    classes, groups = sizes.get("classes", 3), sizes.get("groups", 1)
    first = sizes.get("first", 0)
    predictions = rng.integers(-1, classes + 1, (x, n, t)).astype(np.int16)
    network_group = rng.integers(-1 if sizes.get("skip") else 0, groups, n).astype(np.int64)
    kept = max(0, t - first)
    return (
        predictions,
        0,
        first,
        network_group,
        np.zeros((groups, x, kept, classes), np.int32),
        np.zeros((n, kept, classes), np.int32),
    )


def draw_inputs(rng, sizes):
    n, classes, samples = sizes["networks"], sizes.get("classes", 3), sizes.get("samples", 20)
    frequency = rng.random((n, classes)) ** 3
    frequency[rng.random(n) < 0.1] = 0.0
    total = frequency.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(
        np.divide(frequency, total, out=np.zeros_like(frequency), where=total > 0), axis=1
    )
    cumulative[total[:, 0] > 0, -1] = 1.0
    return cumulative, rng.random((samples, n))


def histogram_inputs(rng, sizes):
    x, bins = sizes["examples"], sizes["checkpoints"] + 1
    histogram = rng.integers(0, 4, (x, bins)).astype(np.int64)
    histogram[rng.random(x) < 0.2, :-1] = 0
    return (histogram,)


def _probability(rng, shape, fill):
    """True-class probabilities: all 0, all 1, quarters (ties with thresholds), the store's
    uint8 codes (k / 32), all NaN, or uniform with exact 0s and 1s among them."""
    if fill == "zero":
        return np.zeros(shape, np.float32)
    if fill == "one":
        return np.ones(shape, np.float32)
    if fill == "nan":
        return np.full(shape, np.nan, np.float32)
    if fill == "grid":
        return (rng.integers(0, 5, shape) / 4).astype(np.float32)
    if fill == "code":
        return (rng.integers(0, 33, shape) / 32).astype(np.float32)
    probability = rng.random(shape)
    probability[rng.random(shape) < 0.1] = 0.0
    probability[rng.random(shape) < 0.1] = 1.0
    return probability.astype(np.float32)


def soft_inputs(rng, sizes):
    x, n, t = sizes["examples"], sizes["networks"], sizes["checkpoints"]
    missing = sizes.get("missing", 0.0)
    probability = _probability(rng, (x, n, t), sizes.get("fill", "mixed"))
    probability[rng.random((x, n, t)) < missing] = np.nan
    margin = rng.normal(0.0, 3.0, (x, n, t)).astype(np.float32)
    margin[np.isnan(probability)] = np.nan
    # A margin missing alone: the entry is skipped, not counted in part.
    margin[rng.random((x, n, t)) < missing / 4] = np.nan
    correct = (margin > 0).astype(np.uint8)
    sums = soft.SoftSums.start(x, n)
    if sizes.get("offset"):
        for array in sums:
            array[...] = rng.integers(0, 5, (x, n))
    return probability, margin, correct, sums


def soft_finish_inputs(rng, sizes):
    x, n, t = sizes["examples"], sizes["networks"], sizes["checkpoints"]
    groups, fill = sizes.get("groups", 1), sizes.get("fill", "mixed")
    count = np.zeros((x, n), np.int32) if fill == "nan" else rng.integers(0, t + 1, (x, n))
    if fill == "grid":
        # Quarters and sixteenths: confidence and variability hit the grid thresholds exactly.
        confidence = rng.integers(0, 5, (x, n)) / 4
        variance = rng.integers(0, 3, (x, n)) / 16
    else:
        confidence = rng.random((x, n))
        # Up to a little above the largest possible, so that rounding below 0 is cut.
        variance = (rng.random((x, n)) * 1.1 - 0.05) * confidence * (1 - confidence)
    sums = soft.SoftSums(
        count.astype(np.int32),
        confidence * count,
        (variance + confidence**2) * count,
        rng.integers(0, count + 1).astype(np.int32),
        rng.normal(0.0, 3.0, (x, n)) * count,
        rng.exponential(1.0, (x, n)) * count,
    )
    network_group = rng.integers(-1 if sizes.get("skip") else 0, groups, n).astype(np.int64)
    example_sums = soft.ExampleSoftSums.start(groups, x)
    table = np.full((len(soft.STATISTICS), x, n), -7.0, np.float32) if sizes.get("table") else None
    thresholds = {
        "default": soft.RegionThresholds(),
        "grid": soft.RegionThresholds(0.25, 0.75, 0.25),
        "random": soft.RegionThresholds(*(float(v) for v in rng.random(3) * [0.5, 1, 1])),
    }[sizes.get("thresholds", "default")]
    return sums, network_group, example_sums, table, thresholds


_small = st.integers(1, 13)
_verdict_sizes = st.fixed_dictionaries(
    {
        "examples": st.integers(0, 70),
        "networks": _small,
        "checkpoints": st.integers(1, 9),
        "offset": st.integers(0, 4),
        "groups": st.integers(1, 3),
        "skip": st.booleans(),
        "membership": st.booleans(),
        "fill": st.sampled_from(["zero", "one", "mixed"]),
    }
)
_network_sizes = st.fixed_dictionaries(
    {
        "networks": st.integers(0, 70),
        "fill": st.sampled_from(["zero", "one", "mixed"]),
    }
)

_soft_fill = st.sampled_from(["zero", "one", "grid", "code", "nan", "mixed"])
_soft_sizes = st.fixed_dictionaries(
    {
        "examples": st.integers(0, 70),
        "networks": _small,
        "checkpoints": st.integers(1, 9),
        "offset": st.booleans(),
        "missing": st.sampled_from([0.0, 0.3]),
        "fill": _soft_fill,
    }
)
_soft_finish_sizes = st.fixed_dictionaries(
    {
        "examples": st.integers(0, 70),
        "networks": _small,
        "checkpoints": st.integers(1, 9),
        "groups": st.integers(1, 3),
        "skip": st.booleans(),
        "table": st.booleans(),
        "thresholds": st.sampled_from(["default", "grid", "random"]),
        "fill": _soft_fill,
    }
)

CASES = [
    KernelCase(
        "accumulate_verdicts",
        agreement.accumulate_verdicts,
        reference.accumulate_verdicts,
        verdict_inputs,
        _verdict_sizes,
        bench_sizes={
            "examples": 65536,
            "networks": 32,
            "checkpoints": 16,
            "groups": 1,
            "membership": True,
        },
        entries=lambda s: s["examples"] * s["networks"] * s["checkpoints"],
    ),
    KernelCase(
        "finish_verdicts",
        agreement.finish_verdicts,
        reference.finish_verdicts,
        finish_inputs,
        _verdict_sizes,
        bench_sizes={
            "examples": 10000,
            "networks": 32,
            "checkpoints": 50,
            "halvings": 10,
            "membership": True,
        },
        entries=lambda s: s["examples"] * s["networks"],
    ),
    KernelCase(
        "poisson_binomial",
        agreement.poisson_binomial,
        reference.poisson_binomial,
        poisson_binomial_inputs,
        _network_sizes,
        bench_sizes={"networks": 2000},
        entries=lambda s: s["networks"] ** 2,
    ),
    KernelCase(
        "count_classes",
        consensus.count_classes,
        reference.count_classes,
        class_inputs,
        st.fixed_dictionaries(
            {
                "examples": st.integers(0, 40),
                "networks": _small,
                "checkpoints": st.integers(1, 7),
                "first": st.integers(0, 8),
                "classes": st.integers(1, 11),
                "groups": st.integers(1, 3),
                "skip": st.booleans(),
            }
        ),
        bench_sizes={"examples": 1000, "networks": 32, "checkpoints": 16, "classes": 10},
        entries=lambda s: s["examples"] * s["networks"] * s["checkpoints"],
    ),
    KernelCase(
        "plurality_histogram_of_draws",
        consensus.plurality_histogram_of_draws,
        reference.plurality_histogram_of_draws,
        draw_inputs,
        st.fixed_dictionaries(
            {
                "networks": st.integers(0, 30),
                "classes": st.integers(1, 7),
                "samples": st.integers(0, 25),
            }
        ),
        bench_sizes={"networks": 2000, "classes": 10, "samples": 256},
        entries=lambda s: s["networks"] * s["samples"],
    ),
    KernelCase(
        "histogram_mean_median",
        learning.histogram_mean_median,
        reference.histogram_mean_median,
        histogram_inputs,
        st.fixed_dictionaries({"examples": st.integers(0, 70), "checkpoints": st.integers(0, 9)}),
        bench_sizes={"examples": 10000, "checkpoints": 50},
        entries=lambda s: s["examples"] * (s["checkpoints"] + 1),
    ),
    KernelCase(
        "accumulate_soft",
        soft.accumulate_soft,
        reference_soft.accumulate_soft,
        soft_inputs,
        _soft_sizes,
        bench_sizes={"examples": 65536, "networks": 32, "checkpoints": 16},
        entries=lambda s: s["examples"] * s["networks"] * s["checkpoints"],
    ),
    KernelCase(
        "finish_soft",
        soft.finish_soft,
        reference_soft.finish_soft,
        soft_finish_inputs,
        _soft_finish_sizes,
        bench_sizes={"examples": 65536, "networks": 32, "checkpoints": 16, "table": True},
        entries=lambda s: s["examples"] * s["networks"],
    ),
]


def run_both(case: KernelCase, inputs: tuple):
    """Call kernel and reference on copies; return (kernel result, reference result), each the
    returned value followed by every argument after the call."""
    kernel_args, reference_args = copy.deepcopy(inputs), copy.deepcopy(inputs)
    kernel_out = case.kernel(*kernel_args)
    reference_out = case.reference(*reference_args)
    return (kernel_out, *kernel_args), (reference_out, *reference_args)

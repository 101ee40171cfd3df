"""Throughput of every kernel of tests/kernel_table.py against its NumPy reference.

    python benchmarks/bench_kernels.py [--repeat 5] [--smoke]

Driven by tests/kernel_table.py, the same table the kernel tests use, at each case's benchmark
sizes; the reference runs on a size 16 times smaller where it is slow (its time is scaled up), and
the outputs of kernel and reference are checked equal on that smaller size first. ``--smoke``
cuts the sizes that grow (examples, networks, samples) 16 times and times once: every step runs,
in seconds, for tests/test_benchmarks.py.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.kernel_table import CASES, run_both  # noqa: E402

#: The size that is cut down for the slow reference.
_CUT = {
    "accumulate_verdicts": "examples",
    "finish_verdicts": "examples",
    "poisson_binomial": "networks",
    "count_classes": "examples",
    "plurality_histogram_of_draws": "samples",
    "histogram_mean_median": "examples",
    "accumulate_soft": "examples",
    "finish_soft": "examples",
}

#: The sizes that ``--smoke`` cuts 16 times.
_SMOKE_CUT = ("examples", "networks", "samples")


def best_time(function, inputs, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        arguments = copy.deepcopy(inputs)
        started = time.perf_counter()
        function(*arguments)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, timed once: a test that every step runs"
    )
    args = parser.parse_args()
    if args.smoke:
        parser.set_defaults(repeat=1)
        args = parser.parse_args()
    rows = []
    for case in CASES:
        rng = np.random.default_rng(0)
        sizes = dict(case.bench_sizes)
        if args.smoke:
            sizes.update({k: max(1, v // 16) for k, v in sizes.items() if k in _SMOKE_CUT})
        small = dict(sizes)
        small[_CUT[case.name]] = max(1, sizes[_CUT[case.name]] // 16)
        small_inputs = case.make_inputs(rng, small)
        got, expected = run_both(case, small_inputs)  # also compiles the kernel
        for a, b in zip(got, expected, strict=True):
            if isinstance(a, np.ndarray):
                assert np.allclose(a, b, equal_nan=True), case.name
        inputs = case.make_inputs(rng, sizes)
        kernel_s = best_time(case.kernel, inputs, args.repeat)
        scale = case.entries(sizes) / max(1, case.entries(small))
        reference_s = best_time(case.reference, small_inputs, max(1, args.repeat // 2)) * scale
        rows.append(
            {
                "kernel": case.name,
                "sizes": sizes,
                "kernel_s": kernel_s,
                "entries_per_s": case.entries(sizes) / kernel_s,
                "reference_s_scaled": reference_s,
                "speedup": reference_s / kernel_s,
            }
        )
        print(
            f"{case.name:30s} {kernel_s * 1e3:9.2f} ms  {case.entries(sizes) / kernel_s:10.3g}"
            f" entries/s  reference x{reference_s / kernel_s:8.0f}",
            flush=True,
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

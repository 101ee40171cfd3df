"""What the in-memory analysis API costs beyond the one pass over the chunks it shares.

    python benchmarks/bench_analysis_api.py [--dir /tmp/ce_bench] [--repeat 3] [--smoke]

On one synthetic store (256 networks x 20 checkpoints x 20,000 train + 5,000 test examples, with
predictions and soft verdicts), in one process on the threads scheduler, best of ``--repeat``:

- ``counts_s``, the baseline: the store's lazy counts computed in one pass
  (:func:`engine.analysis.compute.compute_counts`), nothing else;
- ``analysis_s``: ``engine.analyze(store).compute()`` and every split's Datasets built (the
  counts, the measures, the Datasets of all networks and of each group);
- ``lazy_s``: ``engine.analyze(store).split(s).compute()`` for every split (Dask-backed
  Datasets computed by xarray, one pass per split);
- ``tables_s``: ``analysis.tables`` of a computed analysis (the three DataFrames);
- ``analyze_store_s``: ``engine.report.analyze_store`` without pairwise measures (every output
  file, figures and page included), for scale.

Each is also given over the baseline (``*_over_counts``). Checks that the lazy and the computed
Datasets are identical. ``--smoke`` runs it on a tiny store (tests/test_analysis_api.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xarray as xr  # noqa: E402

import engine  # noqa: E402
from engine.analysis.compute import compute_counts  # noqa: E402
from engine.report import analyze_store  # noqa: E402
from engine.testing import simulate_population  # noqa: E402

SIZES = {"networks": 256, "checkpoints": 20, "train": 20_000, "test": 5_000}
SMOKE_SIZES = {"networks": 8, "checkpoints": 3, "train": 60, "test": 30}


def best(function, repeat: int) -> float:
    """The shortest of ``repeat`` timed calls of ``function``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(path: Path, out: Path, repeat: int) -> dict:
    analysis = engine.analyze(path)

    def counts():
        fresh = engine.analyze(path)
        compute_counts([fresh.lazy_counts], None, False)

    def computed():
        fresh = engine.analyze(path).compute()
        fresh.datasets()

    def lazy():
        fresh = engine.analyze(path)
        for split in fresh.splits:
            fresh.split(split).compute()

    computed_analysis = analysis.compute()
    for split in analysis.splits:
        xr.testing.assert_identical(
            engine.analyze(path).split(split).compute(), computed_analysis.split(split)
        )
    row = {
        "counts_s": best(counts, repeat),
        "analysis_s": best(computed, repeat),
        "lazy_s": best(lazy, repeat),
        "tables_s": best(lambda: computed_analysis.tables, repeat),
        "analyze_store_s": best(
            lambda: analyze_store(path, out, pairwise_checkpoints="none", progress=False), repeat
        ),
    }
    for key in ("analysis_s", "lazy_s", "tables_s", "analyze_store_s"):
        row[key.removesuffix("_s") + "_over_counts"] = row[key] / row["counts_s"]
    return {k: round(v, 4) for k, v in row.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    sizes = SMOKE_SIZES if args.smoke else SIZES
    directory = args.dir or Path(tempfile.mkdtemp(prefix="ce_api_"))
    name = "smoke_api.zarr" if args.smoke else "api_{networks}x{checkpoints}.zarr".format(**sizes)
    path = directory / name
    if not path.exists():
        simulate_population(
            path,
            networks=sizes["networks"],
            checkpoints=sizes["checkpoints"],
            splits={"train": sizes["train"], "test": sizes["test"]},
            groups=2,
            predictions=True,
            soft=True,
        )
    # A warm-up on the same store: Numba's compiled kernels are loaded before any timing.
    engine.analyze(path).compute()
    out = directory / "api_out"
    row = measure(path, out, 1 if args.smoke else args.repeat)
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({"sizes": sizes, **row}))


if __name__ == "__main__":
    main()

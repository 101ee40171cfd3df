"""Time `engine analyze` on large synthetic stores, its peak memory, scaling and NumPy baseline.

    python benchmarks/bench_analyze.py [--dir /tmp/ce_bench] [--quick] [--smoke]

1. The target: a store of 2,000 networks x 50 checkpoints x 10,000 examples (1e9 verdicts,
   with training-subset membership) fully analysed by ``analyze_store`` (every measure at every
   checkpoint, the pairwise measures at the last, every output file) on the threads scheduler,
   in a fresh process after a warm-up on a small store (Numba's cache is then on disk); the
   process's peak resident memory is read from ``getrusage``.
2. Scaling of the measures alone (graph, compute, final algebra; no outputs, no pairwise) with
   networks (subsets of the big store), checkpoints and examples (stores of their own).
3. The same full analysis on a 2-worker local Dask cluster (start-up timed apart).
4. The most direct NumPy implementation of the same measures (whole bool array in memory) on a
   store that fits, against the engine's measures on that store, in the same process.

Stores are generated once into ``--dir`` (git-ignored /tmp) by engine.testing and reused.
``--smoke`` runs every step on tiny stores of their own (names starting ``smoke_``; 24 networks
x 6 checkpoints x 200 examples in place of the big one), for tests/test_benchmarks.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.testing import simulate_population  # noqa: E402

#: The stores, as (networks, checkpoints, examples), and the scaling points below the big store's
#: sizes; ``prefix`` starts the names of the stores and outputs in ``--dir``.
SIZES = {
    "prefix": "",
    "big": (2000, 50, 10000),
    "warm": (64, 5, 500),
    "networks": (500, 1000),
    "checkpoints": (12, 25),
    "examples": (2500, 5000),
    "numpy_networks": 256,
}
SMOKE_SIZES = {
    "prefix": "smoke_",
    "big": (24, 6, 200),
    "warm": (8, 3, 64),
    "networks": (6, 12),
    "checkpoints": (2, 3),
    "examples": (50, 100),
    "numpy_networks": 12,
}


def store(directory: Path, name: str, *, examples: int, **sizes):
    """A simulated store of ``examples`` training examples, generated once into ``directory``."""
    import engine

    path = directory / f"{name}.zarr"
    if not path.exists():
        started = time.perf_counter()
        simulate_population(path, splits={"train": examples}, **sizes)
        print(f"generated {path} in {time.perf_counter() - started:.0f} s", flush=True)
    return engine.open_population(path)


_CHILD = """
import json, resource, sys, time
from pathlib import Path
from engine.report import analyze_store
warm, path, out, workers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
analyze_store(warm, Path(out) / "warm", progress=False)
started = time.perf_counter()
analyze_store(path, Path(out) / "full", progress=False,
              workers=int(workers) if workers != "0" else None)
seconds = time.perf_counter() - started
summary = json.loads((Path(out) / "full" / "summary.json").read_text())
print(json.dumps({"seconds": seconds, "peak_rss_mib":
                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "execution": summary["execution"]}))
"""


def full_analysis(warm: str, path: str, out: Path, workers: int = 0) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, warm, path, str(out), str(workers)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if result.returncode:  # show why the child failed, not only that it did
        sys.stderr.write(result.stderr)
        result.check_returncode()
    return json.loads(result.stdout.strip().splitlines()[-1])


def engine_measures(population, networks=None) -> tuple[float, dict]:
    """Graph, compute and final algebra of every measure of every split (no outputs)."""
    import dask

    from engine import measures

    started = time.perf_counter()
    selection = measures.select_networks(population, networks=networks)
    graphs = {
        s: measures.verdict_statistics(population, s, selection)
        for s in population.splits
        if population.has_labels(s)
    }
    (computed,) = dask.compute(graphs, scheduler="threads")
    membership = population.attrs.get("membership_split")
    results = {
        s: measures.split_measures(
            c,
            selection,
            range(selection.num_groups),
            population.labels(s),
            membership=s == membership,
        )
        for s, c in computed.items()
    }
    return time.perf_counter() - started, results


def numpy_measures(population, split: str = "train") -> tuple[float, dict]:
    """The most direct NumPy version: load the whole bool array, then vectorised NumPy."""
    from scipy.stats import binom, spearmanr

    started = time.perf_counter()
    correct = population.correct(split).compute(scheduler="threads")  # (n, t, x) bool
    member = population.membership(split)
    member = member.compute() if member is not None else None
    size, total, examples = correct.shape
    accuracy = correct.mean(axis=2)
    counts = correct.sum(axis=0)  # (t, x)
    tpa = counts / size
    histogram = np.stack([np.bincount(c, minlength=size + 1) for c in counts])
    null = []
    for t in range(total):  # Poisson-binomial by repeated convolution
        law = np.ones(1)
        for p in accuracy[:, t]:
            law = np.convolve(law, [1 - p, p])
        null.append(law * examples)
    p = accuracy.mean(axis=0)
    binomial = np.stack([binom.pmf(np.arange(size + 1), size, q) * examples for q in p])
    excess = (tpa.var(axis=1) / (p * (1 - p)) - 1 / size) / (1 - 1 / size)
    accessibility = tpa.mean(axis=0)
    # First-learned checkpoint: the start of the final run of ones.
    suffix_all = np.flip(np.logical_and.accumulate(np.flip(correct, axis=1), axis=1), axis=1)
    first = np.where(suffix_all[:, -1], np.argmax(suffix_all, axis=1), total)
    forgetting = (correct[:, :-1] & ~correct[:, 1:]).sum(axis=1)
    learned = first < total
    with np.errstate(invalid="ignore", divide="ignore"):
        first_mean = np.where(learned, first, 0).sum(axis=0) / learned.sum(axis=0)
    with warnings.catch_warnings():  # examples no network learns have no median
        warnings.simplefilter("ignore", RuntimeWarning)
        first_median = np.nanmedian(np.where(learned, first, np.nan), axis=0)
    row = correct.sum(axis=1)
    rng = np.random.default_rng(0)
    reliabilities = []
    for _ in range(10):
        half = rng.permutation(size) < size // 2
        rho = spearmanr(row[half].mean(axis=0), row[~half].mean(axis=0)).statistic
        reliabilities.append(2 * rho / (1 + rho))
    holdout = None
    if member is not None:
        holdout = (correct & ~member[:, None, :]).sum(axis=0) / np.maximum((~member).sum(axis=0), 1)
    seconds = time.perf_counter() - started
    return seconds, {
        "accuracy_mean": p,
        "histogram": histogram,
        "null": np.asarray(null),
        "binomial": binomial,
        "excess": excess,
        "accessibility": accessibility,
        "first_mean": first_mean,
        "first_median": first_median,
        "forgetting": forgetting.mean(axis=0),
        "split_half": np.mean(reliabilities),
        "holdout": holdout,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/ce_bench"))
    parser.add_argument("--quick", action="store_true", help="Skip the scaling stores.")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny stores: a test that every step runs"
    )
    args = parser.parse_args()
    sizes = SMOKE_SIZES if args.smoke else SIZES
    prefix = sizes["prefix"]
    n, t, x = sizes["big"]
    args.dir.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    big = store(args.dir, f"{prefix}big", networks=n, checkpoints=t, examples=x, membership=True)
    wn, wt, wx = sizes["warm"]
    warm = store(
        args.dir, f"{prefix}warm", networks=wn, checkpoints=wt, examples=wx, membership=True
    )

    full = full_analysis(warm.path, big.path, args.dir / f"{prefix}out")
    results["full_threads"] = full
    print(
        f"full analysis, {n} x {t} x {x}, threads: {full['seconds']:.2f} s, "
        f"peak RSS {full['peak_rss_mib']:.0f} MiB ({full['execution']})",
        flush=True,
    )

    engine_measures(warm)  # warm-up in this process
    scaling = {"networks": {}, "checkpoints": {}, "examples": {}}
    for networks in (*sizes["networks"], n):
        seconds, _ = engine_measures(big, networks=np.arange(networks))
        scaling["networks"][networks] = seconds
    if not args.quick:
        for checkpoints in sizes["checkpoints"]:
            population = store(
                args.dir,
                f"{prefix}t{checkpoints}",
                networks=n,
                checkpoints=checkpoints,
                examples=x,
                membership=True,
            )
            scaling["checkpoints"][checkpoints] = engine_measures(population)[0]
        for examples in sizes["examples"]:
            population = store(
                args.dir,
                f"{prefix}x{examples}",
                networks=n,
                checkpoints=t,
                examples=examples,
                membership=True,
            )
            scaling["examples"][examples] = engine_measures(population)[0]
    scaling["checkpoints"][t] = scaling["examples"][x] = scaling["networks"][n]
    results["scaling_measures_seconds"] = scaling
    print("scaling of the measures (s):", json.dumps(scaling), flush=True)

    started = time.perf_counter()
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        startup = time.perf_counter() - started
    cluster_run = full_analysis(warm.path, big.path, args.dir / f"{prefix}out_cluster", workers=2)
    results["full_local_cluster_2_workers"] = dict(cluster_run, cluster_startup_s=startup)
    print(
        f"full analysis on a 2-worker local cluster: {cluster_run['seconds']:.2f} s "
        f"(of which about {startup:.1f} s starting the cluster), "
        f"measures {cluster_run['execution']['measures_seconds']:.2f} s",
        flush=True,
    )

    sn = sizes["numpy_networks"]
    small = store(
        args.dir, f"{prefix}numpy", networks=sn, checkpoints=t, examples=x, membership=True
    )
    numpy_measures(small)  # warm the page cache and imports alike
    numpy_seconds, direct = numpy_measures(small)
    engine_seconds, ours = engine_measures(small)
    summary = ours["train"]["summary"]
    assert np.allclose(summary["accuracy_mean"], direct["accuracy_mean"])
    assert np.array_equal(summary["tpa_histogram"], direct["histogram"])
    assert np.allclose(
        ours["train"]["examples"]["first_learned_mean"], direct["first_mean"], equal_nan=True
    )
    results[f"numpy_baseline_{sn}x{t}x{x}"] = {
        "numpy_s": numpy_seconds,
        "engine_s": engine_seconds,
        "ratio": numpy_seconds / engine_seconds,
    }
    print(
        f"{sn} x {t} x {x}: direct NumPy {numpy_seconds:.2f} s, engine {engine_seconds:.2f} s,"
        f" ratio {numpy_seconds / engine_seconds:.1f}x",
        flush=True,
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()

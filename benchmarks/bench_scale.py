"""Outputs and costs at 10^4-10^5 networks (issue 12): time, peak memory and output sizes.

    python benchmarks/bench_scale.py [--dir /tmp/ce_scale] [--steps cifar,wide,matrices,...]
                                     [--cifar-networks 61565] [--smoke]

Steps (``--steps``, comma separated; default every one):

- ``cifar``: a store shaped like the largest public population, 61,565 networks x 10,000
  examples x 1 checkpoint with predictions (10 classes), fully analysed by ``analyze_store``
  with the pairwise summaries (the default, streamed: no matrices at this size), every output;
  wall time and the child process's peak RSS, and the size of every output file.
- ``wide``: 20,000 networks x 50 checkpoints x 10,000 examples (1e10 verdicts, no predictions):
  ``analyze_store`` without pairwise measures and with them (last checkpoint).
- ``graph``: the Dask graph of the measures of the ``wide`` store (its tasks, and the seconds
  to build it).
- ``matrices``: the full matrices (``--matrices``) from store to zarr at N = 2,000 x X = 10,000
  against the NumPy float32 GEMM formulation (C @ C.T, agreement and kappa) in the same run.
- ``growth``: the cost of ``analyze_store`` (pairwise summaries included) as N, T and X double
  from a base store.
- ``growth_cluster``: the same growth on a 2-worker local Dask cluster.
- ``cluster``: the ``cifar`` and ``wide`` analyses again on a 2-worker local Dask cluster.

Stores are written once into ``--dir`` by :func:`fast_store` (the public writer, a block of
networks at a time, verdicts drawn from a planted difficulty x skill model) and reused. Every
analysis runs in a fresh child process after a warm-up on a small store (Numba's cache is then
on disk); peak memory is the child's ``ru_maxrss``. ``--smoke`` runs every step on tiny stores
of their own, for tests/test_benchmarks.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: (networks, checkpoints, examples, predictions) of each store, and the growth base.
SIZES = {
    "prefix": "",
    "cifar": (61565, 1, 10000, True),
    "wide": (20000, 50, 10000, False),
    "warm": (64, 3, 500, True),
    "matrices": (2000, 1, 10000, False),
    "growth": (5000, 8, 4000, True),
}
SMOKE_SIZES = {
    "prefix": "smoke_",
    "cifar": (300, 1, 400, True),
    "wide": (120, 6, 300, False),
    "warm": (16, 2, 64, True),
    "matrices": (100, 1, 300, False),
    "growth": (40, 2, 100, True),
}
STEPS = ("cifar", "wide", "graph", "matrices", "growth", "growth_cluster", "cluster")
CLASSES = 10


def fast_store(
    path: Path,
    networks: int,
    checkpoints: int,
    examples: int,
    predictions: bool,
    checkpoint_block: int = 1,
):
    """A store of one labelled ``test`` split, written once through the public writer (chunks of
    128 networks, ``checkpoint_block`` checkpoints and every example: one checkpoint a chunk by
    default, as the writer records one checkpoint at a time; 16 made writing 20,000 x 50 x
    10,000 take over 15 minutes instead of 75 s).

    Verdicts follow a planted model: example x has difficulty d_x, network n skill s_n, and it
    is right at checkpoint t where logit(u_nx) + d_x - s_n < c_t (u uniform, c_t rising), so an
    example once learned stays learned. Wrong predictions go to the example's confusing class
    with probability 0.6, else to another wrong class. Two groups of networks, a little apart in
    skill.
    """
    import engine

    if path.exists():
        return engine.open_population(path)
    started = time.perf_counter()
    rng = np.random.default_rng(12)
    labels = rng.integers(0, CLASSES, examples).astype(np.int32)
    confusing = ((labels + 1 + rng.integers(0, CLASSES - 1, examples)) % CLASSES).astype(np.int16)
    difficulty = rng.normal(0, 1.6, examples).astype(np.float32)
    half = networks // 2
    skill = rng.normal(0, 0.35, networks).astype(np.float32)
    skill[half:] -= 0.3
    thresholds = np.linspace(-1.0, 2.6, checkpoints, dtype=np.float32)
    if checkpoints == 1:
        thresholds[:] = 2.6
    writer = engine.create_population(
        path,
        dataset_name="scale",
        splits={
            "test": engine.SplitSpec(
                labels=labels, predictions=predictions, fingerprint=f"scale-{examples}"
            )
        },
        groups=[
            engine.GroupSpec("strong", "synthetic", half, {}),
            engine.GroupSpec("weak", "synthetic", networks - half, {}),
        ],
        checkpoint_epochs=np.arange(1, checkpoints + 1, dtype=float),
        class_names=[str(c) for c in range(CLASSES)],
        network_block=128,
        checkpoint_block=checkpoint_block,
        command="benchmarks/bench_scale.py",
    )
    block = 2048
    for start in range(0, networks, block):
        stop = min(start + block, networks)
        u = rng.random((stop - start, examples), dtype=np.float32)
        u = np.maximum(u, np.float32(1e-7))  # a draw of exactly 0 has no logit
        z = np.log(u) - np.log1p(-u) + difficulty - skill[start:stop, None]
        if predictions:
            other = (labels + 1 + (u * 1e4).astype(np.int32) % (CLASSES - 1)) % CLASSES
            wrong = np.where((u * 1e3) % 1 < 0.6, confusing, other).astype(np.int16)
        for t in range(checkpoints):
            right = z < thresholds[t]
            if predictions:
                writer.record("test", t, (start, stop), predictions=np.where(right, labels, wrong))
            else:
                writer.record("test", t, (start, stop), correct=right)
            writer.mark_checkpoint(t, (start, stop))
    print(
        f"wrote {path} ({networks} x {checkpoints} x {examples}) in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return engine.open_population(path)


_CHILD = """
import json, resource, sys, time
from pathlib import Path
from engine.report import analyze_store
warm, path, out, workers, pairwise = sys.argv[1:6]
analyze_store(warm, Path(out) / "warm", progress=False)
started = time.perf_counter()
analyze_store(path, Path(out) / "full", progress=False, pairwise_checkpoints=pairwise,
              workers=int(workers) if workers != "0" else None)
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
full = Path(out) / "full"
summary = json.loads((full / "summary.json").read_text())
sizes = {}
for f in sorted(full.rglob("*")):
    if f.is_file() and "pairwise.zarr" not in f.parts:
        sizes[str(f.relative_to(full))] = f.stat().st_size
matrices = sum(f.stat().st_size for f in (full / "pairwise.zarr").rglob("*") if f.is_file()) \\
    if (full / "pairwise.zarr").exists() else 0
print(json.dumps({"seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024,
                  "cpu_seconds_with_warmup": usage.ru_utime + usage.ru_stime,
                  "execution": summary["execution"], "bytes": sizes,
                  "matrices_bytes": matrices}))
"""


def analysis(warm: str, path: str, out: Path, workers: int = 0, pairwise: str = "last") -> dict:
    """``analyze_store`` in a fresh child process: seconds, peak RSS, output sizes."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, warm, path, str(out), str(workers), pairwise],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if result.returncode:
        sys.stderr.write(result.stderr[-6000:])
        result.check_returncode()
    return json.loads(result.stdout.strip().splitlines()[-1])


def graph_size(population) -> dict:
    """Tasks in the Dask graph of the measures of every split, and the seconds to build it."""
    from engine import measures

    started = time.perf_counter()
    selection = measures.select_networks(population)
    graphs = []
    for split in population.splits:
        graphs += list(measures.verdict_statistics(population, split, selection).values())
    built = time.perf_counter() - started
    tasks = {}
    for array in graphs:
        tasks.update(dict(array.__dask_graph__()))
    return {"tasks": len(tasks), "build_seconds": built}


def _numpy_kappa(correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The NumPy float32 GEMM formulation: co-correct counts C @ C.T, then agreement and kappa."""
    c = correct.astype(np.float32)
    both = c @ c.T
    counts = c.sum(axis=1)
    x = c.shape[1]
    agree = x - counts[:, None] - counts[None, :] + 2 * both
    expected = (np.outer(counts, counts) + np.outer(x - counts, x - counts)) / x**2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (agree / x - expected) / (1 - expected)
    return both, kappa


def _numpy_to_zarr(population, path: Path) -> None:
    """What a user would write without the engine, store to zarr on disk: read the correctness
    through the public API, the GEMM formulation, and both matrices written with the engine's
    codec and shards (one band of 512 rows at a time)."""
    import zarr
    from zarr.codecs import BloscCodec

    correct = population.correct("test")[:, -1].compute()
    both, kappa = _numpy_kappa(correct)
    n = both.shape[0]
    group = zarr.open_group(str(path), mode="w")
    options = {
        "chunks": (min(512, n), min(512, n)),
        "shards": (min(512, n), min(512, n) * -(-n // min(512, n))),
        "compressors": [BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")],
    }
    arrays = {"both_correct": both.astype(np.uint16), "kappa": kappa.astype(np.float32)}
    for name, values in arrays.items():
        array = group.create_array(name, shape=values.shape, dtype=values.dtype, **options)
        for start in range(0, n, 512):
            array[start : start + 512] = values[start : start + 512]


def matrices_against_numpy(population, out: Path, repeat: int) -> dict:
    """``pairwise_report(matrices=True)`` store to zarr against NumPy float32 GEMM, best of
    ``repeat`` (interleaved); checks the stored kappa against NumPy's.

    Three baselines: the GEMM formulation in memory (correctness already read), the same from
    the store to zarr on disk (:func:`_numpy_to_zarr`), and the bare writing of the two
    matrices' bytes with ``ndarray.tofile`` (the floor that any store-to-disk path pays here).
    """
    import shutil

    from engine.pairwise import open_pairwise, pairwise_report

    correct = population.correct("test").compute()[:, -1]
    times: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}

    def timed(name: str, run) -> None:
        started, cpu = time.perf_counter(), time.process_time()
        run()
        times.setdefault(name, []).append(time.perf_counter() - started)
        cpus.setdefault(name, []).append(time.process_time() - cpu)

    numpy_out = out.with_name(out.name + "_numpy.zarr")
    raw = out.with_name(out.name + "_raw")
    for _ in range(repeat):
        # Fresh folders each time: the timing is of writing, not of removing the last run's
        # output (pairwise_report replaces one it finds, ~0.15 s at N = 2,000).
        for folder in (out, numpy_out, raw):
            shutil.rmtree(folder, ignore_errors=True)
        raw.mkdir(parents=True)
        timed("numpy", lambda: _numpy_kappa(correct))
        timed("numpy_to_zarr", lambda: _numpy_to_zarr(population, numpy_out))
        both, kappa = _numpy_kappa(correct)
        matrices = {"both": both.astype(np.uint16), "kappa": kappa.astype(np.float32)}
        timed("tofile", lambda m=matrices: [a.tofile(raw / name) for name, a in m.items()])
        timed(
            "engine",
            lambda: pairwise_report(population, out, bootstrap=0, figures=False, matrices=True),
        )
    both, kappa = _numpy_kappa(correct)
    stored = open_pairwise(out, lazy=False).isel(checkpoints=-1)
    assert np.allclose(stored["kappa"], kappa, rtol=1e-4, atol=1e-5, equal_nan=True)
    assert np.array_equal(stored["both_correct"], both.astype(np.int64))
    best = {name: min(values) for name, values in times.items()}
    best_cpu = {name: min(values) for name, values in cpus.items()}
    return {
        "numpy_s": best["numpy"],
        "numpy_to_zarr_s": best["numpy_to_zarr"],
        "tofile_s": best["tofile"],
        "engine_s": best["engine"],
        "engine_over_numpy": best["numpy"] / best["engine"],
        "engine_over_numpy_to_zarr": best["numpy_to_zarr"] / best["engine"],
        # CPU seconds of every thread: the fairer ratio where other jobs share the cores.
        "numpy_cpu_s": best_cpu["numpy"],
        "numpy_to_zarr_cpu_s": best_cpu["numpy_to_zarr"],
        "engine_cpu_s": best_cpu["engine"],
        "engine_over_numpy_cpu": best_cpu["numpy"] / best_cpu["engine"],
        "engine_over_numpy_to_zarr_cpu": best_cpu["numpy_to_zarr"] / best_cpu["engine"],
        "matrices_bytes": sum(f.stat().st_size for f in out.rglob("*") if f.is_file()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/ce_scale"))
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--cifar-networks", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny stores: every step runs")
    args = parser.parse_args()
    sizes = dict(SMOKE_SIZES if args.smoke else SIZES)
    if args.cifar_networks:
        sizes["cifar"] = (args.cifar_networks, *sizes["cifar"][1:])
    steps = [s for s in args.steps.split(",") if s]
    prefix = sizes["prefix"]
    args.dir.mkdir(parents=True, exist_ok=True)

    def make(name: str, shape: tuple) -> object:
        n, t, x, predictions = shape
        return fast_store(args.dir / f"{prefix}{name}_{n}x{t}x{x}.zarr", n, t, x, predictions)

    warm = make("warm", sizes["warm"]).path  # type: ignore[attr-defined]
    results: dict = {}
    if "cifar" in steps:
        cifar = make("cifar", sizes["cifar"])
        results["cifar"] = analysis(warm, cifar.path, args.dir / f"{prefix}out_cifar")  # type: ignore[attr-defined]
        print("cifar:", json.dumps(results["cifar"]), flush=True)
    if "graph" in steps:
        results["wide_graph"] = graph_size(make("wide", sizes["wide"]))
        print("graph of the wide store's measures:", json.dumps(results["wide_graph"]))
    if "wide" in steps:
        wide = make("wide", sizes["wide"])
        for pairwise in ("none", "last"):
            results[f"wide_pairwise_{pairwise}"] = analysis(
                warm,
                wide.path,
                args.dir / f"{prefix}out_wide_{pairwise}",
                pairwise=pairwise,  # type: ignore[attr-defined]
            )
            print(f"wide, pairwise {pairwise}:", json.dumps(results[f"wide_pairwise_{pairwise}"]))
    if "matrices" in steps:
        small = make("matrices", sizes["matrices"])
        results["matrices"] = matrices_against_numpy(
            small, args.dir / f"{prefix}out_matrices", args.repeat
        )
        print("matrices:", json.dumps(results["matrices"]), flush=True)
    for step, workers in (("growth", 0), ("growth_cluster", 2)):
        if step not in steps:
            continue
        n, t, x, predictions = sizes["growth"]
        growth = {}
        for name, shape in (
            ("base", (n, t, x, predictions)),
            ("2N", (2 * n, t, x, predictions)),
            ("2T", (n, 2 * t, x, predictions)),
            ("2X", (n, t, 2 * x, predictions)),
        ):
            population = make("growth", shape)
            out = args.dir / f"{prefix}out_{step}_{name}"
            run = analysis(warm, population.path, out, workers=workers)  # type: ignore[attr-defined]
            growth[name] = {"shape": shape[:3], **run}
            print(f"{step} {name} {shape[:3]}: {run['seconds']:.1f} s", flush=True)
        results[step] = growth
    if "cluster" in steps:
        for name in ("cifar", "wide"):
            population = make(name, sizes[name])
            run = analysis(
                warm,
                population.path,  # type: ignore[attr-defined]
                args.dir / f"{prefix}out_{name}_cluster",
                workers=2,
            )
            results[f"{name}_cluster"] = run
            print(f"{name} on 2 workers:", json.dumps(run), flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()

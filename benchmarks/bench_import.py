"""Time `engine import` of a large dense logits file and of a folder of runs, with peak memory.

    python benchmarks/bench_import.py [--dir /tmp/ce_bench_import] [--networks 61565]
        [--examples 10000] [--classes 10] [--runs 1000] [--blocks 32,64,128,256] [--block N]
        [--subset 8192] [--smoke]

1. The target: a generated (networks, examples, classes) float16 logits ``.npy`` (61,565 x
   10,000 x 10 by default, 12.3 GB: the shape of the CIFAR-10 test-set logits of 61,565 ResNets),
   written in chunks into ``--dir`` and reused, imported whole into a new store by one process
   (``import_population``, its default block: 128 networks here), in a fresh child process
   whose peak resident memory is its ``VmHWM`` (``getrusage`` where there is no /proc: that
   also counts the parent's memory at the fork, an upper bound). It reports the wall time, MB of
   logits per second of wall time and per CPU-second (user + system of every thread: "per
   core"), and peak RSS.
2. Baseline, in the same child before the import: reading the first ``--subset`` networks a
   block at a time and nothing else (what the file system gives), so the ratio says what the
   conversion and the store cost.
3. Block sizes: the first ``--subset`` networks imported with each of ``--blocks`` networks per
   block, each in a child of its own.
4. Two importers at once on disjoint halves of the networks (``--networks START:STOP``), into
   one new store: the wall time of both, and the aggregate rate.
5. A folder of ``--runs`` files of one network each (``.npy``, examples x classes float16),
   imported in natural order.

Every import is checked before its figures are printed: the predictions, correctness and soft
verdicts of three blocks (first, middle, last) against a float64 NumPy computation from the file.
``--smoke`` runs every step at a tiny size in a temporary folder, for tests/test_benchmarks.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Rows of the logits file generated at a time.
GENERATE_ROWS = 512

_CHILD = """
import json, resource, sys, time
import numpy as np
from engine.importers import import_population, load_examples, open_source
source_path, labels_path, out, block, start, stop, baseline = sys.argv[1:8]
baseline = int(baseline)
labels = np.load(labels_path)
networks = None if start == "-" else (int(start), int(stop))
result = {}


def peak_rss_mib():
    # VmHWM is this process's own peak: ru_maxrss also counts the parent's resident memory at
    # the fork, which Linux carries over the exec.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


with open_source(source_path, order="natural") as source:
    if baseline:
        # Read the first networks a block at a time and nothing else (the file system's rate).
        first, last = 0, min(baseline, source.shape.networks)
        began, cpu = time.perf_counter(), time.process_time()
        read = 0
        for begin in range(first, last, int(block)):
            read += source.read(begin, min(begin + int(block), last), 0).nbytes
        result["read_only_seconds"] = time.perf_counter() - began
        result["read_only_cpu_seconds"] = time.process_time() - cpu
        result["read_only_mb_per_s"] = read / 1e6 / result["read_only_seconds"]
    report = import_population(
        source, out, examples=load_examples(labels=labels), networks=networks,
        network_block=int(block),
    )
result.update(
    seconds=report.seconds,
    cpu_seconds=report.cpu_seconds,
    megabytes=report.bytes_read / 1e6,
    mb_per_s=report.megabytes_per_second,
    mb_per_cpu_s=report.bytes_read / 1e6 / max(report.cpu_seconds, 1e-9),
    imported_networks=report.imported_networks,
    peak_rss_mib=peak_rss_mib(),
)
print(json.dumps(result))
"""


def child_import(
    source: Path, labels: Path, out: Path, block: int, networks=None, baseline: int = 0
) -> subprocess.Popen:
    """An import in a process of its own (its peak memory is its own); ``baseline`` networks
    are first read without converting them."""
    start, stop = networks if networks is not None else ("-", "-")
    arguments = [str(source), str(labels), str(out), str(block), str(start), str(stop)]
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, *arguments, str(baseline)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(child: subprocess.Popen) -> dict:
    stdout, stderr = child.communicate()
    if child.returncode:  # show why the child failed, not only that it did
        sys.stderr.write(stderr)
        raise SystemExit(f"import child exited {child.returncode}")
    return json.loads(stdout.strip().splitlines()[-1])


def generate_logits(path: Path, networks: int, examples: int, classes: int, seed: int = 0):
    """A float16 logits file written ``GENERATE_ROWS`` networks at a time, and its labels: each
    network is right on an example with a probability that depends on the example."""
    labels_path = path.with_name(path.stem + "_labels.npy")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, examples)
    difficulty = rng.random(examples)
    shape = (networks, examples, classes)
    if path.exists() and labels_path.exists():
        existing = np.load(path, mmap_mode="r")
        if existing.shape == shape and existing.dtype == np.float16:
            return labels_path
    started = time.perf_counter()
    header = {"descr": "<f2", "fortran_order": False, "shape": shape}
    with open(path, "wb") as file:
        np.lib.format.write_array_header_2_0(file, header)
        for first in range(0, networks, GENERATE_ROWS):
            rows = min(GENERATE_ROWS, networks - first)
            block = rng.standard_normal((rows, examples, classes), np.float32)
            skill = rng.random((rows, 1))
            right = rng.random((rows, examples)) < np.clip(1.2 - difficulty + skill / 2, 0, 1)
            block[:, np.arange(examples), labels] += np.where(right, 3.0, -1.0)
            file.write(block.astype(np.float16).tobytes())
    np.save(labels_path, labels)
    size = path.stat().st_size / 1e9
    print(f"generated {path} ({size:.1f} GB) in {time.perf_counter() - started:.0f} s", flush=True)
    return labels_path


def generate_runs(folder: Path, runs: int, examples: int, classes: int, seed: int = 1) -> Path:
    labels_path = folder.with_name(folder.name + "_labels.npy")
    if folder.is_dir() and len(list(folder.glob("*.npy"))) == runs and labels_path.exists():
        return labels_path
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, examples)
    for run in range(runs):
        logits = rng.standard_normal((examples, classes), np.float32)
        logits[np.arange(examples), labels] += 2.0
        np.save(folder / f"run_{run}.npy", logits.astype(np.float16))
    np.save(labels_path, labels)
    return labels_path


def check_store(store: Path, logits_of, labels: np.ndarray, networks: list[int]) -> None:
    """The stored verdicts of some networks against float64 NumPy from the source."""
    import engine
    from engine.store.format import PROBABILITY_SCALE

    population = engine.open_population(store)
    for network in networks:
        values = np.asarray(logits_of(network), np.float64)  # (examples, classes)
        predictions = values.astype(np.float16).astype(np.float32).argmax(axis=1)
        stored = population.predictions("test")[network, 0].compute()
        assert np.array_equal(stored, predictions), network
        correct = population.correct("test")[network, 0].compute()
        assert np.array_equal(correct, predictions == labels), network
        shifted = np.exp(values - values.max(axis=1, keepdims=True))
        probability = shifted[np.arange(labels.size), labels] / shifted.sum(axis=1)
        got = population.probability("test")[network, 0].compute()
        assert np.abs(got - probability).max() <= 1 / (2 * PROBABILITY_SCALE) + 1e-6, network
    assert (population.checkpoints_completed()[networks] == 1).all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--networks", type=int, default=61565)
    parser.add_argument("--examples", type=int, default=10000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument(
        "--block", type=int, default=0, help="block of the main import (0: the default's)"
    )
    parser.add_argument("--blocks", default="32,64,128,256", help="block sizes to compare")
    parser.add_argument("--subset", type=int, default=8192, help="networks of the block runs")
    parser.add_argument("--no-parallel", action="store_true", help="skip the two importers")
    parser.add_argument("--keep", action="store_true", help="keep the stores written")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: every step runs")
    args = parser.parse_args()
    if args.smoke:
        args.networks, args.examples, args.runs, args.subset = 200, 300, 20, 64
        args.blocks = "8,16"
        args.block = args.block or 32  # several blocks, so that two importers can split them
    if args.smoke:  # a folder of its own, removed at the end (inside --dir where given)
        if args.dir is not None:
            args.dir.mkdir(parents=True, exist_ok=True)
        directory = Path(tempfile.mkdtemp(prefix="smoke_import_", dir=args.dir))
    else:
        directory = args.dir or Path(tempfile.gettempdir()) / "ce_bench_import"
        directory.mkdir(parents=True, exist_ok=True)
    logits_path = directory / f"logits_{args.networks}x{args.examples}x{args.classes}.npy"
    labels_path = generate_logits(logits_path, args.networks, args.examples, args.classes)
    labels = np.load(labels_path)
    logits = np.load(logits_path, mmap_mode="r")
    if not args.block:
        from engine.importers import default_block, open_source

        with open_source(logits_path) as source:
            args.block = default_block(source)
    sample = sorted({0, args.networks // 2, args.networks - 1})
    result: dict = {
        "benchmark": "import",
        "shape": [args.networks, args.examples, args.classes],
        "file_gb": round(logits_path.stat().st_size / 1e9, 3),
        "cpus": os.cpu_count(),
        "load_before": round(os.getloadavg()[0], 2),
    }

    # 1-2. The whole file, one process, after the read-only baseline.
    store = directory / "dense.zarr"
    shutil.rmtree(store, ignore_errors=True)
    baseline = min(args.subset, args.networks)
    dense = finish(child_import(logits_path, labels_path, store, args.block, baseline=baseline))
    dense["read_only_networks"] = baseline
    check_store(store, lambda n: logits[n], labels, sample)
    dense["block"] = args.block
    dense["store_gb"] = round(_size(store) / 1e9, 3)
    result["dense"] = dense
    print("dense:", json.dumps(dense), flush=True)
    if not args.keep:
        shutil.rmtree(store)

    # 3. Block sizes, on the first --subset networks.
    blocks = {}
    subset = min(args.subset, args.networks)
    for block in (int(b) for b in args.blocks.split(",")):
        out = directory / f"block{block}.zarr"
        shutil.rmtree(out, ignore_errors=True)
        stop = subset - subset % block or min(block, args.networks)
        blocks[block] = finish(child_import(logits_path, labels_path, out, block, (0, stop)))
        check_store(out, lambda n: logits[n], labels, [0, stop - 1])
        shutil.rmtree(out)
    result["blocks"] = blocks
    print("blocks:", json.dumps(blocks), flush=True)

    # 4. Two importers at once on disjoint halves.
    if not args.no_parallel:
        out = directory / "two.zarr"
        shutil.rmtree(out, ignore_errors=True)
        half = (args.networks // 2) // args.block * args.block
        started = time.perf_counter()
        children = [
            child_import(logits_path, labels_path, out, args.block, networks)
            for networks in ((0, half), (half, args.networks))
        ]
        parts = [finish(child) for child in children]
        seconds = time.perf_counter() - started
        check_store(out, lambda n: logits[n], labels, sample)
        megabytes = sum(part["megabytes"] for part in parts)
        # Each child times its import alone; the slower one is the pair's time (the two start
        # within the interpreter's start-up of each other, counted in seconds_with_startup).
        slowest = max(part["seconds"] for part in parts)
        result["two_importers"] = {
            "seconds": slowest,
            "seconds_with_startup": seconds,
            "mb_per_s": megabytes / slowest,
            "peak_rss_mib": max(part["peak_rss_mib"] for part in parts),
            "parts": parts,
        }
        print("two importers:", json.dumps(result["two_importers"]), flush=True)
        shutil.rmtree(out)

    # 5. A folder of runs.
    runs = directory / f"runs_{args.runs}x{args.examples}x{args.classes}"
    runs_labels = generate_runs(runs, args.runs, args.examples, args.classes)
    out = directory / "runs.zarr"
    shutil.rmtree(out, ignore_errors=True)
    folder = finish(child_import(runs, runs_labels, out, args.block))
    check_store(
        out, lambda n: np.load(runs / f"run_{n}.npy"), np.load(runs_labels), [0, args.runs - 1]
    )
    import engine

    names = engine.open_population(out).attrs["extra"]["network_names"]
    assert names[:3] == ["run_0.npy", "run_1.npy", "run_2.npy"]  # natural order
    result["runs"] = {"runs": args.runs, **folder}
    print("runs:", json.dumps(result["runs"]), flush=True)
    shutil.rmtree(out)
    result["load_after"] = round(os.getloadavg()[0], 2)
    if args.smoke:
        shutil.rmtree(directory)
    print(json.dumps(result))


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


if __name__ == "__main__":
    main()

"""What a store filled by many independent runs costs: one network per stored object against
blocks of 32, and against the same store compacted.

    python benchmarks/bench_runs.py [--networks 512] [--checkpoints 11] [--split test]
        [--run-checkpoint-blocks 16,4] [--repeat 3] [--dir DIR] [--smoke]

The verdicts are real: the correctness of the MNIST-1D populations in ../shared/data (4 x 32
networks, 30 checkpoints; 2,400 test or 9,600 train examples), tiled by whole populations to
``--networks`` (a block of 32 never holds the same network twice) and ``--checkpoints`` taken
evenly from the 30. The store keeps predictions too; they are made up from the correctness (the
label where correct, else a wrong class that depends on the example and on the network's
population), so their bits are indicative only. ``--smoke`` uses a small simulated tensor instead.

Each layout's store is written the way it would be filled:

- ``block``: network_block 32, checkpoint_block 16, by one recorder per block of 32 networks
  (a trainer of 32 networks per process);
- ``runs cb=K``: network_block 1 (what ``open_recorder`` creates), checkpoint_block K, by one
  recorder per network (one run of a job array each; here one after the other in this process,
  so the time is the recording alone, without starting a process);
- ``compacted``: the first run layout rewritten by ``compact_population`` into blocks of 32.

Then, for each: bits per stored entry on disk of ``correct_packed`` and ``predictions``, files in
the store (all, and chunk files), the write time (per run and per network-checkpoint), and the
best of ``--repeat`` runs of ``engine.report.run.analyze_store`` with the same options
(``pairwise_checkpoints="last"``, threads), with ratios against the block layout measured in the
same run. Every store is checked to hold the same verdicts before its figures are printed. Prints
a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "mnist1d-populations.npz"
if not SHARED.exists():  # a worktree beside /work/main
    SHARED = Path("/work/shared/data/mnist1d-populations.npz")

CLASSES = 10
POPULATIONS = ("mlp0", "mlp1", "cnn0", "cnn1")


def real_correct(split: str, networks: int, checkpoints: int) -> np.ndarray:
    """Real correctness, bool, dims (networks, checkpoints, examples)."""
    data = np.load(SHARED)
    tensors = []
    for name in POPULATIONS:
        packed = data[f"{name}_{split}_packed"]
        count = int(data[f"{name}_{split}_examples"])
        tensors.append(np.unpackbits(packed, axis=2, count=count, bitorder="little").view(bool))
    population = np.concatenate(tensors)  # (128, 30, examples)
    times = np.linspace(0, population.shape[1] - 1, checkpoints).round().astype(int)
    tiles = -(-networks // population.shape[0])
    return np.ascontiguousarray(np.tile(population, (tiles, 1, 1))[:networks][:, times])


def simulated_correct(networks: int, checkpoints: int, examples: int) -> np.ndarray:
    """A small tensor with structure (easy examples learned first, networks of varied skill)."""
    rng = np.random.default_rng(0)
    difficulty = rng.uniform(0, 1, examples)
    skill = rng.uniform(0.2, 0.8, networks)
    progress = np.linspace(0, 1, checkpoints)
    p = 1 / (
        1 + np.exp(8 * (difficulty[None, None] - skill[:, None, None] * progress[None, :, None]))
    )
    return rng.uniform(size=p.shape) < p


def predictions_from(correct: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Predicted classes, int16, dims (networks, checkpoints, examples): the label where correct,
    else a wrong class of the example and the network's population."""
    networks, _, examples = correct.shape
    population = (np.arange(networks) // 32) % len(POPULATIONS)
    shift = 1 + (np.arange(examples)[None, :] * 7 + population[:, None]) % (CLASSES - 1)
    wrong = (labels[None, :] + shift) % CLASSES  # (networks, examples)
    return np.where(correct, labels[None, None, :], wrong[:, None, :]).astype(np.int16)


def layout_for(labels: np.ndarray, networks: int, checkpoints: int, nb: int, cb: int):
    from engine.record import StoreLayout

    return StoreLayout(
        labels={"test": labels},
        num_networks=networks,
        checkpoints=checkpoints,
        num_classes=CLASSES,
        dataset="mnist1d-tiled",
        network_block=nb,
        checkpoint_block=cb,
    )


def write_store(path: Path, predictions: np.ndarray, labels: np.ndarray, nb: int, cb: int) -> float:
    """Fill a store with one recorder per ``nb`` networks; return the seconds it took."""
    from engine.record import open_recorder

    networks, checkpoints, _ = predictions.shape
    layout = layout_for(labels, networks, checkpoints, nb, cb)
    began = time.perf_counter()
    for start in range(0, networks, nb):
        stop = min(start + nb, networks)
        with open_recorder(path, (start, stop), layout=layout) as recorder:
            for checkpoint in range(checkpoints):
                recorder.record(test=predictions[start:stop, checkpoint])
    return time.perf_counter() - began


def check_store(path: Path, predictions: np.ndarray, correct: np.ndarray) -> None:
    import engine

    population = engine.open_population(path)
    assert population.complete_networks().size == predictions.shape[0]
    assert np.array_equal(population.predictions("test").compute(), predictions)
    assert np.array_equal(population.correct("test").compute(), correct)


def files(path: Path) -> tuple[int, int]:
    """Files in the store, and those that are chunks (not ``zarr.json``)."""
    every = [p for p in path.rglob("*") if p.is_file()]
    return len(every), sum(p.name != "zarr.json" for p in every)


def bits_per_entry(path: Path, entries: int) -> dict[str, float]:
    import engine

    population = engine.open_population(path)
    return {
        name: round(8 * population.stored_bytes(f"splits/test/{name}") / entries, 4)
        for name in ("correct_packed", "predictions")
    }


def analyze_once(path: Path, out: Path) -> tuple[float, list]:
    """Seconds of one ``analyze`` of the store, and the mean accuracy it found per checkpoint."""
    from engine.report.run import analyze_store

    began = time.perf_counter()
    analyze_store(str(path), out, pairwise_checkpoints="last", progress=False)
    seconds = time.perf_counter() - began
    summary = json.loads((out / "summary.json").read_text())
    shutil.rmtree(out)
    return seconds, summary["splits"]["test"]["accuracy_mean"]


def write_layouts(args: argparse.Namespace, work: Path, predictions, labels) -> list[dict]:
    """Every layout's store written (and the first run layout compacted), with its timing."""
    from engine.store import compact_population

    layouts = [("block", 32, 16)] + [(f"runs cb={cb}", 1, cb) for cb in args.run_checkpoint_blocks]
    rows = []
    for name, nb, cb in layouts:
        path = work / f"{name.replace(' ', '_').replace('=', '')}.zarr"
        seconds = write_store(path, predictions, labels, nb, cb)
        rows.append(
            {
                "layout": name,
                "path": path,
                "network_block": nb,
                "checkpoint_block": cb,
                "write_s": round(seconds, 3),
            }
        )
    compacted = work / "compacted.zarr"
    began = time.perf_counter()
    compact_population(rows[1]["path"], compacted, 32)
    rows.append(
        {
            "layout": f"compacted ({rows[1]['layout']})",
            "path": compacted,
            "network_block": 32,
            "checkpoint_block": rows[1]["checkpoint_block"],
            "compact_s": round(time.perf_counter() - began, 3),
        }
    )
    return rows


def measure(args: argparse.Namespace, work: Path) -> dict:
    if args.smoke:
        correct = simulated_correct(args.networks, args.checkpoints, 300)
    else:
        correct = real_correct(args.split, args.networks, args.checkpoints)
    networks, checkpoints, examples = correct.shape
    labels = np.random.default_rng(1).integers(0, CLASSES, examples)
    predictions = predictions_from(correct, labels)
    correct = predictions == labels[None, None, :]
    entries = networks * checkpoints * examples
    rows = write_layouts(args, work, predictions, labels)
    for row in rows:
        path = row["path"]
        check_store(path, predictions, correct)
        row["bits_per_entry"] = bits_per_entry(path, entries)
        row["files"], row["chunk_files"] = files(path)
        row["stored_mb"] = round(
            sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6, 3
        )
        if "write_s" in row:
            recorders = -(-networks // row["network_block"])
            row["write_s_per_recorder"] = round(row["write_s"] / recorders, 4)
            row["write_ms_per_network_checkpoint"] = round(
                1e3 * row["write_s"] / (networks * checkpoints), 3
            )
        row["analyze_s"] = []
    # One untimed analysis first (imports, compiled kernels), then the layouts in turn, so that
    # a change of load touches every layout alike.
    analyze_once(rows[0]["path"], work / "warm-up")
    accuracy = []
    for _ in range(args.repeat):
        for row in rows:
            seconds, found = analyze_once(row["path"], work / "analysis")
            row["analyze_s"].append(round(seconds, 3))
            accuracy.append(found)
    assert all(found == accuracy[0] for found in accuracy)  # every store analyses alike
    base = rows[0]
    for row in rows:
        shutil.rmtree(row.pop("path"))
        row["analyze_best_s"] = min(row["analyze_s"])
        row["analyze_ratio_to_block"] = round(row["analyze_best_s"] / base["analyze_best_s"], 3)
        row["bits_ratio_to_block"] = round(
            row["bits_per_entry"]["correct_packed"] / base["bits_per_entry"]["correct_packed"], 3
        )
    return {
        "benchmark": "runs",
        "shape": [networks, checkpoints, examples],
        "verdicts": "simulated" if args.smoke else f"mnist1d {args.split}, tiled",
        "repeat": args.repeat,
        "layouts": rows,
    }


def print_table(result: dict) -> None:
    print(f"store {tuple(result['shape'])} (networks, checkpoints, examples), {result['verdicts']}")
    header = (
        "layout",
        "correct b/e",
        "pred b/e",
        "files",
        "write s",
        "per recorder s",
        "analyze best s",
        "vs block",
    )
    print(" | ".join(header))
    for row in result["layouts"]:
        print(
            " | ".join(
                str(v)
                for v in (
                    row["layout"],
                    row["bits_per_entry"]["correct_packed"],
                    row["bits_per_entry"]["predictions"],
                    row["files"],
                    row.get("write_s", row.get("compact_s")),
                    row.get("write_s_per_recorder", "-"),
                    row["analyze_best_s"],
                    row["analyze_ratio_to_block"],
                )
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=512)
    parser.add_argument("--checkpoints", type=int, default=11)
    parser.add_argument("--split", default="test", choices=("test", "train"))
    parser.add_argument("--run-checkpoint-blocks", default="16,4")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.networks, args.checkpoints, args.repeat = 40, 4, 1
        args.run_checkpoint_blocks = "16,2"
    args.run_checkpoint_blocks = [int(v) for v in args.run_checkpoint_blocks.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench_runs_", dir=args.dir))
    try:
        result = measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

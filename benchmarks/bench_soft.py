"""What soft verdicts cost against verdicts alone: recording through the writer, bits on disk,
and the analysis graphs, measured in one process on the same simulated population.

    python benchmarks/bench_soft.py [--networks 256 --checkpoints 20 --examples 10000] [--smoke]

Recording: one block of ``network_block`` networks at every checkpoint, through
``PopulationWriter.record`` with 10-class float32 logits (argmax, correctness, softmax
probability and margin, their codes, four arrays written) against the same block recorded as
predictions (correctness and predictions written), into two fresh stores. Analysis: the verdict
counts (``verdict_statistics``) against the soft sums (``soft_statistics``) of the same split of
a store simulated with ``soft=True``, each computed on the threads scheduler after a warm-up.
Prints one JSON object.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLASSES = 10


def _best(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def recording(directory: Path, networks: int, checkpoints: int, examples: int, repeat: int):
    """Seconds to record one block at every checkpoint from logits, and from predictions."""
    import engine

    rng = np.random.default_rng(0)
    labels = rng.integers(0, CLASSES, examples)
    logits = rng.standard_normal((networks, examples, CLASSES)).astype(np.float32)
    logits[np.arange(networks)[:, None], np.arange(examples)[None, :], labels[None, :]] += 2.0
    predictions = logits.argmax(axis=2)

    def record(kind: str) -> float:
        path = directory / f"record-{kind}.zarr"

        def run() -> None:
            shutil.rmtree(path, ignore_errors=True)
            writer = engine.create_population(
                path,
                dataset_name="bench",
                splits={"test": engine.SplitSpec(labels=labels, soft=kind == "logits")},
                groups=[engine.GroupSpec("a", "mlp", networks)],
                checkpoint_epochs=np.arange(checkpoints),
                class_names=[str(c) for c in range(CLASSES)],
                network_block=networks,
            )
            for t in range(checkpoints):
                if kind == "logits":
                    writer.record("test", t, (0, networks), logits=logits)
                else:
                    writer.record("test", t, (0, networks), predictions=predictions)
                writer.mark_checkpoint(t, (0, networks))

        return _best(run, repeat)

    seconds = {kind: record(kind) for kind in ("predictions", "logits")}
    return {
        "block": [networks, checkpoints, examples, CLASSES],
        "predictions_s": seconds["predictions"],
        "logits_s": seconds["logits"],
        "ratio": seconds["logits"] / seconds["predictions"],
        "logits_mb_per_s": logits.nbytes * checkpoints / seconds["logits"] / 1e6,
    }


def analysis(directory: Path, networks: int, checkpoints: int, examples: int, repeat: int):
    """Seconds of the verdict counts and of the soft sums of one simulated split."""
    import dask

    from engine import measures
    from engine.testing import simulate_population

    path = directory / "soft.zarr"
    population = simulate_population(
        path, networks=networks, checkpoints=checkpoints, splits={"train": examples}, soft=True
    )
    selection = measures.select_networks(population)

    def verdicts() -> None:
        dask.compute(
            measures.verdict_statistics(population, "train", selection), scheduler="threads"
        )

    def soft() -> None:
        dask.compute(measures.soft_statistics(population, "train", selection), scheduler="threads")

    verdicts(), soft()  # compile and warm the page cache
    seconds = {"verdicts": _best(verdicts, repeat), "soft": _best(soft, repeat)}
    entries = networks * checkpoints * examples
    bits = {
        name: 8 * population.stored_bytes(f"splits/train/{name}") / entries
        for name in ("correct_packed", "predictions", "probability", "margin")
    }
    return {
        "store": [networks, checkpoints, examples],
        "verdicts_s": seconds["verdicts"],
        "soft_s": seconds["soft"],
        "ratio": seconds["soft"] / seconds["verdicts"],
        "soft_entries_per_s": entries / seconds["soft"],
        "bits_per_entry": bits,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=256)
    parser.add_argument("--checkpoints", type=int, default=20)
    parser.add_argument("--examples", type=int, default=10000)
    parser.add_argument("--block", type=int, default=32, help="networks recorded per block")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, timed once")
    args = parser.parse_args(argv)
    if args.smoke:
        args.networks, args.checkpoints, args.examples, args.block, args.repeat = 8, 3, 100, 4, 1
    directory = Path(tempfile.mkdtemp(prefix="bench_soft_"))
    try:
        result = {
            "recording": recording(
                directory, args.block, args.checkpoints, args.examples, args.repeat
            ),
            "analysis": analysis(
                directory, args.networks, args.checkpoints, args.examples, args.repeat
            ),
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

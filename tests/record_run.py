"""One run of a job array recording into a shared store, as tests/test_record_processes.py runs it.

    python tests/record_run.py STORE NETWORK [--networks 20] [--checkpoints 6] [--sleep 0.25]
        [--start-at UNIX_TIME] [--resume]

The run records deterministic synthetic verdicts for its network id: the logits of each split at
each checkpoint come from a generator seeded by (network, checkpoint, split), with the true class
raised more at each checkpoint so that the networks "learn". It sleeps before each checkpoint so
that a kill lands mid-run, and records the splits in separate calls (a kill between them leaves
a checkpoint held by one split only). :func:`record_network` is also what the test calls to write
the same store sequentially in one process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.record import Recorder, StoreLayout, open_recorder  # noqa: E402

#: Examples of each split, and the classes of the task.
SPLITS = {"test": 300, "train": 500}
CLASSES = 10


def layout(num_networks: int, checkpoints: int) -> StoreLayout:
    """The layout every run of the array passes (same labels, sizes and checkpoints)."""
    labels = {
        name: np.random.default_rng([7, index]).integers(0, CLASSES, size)
        for index, (name, size) in enumerate(SPLITS.items())
    }
    return StoreLayout(
        labels=labels,
        num_networks=num_networks,
        checkpoints=checkpoints,
        num_classes=CLASSES,
        soft=True,
        dataset="synthetic-runs",
    )


def logits(network: int, checkpoint: int, split: str, labels: np.ndarray) -> np.ndarray:
    """Logits of one network on one split at one checkpoint, float32, dims (examples, classes)."""
    index = list(SPLITS).index(split)
    rng = np.random.default_rng([network, checkpoint, index])
    values = rng.normal(size=(labels.size, CLASSES)).astype(np.float32)
    # Easy examples (low ids) are learned first; every network learns at its own pace.
    easiness = 1.0 - np.arange(labels.size) / labels.size
    pace = 0.4 + 0.1 * (network % 5)
    values[np.arange(labels.size), labels] += (pace * checkpoint * (0.5 + easiness)).astype(
        np.float32
    )
    return values


def loss(network: int, checkpoint: int) -> float:
    return 2.3 / (1.0 + checkpoint) + 0.01 * network


def record_network(recorder: Recorder, network: int, labels: dict, sleep: float = 0.0) -> None:
    """Record every checkpoint from the recorder's next one on, split by split."""
    for checkpoint in range(recorder.next_checkpoint, recorder.num_checkpoints):
        if sleep:
            time.sleep(sleep)
        recorder.record(test=logits(network, checkpoint, "test", labels["test"]))
        recorder.record(
            train=logits(network, checkpoint, "train", labels["train"]),
            loss=loss(network, checkpoint),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("network", type=int)
    parser.add_argument("--networks", type=int, default=20)
    parser.add_argument("--checkpoints", type=int, default=6)
    parser.add_argument("--sleep", type=float, default=0.25)
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    spec = layout(args.networks, args.checkpoints)
    # Every run starts at the same moment, so that they race to create the store.
    time.sleep(max(0.0, args.start_at - time.time()))
    with open_recorder(args.store, args.network, layout=spec, resume=args.resume) as recorder:
        record_network(recorder, args.network, dict(spec.labels), args.sleep)
    return 0


if __name__ == "__main__":
    sys.exit(main())

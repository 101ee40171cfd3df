"""CPU/GPU parity of the batched trainer: the same study (same seeds) trained on two devices.

Trains each architecture's study once per device, in memory, and reports the fraction of final
predictions (every split, every network) on which the two devices agree, and the agreement at
initialisation (which should be 1: the same initial weights, drawn on the CPU). The target on a
GPU is an agreement of at least 0.99 (``passed``); sums in another order make networks drift
apart a little over training, so exact equality is not expected.

GPU (the lent machine)::

    python benchmarks/train_parity.py --devices cpu,cuda --networks 32 --epochs 3

``--smoke`` runs two tiny studies on ``cpu,cpu`` (the GPU side is the CPU): a test that every
step runs, not a parity check.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.train.config import RunOptions  # noqa: E402
from engine.train.data import DataConfig, load_dataset  # noqa: E402
from engine.train.loop import train_population  # noqa: E402
from engine.train.recorders import MemoryRecorder  # noqa: E402
from engine.train.seeds import study_checkpoints  # noqa: E402
from engine.train.study import study_from_flags  # noqa: E402

TARGET = 0.99


def train(study, dataset, device: str) -> tuple[MemoryRecorder, float]:
    recorder = MemoryRecorder(
        study.num_networks, len(study_checkpoints(study, dataset).epochs), dataset
    )
    started = time.perf_counter()
    train_population(
        study, None, RunOptions(device=device, quiet=True), dataset=dataset, recorder=recorder
    )
    return recorder, time.perf_counter() - started


def agreement(a: MemoryRecorder, b: MemoryRecorder, checkpoint: int) -> float:
    same = [
        (a.predictions[s][:, checkpoint] == b.predictions[s][:, checkpoint]).ravel()
        for s in a.predictions
    ]
    return float(np.concatenate(same).mean())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", default="cpu,cuda", help="two devices, comma-separated")
    parser.add_argument("--dataset", default="mnist1d")
    parser.add_argument("--samples", type=int, default=0)
    parser.add_argument("--archs", default="mlp,cnn")
    parser.add_argument("--networks", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--width", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny studies on cpu,cpu")
    args = parser.parse_args(argv)
    if args.smoke:
        parser.set_defaults(
            devices="cpu,cpu", dataset="digits", networks=2, epochs=1, width=8, threads=1
        )
        args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    first, second = args.devices.split(",")
    data = DataConfig(args.dataset, samples=args.samples)
    dataset = load_dataset(data)
    result: dict = {"benchmark": "train_parity", "devices": [first, second], "target": TARGET}
    if "cuda" in (first, second):
        result["gpu"] = torch.cuda.get_device_name()
        result["cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
        result["matmul_allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
    for arch in args.archs.split(","):
        study = study_from_flags(
            dataset=args.dataset,
            arch=arch,
            networks=args.networks,
            epochs=args.epochs,
            data=data,
            **({"width": args.width} if args.width else {}),
        )
        a, a_seconds = train(study, dataset, first)
        b, b_seconds = train(study, dataset, second)
        final = agreement(a, b, -1)
        labels = dataset.splits["test"].labels
        result[arch] = {
            "networks": args.networks,
            "epochs": args.epochs,
            "initial_agreement": agreement(a, b, 0),
            "final_agreement": final,
            "passed": final >= TARGET,
            "seconds": [a_seconds, b_seconds],
            "final_test_accuracy": [
                float((r.predictions["test"][:, -1] == labels).mean()) for r in (a, b)
            ],
        }
    result["passed"] = all(result[arch]["passed"] for arch in args.archs.split(","))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

"""Train a real population with the engine's trainer and keep every network's logits.

The soft-verdict encodings of store format v2 (``bench_store.py --soft``) are chosen on these:
32 MLPs (40-100-100-10, the engine's ``mlp`` of depth 2 and width 100) on MNIST-1D (12,000
samples: 9,600 train, 2,400 test), 30 epochs of Adam, each network its own initialisation and
mini-batch order (the study's defaults), trained by ``engine.train.train_population`` itself.
The trainer records only predictions, so this script wraps ``BatchedModel.forward``: every
evaluation pass (``shared=True``, ``train=False``) also hands its logits to the recorder, which
keeps them per split and checkpoint (checkpoint 0 = before training).

    python benchmarks/soft_logits.py [--out /tmp/soft-logits.npz] [--networks 32] [--epochs 30]

Writes one npz: ``{split}_logits`` float32 (networks, checkpoints, examples, classes),
``{split}_labels`` int64 (examples,), ``{split}_predictions`` int16 (what the trainer recorded,
checked equal to the argmax of the logits), and ``config`` (the study as JSON).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/soft-logits.npz")
    parser.add_argument("--networks", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=12000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--splits", default="test,train", help="splits whose logits to keep")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()

    from engine.train import DataConfig, GroupConfig, RunOptions, StudyConfig
    from engine.train.data import load_dataset
    from engine.train.loop import train_population
    from engine.train.models import BatchedModel
    from engine.train.recorders import MemoryRecorder
    from engine.train.seeds import study_checkpoints

    study = StudyConfig(
        data=DataConfig(name="mnist1d", samples=args.samples),
        groups=(
            GroupConfig(
                "mlp",
                "mlp",
                args.networks,
                width=100,
                depth=2,
                optimizer="adam",
                lr=args.lr,
                weight_decay=0.0,
                schedule="constant",
            ),
        ),
        epochs=args.epochs,
    )
    dataset = load_dataset(study.data)
    checkpoints = len(study_checkpoints(study, dataset).epochs)
    keep = [s for s in args.splits.split(",") if s]
    captured: list = []  # logits of the evaluation passes since the last record()

    class LogitRecorder(MemoryRecorder):
        """A memory recorder that also keeps the logits behind each split's predictions."""

        def __init__(self):
            super().__init__(args.networks, checkpoints, dataset)
            self.logits = {
                name: np.full(
                    (args.networks, checkpoints, len(dataset.splits[name]), dataset.num_classes),
                    np.nan,
                    np.float32,
                )
                for name in keep
            }

        def record(self, split, checkpoint, networks, predictions):
            super().record(split, checkpoint, networks, predictions)
            if split in self.logits:
                logits = np.concatenate(captured, axis=1)  # (networks, examples, classes)
                self.logits[split][networks[0] : networks[1], checkpoint] = logits
            captured.clear()

    original = BatchedModel.forward

    def forward(self, params, buffers, inputs, *, train, shared):
        logits = original(self, params, buffers, inputs, train=train, shared=shared)
        if shared and not train:
            captured.append(logits.detach().float().cpu().numpy())
        return logits

    recorder = LogitRecorder()
    BatchedModel.forward = forward  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        summary = train_population(
            study,
            None,
            RunOptions(threads=args.threads, quiet=True),
            dataset=dataset,
            recorder=recorder,
        )
    finally:
        BatchedModel.forward = original  # type: ignore[method-assign]
    seconds = time.perf_counter() - started
    assert (recorder.completed == checkpoints).all(), recorder.completed
    out = {"config": np.array(json.dumps(study.to_json()))}
    for name in keep:
        logits = recorder.logits[name]
        assert np.isfinite(logits).all(), name
        predictions = recorder.predictions[name]
        assert np.array_equal(logits.argmax(axis=3), predictions), name
        labels = dataset.splits[name].labels
        out[f"{name}_logits"] = logits
        out[f"{name}_labels"] = labels
        out[f"{name}_predictions"] = predictions
        accuracy = (predictions == labels).mean(axis=2)  # (networks, checkpoints)
        print(
            f"{name}: logits {logits.shape}, accuracy at checkpoint 0 / last: "
            f"{accuracy[:, 0].mean():.3f} / {accuracy[:, -1].mean():.3f}"
        )
    np.savez(args.out, **out)
    print(f"trained {summary.trained_networks} networks in {seconds:.1f} s; wrote {args.out}")


if __name__ == "__main__":
    main()

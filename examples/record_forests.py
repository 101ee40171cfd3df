"""Record a population of scikit-learn random forests with the engine's recorder (study 5).

A learner that is not a neural network, trained on the same MNIST-1D examples: each of the
``--networks`` forests has its own random state (its trees' bootstrap samples and feature
choices); a checkpoint is taken after each doubling of its trees (warm start adds trees to the
same forest), so the store has a learning order as a network's epochs give one. Recorded
through ``engine.record.open_recorder`` and ``StoreLayout``; analyse the store with
``engine analyze``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from mnist1d.data import get_dataset_args, make_dataset
from sklearn.ensemble import RandomForestClassifier

from engine import GroupSpec
from engine.record import StoreLayout, open_recorder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--networks", type=int, default=32)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--trees", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    args = parser.parse_args()
    dataset_args = get_dataset_args()
    dataset_args.num_samples = args.samples
    data = make_dataset(dataset_args)
    splits = {"train": (data["x"], data["y"]), "test": (data["x_test"], data["y_test"])}
    layout = StoreLayout(
        labels={name: y.astype(np.int64) for name, (_, y) in splits.items()},
        num_networks=args.networks,
        checkpoints=[float(t) for t in args.trees],  # the "epoch" of a checkpoint: its trees
        num_classes=10,
        dataset="mnist1d-sklearn",
        groups=[GroupSpec("forest", "random_forest", args.networks, {"trees": args.trees})],
    )
    x_train, y_train = splits["train"]
    for network in range(args.networks):
        forest = RandomForestClassifier(n_estimators=1, warm_start=True, random_state=network)
        with open_recorder(args.out, network, layout=layout) as recorder:
            if recorder.complete:
                continue  # a rerun keeps the forests already recorded
            for trees in args.trees:
                forest.set_params(n_estimators=trees)
                forest.fit(x_train, y_train)
                recorder.record(
                    **{name: forest.predict(x).astype(np.int64) for name, (x, _) in splits.items()}
                )
    print(args.out)


if __name__ == "__main__":
    main()

"""Write MNIST-1D with noisy training labels as .npz files for the trainer's ``npz`` data set.

The trainer has no label-noise setting, so study 6 brings its own arrays, as a user would:
``x_train``, ``y_train`` (a share of them replaced by another class drawn uniformly),
``x_test``, ``y_test`` (clean). ``python examples/make_noisy_mnist1d.py --out DIR --noise 0 0.2``
writes ``DIR/mnist1d_noise0.npz``, ``DIR/mnist1d_noise0.2.npz``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from mnist1d.data import get_dataset_args, make_dataset


def noisy_labels(labels: np.ndarray, share: float, classes: int, seed: int) -> np.ndarray:
    """Labels (examples,) int64 with round(share * examples) of them moved to another class."""
    rng = np.random.default_rng(seed)
    flipped = rng.choice(labels.size, size=round(share * labels.size), replace=False)
    noisy = labels.copy()
    # A shift of 1..classes-1 always lands on a different class, each one equally likely.
    noisy[flipped] = (labels[flipped] + rng.integers(1, classes, flipped.size)) % classes
    return noisy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.2, 0.4])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dataset_args = get_dataset_args()
    dataset_args.num_samples = args.samples
    data = make_dataset(dataset_args)
    args.out.mkdir(parents=True, exist_ok=True)
    for share in args.noise:
        path = args.out / f"mnist1d_noise{share:g}.npz"
        np.savez(
            path,
            x_train=data["x"].astype(np.float32),
            y_train=noisy_labels(data["y"].astype(np.int64), share, 10, args.seed),
            x_test=data["x_test"].astype(np.float32),
            y_test=data["y_test"].astype(np.int64),
        )
        print(path)


if __name__ == "__main__":
    main()

"""CPU time of the pairwise kernels on one tile, for comparing two checkouts (issue 12).

    python benchmarks/tile_kernels.py [--checkout PATH] [--smoke]

One tile of ``block x block`` network pairs at X examples, 10 classes, 80% of predictions right
(the rest uniform), prepared by the checkout's own ``load_block`` (its padding, its bit slices),
then each kernel's thread CPU time, best of ``--repeat``: ``same_prediction_counts``,
``co_correct_counts``, and ``network_kappa_statistics`` on 8 tiles of kappa called once per tile
(as strips did) and once on their 4,096 columns side by side (as strips gather them now), per
tile. ``--checkout`` imports the engine and kernels of another checkout (a worktree at an older
commit), so that running this once per checkout, alternately, compares them on the same machine.
Each count is checked against a NumPy reference first. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

import numpy as np

CLASSES = 10


def thread_ms(function, *args, repeat: int) -> float:
    """Best thread CPU time of ``function(*args)`` in ms, after one call to compile and warm."""
    function(*args)
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time()
        function(*args)
        best = min(best, time.thread_time() - started)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--block", type=int, default=512)
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--smoke", action="store_true", help="a tiny tile, timed once")
    args = parser.parse_args()
    if args.smoke:
        args.block, args.examples, args.repeat = 40, 300, 1
    sys.path.insert(0, str(args.checkout.resolve()))
    import kernels.pairwise as kp
    from engine.pairwise.blocks import load_block

    block, examples = args.block, args.examples
    rng = np.random.default_rng(0)
    labels = rng.integers(0, CLASSES, examples)

    def network_block():
        right = rng.random((block, examples)) < 0.8
        guess = rng.integers(0, CLASSES, (block, examples))
        predictions = np.where(right, labels, guess).astype(np.int16)
        packed = np.packbits(predictions == labels, axis=1, bitorder="little")
        return predictions, load_block(packed, predictions, examples, CLASSES)

    (p0, b0), (p1, b1) = network_block(), network_block()
    takes_examples = len(inspect.signature(kp.same_prediction_counts.py_func).parameters) == 3
    same_args = (b0.slices, b1.slices) + ((examples,) if takes_examples else ())
    same = kp.same_prediction_counts(*same_args)
    assert np.array_equal(same, (p0[:, None, :] == p1[None, :, :]).sum(axis=2))
    correct_0 = (p0 == labels).astype(np.int64)
    correct_1 = (p1 == labels).astype(np.int64)
    assert np.array_equal(kp.co_correct_counts(b0.words, b1.words), correct_0 @ correct_1.T)
    out = {
        "checkout": str(args.checkout),
        "tile": [block, block, examples],
        "same_prediction_ms": thread_ms(kp.same_prediction_counts, *same_args, repeat=args.repeat),
        "co_correct_ms": thread_ms(kp.co_correct_counts, b0.words, b1.words, repeat=args.repeat),
    }
    tiles = 8
    kappa = (0.5 + 0.08 * rng.standard_normal((block, tiles * block))).astype(np.float32)

    def statistics(per_tile: bool) -> None:
        state = [
            np.zeros(block),
            np.zeros(block, np.int64),
            np.zeros((block, 20_000), np.int32),
            np.full((block, 5), -np.inf, np.float32),
            np.full((block, 5), -1, np.int64),
            np.full((block, 5), np.inf, np.float32),
            np.full((block, 5), -1, np.int64),
        ]
        spans = (
            [(j * block, (j + 1) * block) for j in range(tiles)]
            if per_tile
            else [(0, tiles * block)]
        )
        for a, b in spans:
            part = np.ascontiguousarray(kappa[:, a:b])
            kp.network_kappa_statistics(part, -(block + 1), np.arange(a, b), *state)

    for name, per_tile in (("per_tile", True), ("gathered", False)):
        ms = thread_ms(statistics, per_tile, repeat=max(1, args.repeat // 2))
        out[f"network_statistics_{name}_ms"] = ms / tiles
    print(json.dumps(out))


if __name__ == "__main__":
    main()

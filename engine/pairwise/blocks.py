"""Kernel inputs of one block of networks, read from the store once per block and checkpoint.

One Dask task per block of networks reads its packed correctness bits (and predictions) and
prepares what every tile of that block needs; a second small task adds up the blocks' per-example
counts of one side (:func:`side_counts`) for the example bootstrap and the stored
``correct_count``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from engine.errors import StoreError
from engine.pairwise.counts import add_up

if TYPE_CHECKING:
    from dask.delayed import Delayed

    from engine.pairwise.inputs import PairwiseSide

#: Up to this many classes, prediction agreement counts popcounts of one bit plane per class;
#: above it a direct comparison of int16 predictions is faster (measured: 8.9e9 words/s of
#: popcount against 2e10 comparisons/s, crossing near 28 classes).
MAX_PLANE_CLASSES = 24
#: Up to this many classes, bit-sliced predictions (:func:`kernels.pairwise.pack_slices`: 4
#: class-bit planes, code 15 where a prediction is missing, and a plane marking those) replace the
#: planes per class: 4.9x faster at 10 classes (benchmarks/RESULTS.md, Scale).
MAX_SLICE_CLASSES = 15


@dataclass(frozen=True, eq=False)
class NetworkBlock:
    """Kernel inputs of one block of networks at one checkpoint.

    Attributes
    ----------
    words : ndarray of uint64, dims (networks, words)
        Packed correctness bits, as :func:`kernels.pairwise.pack_bits` packs them, padded with
        zero words to a multiple of ``kernels.pairwise.WORD_MULTIPLE``.
    correct_count : ndarray of int64, dims (networks,)
        Examples each network gets right.
    example_correct : ndarray of int64, dims (examples,)
        Networks of the block right on each example.
    classes : ndarray of uint64, dims (networks, classes * words), or None
        One bit plane per class (:func:`kernels.pairwise.pack_classes`), above
        ``MAX_SLICE_CLASSES`` up to ``MAX_PLANE_CLASSES`` classes.
    predictions : ndarray of int16, dims (networks, examples), or None
        Predicted classes, above ``MAX_PLANE_CLASSES`` classes.
    example_class_counts : ndarray of int64, dims (classes, examples), or None
        Networks of the block predicting each class on each example.
    slices : ndarray of uint64, dims (networks, 5 * words), or None
        Bit-sliced predictions (:func:`kernels.pairwise.pack_slices`), up to
        ``MAX_SLICE_CLASSES`` classes.
    """

    words: np.ndarray
    correct_count: np.ndarray
    example_correct: np.ndarray
    classes: np.ndarray | None = None
    predictions: np.ndarray | None = None
    example_class_counts: np.ndarray | None = None
    slices: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class SideCounts:
    """Per-example and per-network counts over every network of one side.

    Attributes
    ----------
    example_correct : ndarray of int64, dims (examples,)
    example_class_counts : ndarray of int64, dims (classes, examples), or None
    network_correct : ndarray of int64, dims (networks,)
        Examples each network gets right, in the side's order.
    """

    example_correct: np.ndarray
    example_class_counts: np.ndarray | None
    network_correct: np.ndarray


def words_from_bytes(packed_bytes: np.ndarray) -> np.ndarray:
    """uint8 (networks, example_bytes), little bit order -> uint64 (networks, words).

    The store's packed bytes are the kernels' words already: pad with zero bytes to a multiple
    of ``WORD_MULTIPLE`` words (the popcount loops then leave no scalar remainder) and read them
    as little-endian uint64.
    """
    from kernels.pairwise import WORD_MULTIPLE

    networks, num_bytes = packed_bytes.shape
    num_words = -(-num_bytes // (8 * WORD_MULTIPLE)) * WORD_MULTIPLE
    padded = np.zeros((networks, 8 * num_words), np.uint8)
    padded[:, :num_bytes] = packed_bytes
    return padded.view("<u8").astype(np.uint64, copy=False)


def load_block(
    packed_bytes: np.ndarray,
    predictions: np.ndarray | None,
    num_examples: int,
    num_classes: int,
    slices: bool = True,
) -> NetworkBlock:
    """Kernel inputs of one block of networks at one checkpoint.

    Parameters
    ----------
    packed_bytes : ndarray of uint8, dims (networks, example_bytes)
        The store's packed correctness bits, little bit order.
    predictions : ndarray of int, dims (networks, examples), or None
    num_examples, num_classes : int
    slices : bool
        Bit-sliced predictions up to ``MAX_SLICE_CLASSES`` classes (the CPU's fastest); False
        keeps the planes per class, which a GPU counts as one integer product.
    """
    from kernels.pairwise import pack_classes, pack_slices

    words = words_from_bytes(np.ascontiguousarray(packed_bytes))
    correct_count = np.bitwise_count(words).sum(axis=1, dtype=np.int64)
    unpacked = np.unpackbits(
        np.ascontiguousarray(packed_bytes), axis=1, count=num_examples, bitorder="little"
    )
    example_correct = unpacked.sum(axis=0, dtype=np.int64)
    if predictions is None:
        return NetworkBlock(words, correct_count, example_correct)
    predictions = np.ascontiguousarray(predictions, dtype=np.int16)
    if predictions.size and predictions.max() >= num_classes:
        raise StoreError(
            f"a stored prediction ({int(predictions.max())}) is not below the number of "
            f"classes ({num_classes})"
        )
    counts = np.zeros((num_classes, num_examples), np.int64)
    for k in range(num_classes):
        counts[k] = (predictions == k).sum(axis=0)
    if slices and num_classes <= MAX_SLICE_CLASSES:
        return NetworkBlock(
            words,
            correct_count,
            example_correct,
            example_class_counts=counts,
            slices=pack_slices(predictions),
        )
    if num_classes <= MAX_PLANE_CLASSES:
        return NetworkBlock(
            words,
            correct_count,
            example_correct,
            classes=pack_classes(predictions, num_classes),
            example_class_counts=counts,
        )
    return NetworkBlock(
        words,
        correct_count,
        example_correct,
        predictions=predictions,
        example_class_counts=counts,
    )


def side_blocks(
    side: PairwiseSide, block: int, sliced: bool = True
) -> tuple[list[Delayed], list[slice]]:
    """Delayed :class:`NetworkBlock` of each block of ``block`` networks of a side, and the
    positions (a slice of ``side.ids``) of each (``sliced``: the ``slices`` of
    :func:`load_block`)."""
    import dask

    population = side.population
    # Read whole blocks of networks per call: zarr's per-call overhead (~2 ms) would otherwise
    # cost more than the kernels at a few thousand networks.
    store_block = population.attrs["network_block"]
    read_block = max(store_block, block - block % store_block)
    packed = population.correct_packed(side.split, chunks=(read_block, 1, -1))
    packed = packed[:, side.checkpoint, :]
    predictions = (
        population.predictions(side.split, chunks=(read_block, 1, -1)) if side.num_classes else None
    )
    if predictions is not None:
        predictions = predictions[:, side.checkpoint, :]
    if side.size != population.num_networks or not np.array_equal(
        side.ids, np.arange(population.num_networks)
    ):
        packed = packed[side.ids]
        predictions = predictions[side.ids] if predictions is not None else None
    packed = packed.rechunk((block, -1))
    packed_blocks = packed.to_delayed().ravel()
    prediction_blocks: list = [None] * len(packed_blocks)
    if predictions is not None:
        predictions = predictions.rechunk((block, -1))
        prediction_blocks = list(predictions.to_delayed().ravel())
    num_examples = side.num_examples
    loaded = [
        dask.delayed(load_block, pure=True)(p, q, num_examples, side.num_classes, sliced)
        for p, q in zip(packed_blocks, prediction_blocks, strict=True)
    ]
    bounds = np.cumsum((0,) + packed.chunks[0])
    slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return loaded, slices


def side_counts(*blocks: NetworkBlock) -> SideCounts:
    """The blocks' counts added up over one side (the blocks in the side's order)."""
    class_counts = None
    if blocks and blocks[0].example_class_counts is not None:
        class_counts = add_up(cast(np.ndarray, b.example_class_counts) for b in blocks)
    return SideCounts(
        example_correct=add_up(b.example_correct for b in blocks),
        example_class_counts=class_counts,
        network_correct=np.concatenate([b.correct_count for b in blocks]),
    )

"""The tasks that read the store on workers: the counts of one block of networks x examples.

Layout letters: n networks, t checkpoints, x examples, b example bytes (8 examples each),
k classes (in the soft tasks: the statistics of :data:`kernels.soft.STATISTICS`), r regions,
m the networks of a per-network table, g groups, s split-halvings.

A task reads its stored chunks one block of checkpoints at a time, in the store's stored order
(x, n, t), and runs the kernels of :mod:`kernels.agreement` (verdicts), :mod:`kernels.consensus`
(predictions) or :mod:`kernels.soft` (soft verdicts) on them, carrying the learning state (or the
soft sums) from one block of checkpoints to the next: memory is one stored chunk and the task's
counts, whatever the size of the store. Each task opens
the store itself by path or URL (a :class:`~engine.store.StoreHandle`), so that no block of
verdicts travels between processes or machines; a task and its request pickle for
``dask.distributed``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from engine.errors import StoreError
from engine.store import BIT_ORDER, StoreHandle, read_stored_order
from engine.store.format import margin_values, probability_values

#: Counts indexed by example, summed over blocks of networks.
VERDICT_EXAMPLE_FIELDS = (
    "tpa_count",
    "holdout_count",
    "forgetting_count",
    "first_learned_histogram",
    "half_sum",
    "half_first",
    "holdout_networks",
)
#: Counts indexed by network, summed over blocks of examples.
VERDICT_NETWORK_FIELDS = ("network_count", "network_forgetting")
CLASS_EXAMPLE_FIELDS = ("class_count",)
CLASS_NETWORK_FIELDS = ("network_class_count",)


@dataclass(frozen=True)
class CountLayout:
    """Dims of one count around the axis that tasks split it along (examples or networks)."""

    before: tuple[int, ...]
    after: tuple[int, ...]
    dtype: type = np.int32

    def shape(self, size: int) -> tuple[int, ...]:
        """The count's shape for ``size`` examples (or networks)."""
        return (*self.before, size, *self.after)


def verdict_layouts(
    num_groups: int, num_halvings: int, num_checkpoints: int
) -> dict[str, CountLayout]:
    """The layout of each count of :func:`verdict_block`, in the order it returns them."""
    g, s, t = num_groups, num_halvings, num_checkpoints
    return {
        "tpa_count": CountLayout((g,), (t,)),
        "holdout_count": CountLayout((g,), (t,)),
        "forgetting_count": CountLayout((g,), ()),
        "first_learned_histogram": CountLayout((g,), (t + 1,)),
        # The kernel sums halves in int32 per task; the sum over tasks may need more.
        "half_sum": CountLayout((g, s), (), np.int64),
        # The halves' correct verdicts at checkpoint 0 alone, so that accessibility and its
        # split-half reliability can leave an initialisation checkpoint out (or not) after the
        # counts are computed.
        "half_first": CountLayout((g, s), ()),
        "holdout_networks": CountLayout((g,), ()),
        "network_count": CountLayout((), (t,)),
        "network_forgetting": CountLayout((), ()),
    }


def class_layouts(
    num_groups: int, num_checkpoints: int, num_classes: int
) -> dict[str, CountLayout]:
    """The layout of each count of :func:`class_block` over ``num_checkpoints`` checkpoints."""
    return {
        "class_count": CountLayout((num_groups,), (num_checkpoints, num_classes)),
        "network_class_count": CountLayout((), (num_checkpoints, num_classes)),
    }


@dataclass(frozen=True)
class VerdictTask:
    """What one verdict task counts: a block of networks x example bytes, every checkpoint.

    ``example_bytes`` is a range of bytes of ``correct_packed`` (8 examples each); the counts
    cover the examples ``8 b0 .. min(8 b1, num_examples)``.
    """

    handle: StoreHandle
    split: str
    networks: tuple[int, int]
    example_bytes: tuple[int, int]
    num_examples: int
    num_checkpoints: int
    #: int64 (n,): group of each network of the block, -1 for a network left out.
    network_group: np.ndarray
    #: uint8 (s, n): 1 for the block's networks in the first half of halving s.
    network_half: np.ndarray
    num_groups: int
    #: The split holds the membership mask (hold-out consistency is counted).
    membership: bool
    #: Decode the store's chunks straight into (x, n, t) order where the encoding allows.
    direct: bool = True


@dataclass(frozen=True)
class ClassTask:
    """What one class task counts: a block of networks x examples over a range of checkpoints."""

    handle: StoreHandle
    split: str
    networks: tuple[int, int]
    examples: tuple[int, int]
    checkpoints: tuple[int, int]
    #: int64 (n,): group of each network of the block, -1 for a network left out.
    network_group: np.ndarray
    num_groups: int
    num_classes: int
    direct: bool = True


class ChunkColumn(NamedTuple):
    """One stored chunk column of a task: networks [a, b) by examples (or bytes) [c, d)."""

    networks: tuple[int, int]
    examples: tuple[int, int]
    #: int64 (b - a,): the groups of its networks.
    groups: np.ndarray


def chunk_columns(
    network_group: np.ndarray,
    networks: tuple[int, int],
    examples: tuple[int, int],
    chunk_networks: int,
    chunk_examples: int,
) -> Iterator[ChunkColumn]:
    """Each stored chunk column of a task; columns with no analysed network are skipped."""
    (n0, n1), (x0, x1) = networks, examples
    for a in range(n0, n1, chunk_networks):
        b = min(a + chunk_networks, n1)
        groups = network_group[a - n0 : b - n0]
        if (groups < 0).all():
            continue
        for c in range(x0, x1, chunk_examples):
            yield ChunkColumn((a, b), (c, min(c + chunk_examples, x1)), groups)


#: Bytes of stored entries gathered for one kernel call. Writers record one checkpoint at a
#: time, so stores hold one checkpoint a chunk; a kernel called once per chunk walked its whole
#: (x, n) state once per checkpoint, cache-missing on each (the 20,000 x 50 x 10,000 store:
#: 0.21 s of kernel per task of 128 networks). Gathering several chunks along checkpoints
#: makes the per-checkpoint loop innermost and the state walked once per gather.
GATHER_BYTES = 8 << 20


def checkpoint_spans(
    array: Any, column: ChunkColumn, first: int, stop: int, per_entry: int = 1
) -> list[tuple[int, int]]:
    """Spans of checkpoints from ``first`` (rounded down to its stored block) to ``stop``, each
    of whole stored blocks of checkpoints and about :data:`GATHER_BYTES` of one chunk column
    (``per_entry`` bytes per entry; one stored block at least)."""
    chunk_t = array.chunks[1]
    (a, b), (c, d) = column.networks, column.examples
    per_block = max(1, (b - a) * (d - c) * chunk_t * per_entry)
    step = chunk_t * max(1, GATHER_BYTES // per_block)
    start = first - first % chunk_t
    return [(t0, min(t0 + step, stop)) for t0 in range(start, stop, step)]


def read_checkpoints(
    array: Any,
    networks: tuple[int, int],
    checkpoints: tuple[int, int],
    examples: tuple[int, int],
    *,
    direct: bool,
    completed: np.ndarray | None,
) -> np.ndarray:
    """A region of a (networks, checkpoints, examples) array as dims (x, n, t), read one stored
    block of checkpoints at a time (each decoded straight into stored order where
    :func:`~engine.store.read_stored_order` can) and copied side by side. ``checkpoints``
    starts at a stored block's first checkpoint (:func:`checkpoint_spans`).

    Gathered along checkpoints, the result is a (x, n, t) view of a buffer laid out (t, x, n):
    copying a chunk of one checkpoint in is then contiguous (into an (x, n, t) buffer it was a
    scatter at a stride of t, as long as the kernel), and a kernel looping t innermost still
    finds one example row's checkpoints (t rows of n entries) in cache."""
    t0, t1 = checkpoints
    chunk_t = array.chunks[1]
    if t1 - t0 <= chunk_t:
        return read_stored_order(
            array, networks, checkpoints, examples, direct=direct, completed=completed
        )
    gathered: np.ndarray | None = None
    for s in range(t0, t1, chunk_t):
        e = min(s + chunk_t, t1)
        part = read_stored_order(
            array, networks, (s, e), examples, direct=direct, completed=completed
        )
        if gathered is None:
            gathered = np.empty((t1 - t0, part.shape[0], part.shape[1]), part.dtype)
        gathered[s - t0 : e - t0] = part.transpose(2, 0, 1)
    assert gathered is not None
    return gathered.transpose(1, 2, 0)


def _read_nonmember(
    array: Any, networks: tuple[int, int], example_bytes: tuple[int, int]
) -> np.ndarray:
    """Bits of the examples each network did not train on, dims (b, n), uint8, from the
    (networks, examples) bool ``membership`` array."""
    (n0, n1), (b0, b1) = networks, example_bytes
    try:
        member = np.asarray(array[n0:n1, 8 * b0 : min(8 * b1, array.shape[1])])
    except Exception as error:
        raise StoreError(
            f"corrupt or unreadable chunk in {array.store_path}: {type(error).__name__}"
        ) from error
    return np.packbits(~member.T, axis=0, bitorder="little")


def _count_verdict_column(
    array: Any,
    member_array: Any,
    task: VerdictTask,
    network_half: np.ndarray,
    column: ChunkColumn,
    counts: dict[str, np.ndarray],
    task_completed: np.ndarray | None,
) -> None:
    """Add the verdicts of one chunk column, every checkpoint, to the task's counts.

    ``task_completed``: ``checkpoints_completed`` of the task's networks (format 2), read once
    per task."""
    from kernels.agreement import (
        LearnedCounts,
        LearningState,
        VerdictCounts,
        accumulate_verdicts,
        finish_verdicts,
    )

    (a, b), (c, d) = column.networks, column.examples
    n0, b0 = task.networks[0], task.example_bytes[0]
    total = task.num_checkpoints
    nonmember = (
        _read_nonmember(member_array, (a, b), (c, d))
        if member_array is not None
        else np.zeros((0, 0), np.uint8)
    )
    xs, ns = slice(8 * (c - b0), 8 * (d - b0)), slice(a - n0, b - n0)
    completed = task_completed[a - n0 :] if task_completed is not None else None
    state = LearningState.start(d - c, b - a, total)
    changes = VerdictCounts(
        counts["tpa_count"][:, xs],
        counts["holdout_count"][:, xs],
        counts["network_count"][ns],
        counts["forgetting_count"][:, xs],
        counts["network_forgetting"][ns],
    )
    learned = LearnedCounts(
        counts["first_learned_histogram"][:, xs],
        counts["half_sum"][:, :, xs],
        counts["holdout_networks"][:, xs],
    )
    for t0, t1 in checkpoint_spans(array, column, 0, total):
        block = read_checkpoints(
            array, (a, b), (t0, t1), (c, d), direct=task.direct, completed=completed
        )
        accumulate_verdicts(block, t0, column.groups, nonmember, state, changes)
        if t0 == 0:
            _count_half_first(
                block, column.groups, network_half[:, ns], counts["half_first"][:, :, xs]
            )
    finish_verdicts(state, column.groups, nonmember, network_half[:, ns], learned)


def _count_half_first(
    block: np.ndarray, groups: np.ndarray, network_half: np.ndarray, half_first: np.ndarray
) -> None:
    """Add each halving's first-half correct verdicts at checkpoint 0 to ``half_first`` (in
    place).

    Parameters
    ----------
    block : uint8 (b, n, t)
        Packed verdicts of a block of checkpoints starting at checkpoint 0.
    groups : int64 (n,)
        Group of each network, -1 for one left out.
    network_half : uint8 (s, n)
    half_first : int32 (g, s, x), x = 8 b
    """
    # One checkpoint of one chunk column, (n, x) once unpacked. Row sums, not a matrix product:
    # BLAS's threads on a busy machine made the product 10x slower than these sums (measured in
    # benchmarks/RESULTS.md, "The command line").
    bits = np.unpackbits(np.ascontiguousarray(block[:, :, 0].T), axis=1, bitorder=BIT_ORDER)
    halves = network_half.astype(bool)
    for g in np.unique(groups[groups >= 0]):
        members = groups == g
        for s, half in enumerate(halves):
            rows = members & half
            if rows.any():
                half_first[g, s] += bits[rows].sum(axis=0, dtype=np.int32)


def verdict_block(task: VerdictTask) -> dict[str, np.ndarray]:
    """Counts of one block of networks x examples over every checkpoint (one Dask task).

    Returns
    -------
    dict of ndarray
        The counts of :func:`verdict_layouts`: int32, ``half_sum`` int64; example counts cover
        the task's examples, network counts its networks.
    """
    array = task.handle.open_array(f"splits/{task.split}/correct_packed")
    member_array = (
        task.handle.open_array(f"splits/{task.split}/membership") if task.membership else None
    )
    (n0, n1), (b0, b1) = task.networks, task.example_bytes
    network_group = np.ascontiguousarray(task.network_group, dtype=np.int64)
    network_half = np.ascontiguousarray(task.network_half, dtype=np.uint8)
    layouts = verdict_layouts(task.num_groups, network_half.shape[0], task.num_checkpoints)
    padded = 8 * (b1 - b0)
    counts = {
        name: np.zeros(
            layout.shape(n1 - n0 if name in VERDICT_NETWORK_FIELDS else padded), np.int32
        )
        for name, layout in layouts.items()
    }
    chunk_n, _, chunk_b = array.chunks
    task_completed = task.handle.completed(task.networks)
    for column in chunk_columns(network_group, task.networks, task.example_bytes, chunk_n, chunk_b):
        _count_verdict_column(
            array, member_array, task, network_half, column, counts, task_completed
        )
    # The kernel counts changes along checkpoints; their running sum is the count.
    np.cumsum(counts["tpa_count"], axis=2, out=counts["tpa_count"])
    np.cumsum(counts["holdout_count"], axis=2, out=counts["holdout_count"])
    counts["half_sum"] = counts["half_sum"].astype(layouts["half_sum"].dtype)
    # Drop the padding bits of the last byte past the split's examples.
    keep = min(padded, task.num_examples - 8 * b0)
    for name in VERDICT_EXAMPLE_FIELDS:
        examples_axis = len(layouts[name].before)
        counts[name] = counts[name][(slice(None),) * examples_axis + (slice(0, keep),)]
    return counts


def class_block(task: ClassTask) -> dict[str, np.ndarray]:
    """Class counts of one block of networks x examples over a range of checkpoints.

    Returns
    -------
    dict of ndarray, int32
        The counts of :func:`class_layouts`.
    """
    from kernels.consensus import count_classes

    array = task.handle.open_array(f"splits/{task.split}/predictions")
    (n0, n1), (x0, x1), (first, stop) = task.networks, task.examples, task.checkpoints
    network_group = np.ascontiguousarray(task.network_group, dtype=np.int64)
    layouts = class_layouts(task.num_groups, stop - first, task.num_classes)
    counts = {
        "class_count": np.zeros(layouts["class_count"].shape(x1 - x0), np.int32),
        "network_class_count": np.zeros(layouts["network_class_count"].shape(n1 - n0), np.int32),
    }
    chunk_n, _, chunk_x = array.chunks
    completed = task.handle.completed(task.networks)
    for column in chunk_columns(network_group, task.networks, task.examples, chunk_n, chunk_x):
        (a, b), (c, d) = column.networks, column.examples
        column_completed = completed[a - n0 :] if completed is not None else None
        for t0, t1 in checkpoint_spans(array, column, first, stop, per_entry=2):
            block = read_checkpoints(
                array, (a, b), (t0, t1), (c, d), direct=task.direct, completed=column_completed
            )
            count_classes(
                block.astype(np.int16, copy=False),
                t0,
                first,
                column.groups,
                counts["class_count"][:, c - x0 : d - x0],
                counts["network_class_count"][a - n0 : b - n0],
            )
    return counts


# ----------------------------------------------------------------------------------------------
# Soft verdicts (kernels.soft)

#: The sums of :class:`kernels.soft.ExampleSoftSums`, indexed by example, summed over blocks of
#: networks.
SOFT_EXAMPLE_FIELDS = ("network_count", "statistic_sum", "statistic_square_sum", "region_count")


def soft_layouts(num_groups: int, num_statistics: int, num_regions: int) -> dict[str, CountLayout]:
    """The layout of each sum of :func:`soft_block` around its examples axis."""
    g, k, r = num_groups, num_statistics, num_regions
    return {
        "network_count": CountLayout((g,), ()),
        "statistic_sum": CountLayout((g, k), (), np.float64),
        "statistic_square_sum": CountLayout((g, k), (), np.float64),
        "region_count": CountLayout((g, r), ()),
    }


@dataclass(frozen=True)
class SoftTask:
    """What one soft task sums: a block of networks x examples, every checkpoint.

    It reads the codes of ``probability`` and ``margin`` and the verdict bits of
    ``correct_packed`` one block of checkpoints at a time, and keeps the per-(network, example)
    statistics of the networks ``table_networks`` (those of its block) besides the sums.
    """

    handle: StoreHandle
    split: str
    networks: tuple[int, int]
    examples: tuple[int, int]
    num_checkpoints: int
    #: int64 (n,): group of each network of the block, -1 for a network left out.
    network_group: np.ndarray
    num_groups: int
    #: Ids of the block's networks whose statistics per example are returned (ascending).
    table_networks: tuple[int, ...] = ()
    #: float64 (3,): the region thresholds (kernels.soft.RegionThresholds, in its order).
    thresholds: tuple[float, ...] = ()
    direct: bool = True
    #: The first checkpoint summed: 1 leaves out the initialisation (see soft_first_checkpoint).
    first_checkpoint: int = 0


def _read_correct_bits(
    array: Any, task: SoftTask, column: ChunkColumn, checkpoints: tuple[int, int], completed: Any
) -> np.ndarray:
    """Verdicts of one chunk column and block of checkpoints, dims (x, n, t), uint8 0 or 1."""
    (c, d) = column.examples
    b0, b1 = c // 8, -(-d // 8)
    packed = read_stored_order(
        array, column.networks, checkpoints, (b0, b1), direct=task.direct, completed=completed
    )
    bits = np.unpackbits(packed, axis=0, bitorder=BIT_ORDER)
    return bits[c - 8 * b0 : d - 8 * b0]


#: The decoded value of every stored code (engine.store.format), for the soft kernel.
PROBABILITY_VALUES = probability_values()
MARGIN_VALUES = margin_values()


def _sum_soft_column(
    arrays: dict[str, Any],
    task: SoftTask,
    column: ChunkColumn,
    example_sums: Any,
    table: np.ndarray | None,
    task_completed: np.ndarray | None,
) -> None:
    """Add the soft verdicts of one chunk column, every checkpoint, to the task's sums
    (``task_completed`` as for the verdict columns)."""
    from kernels.soft import RegionThresholds, SoftSums, accumulate_soft_codes, finish_soft

    (a, b), (c, d) = column.networks, column.examples
    first_network = task.networks[0]
    completed = task_completed[a - first_network :] if task_completed is not None else None
    sums = SoftSums.start(d - c, b - a)
    chunk_checkpoints = arrays["probability"].chunks[1]
    first = task.first_checkpoint
    for t0 in range(first - first % chunk_checkpoints, task.num_checkpoints, chunk_checkpoints):
        t1 = min(t0 + chunk_checkpoints, task.num_checkpoints)
        # Whole stored blocks are read (the direct path), then cut to the summed checkpoints.
        skip = max(first - t0, 0)

        def read(name: str, t0: int = t0, t1: int = t1, skip: int = skip) -> np.ndarray:
            block = read_stored_order(
                arrays[name], (a, b), (t0, t1), (c, d), direct=task.direct, completed=completed
            )
            return np.ascontiguousarray(block[:, :, skip:])

        correct = _read_correct_bits(arrays["correct_packed"], task, column, (t0, t1), completed)
        # The codes go to the kernel as stored: it decodes them by table.
        accumulate_soft_codes(
            read("probability"),
            read("margin"),
            np.ascontiguousarray(correct[:, :, skip:]),
            PROBABILITY_VALUES,
            MARGIN_VALUES,
            sums,
        )
    thresholds = RegionThresholds(*task.thresholds) if task.thresholds else RegionThresholds()
    x0 = task.examples[0]
    kept = [n - a for n in task.table_networks if a <= n < b]
    statistics = (
        np.empty((table.shape[0], d - c, b - a), np.float32) if table is not None and kept else None
    )
    view = type(example_sums)(*(field[..., c - x0 : d - x0] for field in example_sums))
    finish_soft(sums, column.groups, view, statistics, thresholds)
    if statistics is not None and table is not None:
        first = sum(1 for n in task.table_networks if n < a)
        table[:, c - x0 : d - x0, first : first + len(kept)] = statistics[:, :, kept]


def soft_block(task: SoftTask) -> dict[str, np.ndarray]:
    """Sums of the soft verdicts of one block of networks x examples over every checkpoint
    (one Dask task).

    Returns
    -------
    dict of ndarray
        The sums of :func:`soft_layouts` over the task's examples (int32, the statistics'
        float64) and, where the task has ``table_networks``, ``network_statistics`` float32
        (k, x, m): each statistic of each of those networks on each example, NaN where it
        recorded nothing.
    """
    from kernels.soft import STATISTICS, ExampleSoftSums

    arrays = {
        name: task.handle.open_array(f"splits/{task.split}/{name}")
        for name in ("probability", "margin", "correct_packed")
    }
    (x0, x1) = task.examples
    network_group = np.ascontiguousarray(task.network_group, dtype=np.int64)
    example_sums = ExampleSoftSums.start(task.num_groups, x1 - x0)
    table = (
        np.full((len(STATISTICS), x1 - x0, len(task.table_networks)), np.nan, np.float32)
        if task.table_networks
        else None
    )
    chunk_n, _, chunk_x = arrays["probability"].chunks
    # Columns whose networks are all left out are skipped: table networks are analysed ones.
    task_completed = task.handle.completed(task.networks)
    for column in chunk_columns(network_group, task.networks, task.examples, chunk_n, chunk_x):
        _sum_soft_column(arrays, task, column, example_sums, table, task_completed)
    counts = dict(zip(SOFT_EXAMPLE_FIELDS, example_sums, strict=True))
    if table is not None:
        counts["network_statistics"] = table
    return counts

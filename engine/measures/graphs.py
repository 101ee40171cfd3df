"""Lazy Dask graphs of the counts behind every measure of one split.

Layout letters: n networks, t checkpoints, x examples, k classes (statistics in
:func:`soft_statistics`), r regions, m table networks, g groups, s split-halvings.

:func:`verdict_statistics`, :func:`class_statistics` and :func:`soft_statistics` schedule one
task of :mod:`engine.measures.tasks` per stored column of chunks (a block of networks by a block
of examples, every checkpoint); the tasks' counts are added by a tree of Dask tasks, example counts
over blocks of networks and network counts over blocks of examples. Nothing here calls
``.compute()``: the caller picks the scheduler.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.measures.selection import NetworkSelection
from engine.measures.tasks import (
    CLASS_EXAMPLE_FIELDS,
    CLASS_NETWORK_FIELDS,
    SOFT_EXAMPLE_FIELDS,
    VERDICT_EXAMPLE_FIELDS,
    VERDICT_NETWORK_FIELDS,
    ClassTask,
    CountLayout,
    SoftTask,
    VerdictTask,
    class_block,
    class_layouts,
    soft_block,
    soft_layouts,
    verdict_block,
    verdict_layouts,
)
from engine.store import DEFAULT_NETWORK_BLOCK, StoreHandle

if TYPE_CHECKING:
    from engine.store import Population

#: Name prefixes of the tasks that read one column of stored chunks (a progress bar counts them).
VERDICT_TASK_PREFIX = "verdict-block-"
CLASS_TASK_PREFIX = "class-block-"
SOFT_TASK_PREFIX = "soft-block-"
CHUNK_TASK_PREFIXES = (VERDICT_TASK_PREFIX, CLASS_TASK_PREFIX, SOFT_TASK_PREFIX)

Range = tuple[int, int]
Counts = dict[str, np.ndarray]


def _handle(population: Population) -> StoreHandle:
    options = population.storage_options or {}
    return StoreHandle(
        str(population.path), tuple(sorted(options.items())), population.format_version
    )


def _ranges(size: int, step: int) -> list[Range]:
    return [(a, min(a + step, size)) for a in range(0, size, step)] or [(0, 0)]


def _task_ranges(
    population: Population,
    split: str,
    name: str,
    networks_per_task: int | None,
    examples_per_task: int | None,
    size: int,
) -> tuple[list[Range], list[Range]]:
    """Ranges of networks and of the array's last axis (examples, or example bytes) per task."""
    # population.array: a store lacking the array is a one-line StoreError, not a KeyError.
    chunk_n, _, chunk_x = population.array(f"splits/{split}/{name}").chunks
    per_unit = 8 if name == "correct_packed" else 1
    # Tasks own whole stored chunks, so that every chunk is decoded once.
    # Stores of independent runs hold one network per chunk: a task still takes a block of
    # them, so that the graph has as many tasks as for a store of blocks.
    wanted_networks = networks_per_task or max(chunk_n, DEFAULT_NETWORK_BLOCK)
    nb = chunk_n * max(1, math.ceil(wanted_networks / chunk_n))
    wanted = math.ceil((examples_per_task or chunk_x * per_unit) / per_unit)
    xb = chunk_x * max(1, math.ceil(wanted / chunk_x))
    return (_ranges(population.num_networks, nb), [r for r in _ranges(size, xb) if r[1] > r[0]])


def _token(handle: StoreHandle, selection: NetworkSelection) -> str:
    from dask.base import tokenize

    return tokenize(handle, selection.network_group, selection.network_half)[:10]


# ----------------------------------------------------------------------------------------------
# Adding up the tasks' counts


def _add(fields: tuple[str, ...], *parts: Counts) -> Counts:
    """Sum the named fields of several tasks' counts."""
    # Counts stay int32 (each is at most networks x checkpoints); half sums are int64.
    total = {name: parts[0][name].copy() for name in fields}
    for part in parts[1:]:
        for name in fields:
            total[name] += part[name]
    return total


def _pick(part: Counts, name: str) -> np.ndarray:
    return part[name]


def _join(fields: tuple[str, ...], *parts: Counts) -> Counts:
    """Concatenate the named fields of consecutive blocks of networks."""
    return {name: np.concatenate([part[name] for part in parts], axis=0) for name in fields}


def _merge(
    example_fields: tuple[str, ...], network_fields: tuple[str, ...], *parts: Counts
) -> Counts:
    """Consecutive blocks of networks over the same examples as one: example fields summed,
    network fields joined along networks."""
    merged = _add(example_fields, *parts)
    merged.update(_join(network_fields, *parts))
    return merged


def _tree(parts: list, combine: Callable[..., Counts], split_every: int = 8) -> Any:
    import dask

    parts = [dask.delayed(combine, pure=True)(*parts)] if len(parts) == 1 else parts
    while len(parts) > 1:
        parts = [
            dask.delayed(combine, pure=True)(*parts[i : i + split_every])
            for i in range(0, len(parts), split_every)
        ]
    return parts[0]


def _assemble(
    blocks: dict[tuple[int, int], Any],
    network_ranges: list[Range],
    example_ranges: list[Range],
    layouts: dict[str, CountLayout],
    example_fields: tuple[str, ...],
    network_fields: tuple[str, ...],
) -> dict[str, Any]:
    """Lazy arrays of every field: example fields summed over blocks of networks and joined
    along examples; network fields summed over blocks of examples and joined along networks."""
    import dask
    import dask.array as da

    result = {}
    # One tree per column of examples takes each task's counts once, summing the example fields
    # and joining the network fields of its blocks of networks. Two trees over the same tasks
    # (one per kind of field) left Dask holding most tasks' counts until both had run: 114 of
    # 157 at 20,000 x 50 x 10,000, 1.5 GB, where one tree holds a few.
    merge = functools.partial(_merge, example_fields, network_fields)
    by_example = [
        _tree([blocks[(i, j)] for i in range(len(network_ranges))], merge)
        for j in range(len(example_ranges))
    ]
    for name in example_fields:
        layout = layouts[name]
        pieces = [
            da.from_delayed(
                dask.delayed(_pick, pure=True)(part, name),
                shape=layout.shape(x1 - x0),
                dtype=layout.dtype,
            )
            for part, (x0, x1) in zip(by_example, example_ranges, strict=True)
        ]
        result[name] = (
            pieces[0] if len(pieces) == 1 else da.concatenate(pieces, axis=len(layout.before))
        )
    # The network fields of every column of examples, added in one task (they are small).
    total_networks = dask.delayed(functools.partial(_add, network_fields), pure=True)(*by_example)
    total = network_ranges[-1][1]
    for name in network_fields:
        layout = layouts[name]
        result[name] = da.from_delayed(
            dask.delayed(_pick, pure=True)(total_networks, name),
            shape=layout.shape(total),
            dtype=layout.dtype,
        )
    return result


def _empty(
    layouts: dict[str, CountLayout],
    example_fields: tuple[str, ...],
    network_fields: tuple[str, ...],
    num_networks: int,
) -> dict[str, Any]:
    """The lazy fields of a split without examples (see :func:`_assemble`)."""
    import dask.array as da

    result = {
        name: da.zeros(layouts[name].shape(0), dtype=layouts[name].dtype) for name in example_fields
    }
    result.update(
        {
            name: da.zeros(layouts[name].shape(num_networks), dtype=layouts[name].dtype)
            for name in network_fields
        }
    )
    return result


# ----------------------------------------------------------------------------------------------
# Graph builders


def verdict_statistics(
    population: Population,
    split: str,
    selection: NetworkSelection,
    *,
    networks_per_task: int | None = None,
    examples_per_task: int | None = None,
    direct: bool = True,
) -> dict[str, Any]:
    """Lazy counts of the verdict measures of one split (see :mod:`kernels.agreement`).

    Parameters
    ----------
    population : engine.Population
    split : str
    selection : NetworkSelection
    networks_per_task, examples_per_task : int, optional
        Size of a task, rounded up to whole stored chunks (default: one chunk of each).
    direct : bool
        Decode the store's chunks straight into (x, n, t) order where the encoding allows.

    Returns
    -------
    dict of dask.array.Array, int32 (``half_sum`` int64)
        ``tpa_count`` (g, x, t), ``holdout_count`` (g, x, t), ``forgetting_count`` (g, x),
        ``first_learned_histogram`` (g, x, t + 1), ``half_sum`` (g, s, x),
        ``holdout_networks`` (g, x), ``network_count`` (n, t), ``network_forgetting`` (n,).
    """
    import dask

    population.require_split(split)
    handle = _handle(population)
    total = population.num_checkpoints
    membership = population.attrs.get("membership_split") == split
    examples = population.num_examples(split)
    network_ranges, byte_ranges = _task_ranges(
        population, split, "correct_packed", networks_per_task, examples_per_task, -(-examples // 8)
    )
    example_ranges = [(8 * b0, min(8 * b1, examples)) for b0, b1 in byte_ranges]
    layouts = verdict_layouts(selection.num_groups, selection.network_half.shape[0], total)
    if not example_ranges:
        return _empty(
            layouts, VERDICT_EXAMPLE_FIELDS, VERDICT_NETWORK_FIELDS, population.num_networks
        )
    blocks = {}
    token = _token(handle, selection)
    for i, (n0, n1) in enumerate(network_ranges):
        for j, byte_range in enumerate(byte_ranges):
            task = VerdictTask(
                handle,
                split,
                (n0, n1),
                byte_range,
                examples,
                total,
                selection.network_group[n0:n1],
                selection.network_half[:, n0:n1],
                selection.num_groups,
                membership,
                direct,
            )
            blocks[(i, j)] = dask.delayed(verdict_block, pure=True)(
                task, dask_key_name=f"{VERDICT_TASK_PREFIX}{split}-{token}-{i}-{j}"
            )
    return _assemble(
        blocks,
        network_ranges,
        example_ranges,
        layouts,
        VERDICT_EXAMPLE_FIELDS,
        VERDICT_NETWORK_FIELDS,
    )


def class_statistics(
    population: Population,
    split: str,
    selection: NetworkSelection,
    num_classes: int,
    *,
    checkpoints: Range | None = None,
    networks_per_task: int | None = None,
    examples_per_task: int | None = None,
    direct: bool = True,
) -> dict[str, Any] | None:
    """Lazy class counts of one split's predictions, or None where none are stored.

    Parameters
    ----------
    population : engine.Population
    split : str
    selection : NetworkSelection
    num_classes : int
        Classes counted; predictions past the last one are skipped.
    checkpoints : (int, int), optional
        First and stop checkpoint counted (default: all).
    networks_per_task, examples_per_task, direct
        As in :func:`verdict_statistics`.

    Returns
    -------
    dict of dask.array.Array, int32
        ``class_count`` (g, x, t, k) and ``network_class_count`` (n, t, k), over the checkpoints
        ``checkpoints``.
    """
    import dask

    if population.predictions(split) is None:
        return None
    handle = _handle(population)
    first, stop = checkpoints if checkpoints is not None else (0, population.num_checkpoints)
    network_ranges, example_ranges = _task_ranges(
        population,
        split,
        "predictions",
        networks_per_task,
        examples_per_task,
        population.num_examples(split),
    )
    layouts = class_layouts(selection.num_groups, stop - first, num_classes)
    if not example_ranges:
        return _empty(layouts, CLASS_EXAMPLE_FIELDS, CLASS_NETWORK_FIELDS, population.num_networks)
    blocks = {}
    token = _token(handle, selection)
    for i, (n0, n1) in enumerate(network_ranges):
        for j, (x0, x1) in enumerate(example_ranges):
            task = ClassTask(
                handle,
                split,
                (n0, n1),
                (x0, x1),
                (first, stop),
                selection.network_group[n0:n1],
                selection.num_groups,
                num_classes,
                direct,
            )
            blocks[(i, j)] = dask.delayed(class_block, pure=True)(
                task, dask_key_name=f"{CLASS_TASK_PREFIX}{split}-{token}-{first}-{i}-{j}"
            )
    return _assemble(
        blocks, network_ranges, example_ranges, layouts, CLASS_EXAMPLE_FIELDS, CLASS_NETWORK_FIELDS
    )


def _table_assembly(
    blocks: dict[tuple[int, int], Any],
    table_ranges: list[Range],
    example_ranges: list[Range],
    num_statistics: int,
) -> Any:
    """The per-network statistics of the tasks, (k, x, m): joined along examples within a block
    of networks, then along the table's networks."""
    import dask
    import dask.array as da

    rows = []
    for i, (m0, m1) in enumerate(table_ranges):
        if m1 == m0:
            continue
        rows.append(
            da.concatenate(
                [
                    da.from_delayed(
                        dask.delayed(_pick, pure=True)(blocks[(i, j)], "network_statistics"),
                        shape=(num_statistics, x1 - x0, m1 - m0),
                        dtype=np.float32,
                    )
                    for j, (x0, x1) in enumerate(example_ranges)
                ],
                axis=1,
            )
        )
    return rows[0] if len(rows) == 1 else da.concatenate(rows, axis=2)


def soft_first_checkpoint(population: Population) -> int:
    """The first checkpoint of the soft-verdict statistics: 1 where checkpoint 0 is the
    initialisation (epoch 0) and others follow, else 0.

    Cartography measures a network's confidence after each epoch of training; at initialisation
    every network sits near chance on every example, and that one checkpoint would add the same
    large swing to every example's variability (with ten epochs, it alone makes most examples
    "ambiguous").
    """
    epochs = population.checkpoints["epoch"].to_numpy()
    return 1 if epochs.size > 1 and epochs[0] == 0 else 0


def soft_statistics(
    population: Population,
    split: str,
    selection: NetworkSelection,
    *,
    table_networks: np.ndarray | None = None,
    networks_per_task: int | None = None,
    examples_per_task: int | None = None,
    direct: bool = True,
) -> dict[str, Any] | None:
    """Lazy sums of the soft verdicts of one split (see :mod:`kernels.soft`), or None where the
    split stores none.

    Parameters
    ----------
    population : engine.Population
    split : str
    selection : NetworkSelection
    table_networks : ndarray of int, dims (m,), optional
        Analysed networks whose statistics per example are returned too, in ascending order of
        id whatever the order given (for data maps of single networks and the per-network table).
    networks_per_task, examples_per_task, direct
        As in :func:`verdict_statistics`.

    Returns
    -------
    dict of dask.array.Array
        The fields of :class:`kernels.soft.ExampleSoftSums`: ``network_count`` int32 (g, x),
        ``statistic_sum`` and ``statistic_square_sum`` float64 (g, k, x), ``region_count``
        int32 (g, r, x); with ``table_networks``, ``network_statistics`` float32 (k, x, m), NaN
        where a network recorded nothing.

    Raises
    ------
    ConfigError
        If a table network is not one of the analysed networks.
    """
    import dask

    from engine.errors import ConfigError
    from kernels.soft import REGIONS, STATISTICS, RegionThresholds

    if not population.soft_arrays(split):
        return None
    handle = _handle(population)
    total = population.num_checkpoints
    chosen = np.unique(np.asarray(table_networks if table_networks is not None else [], np.int64))
    if chosen.size and (
        chosen.min() < 0
        or chosen.max() >= population.num_networks
        or (selection.network_group[chosen] < 0).any()
    ):
        raise ConfigError("the networks of a soft-verdict table must be analysed networks")
    network_ranges, example_ranges = _task_ranges(
        population,
        split,
        "probability",
        networks_per_task,
        examples_per_task,
        population.num_examples(split),
    )
    layouts = soft_layouts(selection.num_groups, len(STATISTICS), len(REGIONS))
    if not example_ranges:
        result = _empty(layouts, SOFT_EXAMPLE_FIELDS, (), population.num_networks)
        if chosen.size:
            import dask.array as da

            result["network_statistics"] = da.zeros(
                (len(STATISTICS), 0, chosen.size), dtype=np.float32
            )
        return result
    blocks = {}
    table_ranges = []
    token = _token(handle, selection)
    thresholds = tuple(float(v) for v in RegionThresholds())
    for i, (n0, n1) in enumerate(network_ranges):
        mine = tuple(int(n) for n in chosen[(chosen >= n0) & (chosen < n1)])
        first = int((chosen < n0).sum())
        table_ranges.append((first, first + len(mine)))
        for j, (x0, x1) in enumerate(example_ranges):
            task = SoftTask(
                handle,
                split,
                (n0, n1),
                (x0, x1),
                total,
                selection.network_group[n0:n1],
                selection.num_groups,
                mine,
                thresholds,
                direct,
                soft_first_checkpoint(population),
            )
            name = f"{SOFT_TASK_PREFIX}{split}-{token}-{_networks_token(mine)}-{i}-{j}"
            blocks[(i, j)] = dask.delayed(soft_block, pure=True)(task, dask_key_name=name)
    result = _assemble(blocks, network_ranges, example_ranges, layouts, SOFT_EXAMPLE_FIELDS, ())
    if chosen.size:
        result["network_statistics"] = _table_assembly(
            blocks, table_ranges, example_ranges, len(STATISTICS)
        )
    return result


def _networks_token(networks: tuple[int, ...]) -> str:
    """A short token of a task's table networks: graphs asking for other networks never share
    a task name."""
    from dask.base import tokenize

    return tokenize(networks)[:8]


def num_classes_of(population: Population) -> int:
    """Number of classes: the class names, else one more than the largest label."""
    names = population.attrs.get("class_names")
    if names:
        return len(names)
    largest = max(
        (int(population.labels(s).max(initial=-1)) for s in population.splits), default=-1
    )
    return max(1, largest + 1)

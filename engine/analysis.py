"""Lazy Dask graphs of the paper's measures over a population store, and their final algebra.

Layout letters: n networks, t checkpoints, x examples, k classes, g groups, s split-halvings.

The graph builders (:func:`verdict_statistics`, :func:`class_statistics`) schedule one task per
stored column of chunks, a block of networks by a block of examples with every checkpoint. A task
reads its chunks one block of checkpoints at a time, in the store's stored order (x, n, t), and
runs the kernels of :mod:`kernels.agreement` and :mod:`kernels.consensus` on them, carrying the
learning state from one block of checkpoints to the next: memory is one stored chunk and the
task's counts, whatever the size of the store. The tasks read the store themselves, by path or
URL, so that no verdict block travels between processes or machines; the counts are added by a
tree of Dask tasks. Nothing here calls ``.compute()``: the caller picks the scheduler.

The final measures (:func:`split_measures`) are plain NumPy on the counts, which are small
(checkpoints x examples).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import StoreError
from engine.store import StoreHandle, read_stored_order

#: Random halvings of the networks for the split-half reliability of the learning order.
DEFAULT_HALVINGS = 10
#: Name prefixes of the tasks that read one column of stored chunks (a progress bar counts them).
VERDICT_TASK_PREFIX = "verdict-block-"
CLASS_TASK_PREFIX = "class-block-"
CHUNK_TASK_PREFIXES = (VERDICT_TASK_PREFIX, CLASS_TASK_PREFIX)
#: Samples of the consensus null per checkpoint.
CONSENSUS_NULL_SAMPLES = 512

#: Counts indexed by example, summed over blocks of networks.
_EXAMPLE_FIELDS = ("tpa_count", "holdout_count", "forgetting_count", "first_learned_histogram",
                   "half_sum", "holdout_networks")
#: Counts indexed by network, summed over blocks of examples.
_NETWORK_FIELDS = ("network_count", "network_forgetting")


def _read_nonmember(array, networks, example_bytes) -> np.ndarray:
    """Bits of the examples each network did not train on, dims (b, n), uint8, from the
    (networks, examples) bool ``membership`` array."""
    (n0, n1), (b0, b1) = networks, example_bytes
    try:
        member = np.asarray(array[n0:n1, 8 * b0: min(8 * b1, array.shape[1])])
    except Exception as error:
        raise StoreError(f"corrupt or unreadable chunk in {array.store_path}: "
                         f"{type(error).__name__}") from error
    return np.packbits(~member.T, axis=0, bitorder="little")


def _chunk_columns(network_group: np.ndarray, networks: tuple[int, int],
                   examples: tuple[int, int], chunk_networks: int, chunk_examples: int):
    """Each stored chunk column ``(a, b, c, d, groups)`` of a task: networks [a, b) by examples
    (or example bytes) [c, d), with the groups of its networks; columns with no analysed
    network are skipped."""
    (n0, n1), (x0, x1) = networks, examples
    for a in range(n0, n1, chunk_networks):
        b = min(a + chunk_networks, n1)
        groups = network_group[a - n0: b - n0]
        if (groups < 0).all():
            continue
        for c in range(x0, x1, chunk_examples):
            yield a, b, c, min(c + chunk_examples, x1), groups


# ----------------------------------------------------------------------------------------------
# Tasks (run on workers)


def verdict_block(handle: StoreHandle, split: str, networks: tuple[int, int],
                  example_bytes: tuple[int, int], num_examples: int, num_checkpoints: int,
                  network_group: np.ndarray, network_half: np.ndarray, num_groups: int,
                  membership: bool, direct: bool = True) -> dict[str, np.ndarray]:
    """Counts of one block of networks x examples over every checkpoint (one Dask task).

    ``example_bytes`` is a range of bytes of ``correct_packed`` (8 examples each); the counts
    cover the examples ``8 b0 .. min(8 b1, num_examples)``.
    """
    from kernels.agreement import accumulate_verdicts, finish_verdicts

    array = handle.open_array(f"splits/{split}/correct_packed")
    (n0, n1), (b0, b1) = networks, example_bytes
    nb, xb, total = n1 - n0, 8 * (b1 - b0), num_checkpoints
    network_group = np.ascontiguousarray(network_group, dtype=np.int64)
    network_half = np.ascontiguousarray(network_half, dtype=np.uint8)
    out = {
        "tpa_count": np.zeros((num_groups, xb, total), np.int32),
        "holdout_count": np.zeros((num_groups, xb, total), np.int32),
        "forgetting_count": np.zeros((num_groups, xb), np.int32),
        "first_learned_histogram": np.zeros((num_groups, xb, total + 1), np.int32),
        "half_sum": np.zeros((num_groups, network_half.shape[0], xb), np.int32),
        "holdout_networks": np.zeros((num_groups, xb), np.int32),
        "network_count": np.zeros((nb, total), np.int32),
        "network_forgetting": np.zeros(nb, np.int32),
    }
    member_array = handle.open_array(f"splits/{split}/membership") if membership else None
    chunk_n, chunk_t, chunk_b = array.chunks
    for a, b, c, d, groups in _chunk_columns(network_group, networks, example_bytes, chunk_n,
                                             chunk_b):
        nonmember = (_read_nonmember(member_array, (a, b), (c, d)) if membership
                     else np.zeros((0, 0), np.uint8))
        state = [np.zeros((d - c, b - a), np.uint8),
                 np.full((8 * (d - c), b - a), total, np.int32),
                 np.zeros((8 * (d - c), b - a), np.int32)]
        xs, ns = slice(8 * (c - b0), 8 * (d - b0)), slice(a - n0, b - n0)
        for t0 in range(0, total, chunk_t):
            t1 = min(t0 + chunk_t, total)
            block = read_stored_order(array, (a, b), (t0, t1), (c, d), direct=direct)
            accumulate_verdicts(block, t0, groups, nonmember, *state,
                                out["tpa_count"][:, xs], out["holdout_count"][:, xs],
                                out["network_count"][ns], out["forgetting_count"][:, xs],
                                out["network_forgetting"][ns])
        finish_verdicts(*state, groups, nonmember, network_half[:, a - n0: b - n0],
                        out["first_learned_histogram"][:, xs], out["half_sum"][:, :, xs],
                        out["holdout_networks"][:, xs])
    # The kernel counts changes along checkpoints; their running sum is the count.
    np.cumsum(out["tpa_count"], axis=2, out=out["tpa_count"])
    np.cumsum(out["holdout_count"], axis=2, out=out["holdout_count"])
    out["half_sum"] = out["half_sum"].astype(np.int64)
    keep = min(xb, num_examples - 8 * b0)
    for name in _EXAMPLE_FIELDS:
        out[name] = out[name][..., :keep, :] if out[name].ndim == 3 and name != "half_sum" \
            else out[name][..., :keep]
    return out


def class_block(handle: StoreHandle, split: str, networks: tuple[int, int],
                examples: tuple[int, int], checkpoints: tuple[int, int],
                network_group: np.ndarray, num_groups: int, num_classes: int,
                direct: bool = True) -> dict[str, np.ndarray]:
    """Class counts of one block of networks x examples over a range of checkpoints."""
    from kernels.consensus import count_classes

    array = handle.open_array(f"splits/{split}/predictions")
    (n0, n1), (x0, x1), (first, stop) = networks, examples, checkpoints
    network_group = np.ascontiguousarray(network_group, dtype=np.int64)
    kept = stop - first
    out = {"class_count": np.zeros((num_groups, x1 - x0, kept, num_classes), np.int32),
           "network_class_count": np.zeros((n1 - n0, kept, num_classes), np.int32)}
    chunk_n, chunk_t, chunk_x = array.chunks
    for a, b, c, d, groups in _chunk_columns(network_group, networks, examples, chunk_n,
                                             chunk_x):
        for t0 in range(first - first % chunk_t, stop, chunk_t):
            t1 = min(t0 + chunk_t, stop)
            block = read_stored_order(array, (a, b), (t0, t1), (c, d), direct=direct)
            count_classes(block.astype(np.int16, copy=False), t0, first, groups,
                          out["class_count"][:, c - x0: d - x0],
                          out["network_class_count"][a - n0: b - n0])
    return out


def _add(fields: tuple[str, ...], *parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sum the named fields of several tasks' counts."""
    # Counts stay int32 (each is at most networks x checkpoints); half sums are int64.
    total = {name: parts[0][name].copy() for name in fields}
    for part in parts[1:]:
        for name in fields:
            total[name] += part[name]
    return total


def _pick(part: dict[str, np.ndarray], name: str) -> np.ndarray:
    return part[name]


# ----------------------------------------------------------------------------------------------
# Graph builders


@dataclass(frozen=True)
class NetworkSelection:
    """Which networks are analysed, their groups and the random halvings of each group.

    ``network_group`` holds -1 for networks left out (incomplete ones); halvings are drawn within
    each group, so that a halving of the whole population is stratified by group.
    """

    network_group: np.ndarray  # int64 (n,)
    group_names: tuple[str, ...]
    network_half: np.ndarray  # uint8 (s, n)

    @property
    def num_groups(self) -> int:
        return len(self.group_names)

    def networks_in(self, groups) -> np.ndarray:
        return np.isin(self.network_group, list(groups))


def select_networks(population, *, networks: np.ndarray | None = None,
                    halvings: int = DEFAULT_HALVINGS, seed: int = 0) -> NetworkSelection:
    """The analysed networks (default: the complete ones), their groups and halvings."""
    group = population.network_groups().astype(np.int64)
    chosen = population.complete_networks() if networks is None else np.asarray(networks)
    keep = np.zeros(population.num_networks, bool)
    keep[chosen] = True
    group = np.where(keep, group, -1)
    rng = np.random.default_rng(seed)
    half = np.zeros((halvings, population.num_networks), np.uint8)
    members = [np.flatnonzero(group == g) for g in range(len(population.group_names))]
    for s in range(halvings):
        for group_members in members:
            half[s, rng.permutation(group_members)[: group_members.size // 2]] = 1
    return NetworkSelection(group, tuple(population.group_names), half)


def _handle(population) -> StoreHandle:
    options = getattr(population, "storage_options", None) or {}
    return StoreHandle(str(population.path), tuple(sorted(options.items())))


def _ranges(size: int, step: int) -> list[tuple[int, int]]:
    return [(a, min(a + step, size)) for a in range(0, size, step)] or [(0, 0)]


def _task_ranges(population, split: str, name: str, networks_per_task, examples_per_task,
                 size: int):
    """Ranges of networks and of the array's last axis (examples, or example bytes) per task."""
    # _array: a store lacking the array is a one-line StoreError, not a KeyError.
    chunk_n, _, chunk_x = population.array(f"splits/{split}/{name}").chunks
    per_unit = 8 if name == "correct_packed" else 1
    # Tasks own whole stored chunks, so that every chunk is decoded once.
    nb = chunk_n * max(1, math.ceil((networks_per_task or chunk_n) / chunk_n))
    wanted = math.ceil((examples_per_task or chunk_x * per_unit) / per_unit)
    xb = chunk_x * max(1, math.ceil(wanted / chunk_x))
    return (_ranges(population.num_networks, nb), [r for r in _ranges(size, xb) if r[1] > r[0]])


def _tree(parts: list, combine, split_every: int = 8):
    import dask

    parts = [dask.delayed(combine, pure=True)(*parts)] if len(parts) == 1 else parts
    while len(parts) > 1:
        parts = [dask.delayed(combine, pure=True)(*parts[i: i + split_every])
                 for i in range(0, len(parts), split_every)]
    return parts[0]


def _join(fields: tuple[str, ...], *parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Concatenate the named fields of consecutive blocks of networks."""
    return {name: np.concatenate([part[name] for part in parts], axis=0) for name in fields}


def _dtype(name: str):
    return np.int64 if name == "half_sum" else np.int32


def _assemble(blocks: dict[tuple[int, int], Any], network_ranges, example_ranges, shapes,
              example_fields, network_fields):
    """Lazy arrays of every field: example fields summed over blocks of networks and joined
    along examples; network fields summed over blocks of examples and joined along networks."""
    import dask
    import dask.array as da

    result = {}
    add_examples = functools.partial(_add, tuple(example_fields))
    add_networks = functools.partial(_add, tuple(network_fields))
    by_example = [_tree([blocks[(i, j)] for i in range(len(network_ranges))], add_examples)
                  for j in range(len(example_ranges))]
    for name in example_fields:
        lead, trail = shapes[name]
        pieces = [da.from_delayed(dask.delayed(_pick, pure=True)(part, name),
                                  shape=(*lead, x1 - x0, *trail), dtype=_dtype(name))
                  for part, (x0, x1) in zip(by_example, example_ranges, strict=True)]
        result[name] = pieces[0] if len(pieces) == 1 else da.concatenate(pieces, axis=len(lead))
    by_network = [_tree([blocks[(i, j)] for j in range(len(example_ranges))], add_networks)
                  for i in range(len(network_ranges))]
    # One task joins the per-network sums: they are small, and one task per block of networks
    # and field would cost more to schedule than to compute.
    joined = dask.delayed(functools.partial(_join, tuple(network_fields)), pure=True)(
        *by_network)
    total = network_ranges[-1][1]
    for name in network_fields:
        result[name] = da.from_delayed(dask.delayed(_pick, pure=True)(joined, name),
                                       shape=(total, *shapes[name][1]), dtype=_dtype(name))
    return result


def verdict_statistics(population, split: str, selection: NetworkSelection, *,
                       networks_per_task: int | None = None, examples_per_task: int | None = None,
                       direct: bool = True) -> dict[str, Any]:
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
    network_ranges, byte_ranges = _task_ranges(population, split, "correct_packed",
                                               networks_per_task, examples_per_task,
                                               -(-examples // 8))
    example_ranges = [(8 * b0, min(8 * b1, examples)) for b0, b1 in byte_ranges]
    groups, halvings = selection.num_groups, selection.network_half.shape[0]
    shapes = {
        "tpa_count": ((groups,), (total,)), "holdout_count": ((groups,), (total,)),
        "forgetting_count": ((groups,), ()), "first_learned_histogram": ((groups,), (total + 1,)),
        "half_sum": ((groups, halvings), ()), "holdout_networks": ((groups,), ()),
        "network_count": ((), (total,)), "network_forgetting": ((), ()),
    }
    if not example_ranges:
        return _empty(shapes, _EXAMPLE_FIELDS, _NETWORK_FIELDS, population.num_networks)
    blocks = {}
    token = _token(handle, selection)
    for i, (n0, n1) in enumerate(network_ranges):
        block_group = selection.network_group[n0:n1]
        for j, byte_range in enumerate(byte_ranges):
            blocks[(i, j)] = dask.delayed(verdict_block, pure=True)(
                handle, split, (n0, n1), byte_range, examples, total, block_group,
                selection.network_half[:, n0:n1], groups, membership, direct,
                dask_key_name=f"{VERDICT_TASK_PREFIX}{split}-{token}-{i}-{j}")
    return _assemble(blocks, network_ranges, example_ranges, shapes, _EXAMPLE_FIELDS,
                     _NETWORK_FIELDS)


def _empty(shapes, example_fields, network_fields, num_networks: int) -> dict[str, Any]:
    """The lazy fields of a split without examples (see :func:`_assemble`)."""
    import dask.array as da

    result = {name: da.zeros((*shapes[name][0], 0, *shapes[name][1]), dtype=_dtype(name))
              for name in example_fields}
    result.update({name: da.zeros((num_networks, *shapes[name][1]), dtype=_dtype(name))
                   for name in network_fields})
    return result


def _token(handle: StoreHandle, selection: NetworkSelection) -> str:
    from dask.base import tokenize

    return tokenize(handle, selection.network_group, selection.network_half)[:10]


def class_statistics(population, split: str, selection: NetworkSelection, num_classes: int, *,
                     checkpoints: tuple[int, int] | None = None,
                     networks_per_task: int | None = None, examples_per_task: int | None = None,
                     direct: bool = True) -> dict[str, Any] | None:
    """Lazy class counts of one split's predictions, or None where none are stored.

    Returns
    -------
    dict of dask.array.Array, int32
        ``class_count`` (g, x, t, k) and ``network_class_count`` (n, t, k), over the checkpoints
        ``checkpoints`` (default: all).
    """
    import dask

    if population.predictions(split) is None:
        return None
    handle = _handle(population)
    first, stop = checkpoints if checkpoints is not None else (0, population.num_checkpoints)
    network_ranges, example_ranges = _task_ranges(population, split, "predictions",
                                                  networks_per_task, examples_per_task,
                                                  population.num_examples(split))
    groups, kept = selection.num_groups, stop - first
    shapes = {"class_count": ((groups,), (kept, num_classes)),
              "network_class_count": ((), (kept, num_classes))}
    if not example_ranges:
        return _empty(shapes, ("class_count",), ("network_class_count",),
                      population.num_networks)
    blocks = {}
    token = _token(handle, selection)
    for i, (n0, n1) in enumerate(network_ranges):
        for j, (x0, x1) in enumerate(example_ranges):
            blocks[(i, j)] = dask.delayed(class_block, pure=True)(
                handle, split, (n0, n1), (x0, x1), (first, stop),
                selection.network_group[n0:n1], groups, num_classes, direct,
                dask_key_name=f"{CLASS_TASK_PREFIX}{split}-{token}-{first}-{i}-{j}")
    return _assemble(blocks, network_ranges, example_ranges, shapes, ("class_count",),
                     ("network_class_count",))


def num_classes_of(population) -> int:
    """Number of classes: the class names, else one more than the largest label."""
    names = population.attrs.get("class_names")
    if names:
        return len(names)
    largest = max((int(population.labels(s).max(initial=-1)) for s in population.splits),
                  default=-1)
    return max(1, largest + 1)


# ----------------------------------------------------------------------------------------------
# Final algebra on the counts (NumPy, small arrays)


def spearman_brown(correlation: float) -> float:
    """Reliability of the whole from the correlation of two halves."""
    return 2.0 * correlation / (1.0 + correlation) if correlation > -1 else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two vectors, NaN where either is constant or too short."""
    from scipy.stats import spearmanr

    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def split_measures(counts: dict[str, np.ndarray], selection: NetworkSelection, groups,
                   labels: np.ndarray, classes: dict[str, np.ndarray] | None = None,
                   classes_last_only: bool = False, membership: bool = False,
                   consensus_seed: int = 0) -> dict[str, Any]:
    """Every measure of one split for the networks of ``groups``, from computed counts.

    Parameters
    ----------
    counts : dict of ndarray
        Computed :func:`verdict_statistics` (or None for a split without labels).
    groups : sequence of int
        Group indices pooled together (all of them for the whole population).
    labels : int (x,)
        Examples without a label (-1) are left out of the correctness measures.
    classes : dict of ndarray, optional
        Computed :func:`class_statistics`.

    Returns
    -------
    dict
        ``summary`` (JSON-able numbers and lists) and ``examples`` (arrays per example).
    """
    from scipy.stats import binom

    from kernels.agreement import poisson_binomial
    from kernels.learning import histogram_mean_median

    groups = list(groups)
    in_groups = selection.networks_in(groups)
    size = int(in_groups.sum())
    summary: dict[str, Any] = {"networks": size}
    per_example: dict[str, np.ndarray] = {}
    examples = labels.size
    labelled = labels >= 0
    if counts is not None and labelled.any() and size:
        # Here x_count >= 1 and size >= 1.
        tpa_count = counts["tpa_count"][groups].sum(axis=0)[labelled].T  # (t, x)
        total, x_count = tpa_count.shape
        network_accuracy = counts["network_count"][in_groups] / x_count  # (n, t)
        tpa = tpa_count / size
        accuracy_mean = network_accuracy.mean(axis=0)
        histogram = np.stack([np.bincount(row, minlength=size + 1) for row in tpa_count])
        null = np.stack([poisson_binomial(np.ascontiguousarray(network_accuracy[:, t]))
                         for t in range(total)]) * x_count
        binomial = np.stack([binom.pmf(np.arange(size + 1), size, p) for p in accuracy_mean]) \
            * x_count
        extreme = (histogram[:, 0] + histogram[:, size]) / x_count
        extreme_null = (null[:, 0] + null[:, size]) / x_count
        variance = tpa.var(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            excess = ((variance / (accuracy_mean * (1 - accuracy_mean)) - 1 / size)
                      / (1 - 1 / size)) if size > 1 else np.full(total, np.nan)
        excess = np.where(np.isfinite(excess), excess, np.nan)
        accessibility = tpa.mean(axis=0)
        # Split-half reliability: each halving's half against the rest, Spearman-Brown.
        row_total = tpa_count.sum(axis=0)
        half = counts["half_sum"][groups].sum(axis=0)[:, labelled]  # (s, x)
        reliabilities = []
        for s in range(half.shape[0]):
            first = int((selection.network_half[s] & in_groups).sum())
            if first == 0 or first == size:
                continue
            rho = spearman(half[s] / first, (row_total - half[s]) / (size - first))
            reliabilities.append(spearman_brown(rho))
        histogram_first = counts["first_learned_histogram"][groups].sum(axis=0)[labelled]
        first_mean, first_median = histogram_mean_median(histogram_first.astype(np.int64))
        never_learned = histogram_first[:, -1] / size
        forgetting = counts["forgetting_count"][groups].sum(axis=0)[labelled] / size
        summary.update({
            "checkpoints": total,
            "examples": int(x_count),
            "accuracy_mean": accuracy_mean.tolist(),
            "accuracy_std": network_accuracy.std(axis=0).tolist(),
            "accuracy_min": network_accuracy.min(axis=0).tolist(),
            "accuracy_max": network_accuracy.max(axis=0).tolist(),
            "tpa_histogram": histogram.astype(int).tolist(),
            "null_histogram": null.tolist(),
            "binomial_histogram": binomial.tolist(),
            "extreme_fraction": extreme.tolist(),
            "extreme_fraction_null": extreme_null.tolist(),
            "agreement_excess": nan_to_none_list(excess),
            "split_half_spearman": nan_to_none(np.mean(reliabilities)) if reliabilities
            else None,
            "split_half_spearman_each": nan_to_none_list(np.asarray(reliabilities)),
            "accessibility_mean": nan_to_none(accessibility.mean()),
            "never_learned_share": nan_to_none(never_learned.mean()),
            "forgetting_mean": nan_to_none(forgetting.mean()),
            "tpa_mean_by_accessibility": _learning_curves(tpa, accessibility),
        })
        fill = np.full(examples, np.nan)
        per_example.update({
            "accessibility": _scatter(fill, labelled, accessibility),
            "tpa_last": _scatter(fill, labelled, tpa[-1]),
            "first_learned_mean": _scatter(fill, labelled, first_mean),
            "first_learned_median": _scatter(fill, labelled, first_median),
            "never_learned_share": _scatter(fill, labelled, never_learned),
            "forgetting_mean": _scatter(fill, labelled, forgetting),
        })
        per_example["learning_order"] = np.full(examples, -1, np.int64)
        order = np.argsort(-accessibility, kind="stable")
        ranks = np.empty(x_count, np.int64)
        ranks[order] = np.arange(x_count)
        per_example["learning_order"][labelled] = ranks
        per_example["tpa"] = tpa  # (t, x) over labelled examples, for comparisons
        if membership:
            held = counts["holdout_networks"][groups].sum(axis=0)[labelled]
            hold = counts["holdout_count"][groups].sum(axis=0)[labelled].T  # (t, x)
            with np.errstate(divide="ignore", invalid="ignore"):
                consistency = np.where(held > 0, hold / np.maximum(held, 1), np.nan)
            summary["holdout_consistency_mean"] = \
                nan_to_none_list(np.nanmean(consistency, axis=1)) \
                if np.isfinite(consistency).any() else [None] * total
            last = consistency[-1]
            finite = np.isfinite(last)
            summary["holdout_accessibility_spearman"] = nan_to_none(
                spearman(last[finite], accessibility[finite])) if finite.sum() > 1 else None
            per_example["holdout_consistency"] = _scatter(fill, labelled, last)
    if classes is not None and size:
        class_count = classes["class_count"][groups].sum(axis=0)  # (x, t, k)
        plurality = class_count.max(axis=2) if class_count.shape[2] and examples else \
            np.zeros((examples, class_count.shape[1]), np.int64)
        share = plurality / size
        per_example["consensus_last"] = share[:, -1] if share.shape[1] else np.full(examples,
                                                                                    np.nan)
        histograms = np.stack([np.bincount(plurality[:, t], minlength=size + 1)
                               for t in range(plurality.shape[1])])
        null_histograms, null_means = _consensus_null(
            classes["network_class_count"][in_groups], examples, consensus_seed)
        key = "consensus_last" if classes_last_only else "consensus"
        summary[key] = {
            "checkpoints": "last" if classes_last_only else "all",
            "mean": nan_to_none_list(share.mean(axis=0)) if examples else [],
            "histogram": histograms.astype(int).tolist(),
            "null_mean": nan_to_none_list(null_means),
            "null_histogram": null_histograms.tolist(),
        }
    return {"summary": summary, "examples": per_example}


def _consensus_null(network_class_count: np.ndarray, examples: int, seed: int):
    """Expected consensus histogram (times the number of examples) and mean under the null."""
    from kernels.consensus import plurality_histogram_of_draws

    networks, kept, classes = network_class_count.shape
    rng = np.random.default_rng(seed)
    histograms, means = [], []
    for t in range(kept):
        counts = network_class_count[:, t].astype(np.float64)
        total = counts.sum(axis=1, keepdims=True)
        cumulative = np.cumsum(np.divide(counts, total, out=np.zeros_like(counts),
                                         where=total > 0), axis=1)
        uniforms = rng.random((CONSENSUS_NULL_SAMPLES, networks))
        drawn = plurality_histogram_of_draws(np.ascontiguousarray(cumulative), uniforms)
        law = drawn / CONSENSUS_NULL_SAMPLES
        histograms.append(law * examples)
        means.append(float((np.arange(networks + 1) / max(networks, 1) * law).sum()))
    return np.asarray(histograms), np.asarray(means)


def _learning_curves(tpa: np.ndarray, accessibility: np.ndarray, bins: int = 5) -> dict:
    """Mean TP-agreement per checkpoint of the examples in each accessibility quantile bin."""
    if accessibility.size == 0:
        return {"edges": [], "curves": []}
    edges = np.quantile(accessibility, np.linspace(0, 1, bins + 1))
    index = np.clip(np.searchsorted(edges, accessibility, side="right") - 1, 0, bins - 1)
    curves = [tpa[:, index == b].mean(axis=1).tolist() if (index == b).any() else None
              for b in range(bins)]
    return {"edges": edges.tolist(), "curves": curves}


def _scatter(fill: np.ndarray, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = fill.copy()
    out[mask] = values
    return out


def nan_to_none(value) -> float | None:
    """A float for JSON: None where it is NaN or infinite."""
    value = float(value)
    return value if math.isfinite(value) else None


def nan_to_none_list(values: np.ndarray) -> list:
    """:func:`nan_to_none` of every entry, flattened."""
    return [nan_to_none(v) for v in np.asarray(values, dtype=np.float64).ravel()]

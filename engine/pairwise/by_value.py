"""Pairwise summaries per example group: the means over pairs on the examples of each value of
an example-metadata column (``by``), per group pair of networks too.

Mean agreement and mean prediction agreement over pairs are linear in per-example counts
(:func:`engine.pairwise.summaries.linear_example_bootstrap`), so each value's means and their
example-bootstrap intervals come exactly from the side's per-example counts restricted to the
value's examples. Kappa is not linear: one more pass over the upper tiles counts co-correct
pairs on each value's examples (their bits packed apart, so that all values together cost one
co-correct pass over every example) and sums each value's kappa per group pair. The network
bootstrap is not computed per value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.pairwise.counts import add_up

if TYPE_CHECKING:
    from engine.pairwise.blocks import NetworkBlock, SideCounts
    from engine.pairwise.inputs import MatrixSides


@dataclass(frozen=True, eq=False)
class ValueBlock:
    """One block of networks' correctness on the examples of each value.

    Attributes
    ----------
    words : list of ndarray of uint64, dims (networks, words_v)
        Packed bits of the value's examples (:func:`kernels.pairwise.pack_bits`).
    correct_count : ndarray of int64, dims (values, networks)
        Examples of each value each network gets right.
    """

    words: list[np.ndarray]
    correct_count: np.ndarray


def value_block(block: NetworkBlock, examples: list[np.ndarray], num_examples: int) -> ValueBlock:
    """The bits of ``block`` on each value's examples (int64 indices), packed apart."""
    from kernels.pairwise import pack_bits

    packed = np.ascontiguousarray(block.words).view(np.uint8)
    correct = np.unpackbits(packed, axis=1, count=num_examples, bitorder="little").astype(bool)
    words = [pack_bits(np.ascontiguousarray(correct[:, chosen])) for chosen in examples]
    counts = np.stack([correct[:, chosen].sum(axis=1, dtype=np.int64) for chosen in examples])
    return ValueBlock(words, counts)


def value_strip(
    rows: ValueBlock,
    columns: list[ValueBlock],
    index: int,
    groups_0: np.ndarray,
    groups_1: list[np.ndarray],
    sizes: np.ndarray,
    num_groups: tuple[int, int],
    symmetric: bool,
) -> np.ndarray:
    """Sums of kappa and pairs with a defined kappa per value and group pair over one strip's
    tiles (the upper ones where symmetric, pairs i < j on the diagonal).

    Parameters
    ----------
    rows : ValueBlock
    columns : list of ValueBlock
        Every block of columns.
    index : int
        The row block.
    groups_0 : ndarray of int64, dims (networks_0,)
    groups_1 : list of ndarray of int64, dims (networks_1,)
        The groups of each block of columns.
    sizes : ndarray of int64, dims (values,)
        Examples of each value.
    num_groups : (int, int)
    symmetric : bool

    Returns
    -------
    ndarray of float64, dims (2, values, groups_0, groups_1)
        Kappa summed over the pairs where it is defined, and those pairs.
    """
    from kernels.pairwise import agreement_and_kappa, co_correct_counts

    g0, g1 = num_groups
    sums = np.zeros((2, sizes.size, g0, g1))
    onehot_0 = (groups_0[:, None] == np.arange(g0)).astype(np.float64)
    for j, block in enumerate(columns):
        if symmetric and j < index:
            continue
        onehot_1 = (groups_1[j][:, None] == np.arange(g1)).astype(np.float64)
        for v, size in enumerate(sizes):
            both = co_correct_counts(rows.words[v], block.words[v])
            _, kappa = agreement_and_kappa(
                both, rows.correct_count[v], block.correct_count[v], int(size)
            )
            defined = np.isfinite(kappa)
            if symmetric and j == index:
                defined = np.triu(defined, 1)
            values = np.where(defined, kappa, 0).astype(np.float64)
            sums[0, v] += onehot_0.T @ values @ onehot_1
            sums[1, v] += onehot_0.T @ defined.astype(np.float64) @ onehot_1
    return sums


def compute_by_value(sides: MatrixSides, block: int, examples: list[np.ndarray]) -> np.ndarray:
    """The kappa sums of :func:`value_strip` over every strip of one matrix (computed on the
    active Dask scheduler), dims (2, values, groups_0, groups_1).

    Parameters
    ----------
    sides : MatrixSides
    block : int
        Networks per tile side.
    examples : list of ndarray of int64
        Each value's examples.
    """
    import dask

    from engine.pairwise.blocks import side_blocks

    num_examples = sides.num_examples
    sizes = np.array([e.size for e in examples], np.int64)
    side_0, side_1 = sides.side_0, sides.side_1

    def value_blocks(side: Any) -> tuple[list, list[slice]]:
        # The blocks are read again (this pass is asked for, not the default).
        loaded, positions = side_blocks(side, block, sliced=False)
        return [
            dask.delayed(value_block, pure=True)(b, examples, num_examples) for b in loaded
        ], positions

    rows, slices_0 = value_blocks(side_0)
    columns, slices_1 = (rows, slices_0) if sides.symmetric else value_blocks(side_1)
    groups_1 = [side_1.groups[s] for s in slices_1]
    strips = [
        dask.delayed(value_strip, pure=True)(
            rows[i],
            columns,
            i,
            side_0.groups[positions],
            groups_1,
            sizes,
            (side_0.num_groups, side_1.num_groups),
            sides.symmetric,
        )
        for i, positions in enumerate(slices_0)
    ]
    (parts,) = dask.compute(strips)
    return add_up(parts)


def _linear_means(
    sides: MatrixSides,
    counts_0: SideCounts,
    counts_1: SideCounts,
    chosen: np.ndarray,
    weights: np.ndarray,
) -> dict[str, np.ndarray]:
    """Mean agreement and prediction agreement over all pairs on the examples ``chosen``, for
    each row of example multiplicities ``weights`` (replicates, examples of chosen), as
    :func:`engine.pairwise.summaries.linear_example_bootstrap` over all examples."""
    n0, n1 = sides.side_0.size, sides.side_1.size
    k0 = counts_0.example_correct[chosen].astype(np.float64)
    k1 = counts_1.example_correct[chosen].astype(np.float64)
    if sides.symmetric:
        pairs = n0 * (n0 - 1) / 2
        agree = k0 * (k0 - 1) / 2 + (n0 - k0) * (n0 - k0 - 1) / 2
    else:
        pairs = n0 * n1
        agree = k0 * k1 + (n0 - k0) * (n1 - k1)
    out: dict[str, np.ndarray] = {}
    if not pairs or not chosen.size:
        return out
    scale = chosen.size * pairs
    out["agreement"] = weights @ agree / scale
    classes_0, classes_1 = counts_0.example_class_counts, counts_1.example_class_counts
    if classes_0 is not None and classes_1 is not None:
        c0 = classes_0[:, chosen].astype(np.float64)
        c1 = classes_1[:, chosen].astype(np.float64)
        same = (c0 * (c0 - 1) / 2).sum(axis=0) if sides.symmetric else (c0 * c1).sum(axis=0)
        out["prediction_agreement"] = weights @ same / scale
    return out


def by_value_summary(
    sides: MatrixSides,
    column: str,
    values: dict[str, np.ndarray],
    kappa_sums: np.ndarray,
    counts: tuple[SideCounts, SideCounts],
    bootstrap: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The summary's ``by`` entry of one matrix: per value, its examples and, per statistic,
    the mean over all pairs (kappa over pairs where defined), an example-bootstrap interval
    (agreement and prediction agreement; None for kappa) and the group x group means.

    Parameters
    ----------
    sides : MatrixSides
    column : str
        The example-metadata column.
    values : dict of str to ndarray of int64
        Each value's examples, in the order of ``kappa_sums``.
    kappa_sums : ndarray of float64, dims (2, values, groups_0, groups_1)
        From :func:`compute_by_value`.
    counts : (SideCounts, SideCounts)
    bootstrap : int
    rng : numpy Generator
    """
    from engine.pairwise.summaries import fold, interval

    out: dict[str, Any] = {"column": column, "values": {}}
    for v, (value, chosen) in enumerate(values.items()):
        kappa_sum = fold(kappa_sums[0, v], sides.symmetric)
        kappa_pairs = fold(kappa_sums[1, v], sides.symmetric)
        entry: dict[str, Any] = {"examples": int(chosen.size)}
        total = kappa_pairs.sum()
        entry["kappa"] = {
            "mean": float(kappa_sum.sum() / total) if total else None,
            "examples_ci": None,
            "pairs": int(total),
            "group_means": _group_means(kappa_sum, kappa_pairs, sides.symmetric),
        }
        point = _linear_means(sides, *counts, chosen, np.ones((1, chosen.size)))
        replicates: dict[str, np.ndarray] = {}
        if bootstrap and chosen.size:
            weights = rng.multinomial(chosen.size, np.full(chosen.size, 1 / chosen.size), bootstrap)
            replicates = _linear_means(sides, *counts, chosen, weights.astype(np.float64))
        for name, mean in point.items():
            entry[name] = {
                "mean": float(mean[0]),
                "examples_ci": interval(replicates[name]) if name in replicates else None,
            }
        out["values"][value] = entry
    return out


def _group_means(sums: np.ndarray, pairs: np.ndarray, symmetric: bool) -> list[list]:
    """Group x group means from folded sums (upper triangle where symmetric), mirrored."""
    if symmetric:
        sums = sums + np.triu(sums, 1).T
        pairs = pairs + np.triu(pairs, 1).T
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(pairs > 0, sums / np.where(pairs > 0, pairs, 1), np.nan)
    return [[float(m) if np.isfinite(m) else None for m in row] for row in means]


#: Values of a ``by`` column summarised at most per split (as ``engine analyze --by``).
MAX_VALUES = 100


def example_values(
    population: Any, splits: list[str], column: str, limit: int = MAX_VALUES
) -> dict[str, dict]:
    """Per split, the examples (int64 indices) of each value of the metadata ``column``, the
    values sorted and named as text; examples without a value are in none. The one reading of
    ``--by`` that ``engine analyze`` and the pairwise summaries share.

    Raises
    ------
    ConfigError
        A split has no metadata, lacks the column, or the column has over ``limit`` values.
    """
    from engine.errors import ConfigError

    found = {}
    for split in splits:
        table = population.example_metadata(split)
        if table.columns.empty:
            raise ConfigError(
                f"--by {column}: split {split!r} has no example metadata "
                "(choose splits with --split)"
            )
        if column not in table.columns:
            raise ConfigError(
                f"--by {column}: split {split!r} has no such metadata column; it has "
                + ", ".join(map(str, table.columns))
            )
        values = table[column]
        distinct = sorted(values.dropna().unique().tolist())
        if len(distinct) > limit:
            raise ConfigError(
                f"--by {column}: split {split!r} has {len(distinct)} values, "
                f"at most {limit} are reported"
            )
        found[split] = {
            str(value): np.flatnonzero((values == value).to_numpy(dtype=bool, na_value=False))
            for value in distinct
        }
    return found

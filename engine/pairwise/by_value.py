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


@dataclass(frozen=True, eq=False)
class ValueSums:
    """What the pass per value returns for one matrix (or one strip of it).

    Attributes
    ----------
    pairs : ndarray of float64, dims (3, values, groups_0, groups_1)
        Over the upper tiles (pairs i < j): kappa summed over the pairs where it is defined,
        those pairs, and agreement counts summed over every pair.
    rows : ndarray of float64, dims (2, values, networks_0, groups_1)
        Each row network's sums of kappa (defined pairs) and of agreement counts with the
        networks of each group, itself left out: its whole row.
    correct : ndarray of int64, dims (values, networks_0)
        Examples of each value each row network gets right.
    boot : ndarray of float64, dims (2, values, replicates, groups_0, groups_1), or None
        With the exact network bootstrap: over the upper tiles, each replicate's sums of kappa
        (defined pairs) and of agreement counts, W_g^T S W_h
        (:func:`engine.pairwise.tiles.bootstrap_sums`); None where it is linearised.
    """

    pairs: np.ndarray
    rows: np.ndarray
    correct: np.ndarray
    boot: np.ndarray | None = None

    @classmethod
    def join(cls, strips: list[ValueSums]) -> ValueSums:
        """The strips' sums over the matrix: pair sums added, rows side by side."""
        boots = [strip.boot for strip in strips if strip.boot is not None]
        return cls(
            add_up(strip.pairs for strip in strips),
            np.concatenate([strip.rows for strip in strips], axis=2),
            np.concatenate([strip.correct for strip in strips], axis=1),
            add_up(boots) if boots else None,
        )


def value_strip(
    rows: ValueBlock,
    columns: list[ValueBlock],
    index: int,
    groups_0: np.ndarray,
    groups_1: list[np.ndarray],
    sizes: np.ndarray,
    num_groups: tuple[int, int],
    symmetric: bool,
    weights: tuple[np.ndarray, list[np.ndarray]] | None = None,
) -> ValueSums:
    """The sums per value over one strip's tiles (:class:`ValueSums`).

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
    weights : (ndarray, list of ndarray), optional
        The network-bootstrap multiplicities, float32 (networks, replicates), of the rows and of
        each block of columns: the exact bootstrap's replicate sums are then added up too.
    """
    from engine.pairwise.tiles import TileAxis, bootstrap_sums
    from kernels.pairwise import agreement_and_kappa, co_correct_counts

    g0, g1 = num_groups
    n0 = groups_0.size
    pairs = np.zeros((3, sizes.size, g0, g1))
    row_sums = np.zeros((2, sizes.size, n0, g1))
    boot = None
    if weights is not None:
        boot = np.zeros((2, sizes.size, weights[0].shape[1], g0, g1))
        rows_axis = TileAxis(slice(0, n0), groups_0, g0, weights[0])
    onehot_0 = (groups_0[:, None] == np.arange(g0)).astype(np.float64)
    for j, block in enumerate(columns):
        upper = not (symmetric and j < index)
        onehot_1 = (groups_1[j][:, None] == np.arange(g1)).astype(np.float64)
        for v, size in enumerate(sizes):
            both = co_correct_counts(rows.words[v], block.words[v])
            agree, kappa = agreement_and_kappa(
                both, rows.correct_count[v], block.correct_count[v], int(size)
            )
            defined = np.isfinite(kappa)
            counted = np.ones(kappa.shape, bool)
            if symmetric and j == index:
                # A network is not paired with itself; the sums over pairs take i < j.
                np.fill_diagonal(defined, False)
                np.fill_diagonal(counted, False)
            kappa_values = np.where(defined, kappa, 0).astype(np.float64)
            agree_values = np.where(counted, agree, 0).astype(np.float64)
            row_sums[0, v] += kappa_values @ onehot_1
            row_sums[1, v] += agree_values @ onehot_1
            if not upper:
                continue
            if symmetric and j == index:
                defined, kappa_values, agree_values = (
                    np.triu(m, 1) for m in (defined, kappa_values, agree_values)
                )
            pairs[0, v] += onehot_0.T @ kappa_values @ onehot_1
            pairs[1, v] += onehot_0.T @ defined.astype(np.float64) @ onehot_1
            pairs[2, v] += onehot_0.T @ agree_values @ onehot_1
            if boot is not None and weights is not None:
                columns_axis = TileAxis(slice(0, groups_1[j].size), groups_1[j], g1, weights[1][j])
                matrices = {"kappa": kappa_values, "agreement": agree_values}
                # Already upper on the diagonal tile: no second triu.
                sums = bootstrap_sums(
                    {k: m.astype(np.float32) for k, m in matrices.items()},
                    rows_axis,
                    columns_axis,
                    False,
                )
                boot[0, v] += sums["kappa"]
                boot[1, v] += sums["agreement"]
    return ValueSums(pairs, row_sums, rows.correct_count, boot)


def compute_by_value(
    sides: MatrixSides, block: int, examples: list[np.ndarray], exact: bool = False
) -> ValueSums:
    """The sums of :func:`value_strip` over every strip of one matrix (computed on the active
    Dask scheduler); ``exact`` adds the exact network bootstrap's replicate sums (as the whole
    matrix has them up to ``EXACT_BOOTSTRAP_NETWORKS``).

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
    weights_1 = [side_1.weights[s] for s in slices_1]
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
            (side_0.weights[positions], weights_1) if exact else None,
        )
        for i, positions in enumerate(slices_0)
    ]
    (parts,) = dask.compute(strips)
    return ValueSums.join(parts)


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
    sums: ValueSums,
    counts: tuple[SideCounts, SideCounts],
    bootstrap: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The summary's ``by`` entry of one symmetric matrix: per value, its examples and, per
    statistic, the mean over all pairs (kappa over pairs where defined), a network-bootstrap
    interval (linearised; kappa and agreement; None for prediction agreement), an
    example-bootstrap interval (agreement and prediction agreement; None for kappa) and the
    group x group means of kappa.

    Parameters
    ----------
    sides : MatrixSides
    column : str
        The example-metadata column.
    values : dict of str to ndarray of int64
        Each value's examples, in the order of ``sums``.
    sums : ValueSums
        From :func:`compute_by_value`.
    counts : (SideCounts, SideCounts)
    bootstrap : int
    rng : numpy Generator
    """
    from engine.pairwise.summaries import fold, interval

    method = None if not bootstrap else ("linearised" if sums.boot is None else "exact")
    out: dict[str, Any] = {"column": column, "values": {}, "networks_ci_method": method}
    for v, (value, chosen) in enumerate(values.items()):
        kappa_sum = fold(sums.pairs[0, v], sides.symmetric)
        kappa_pairs = fold(sums.pairs[1, v], sides.symmetric)
        entry: dict[str, Any] = {"examples": int(chosen.size)}
        total = kappa_pairs.sum()
        networks_ci = _network_intervals(sides, sums, v, chosen.size) if bootstrap else {}
        entry["kappa"] = {
            "mean": float(kappa_sum.sum() / total) if total else None,
            "networks_ci": networks_ci.get("kappa"),
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
                "networks_ci": networks_ci.get(name),
                "examples_ci": interval(replicates[name]) if name in replicates else None,
            }
        out["values"][value] = entry
    return out


def _network_intervals(
    sides: MatrixSides, sums: ValueSums, v: int, size: int
) -> dict[str, list[float] | None]:
    """Network-bootstrap intervals of value ``v``'s mean kappa and mean agreement over all
    pairs: the whole matrix's bootstrap on the value's examples (:func:`summarise`), exact where
    ``sums`` has the replicate sums, else linearised from the network sums, with its pair
    weights and its undefined kappa pairs."""
    from engine.pairwise.summaries import (
        fold,
        interval,
        linear_network_bootstrap,
        pair_weights,
        pooled_means,
        second_order,
    )

    if not size:
        return {}
    pairs = pair_weights(sides)
    correct = sums.correct[v]
    undefined = add_up(
        pair_weights(sides, mask, mask)
        for mask in ((correct == size).astype(np.float64), (correct == 0).astype(np.float64))
    )
    unused = np.zeros((sides.side_1.size, sides.side_0.num_groups))
    chosen = np.ones(pairs.shape[:2], bool)
    out: dict[str, list[float] | None] = {}
    for name, index, scale, denominator in (
        ("kappa", 0, 1.0, pairs - undefined),
        ("agreement", 1, 1.0 / size, pairs),
    ):
        point = sums.pairs[0 if name == "kappa" else 2, v] * scale
        if sums.boot is not None:
            boot = sums.boot[index, v] * scale
        else:
            boot = linear_network_bootstrap(sides, point, sums.rows[index, v] * scale, unused)
        stacked = np.concatenate([point[..., None], boot.transpose(1, 2, 0)], axis=2)
        totals = fold(stacked, sides.symmetric)
        if sums.boot is None:
            totals = second_order(totals, denominator)
        out[name] = interval(pooled_means(totals[chosen], denominator[chosen])[1:])
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

"""Means, bootstrap intervals and group breakdowns of one matrix, from the tiles' sums.

- Means over distinct pairs (i < j) of the correctness agreement rate, kappa (pairs where it is
  undefined, c_exp == 1, are left out) and prediction agreement.
- Network bootstrap: networks are resampled with replacement within each group (group sizes
  kept); a replicate's mean of one group pair is the weighted mean over its distinct-network
  pairs, sum_{i<j} w_i w_j s_ij / sum_{i<j} w_i w_j, with w the multiplicities, and a pooled
  mean (``all``, ``within``, ``between``) combines its group pairs' means with the estimate's
  pair counts as weights (:func:`pooled_means`). Each tile adds
  W_i^T S_ij W_j to the replicate sums (:func:`engine.pairwise.tiles.bootstrap_sums`); the
  denominators follow from the weights (:func:`pair_weights`).
- Example bootstrap: examples are resampled (multinomial weights on examples). The mean agreement
  and mean prediction agreement over pairs are linear in per-example pair counts
  (k_x choose 2 + (N - k_x) choose 2 for k_x networks right on x), so their replicates are exact
  over all networks (:func:`linear_example_bootstrap`). Kappa is not linear; its replicates
  recompute weighted counts C diag(w) C^T on a random subset of ``EXAMPLE_BOOTSTRAP_NETWORKS``
  networks (:func:`kappa_example_bootstrap`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from engine.pairwise.counts import STATISTICS, add_up, agreement_counts, kappa_from_counts

if TYPE_CHECKING:
    from engine.pairwise.blocks import SideCounts
    from engine.pairwise.inputs import MatrixSides, PairwiseSide
    from engine.pairwise.tiles import StripResult, TileResult

#: Networks whose pairs carry the example bootstrap of kappa.
EXAMPLE_BOOTSTRAP_NETWORKS = 64


@dataclass(frozen=True, eq=False)
class KappaSample:
    """Correctness of a random subset of networks, for the example bootstrap of kappa.

    Attributes
    ----------
    correct_0 : ndarray of float32 (0 or 1), dims (networks_0, examples)
    correct_1 : ndarray of float32 (0 or 1), dims (networks_1, examples)
        The same networks as ``correct_0`` where the matrix is symmetric.
    networks : int
        Distinct networks sampled (reported as ``examples_ci_networks``).
    """

    correct_0: np.ndarray
    correct_1: np.ndarray
    networks: int


def interval(values: np.ndarray) -> list[float] | None:
    """The 95% percentile interval of the finite values, or None where there are none."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def _float(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan
        )


def fold(sums: np.ndarray, symmetric: bool) -> np.ndarray:
    """Sums over pairs i < j per (group of i, group of j), (g, g, ...) -> unordered group pairs:
    (g, h) + (h, g) above the diagonal, zero below. Cross matrices are returned unchanged."""
    if not symmetric:
        return sums
    swapped = np.swapaxes(sums, 0, 1)
    upper = np.triu(np.ones(sums.shape[:2], bool))
    diagonal = np.eye(sums.shape[0], dtype=bool)
    folded = np.where(diagonal[(...,) + (None,) * (sums.ndim - 2)], sums, sums + swapped)
    return folded * upper[(...,) + (None,) * (sums.ndim - 2)]


def pair_weights(
    sides: MatrixSides, mask_0: np.ndarray | None = None, mask_1: np.ndarray | None = None
) -> np.ndarray:
    """Weighted number of distinct-network pairs per (unordered) group pair.

    Parameters
    ----------
    sides : MatrixSides
    mask_0, mask_1 : ndarray of float64, dims (networks_0,), (networks_1,), optional
        Count only the pairs of networks where both masks are 1.

    Returns
    -------
    ndarray of float64, dims (groups_0, groups_1, 1 + replicates)
        Column 0 counts pairs (weights 1), then one column per network-bootstrap replicate.
    """
    side_0, side_1 = sides.side_0, sides.side_1
    w0 = np.concatenate([np.ones((side_0.size, 1)), side_0.weights.astype(np.float64)], axis=1)
    w1 = np.concatenate([np.ones((side_1.size, 1)), side_1.weights.astype(np.float64)], axis=1)
    if mask_0 is not None and mask_1 is not None:
        w0 = w0 * mask_0[:, None]
        w1 = w1 * mask_1[:, None]
    ng0, ng1 = side_0.num_groups, side_1.num_groups
    totals_0 = np.stack([w0[side_0.groups == g].sum(axis=0) for g in range(ng0)])
    totals_1 = np.stack([w1[side_1.groups == h].sum(axis=0) for h in range(ng1)])
    pairs = totals_0[:, None, :] * totals_1[None, :, :]
    if sides.symmetric:
        pairs = pairs * np.triu(np.ones((ng0, ng0)))[..., None]
        for g in range(ng0):
            squares = (w0[side_0.groups == g] ** 2).sum(axis=0)
            pairs[g, g] = (totals_0[g] ** 2 - squares) / 2
    return pairs


def linear_network_bootstrap(
    sides: MatrixSides, point: np.ndarray, sums_0: np.ndarray, sums_1: np.ndarray
) -> np.ndarray:
    """Network-bootstrap replicate sums of one statistic to first order in the weights.

    With multiplicities w, sum_{pairs} w_i w_j s_ij = sum s_ij + sum (w_i - 1) s_ij +
    sum (w_j - 1) s_ij + sum (w_i - 1)(w_j - 1) s_ij; the last term (of mean -1/N per pair
    under multinomial weights) is left out. What remains needs, per network and group h of the
    other side, the sum R_i^h of its pairs with the networks of h: the replicate of the
    (g, h) sum is T_gh + sum_{i in g} (w_i - 1) R_i^h (+ the same from the other side). Cost
    N G R where the exact replicates cost N^2 R (used above ``EXACT_BOOTSTRAP_NETWORKS``).
    :func:`second_order` then adds the left-out term at the mean.

    Parameters
    ----------
    sides : MatrixSides
    point : ndarray of float64, dims (groups_0, groups_1)
        The tiles' sums per (group of i, group of j), before folding.
    sums_0 : ndarray of float64, dims (networks_0, groups_1)
        Each side-0 network's sum with the networks of each group of side 1 (its whole row,
        the network itself left out, where the matrix is symmetric).
    sums_1 : ndarray of float64, dims (networks_1, groups_0)
        The same for side 1 (cross matrices; ignored where symmetric).

    Returns
    -------
    ndarray of float64, dims (replicates, groups_0, groups_1)
        As :func:`engine.pairwise.tiles.bootstrap_sums` added over tiles (folded by the caller).
    """
    side_0, side_1 = sides.side_0, sides.side_1
    onehot_0 = side_0.groups[:, None] == np.arange(side_0.num_groups)
    excess_0 = side_0.weights.astype(np.float64) - 1
    linear = np.einsum("nr,ng,nh->rgh", excess_0, onehot_0, sums_0)
    if not sides.symmetric:
        onehot_1 = side_1.groups[:, None] == np.arange(side_1.num_groups)
        excess_1 = side_1.weights.astype(np.float64) - 1
        linear = linear + np.einsum("nr,nh,ng->rgh", excess_1, onehot_1, sums_1)
    return point[None] + linear


def second_order(totals: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Linearised replicate sums with their second-order term added at the mean: s_gh (P*_gh -
    P_gh), with s_gh the point mean and P* the replicate's weighted pairs.

    The left-out term sum (w_i - 1)(w_j - 1) s_ij is, with s_ij at its mean, the mean times
    P* - P - L, where L, the linear part of the weighted pairs, is 0 when networks are resampled
    within groups of fixed size. Without it every replicate's mean would lean by about 1 / N.

    Parameters
    ----------
    totals, denominator : ndarray of float64, dims (groups_0, groups_1, 1 + replicates)
        Folded sums and weighted pairs, the point first.
    """
    point = totals[..., :1]
    pairs = denominator[..., :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(pairs > 0, point / np.where(pairs > 0, pairs, 1), 0.0)
    corrected = totals.copy()
    corrected[..., 1:] += mean * (denominator[..., 1:] - pairs)
    return corrected


def _statistic_totals(
    results: list[TileResult],
    names: list[str],
    sides: MatrixSides,
    network_sums: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Per statistic, the folded sums over tiles, (groups_0, groups_1, 1 + replicates): the point
    sum, then one per network-bootstrap replicate (linearised from ``network_sums``, per
    statistic (statistics, networks, groups), where given); agreement as rates (counts / X)."""
    num_examples = sides.num_examples
    totals = {}
    for index, name in enumerate(names):
        point = add_up(r.point[name] for r in results)
        if network_sums is None:
            boot = add_up(r.boot[name] for r in results)
        else:
            boot = linear_network_bootstrap(
                sides, point, network_sums[0][index], network_sums[1][index]
            )
        stacked = np.concatenate([point[..., None], boot.transpose(1, 2, 0)], axis=2)
        if name != "kappa":
            stacked = stacked / num_examples if num_examples else stacked * np.nan
        totals[name] = fold(stacked, sides.symmetric)
    return totals


def _undefined_kappa_pairs(
    sides: MatrixSides, counts_0: SideCounts, counts_1: SideCounts
) -> np.ndarray:
    """Weighted pairs whose kappa is undefined: both networks always right or both always wrong,
    dims as :func:`pair_weights`."""
    return add_up(
        pair_weights(
            sides,
            (counts_0.network_correct == extreme).astype(np.float64),
            (counts_1.network_correct == extreme).astype(np.float64),
        )
        for extreme in (sides.num_examples, 0)
    )


def pooled_means(totals: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """The mean over the pairs of several group pairs, and each replicate's, with every group
    pair weighted by its pairs in the estimate.

    The estimate is the sum over the pairs of the chosen group pairs over their number. A
    replicate is the same combination of its group pairs' means, with the estimate's weights:
    a network drawn twice is not paired with its copy, which removes pairs within groups only,
    so the replicates' own pair counts weigh the within-group pairs by about (n_g - 1) / n_g of
    what the estimate does, and their pooled means leaned toward the between-group mean (the
    interval could miss the mean it is about). Groups keep their sizes in every replicate, so
    the group pairs are fixed strata whose weights are not resampled.

    Parameters
    ----------
    totals, denominator : ndarray of float64, dims (group_pairs, 1 + replicates)
        Sums of the statistic and weighted pairs of each chosen group pair, the point first.

    Returns
    -------
    ndarray of float64, dims (1 + replicates,)
        The point mean (the plain ratio of sums), then each replicate's; NaN where no group
        pair has a defined mean.
    """
    point = _ratio(totals[:, :1].sum(axis=0), denominator[:, :1].sum(axis=0))
    per_pair = _ratio(totals[:, 1:], denominator[:, 1:])
    weight = denominator[:, :1] * np.isfinite(per_pair)
    # A group pair without a defined mean in one replicate (kappa undefined on every pair it
    # drew) drops out of that replicate, the others reweighted.
    replicates = _ratio((weight * np.nan_to_num(per_pair)).sum(axis=0), weight.sum(axis=0))
    return np.concatenate([point, replicates])


def _statistic_entry(
    totals: np.ndarray,
    denominator: np.ndarray,
    selections: dict[str, np.ndarray],
    bootstrap: int,
    symmetric: bool,
) -> dict[str, Any]:
    """One statistic's summary: per selection of group pairs its mean, network interval and
    pairs, and the group x group means."""
    entry: dict[str, Any] = {}
    for kind, chosen in selections.items():
        means = pooled_means(totals[chosen], denominator[chosen])
        entry[kind] = {
            "mean": _float(means[0]),
            "networks_ci": interval(means[1:]) if bootstrap else None,
            "examples_ci": None,
            "pairs": int(round(denominator[chosen].sum(axis=0)[0])),
        }
    per_group = _ratio(totals[..., 0], denominator[..., 0])
    if symmetric:
        per_group = np.where(np.isnan(np.triu(per_group)), 0, np.triu(per_group))
        per_group = per_group + np.triu(per_group, 1).T
        per_group[denominator[..., 0] + denominator[..., 0].T == 0] = np.nan
    entry["group_means"] = [[_float(v) for v in row] for row in per_group]
    return entry


def summarise(
    sides: MatrixSides,
    results: list[TileResult],
    counts_0: SideCounts,
    counts_1: SideCounts,
    bootstrap: int,
    rng: np.random.Generator,
    sample: KappaSample | None,
    network_sums: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Means, intervals and group breakdowns of one matrix from the tiles' sums.

    Parameters
    ----------
    sides : MatrixSides
    results : list of TileResult
        Every tile of the matrix.
    counts_0, counts_1 : SideCounts
    bootstrap : int
        Replicates (0: no intervals).
    rng : numpy Generator
        Draws the example-bootstrap weights.
    sample : KappaSample, optional
        Networks for the example bootstrap of kappa.
    network_sums : (ndarray, ndarray), optional
        Per statistic, each network's sums with each group of the other side, (statistics,
        networks_0, groups_1) and (statistics, networks_1, groups_0): the network bootstrap is
        then linearised (:func:`linear_network_bootstrap`); None for the exact one.

    Returns
    -------
    dict
        JSON-able: ``pairs``, ``networks``, ``networks_ci_method`` (``exact``, ``linearised``
        or None without bootstrap) and per statistic ``all`` (and ``within``,
        ``between`` with several groups on a symmetric matrix) as ``{"mean", "networks_ci",
        "examples_ci", "pairs"}``, plus ``group_means``.
    """
    side_0, side_1 = sides.side_0, sides.side_1
    ng0, ng1 = side_0.num_groups, side_1.num_groups
    names = [n for n in STATISTICS if results and n in results[0].point]
    totals = _statistic_totals(results, names, sides, network_sums)
    pairs = pair_weights(sides)
    invalid = _undefined_kappa_pairs(sides, counts_0, counts_1)
    selections = {"all": np.ones((ng0, ng1), bool)}
    if sides.symmetric and ng0 > 1:
        selections["within"] = np.eye(ng0, dtype=bool)
        selections["between"] = np.triu(np.ones((ng0, ng0), bool), 1)
    summary: dict[str, Any] = {
        "pairs": int(round(pairs[..., 0].sum())),
        "networks": [side_0.size] if sides.symmetric else [side_0.size, side_1.size],
        "networks_ci_method": (None if not bootstrap else "exact")
        if network_sums is None
        else "linearised",
    }
    for name in names:
        denominator = pairs - invalid if name == "kappa" else pairs
        if network_sums is not None:
            totals[name] = second_order(totals[name], denominator)
        summary[name] = _statistic_entry(
            totals[name], denominator, selections, bootstrap, sides.symmetric
        )
    num_examples = sides.num_examples
    if bootstrap and num_examples and names:
        example_weights = rng.multinomial(
            num_examples, np.full(num_examples, 1 / num_examples), size=bootstrap
        )
        linear = linear_example_bootstrap(sides, counts_0, counts_1, example_weights)
        for name, values in linear.items():
            if name in summary:
                summary[name]["all"]["examples_ci"] = interval(values)
        if "kappa" in summary and sample is not None:
            summary["kappa"]["all"]["examples_ci"] = interval(
                kappa_example_bootstrap(sample, example_weights, sides.symmetric)
            )
            summary["kappa"]["all"]["examples_ci_networks"] = sample.networks
    return summary


def linear_example_bootstrap(
    sides: MatrixSides, counts_0: SideCounts, counts_1: SideCounts, example_weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Exact replicates of the mean agreement and prediction agreement over all pairs.

    sum over pairs of agree_ij = sum_x e_x, with e_x the pairs that agree on x: for one side,
    k_x (k_x - 1) / 2 + (N - k_x)(N - k_x - 1) / 2; across two sides, k_x l_x + (N-k_x)(M-l_x).
    Each replicate weighs e_x by the example multiplicities.

    Parameters
    ----------
    sides : MatrixSides
    counts_0, counts_1 : SideCounts
    example_weights : ndarray of int64, dims (replicates, examples)

    Returns
    -------
    dict of str to ndarray of float64, dims (replicates,)
        ``agreement`` and, where both sides compare predictions, ``prediction_agreement``
        (empty where there are no pairs).
    """
    n0, n1 = sides.side_0.size, sides.side_1.size
    num_examples = sides.num_examples
    k0 = counts_0.example_correct.astype(np.float64)
    k1 = counts_1.example_correct.astype(np.float64)
    classes_0, classes_1 = counts_0.example_class_counts, counts_1.example_class_counts
    if sides.symmetric:
        pairs = n0 * (n0 - 1) / 2
        agree = k0 * (k0 - 1) / 2 + (n0 - k0) * (n0 - k0 - 1) / 2
    else:
        pairs = n0 * n1
        agree = k0 * k1 + (n0 - k0) * (n1 - k1)
    out = {}
    if pairs:
        out["agreement"] = example_weights @ agree / (num_examples * pairs)
        if classes_0 is not None and classes_1 is not None:
            c0 = classes_0.astype(np.float64)
            c1 = classes_1.astype(np.float64)
            same = (c0 * (c0 - 1) / 2).sum(axis=0) if sides.symmetric else (c0 * c1).sum(axis=0)
            out["prediction_agreement"] = example_weights @ same / (num_examples * pairs)
    return out


def kappa_sample(sides: MatrixSides, rng: np.random.Generator) -> KappaSample:
    """Correctness of a random subset of networks for the example bootstrap of kappa:
    ``EXAMPLE_BOOTSTRAP_NETWORKS`` of a symmetric matrix, half as many per side otherwise."""
    import dask

    num_examples = sides.num_examples

    def choose(side: PairwiseSide) -> np.ndarray:
        count = min(
            side.size,
            EXAMPLE_BOOTSTRAP_NETWORKS if sides.symmetric else EXAMPLE_BOOTSTRAP_NETWORKS // 2,
        )
        return np.sort(rng.choice(side.ids, size=count, replace=False))

    def read(side: PairwiseSide, ids: np.ndarray) -> Any:
        return side.population.correct_packed(side.split)[:, side.checkpoint, :][ids]

    def unpack(packed: np.ndarray) -> np.ndarray:
        return np.unpackbits(packed, axis=1, count=num_examples, bitorder="little").astype(
            np.float32
        )

    side_0, side_1 = sides.side_0, sides.side_1
    ids_0 = choose(side_0)
    ids_1 = ids_0 if sides.symmetric else choose(side_1)
    packed_0, packed_1 = dask.compute(read(side_0, ids_0), read(side_1, ids_1))
    return KappaSample(
        correct_0=unpack(packed_0),
        correct_1=unpack(packed_1),
        networks=int(ids_0.size if sides.symmetric else ids_0.size + ids_1.size),
    )


def kappa_example_bootstrap(
    sample: KappaSample, example_weights: np.ndarray, symmetric: bool
) -> np.ndarray:
    """Mean kappa over the sample's pairs for each replicate of example weights.

    Weighted counts B_w[i, j] = sum_x w_x C_ix C_jx for every pair and replicate come from one
    product (pairs x examples) @ (examples x replicates), taken over slices of examples. Its
    entries are integers below 2^24, so float32 products are exact.

    Parameters
    ----------
    sample : KappaSample
    example_weights : ndarray of int, dims (replicates, examples)
        Multiplicities of the examples, each row summing to X.
    symmetric : bool
        ``sample.correct_1`` is ``correct_0``: pairs i < j only.

    Returns
    -------
    ndarray of float64, dims (replicates,)
        NaN for a replicate where no pair has a defined kappa.
    """
    c0, c1 = sample.correct_0, sample.correct_1
    num_examples = c0.shape[1]
    replicates = example_weights.shape[0]
    means = np.full(replicates, np.nan)
    if c0.shape[0] == 0 or c1.shape[0] == 0 or (symmetric and c0.shape[0] < 2):
        return means
    if symmetric:
        first, second = np.triu_indices(c0.shape[0], 1)
    else:
        first, second = (
            a.ravel()
            for a in np.meshgrid(np.arange(c0.shape[0]), np.arange(c1.shape[0]), indexing="ij")
        )
    both = np.zeros((first.size, replicates))
    count_0 = np.zeros((c0.shape[0], replicates))
    count_1 = np.zeros((c1.shape[0], replicates))
    step = 4096
    for start in range(0, num_examples, step):
        stop = min(num_examples, start + step)
        weights = np.ascontiguousarray(example_weights[:, start:stop].T, dtype=np.float32)
        both += (c0[first, start:stop] * c1[second, start:stop]) @ weights
        count_0 += c0[:, start:stop] @ weights
        count_1 += c1[:, start:stop] @ weights
    ci = np.rint(count_0[first]).astype(np.int64)
    cj = np.rint(count_1[second]).astype(np.int64)
    total = np.int64(num_examples)
    agree = agreement_counts(np.rint(both), ci, cj, total)
    kappa = kappa_from_counts(agree, ci, cj, total)
    valid = np.isfinite(kappa)
    counts = valid.sum(axis=0)
    sums = np.where(valid, kappa, 0).sum(axis=0)
    means[counts > 0] = sums[counts > 0] / counts[counts > 0]
    return means


# ----------------------------------------------------------------------------------------------
# The distributions over pairs and over networks (streamed over strips)


def matrix_histograms(sides: MatrixSides, tiles: TileResult) -> dict[str, tuple]:
    """The exact histograms of one matrix, as :func:`engine.pairwise.output.histogram_table`
    takes them: kappa over ``KAPPA_BINS`` bins of [-1, 1]; agreement and prediction agreement
    over their exact values a / X, a = 0..X.

    Parameters
    ----------
    sides : MatrixSides
    tiles : TileResult
        Every tile's sums added up.
    """
    bins = tiles.histogram.shape[1]
    lows = -1 + 2 * np.arange(bins) / bins
    kappa_edges = np.stack([lows, lows + 2 / bins], axis=1)
    num_examples = sides.num_examples
    values = np.arange(num_examples + 1) / max(num_examples, 1)
    exact = np.stack([values, values], axis=1)
    if not sides.symmetric:
        kinds, rows = ["between"], slice(1, 2)
    elif sides.side_0.num_groups > 1:
        kinds, rows = ["within", "between"], slice(0, 2)
    else:
        kinds, rows = ["all"], None

    def chosen(histogram: np.ndarray) -> np.ndarray:
        return histogram.sum(axis=0, keepdims=True) if rows is None else histogram[rows]

    out = {
        "kappa": (kinds, chosen(tiles.histogram), kappa_edges),
        "agreement": (kinds, chosen(tiles.agree_histogram), exact),
    }
    if tiles.same_histogram is not None:
        out["prediction_agreement"] = (kinds, chosen(tiles.same_histogram), exact)
    return out


def network_values(strips: list[StripResult]) -> dict[str, np.ndarray]:
    """Every row network's statistics from the strips, in the side's order: ``kappa_mean``,
    ``kappa_median`` (float64 (networks,)), ``kappa_pairs`` (int64), ``most``, ``least``
    (float32 (networks, k)), ``most_ids``, ``least_ids`` (int64 (networks, k))."""
    parts = [strip.networks for strip in strips]
    return {
        "kappa_mean": np.concatenate([p.kappa_mean for p in parts]),
        "kappa_median": np.concatenate([p.kappa_median for p in parts]),
        "kappa_pairs": np.concatenate([p.kappa_pairs for p in parts]),
        "most": np.concatenate([p.most for p in parts]),
        "most_ids": np.concatenate([p.most_ids for p in parts]),
        "least": np.concatenate([p.least for p in parts]),
        "least_ids": np.concatenate([p.least_ids for p in parts]),
    }


#: Quantiles of the per-network values that the summary reports.
NETWORK_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


def _quantiles(values: np.ndarray) -> list[float | None]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return [None] * len(NETWORK_QUANTILES)
    return [float(q) for q in np.quantile(finite, NETWORK_QUANTILES)]


def network_summary(values: dict[str, np.ndarray]) -> dict[str, Any]:
    """The bounded summary of the per-network statistics: quantiles over networks (at
    :data:`NETWORK_QUANTILES`) of each network's mean and median kappa to the others and of its
    kappa to its most and least similar network."""
    return {
        "quantiles": list(NETWORK_QUANTILES),
        "kappa_mean": _quantiles(values["kappa_mean"]),
        "kappa_median": _quantiles(values["kappa_median"]),
        "most_similar_kappa": _quantiles(values["most"][:, 0].astype(np.float64)),
        "least_similar_kappa": _quantiles(values["least"][:, 0].astype(np.float64)),
    }


#: Why a split without true labels has no correctness measures between networks.
NO_LABELS = (
    "the split has no true labels, so every network is 'wrong' on every example by "
    "construction: correctness agreement and kappa are not defined there; prediction "
    "agreement (and, in engine analyze, consensus) is"
)


def without_correctness(summary: dict[str, Any]) -> dict[str, Any]:
    """A matrix summary of a split without labels: its correctness agreement and kappa (which
    count verdicts that are wrong by construction, and so read 1.0 and undefined) emptied, and
    ``undefined`` saying why; prediction agreement is kept (in place, and returned).

    Examples
    --------
    >>> entry = {"all": {"mean": 1.0, "networks_ci": [1.0, 1.0], "pairs": 3}}
    >>> entry["group_means"] = [[1.0]]
    >>> out = without_correctness({"agreement": entry, "kappa": dict(entry)})
    >>> out["agreement"]["all"]["mean"] is None, out["agreement"]["group_means"]
    (True, [[None]])
    """
    for key in ("agreement", "kappa"):
        entry = summary.get(key)
        if not isinstance(entry, dict):
            continue
        entry["all"] = {k: (None if k != "pairs" else 0) for k in entry.get("all", {})}
        entry["group_means"] = [[None] * len(row) for row in entry.get("group_means", [])]
    summary["undefined"] = {"measures": ["agreement", "kappa"], "why": NO_LABELS}
    return summary


def network_sums(sides: MatrixSides, strips: list[StripResult]) -> tuple[np.ndarray, np.ndarray]:
    """Each network's sums with each group of the other side, per statistic, from the strips
    (:attr:`StripResult.row_sums` and ``column_sums``): (statistics, networks_0, groups_1) and
    (statistics, networks_1, groups_0); where symmetric both sides' parts are one network's
    whole row, added into the first."""
    rows = np.concatenate([cast(np.ndarray, strip.row_sums) for strip in strips], axis=1)
    first = cast(np.ndarray, strips[0].column_sums)
    columns = np.zeros((first.shape[0], sides.side_1.size, first.shape[2]))
    for strip in strips:
        part = cast(np.ndarray, strip.column_sums)
        columns[:, strip.column_start : strip.column_start + part.shape[1]] += part
    if sides.symmetric:
        return rows + columns, np.zeros_like(columns)
    return rows, columns

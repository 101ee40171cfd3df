"""Figures of one matrix that read at any number of networks: the kappa heatmap of a sample,
clustered; the distribution of kappa over pairs; the distributions over networks of each one's
mean kappa to the others and the nearest-neighbour structure (matplotlib, imported lazily, Agg
backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.pairwise.inputs import MatrixSides, PairwiseSide

#: Networks shown in the kappa heatmap (a random, group-stratified sample beyond it).
HEATMAP_NETWORKS = 300
#: Bins of the kappa distribution as drawn (the exact histogram's bins summed).
DRAWN_KAPPA_BINS = 200
#: Above this many networks the nearest-neighbour figure is a hexbin rather than a scatter.
SCATTER_NETWORKS = 5000


def sample_positions(side: PairwiseSide, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``limit`` positions of side.ids, every group represented in proportion."""
    if side.size <= limit:
        return np.arange(side.size)
    chosen = []
    for g in range(side.num_groups):
        members = np.flatnonzero(side.groups == g)
        count = max(1, int(round(limit * members.size / side.size)))
        chosen.append(rng.choice(members, size=min(count, members.size), replace=False))
    return np.sort(np.concatenate(chosen))


def sample_kappa(side: PairwiseSide, positions: np.ndarray) -> np.ndarray:
    """Kappa of every two networks at ``positions`` of ``side``, float32 (m, m), read from the
    store and counted with the tiles' kernels (NaN where undefined)."""
    from engine.pairwise.blocks import words_from_bytes
    from kernels.pairwise import agreement_and_kappa, co_correct_counts

    ids = side.ids[positions]
    packed = np.asarray(
        side.population.correct_packed(side.split)[:, side.checkpoint, :][ids].compute()
    )
    words = words_from_bytes(np.ascontiguousarray(packed))
    counts = np.bitwise_count(words).sum(axis=1, dtype=np.int64)
    both = co_correct_counts(words, words)
    _, kappa = agreement_and_kappa(both, counts, counts, side.num_examples)
    return kappa


def kappa_heatmap(
    kappa: np.ndarray, groups: np.ndarray, group_names: Sequence[str], path: Path, title: str
) -> None:
    """Heatmap of a (sampled) kappa matrix with networks ordered by average-linkage clustering
    on the distance 1 - kappa (undefined kappa counts as distance 1).

    Parameters
    ----------
    kappa : ndarray of float32, dims (networks, networks)
        NaN where undefined.
    groups : ndarray of int, dims (networks,)
        Group index of each network, into ``group_names``.
    group_names : sequence of str
        With more than one, a legend marks each network's group.
    path : Path
        The PNG written.
    title : str
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    size = kappa.shape[0]
    if size >= 3:
        distance = 1 - np.nan_to_num(kappa.astype(np.float64), nan=0.0)
        distance = np.clip((distance + distance.T) / 2, 0, None)
        np.fill_diagonal(distance, 0)
        order = leaves_list(linkage(squareform(distance, checks=False), method="average"))
    else:
        order = np.arange(size)
    figure, axes = plt.subplots(figsize=(7, 6))
    shown = kappa[np.ix_(order, order)].astype(np.float64)
    # A network agrees with itself (kappa 1); blank the diagonal so the colours span the pairs.
    np.fill_diagonal(shown, np.nan)
    finite = shown[np.isfinite(shown)]
    low, high = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    image = axes.imshow(
        shown, cmap="magma", vmin=low, vmax=max(high, low + 1e-6), interpolation="nearest"
    )
    figure.colorbar(image, ax=axes, label="error consistency (kappa)")
    if len(group_names) > 1:
        ordered = groups[order]
        for g, name in enumerate(group_names):
            where = np.flatnonzero(ordered == g)
            axes.scatter(np.full(where.size, -2), where, s=4, marker="s", label=name, clip_on=False)
        axes.legend(loc="upper right", fontsize=7, markerscale=3, title="group")
    axes.set_xlabel("networks (clustered)")
    axes.set_ylabel("networks (clustered)")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _drawn_bins(histogram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bins of [-1, 1] drawn: the fine bins summed in runs so that the span holding pairs
    (with a margin) is about 2 sqrt(pairs) bins, 20 to ``DRAWN_KAPPA_BINS`` (fewer pairs,
    wider bins); returns their edges and counts."""
    bins = histogram.shape[1]
    filled = np.flatnonzero(histogram.any(axis=0))
    if filled.size == 0:
        return np.linspace(-1, 1, bins + 1), histogram
    span = filled[-1] - filled[0] + 1
    drawn = int(np.clip(2 * np.sqrt(histogram.sum(axis=1).max()), 20, DRAWN_KAPPA_BINS))
    factor = max(1, int(np.ceil(span * 1.2 / drawn)))
    margin = max(factor, span // 10)
    start = max(0, filled[0] - margin)
    start -= start % factor
    stop = min(bins, filled[-1] + 1 + margin)
    stop += -(stop - start) % factor
    padded = np.zeros((histogram.shape[0], stop - start), histogram.dtype)
    kept = histogram[:, start : min(stop, bins)]
    padded[:, : kept.shape[1]] = kept
    summed = padded.reshape(histogram.shape[0], -1, factor).sum(axis=2)
    edges = -1 + 2 * (start + factor * np.arange(summed.shape[1] + 1)) / bins
    return edges, summed


def kappa_distribution(
    histogram: np.ndarray, labels: Sequence[str], path: Path, title: str
) -> None:
    """Distribution of pairwise kappa, one curve per row of ``histogram`` (bins over [-1, 1]).

    Parameters
    ----------
    histogram : ndarray of int64, dims (curves, bins)
        Pair counts per bin of kappa.
    labels : sequence of str
        One per row.
    path : Path
        The PNG written.
    title : str
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    edges, histogram = _drawn_bins(histogram)
    centres = (edges[:-1] + edges[1:]) / 2
    figure, axes = plt.subplots(figsize=(6, 4))
    for counts, label in zip(histogram, labels, strict=True):
        total = counts.sum()
        if total:
            axes.step(
                centres,
                counts / total / (edges[1] - edges[0]),
                where="mid",
                label=f"{label} ({total:,} pairs)",
            )
    axes.set_xlabel("error consistency (kappa)")
    axes.set_ylabel("density")
    axes.set_title(title, fontsize=9)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def network_figure(
    values: dict[str, np.ndarray],
    groups: np.ndarray,
    group_names: Sequence[str],
    path: Path,
    title: str,
) -> None:
    """Each network's kappa to the others: the distribution over networks of its mean (by
    group) and median, and the nearest-neighbour structure, the kappa to its most similar
    network against its mean (a scatter up to ``SCATTER_NETWORKS`` networks, a hexbin above).

    Parameters
    ----------
    values : dict
        :func:`engine.pairwise.summaries.network_values`.
    groups : ndarray of int, dims (networks,)
    group_names : sequence of str
    path : Path
        The PNG written.
    title : str
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    mean = values["kappa_mean"]
    median = values["kappa_median"]
    nearest = values["most"][:, 0].astype(np.float64)
    finite = np.isfinite(mean)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    shown = np.concatenate([mean[finite], median[np.isfinite(median)]])
    low, high = (shown.min(), shown.max()) if shown.size else (-1.0, 1.0)
    edges = np.linspace(low, max(high, low + 1e-3), 61)
    several = len(group_names) > 1
    for g, name in enumerate(group_names if several else ["all networks"]):
        chosen = finite & (groups == g) if several else finite
        if chosen.any():
            left.hist(mean[chosen], bins=edges, histtype="step", lw=1.3, label=f"{name}: mean")
    chosen = np.isfinite(median)
    if chosen.any():
        left.hist(median[chosen], bins=edges, histtype="step", ls="--", color="0.3", label="median")
    left.set(xlabel="kappa of a network to the others", ylabel="networks")
    left.set_title("per network: mean (and median) kappa to the others", fontsize=9)
    left.legend(fontsize=7)
    both = finite & np.isfinite(nearest)
    if both.sum() > SCATTER_NETWORKS:
        mappable = right.hexbin(mean[both], nearest[both], gridsize=50, bins="log", mincnt=1)
        figure.colorbar(mappable, ax=right, label="networks")
    elif both.any():
        right.scatter(mean[both], nearest[both], s=8, alpha=0.6, linewidths=0)
    if both.any():
        span = [
            min(mean[both].min(), nearest[both].min()),
            max(mean[both].max(), nearest[both].max()),
        ]
        right.plot(span, span, color="0.5", lw=0.8, ls=":", label="nearest = mean")
        right.legend(fontsize=7, loc="upper left")
    right.set(xlabel="mean kappa to the others", ylabel="kappa to its most similar network")
    right.set_title("nearest-neighbour structure", fontsize=9)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def matrix_figures(
    sides: MatrixSides,
    histogram: np.ndarray,
    values: dict[str, np.ndarray],
    out_dir: Path,
    stem: str,
    title: str,
    rng: np.random.Generator,
) -> list[str]:
    """Draw the figures of one matrix into ``out_dir``; returns their file names.

    A symmetric matrix gets the heatmap (of a sample of ``HEATMAP_NETWORKS`` networks drawn from
    ``rng``, its kappa counted again from the store), the within/between-groups distribution and
    the per-network figure; a cross matrix the distribution only. ``histogram``: int64
    (2, bins), the tiles' kappa histograms added up; ``values``: the per-network statistics.
    """
    written: list[str] = []
    if not histogram.any():
        # Kappa is undefined for every pair (a split without labels, or networks that are all
        # always right): a heatmap of NaN and an empty distribution would say nothing.
        return written
    distribution = out_dir / f"kappa_distribution_{stem}.png"
    if not sides.symmetric:
        kappa_distribution(histogram[1:], ["between the stores"], distribution, title)
        written.append(distribution.name)
        return written
    side = sides.side_0
    positions = sample_positions(side, HEATMAP_NETWORKS, rng)
    heatmap = out_dir / f"kappa_heatmap_{stem}.png"
    shown = "" if positions.size == side.size else f" (sample of {positions.size})"
    kappa_heatmap(
        sample_kappa(side, positions),
        side.groups[positions],
        side.group_names,
        heatmap,
        f"{title}: {side.size} networks{shown}",
    )
    written.append(heatmap.name)
    several = side.num_groups > 1
    labels = ["within groups", "between groups"] if several else ["all pairs", "unused"]
    rows = histogram if several else histogram[:1] + histogram[1:]
    kappa_distribution(rows, labels[: rows.shape[0]], distribution, title)
    written.append(distribution.name)
    networks = out_dir / f"kappa_networks_{stem}.png"
    network_figure(
        values, side.groups, side.group_names, networks, f"{title}: {side.size:,} networks"
    )
    written.append(networks.name)
    return written

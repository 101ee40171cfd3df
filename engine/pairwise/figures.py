"""Figures of one matrix: the kappa heatmap and the distribution of pairwise kappa (matplotlib,
imported lazily, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.pairwise.output import MatrixTarget, open_kappa

if TYPE_CHECKING:
    from engine.pairwise.inputs import MatrixSides, PairwiseSide

#: Networks shown in the kappa heatmap (a random, group-stratified sample beyond it).
HEATMAP_NETWORKS = 300


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

    edges = np.linspace(-1, 1, histogram.shape[1] + 1)
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


def matrix_figures(
    sides: MatrixSides,
    target: MatrixTarget,
    histogram: np.ndarray,
    out_dir: Path,
    stem: str,
    title: str,
    rng: np.random.Generator,
) -> list[str]:
    """Draw the figures of one written matrix into ``out_dir``; returns their file names.

    A symmetric matrix gets the heatmap (of a sample of ``HEATMAP_NETWORKS`` networks drawn from
    ``rng``) and the within/between-groups distribution; a cross matrix the distribution only.
    ``histogram``: int64 (2, bins), the tiles' kappa histograms added up.
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
    sample = np.asarray(open_kappa(target).get_orthogonal_selection((positions, positions)))
    heatmap = out_dir / f"kappa_heatmap_{stem}.png"
    shown = "" if positions.size == side.size else f" (sample of {positions.size})"
    kappa_heatmap(
        sample,
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
    return written

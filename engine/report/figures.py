"""The PNG figures of a report: accuracy, TP-agreement histograms against their null, learning
curves by accessibility, consensus, the data maps and AUM distribution of soft verdicts, and the
figures comparing stores.

matplotlib is imported on first use, with its non-interactive Agg backend.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.report.results import Comparison, StoreResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path, plt) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def embedded(paths: Iterable[str | Path]) -> list[Path]:
    """The PNG figures among the files another step names (the page embeds only those)."""
    return [Path(p) for p in paths if str(p).endswith(".png")]


# ----------------------------------------------------------------------------------------------
# analyze


def analysis_figures(result: StoreResult, out_dir: Path) -> list[Path]:
    """Draw the figures of one store into ``out_dir``; returns their paths in page order."""
    plt = _pyplot()
    epochs = result.selection.epochs
    measures = result.measures
    splits = result.selection.splits
    made = []
    labelled = [s for s in splits if "accuracy_mean" in measures[s].overall["summary"]]
    # One checkpoint (an imported final one, say): no curve over training to draw.
    over_training = epochs.size > 1
    if labelled and over_training:
        made.append(_accuracy_figure(plt, result, labelled, out_dir))
    for split in labelled:
        summary = measures[split].overall["summary"]
        made.append(_tpa_figure(plt, split, summary, epochs, out_dir))
        if over_training:
            examples = measures[split].overall["examples"]
            made.append(_learning_curve_figure(plt, split, examples, epochs, out_dir))
    for split in splits:
        consensus = measures[split].overall["summary"].get("consensus")
        if consensus and not result.population.has_labels(split):
            made.append(_consensus_figure(plt, split, consensus, epochs, out_dir))
    return made


def _accuracy_figure(plt, result: StoreResult, labelled: list[str], out_dir: Path) -> Path:
    """Mean accuracy (and its spread) of the networks per labelled split, and of each group."""
    epochs = result.selection.epochs
    figure, axis = plt.subplots(figsize=(6, 4))
    for split in labelled:
        summary = result.measures[split].overall["summary"]
        mean, std = np.asarray(summary["accuracy_mean"]), np.asarray(summary["accuracy_std"])
        axis.plot(epochs, mean, label=f"{split} (mean of {summary['networks']})")
        axis.fill_between(epochs, mean - std, mean + std, alpha=0.2)
        for name, group in result.measures[split].groups.items():
            axis.plot(
                epochs, group["summary"]["accuracy_mean"], lw=0.8, ls="--", label=f"{split}, {name}"
            )
    axis.set(xlabel="epoch", ylabel="accuracy", title="Accuracy of the networks")
    axis.legend(fontsize=7)
    return _save(figure, out_dir / "accuracy.png", plt)


#: A histogram over k = 0..N networks is drawn with one bar per k up to this many bins, else with
#: k = 0 and k = N alone (the extremes) and the counts between in this many bins of near equal
#: width, so that it reads alike at N = 10 and N = 100,000 (the exact counts are in
#: histograms.parquet).
COUNT_BINS = 50


def count_bins(size: int, bins: int = COUNT_BINS) -> np.ndarray:
    """Edges over k of a histogram of k = 0..``size``, int64 (bins + 1,): bin b holds
    edges[b] <= k < edges[b + 1]; k = 0 and k = ``size`` are bins of their own."""
    if size + 1 <= bins + 2:
        return np.arange(size + 2, dtype=np.int64)
    inner = np.unique(np.round(np.linspace(1, size, bins + 1)).astype(np.int64))
    return np.concatenate([[0], inner, [size + 1]]).astype(np.int64)


@dataclass(frozen=True)
class BinnedCounts:
    """A histogram over k = 0..N binned by :func:`count_bins` for drawing.

    Attributes
    ----------
    edges : ndarray of int64, dims (bins + 1,)
        Bin b holds edges[b] <= k < edges[b + 1].
    x : ndarray of float64, dims (bins + 1,)
        The bins' bounds on the share k / N axis, the extremes widened where binned.
    counts, expected : ndarray of float64, dims (bins,)
        Observed examples and those of the null in each bin.
    exact : bool
        One bin per k.
    """

    edges: np.ndarray
    x: np.ndarray
    counts: np.ndarray
    expected: np.ndarray
    exact: bool


def binned_counts(observed: np.ndarray, null: np.ndarray) -> BinnedCounts:
    """``observed`` and ``null`` (float (N + 1,), examples per k) binned by :func:`count_bins`."""
    size = observed.size - 1
    edges = count_bins(size)
    counts = np.add.reduceat(observed, edges[:-1])
    expected = np.add.reduceat(null, edges[:-1])
    x = (edges - 0.5) / max(size, 1)
    exact = edges.size == size + 2
    if not exact:
        # The extremes are single counts of k, 1/N wide: widen them outwards to an inner bin's
        # width so that they stay visible (their position, 0 and 1, is kept).
        width = (x[-2] - x[1]) / (edges.size - 3)
        x[0], x[-1] = x[1] - width, x[-2] + width
    return BinnedCounts(edges, x, counts, expected, exact)


def _count_histogram(
    axis, observed: np.ndarray, null: np.ndarray, null_label: str, xlabel: str, ends: tuple
) -> str:
    """Draw a histogram over k = 0..N (``observed`` and ``null``, float (N + 1,)) binned by
    :func:`count_bins` against the share k / N; returns a note on the binning."""
    size = observed.size - 1
    bins = binned_counts(observed, null)
    edges, x, counts, expected, exact = bins.edges, bins.x, bins.counts, bins.expected, bins.exact
    axis.stairs(counts, x, fill=True, color="tab:blue", alpha=0.85, label="observed")
    axis.stairs(expected, x, color="tab:red", lw=1.1, label=null_label)
    if not exact:
        # The extremes in a darker colour: a single k each, where the inner bins hold many.
        total = max(observed.sum(), 1)
        label = (
            f"{ends[0]} {100 * counts[0] / total:.1f}%, {ends[1]} {100 * counts[-1] / total:.1f}%"
        )
        axis.bar(x[0], counts[0], width=x[1] - x[0], align="edge", color="navy", label=label)
        axis.bar(x[-2], counts[-1], width=x[-1] - x[-2], align="edge", color="navy")
    axis.set_yscale("symlog", linthresh=1)
    # Headroom above the tallest bar for the legend (a log axis: a factor).
    axis.set_ylim(0, 30 * max(counts.max(initial=1), expected.max(initial=1)))
    axis.set(xlabel=xlabel, ylabel="examples" if exact else "examples per bin")
    axis.legend(fontsize=7, loc="upper left")
    if exact:
        return f"{size} networks"
    step = (size - 1) / (edges.size - 3)
    return f"{size:,} networks, bins of ~{step:,.0f}"


def _tpa_figure(
    plt, split: str, summary: dict[str, Any], epochs: np.ndarray, out_dir: Path
) -> Path:
    """TP-agreement histograms at the first, middle and last checkpoints, against the null,
    binned (:func:`count_bins`) so that they read at any number of networks."""
    total = len(summary["tpa_histogram"])
    chosen = sorted({0, total // 2, total - 1})
    figure, axes = plt.subplots(1, len(chosen), figsize=(4 * len(chosen), 3.3), squeeze=False)
    for axis, t in zip(axes[0], chosen, strict=True):
        note = _count_histogram(
            axis,
            np.asarray(summary["tpa_histogram"][t], float),
            np.asarray(summary["null_histogram"][t], float),
            "independent (Poisson-binomial)",
            "TP-agreement (share of networks right)",
            ("none right", "all right"),
        )
        axis.set_title(f"{split}, {epoch_label(epochs[t])} ({note})", fontsize=9)
    return _save(figure, out_dir / f"tpa_histogram_{split}.png", plt)


def _learning_curve_figure(
    plt, split: str, examples: dict[str, np.ndarray], epochs: np.ndarray, out_dir: Path
) -> Path:
    """Mean TP-agreement per checkpoint of each fifth of the examples by accessibility rank
    (:func:`rank_quintiles`)."""
    figure, axis = plt.subplots(figsize=(6, 4))
    tpa, accessibility = labelled_tpa(examples)
    for quintile in rank_quintiles(accessibility):
        axis.plot(epochs, tpa[:, quintile.members].mean(axis=1), label=quintile.label)
    axis.set(
        xlabel="epoch",
        ylabel="mean TP-agreement",
        ylim=(-0.02, 1.02),
        title=f"{split}: learning curves of examples by accessibility (fifths by rank)",
    )
    axis.legend(fontsize=7)
    return _save(figure, out_dir / f"learning_curves_{split}.png", plt)


def labelled_tpa(examples: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """TP-agreement float64 (checkpoints, examples) of a split's labelled examples and their
    accessibility float64 (examples,), in the same order (``examples`` is a split's per-example
    measures: ``tpa`` covers the labelled examples only, ``accessibility`` every example with NaN
    for those without a label)."""
    accessibility = np.asarray(examples["accessibility"], np.float64)
    return np.asarray(examples["tpa"], np.float64), accessibility[np.isfinite(accessibility)]


@dataclass(frozen=True)
class Quintile:
    """One fifth of the examples by accessibility rank: ``members`` int64 (m,) indices into
    the examples given, and the legend's ``label``."""

    members: np.ndarray
    label: str


#: The fifths, least accessible first.
FIFTHS = ("least accessible", "second", "middle", "fourth", "most accessible")


def rank_quintiles(accessibility: np.ndarray) -> list[Quintile]:
    """The examples in five groups of (nearly) equal size by accessibility rank, least
    accessible first, ties broken by example order; empty groups are left out.

    Groups by value quantiles collapse under ties (a fifth of examples all at 1.0 gives the
    legend "1.00-1.00" twice); by rank each fifth holds a fifth of the examples. The legend
    gives the accessibility range of each fifth where those ranges are distinct at two
    decimals, else the ranks (1 = most accessible, as ``learning_order``).
    """
    accessibility = np.asarray(accessibility, np.float64)
    count = accessibility.size
    order = np.argsort(accessibility, kind="stable")
    parts = np.array_split(order, len(FIFTHS))
    ranges = [
        f"{accessibility[p].min():.2f}-{accessibility[p].max():.2f}" if p.size else ""
        for p in parts
    ]
    shown = [r for r in ranges if r]
    collapsed = len(set(shown)) < len(shown) or any(
        r.split("-")[0] == r.split("-")[1] for r in shown
    )
    quintiles, start = [], 0
    for name, part, value_range in zip(FIFTHS, parts, ranges, strict=True):
        stop = start + part.size
        if part.size:
            if collapsed:
                detail = f"ranks {count - stop + 1:,}-{count - start:,} of {count:,}"
            else:
                detail = f"accessibility {value_range}"
            quintiles.append(Quintile(part.astype(np.int64), f"{name} fifth, {detail}"))
        start = stop
    return quintiles


def _consensus_figure(
    plt, split: str, consensus: dict[str, Any], epochs: np.ndarray, out_dir: Path
) -> Path:
    figure, axis = plt.subplots(figsize=(6, 4))
    note = _count_histogram(
        axis,
        np.asarray(consensus["histogram"][-1], float),
        np.asarray(consensus["null_histogram"][-1], float),
        "independent draws (null)",
        "consensus (share of networks giving the plurality class)",
        ("no prediction", "unanimous"),
    )
    axis.set_title(f"{split}: consensus at {epoch_label(epochs[-1])} ({note})", fontsize=9)
    return _save(figure, out_dir / f"consensus_{split}.png", plt)


# ----------------------------------------------------------------------------------------------
# Soft verdicts: data maps and the area under the margin

#: Above this many examples a data map is a hexbin (colour: mean correctness per cell).
HEXBIN_ABOVE = 5000
REGION_COLOURS = {
    "easy": "tab:green",
    "ambiguous": "tab:orange",
    "hard": "tab:red",
    "other": "tab:grey",
}


def soft_figures(result: StoreResult, out_dir: Path) -> list[tuple[Path, str]]:
    """The figures of the soft verdicts of each split that has them, each with the sentence the
    page shows under it: the population's data map, the data maps of a few networks, the
    distribution of the area under the margin."""
    plt = _pyplot()
    made = []
    for split in result.selection.splits:
        measures = result.measures[split].overall
        soft = measures["summary"].get("soft") or {}
        if "population_region" not in measures["examples"]:
            continue
        examples = measures["examples"]
        made.append(_population_map_figure(plt, split, examples, soft, out_dir))
        counts = result.counts[split].soft or {}
        statistics = counts.get("network_statistics")
        if statistics is not None and np.asarray(statistics).shape[2]:
            made.append(_network_maps_figure(plt, result, split, np.asarray(statistics), out_dir))
        made.append(_aum_figure(plt, split, examples, soft, out_dir))
    return made


def _region_bounds(
    axis, thresholds: dict[str, float], shares: dict[str, float] | None = None, small=False
) -> None:
    """Cartography's regions on a data map (variability across, confidence up), each named
    (with its share of examples where ``shares`` is given)."""
    ambiguous = thresholds["ambiguous_variability"]
    easy, hard = thresholds["easy_confidence"], thresholds["hard_confidence"]
    style = {"color": "black", "lw": 0.9, "ls": "--"}
    axis.axvline(ambiguous, **style)
    axis.plot([0, ambiguous], [easy, easy], **style)
    axis.plot([0, ambiguous], [hard, hard], **style)
    box = {"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.75, "lw": 0}
    places = {
        "easy": (0.01, 0.985, "top", "left"),
        "hard": (0.01, 0.015, "bottom", "left"),
        "other": (0.01, (easy + hard) / 2, "center", "left"),
        "ambiguous": (0.49, 0.985, "top", "right"),
    }
    for name, (x, y, va, ha) in places.items():
        # One decimal, as the page's sentences and tables give the same shares.
        label = f"{name} {100 * shares[name]:.1f}%" if shares else name
        axis.text(
            x,
            y,
            label,
            va=va,
            ha=ha,
            color=REGION_COLOURS[name],
            fontsize=6.5 if small else 8,
            fontweight="bold",
            bbox=box,
        )


def _data_map(
    axis, variability, confidence, correctness, thresholds, shares=None, small: bool = False
):
    """One data map: variability across, confidence up, colour the correctness share; a
    scatter with transparency up to HEXBIN_ABOVE examples, a hexbin of mean correctness above.
    Returns the mappable for a colour bar."""
    keep = np.isfinite(variability) & np.isfinite(confidence) & np.isfinite(correctness)
    x, y, c = variability[keep], confidence[keep], correctness[keep]
    colours = {"cmap": "RdYlGn", "vmin": 0.0, "vmax": 1.0}
    if keep.sum() > HEXBIN_ABOVE:
        mappable = axis.hexbin(
            x,
            y,
            C=c,
            reduce_C_function=np.mean,
            gridsize=(30, 40) if small else (50, 60),
            extent=(0, 0.5, 0, 1),
            mincnt=1,
            linewidths=0.1,
            **colours,
        )
    else:
        size = 14 if keep.sum() <= 500 else 5
        alpha = 0.8 if keep.sum() <= 500 else 0.45
        # A thin edge keeps points of middling correctness (pale yellow) visible on white.
        edge = {"edgecolors": "0.35", "linewidths": 0.3} if keep.sum() <= 500 else {"linewidths": 0}
        mappable = axis.scatter(x, y, c=c, s=size, alpha=alpha, **edge, **colours)
    _region_bounds(axis, thresholds, shares, small)
    # A little past the ends: planted or saturated examples sit exactly on 0, 0.5 and 1.
    axis.set(xlim=(-0.01, 0.51), ylim=(-0.02, 1.02))
    return mappable


def _colour_bar(figure, mappable, axes, label: str, **options) -> None:
    """A colour bar drawn opaque, whatever the transparency of the points."""
    bar = figure.colorbar(mappable, ax=axes, label=label, **options)
    bar.solids.set_alpha(1.0)


def _population_map_figure(
    plt, split: str, examples: dict[str, np.ndarray], soft: dict[str, Any], out_dir: Path
) -> tuple[Path, str]:
    thresholds = soft["thresholds"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    mappable = _data_map(
        left,
        examples["variability_mean"],
        examples["confidence_mean"],
        examples["correctness_mean"],
        thresholds,
        soft["population_region_share"],
    )
    _colour_bar(figure, mappable, left, "correctness share (mean over networks)")
    left.set(
        xlabel="variability (mean over networks)",
        ylabel="confidence (mean over networks)",
    )
    # Long enough to overrun the panel at its default size once the counts reach 100,000.
    left.set_title(
        f"{split}: population data map, {soft['networks']} networks, {soft['examples']} examples",
        fontsize=10,
    )
    confidence, spread = examples["confidence_mean"], examples["confidence_std"]
    variability = examples["variability_mean"]
    keep = np.isfinite(confidence) & np.isfinite(spread)
    top = min(0.5, max(0.05, 1.15 * float(spread[keep].max()))) if keep.any() else 0.5
    if keep.sum() > HEXBIN_ABOVE:
        mappable = right.hexbin(
            confidence[keep],
            spread[keep],
            C=variability[keep],
            reduce_C_function=np.mean,
            gridsize=(50, 25),
            extent=(0, 1, 0, top),
            mincnt=1,
            linewidths=0.1,
            cmap="viridis",
            vmin=0,
            vmax=0.5,
        )
    else:
        mappable = right.scatter(
            confidence[keep],
            spread[keep],
            c=variability[keep],
            s=14 if keep.sum() <= 500 else 5,
            alpha=0.8 if keep.sum() <= 500 else 0.45,
            linewidths=0,
            cmap="viridis",
            vmin=0,
            vmax=0.5,
        )
    _colour_bar(figure, mappable, right, "variability (mean over networks)")
    right.set(
        xlim=(-0.02, 1.02),
        ylim=(-0.02 * top, top),
        xlabel="confidence (mean over networks)",
        ylabel="confidence spread across networks (std)",
        title=f"{split}: where networks disagree",
    )
    path = _save(figure, out_dir / f"data_map_{split}.png", plt)
    caption = (
        f"{split}: each example's mean confidence in its true class against the variability of "
        "that confidence over training, both averaged over the networks and coloured by the "
        "share of right verdicts, with cartography's regions marked (left); the right panel "
        "shows how much the networks' confidences differ on each example, which separates "
        "examples ambiguous for every network from those only some networks find hard."
    )
    return path, caption


def _network_maps_figure(
    plt, result: StoreResult, split: str, statistics: np.ndarray, out_dir: Path
) -> tuple[Path, str]:
    """Small multiples: the data map of each of the selection's map networks."""
    from engine.measures import STATISTIC_NAMES

    chosen = result.selection.map_networks
    ordered = np.sort(chosen)  # soft_statistics returns the table in ascending network order
    thresholds = result.measures[split].overall["summary"]["soft"]["thresholds"]
    group_names = result.selection.networks.group_names
    network_group = result.selection.networks.network_group
    count = len(chosen)
    figure, axes = plt.subplots(
        1, count, figsize=(3.4 * count + 1.0, 3.6), squeeze=False, sharey=True
    )
    conf, var, corr = (
        STATISTIC_NAMES.index(n) for n in ("confidence", "variability", "correctness")
    )
    mappable = None
    for axis, network in zip(axes[0], chosen, strict=True):
        column = int(np.searchsorted(ordered, network))
        mappable = _data_map(
            axis,
            statistics[var, :, column],
            statistics[conf, :, column],
            statistics[corr, :, column],
            thresholds,
            small=True,
        )
        axis.set(
            title=f"network {network} ({group_names[network_group[network]]})",
            xlabel="variability",
        )
    axes[0][0].set_ylabel("confidence")
    if mappable is not None:
        _colour_bar(figure, mappable, list(axes[0]), "correctness share", shrink=0.9)
    figure.suptitle(f"{split}: data maps of single networks", fontsize=10, y=1.04)
    path = out_dir / f"data_map_networks_{split}.png"
    figure.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(figure)
    caption = (
        f"{split}: the same data map for {count} single networks (the first of each group, then "
        "the next ones): one run's map is noisier than the population's, and comparing them "
        "shows which examples move between regions from network to network."
    )
    return path, caption


def _aum_figure(
    plt, split: str, examples: dict[str, np.ndarray], soft: dict[str, Any], out_dir: Path
) -> tuple[Path, str]:
    from engine.measures import AUM_EDGES, POPULATION_REGIONS

    aum, region = examples["aum_mean"], examples["population_region"]
    figure, axis = plt.subplots(figsize=(7, 4))
    bottom = np.zeros(AUM_EDGES.size - 1)
    for r, name in enumerate(POPULATION_REGIONS):
        chosen = (region == r) & np.isfinite(aum)
        counts, _ = np.histogram(np.clip(aum[chosen], AUM_EDGES[0], AUM_EDGES[-1]), bins=AUM_EDGES)
        axis.stairs(
            bottom + counts,
            AUM_EDGES,
            baseline=bottom.copy(),
            fill=True,
            color=REGION_COLOURS[name],
            alpha=0.85,
            label=f"{name} (population region)",
        )
        bottom += counts
    axis.axvline(0, color="black", lw=1, ls="--")
    negative = soft.get("aum_negative_share")
    share = f"{100 * negative:.1f}%" if negative is not None else "-"
    finite = aum[np.isfinite(aum)]
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        pad = max(0.5, 0.05 * (high - low))
        axis.set_xlim(max(AUM_EDGES[0], low - pad), min(AUM_EDGES[-1], high + pad))
    axis.set(
        xlabel="area under the margin (mean over checkpoints, then over networks)",
        ylabel="examples",
        title=f"{split}: area under the margin; {share} of examples below 0",
    )
    axis.legend(fontsize=7)
    path = _save(figure, out_dir / f"aum_{split}.png", plt)
    caption = (
        f"{split}: how many examples have each area under the margin (the true class's logit "
        "minus the largest other, averaged over training and networks), stacked by population "
        "region; examples below 0 are those the networks keep preferring another class for, "
        "the likely mislabelled ones."
    )
    return path, caption


# ----------------------------------------------------------------------------------------------
# compare


def compare_figures(
    comparison: Comparison, results: list[StoreResult], out_dir: Path
) -> list[Path]:
    """Accessibility of every two stores per labelled split, and generalisation against
    agreement across stores; returns the paths in page order."""
    plt = _pyplot()
    names = comparison.names
    made = []
    for split in comparison.labelled:
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                made.append(
                    _accessibility_figure(
                        plt, split, names[i], results[i], names[j], results[j], out_dir
                    )
                )
    if comparison.generalisation:
        made.append(_generalisation_figure(plt, comparison.generalisation, out_dir))
    return made


def _accessibility_figure(
    plt,
    split: str,
    name_0: str,
    result_0: StoreResult,
    name_1: str,
    result_1: StoreResult,
    out_dir: Path,
) -> Path:
    a = result_0.measures[split].overall["examples"]["accessibility"]
    b = result_1.measures[split].overall["examples"]["accessibility"]
    keep = np.isfinite(a) & np.isfinite(b)
    figure, axis = plt.subplots(figsize=(5, 5))
    if keep.sum() > 5000:
        axis.hexbin(a[keep], b[keep], gridsize=60, bins="log", cmap="viridis")
    else:
        axis.scatter(a[keep], b[keep], s=4, alpha=0.5)
    axis.plot([0, 1], [0, 1], color="grey", lw=0.8)
    axis.set(
        xlabel=f"accessibility, {name_0}",
        ylabel=f"accessibility, {name_1}",
        title=f"{split}: {name_0} vs {name_1}",
    )
    return _save(figure, out_dir / f"accessibility_{split}_{name_0}_{name_1}.png", plt)


def _generalisation_figure(plt, rows: list[dict[str, Any]], out_dir: Path) -> Path:
    figure, axis = plt.subplots(figsize=(5, 4))
    for row in rows:
        if row["agreement_excess"] is not None:
            axis.scatter(row["agreement_excess"], row["accuracy"])
            axis.annotate(row["population"], (row["agreement_excess"], row["accuracy"]), fontsize=8)
    axis.set(
        xlabel="agreement excess (last checkpoint)",
        ylabel="accuracy (last)",
        title="Generalisation against agreement",
    )
    return _save(figure, out_dir / "generalisation.png", plt)


def epoch_label(epoch: float) -> str:
    """A checkpoint for a title: its epoch, or the final one where the epoch is unknown (NaN:
    an imported population's only checkpoint)."""
    return f"epoch {epoch:g}" if np.isfinite(epoch) else "the final checkpoint"


__all__ = [
    "BinnedCounts",
    "Quintile",
    "analysis_figures",
    "binned_counts",
    "compare_figures",
    "count_bins",
    "embedded",
    "epoch_label",
    "labelled_tpa",
    "rank_quintiles",
    "soft_figures",
]

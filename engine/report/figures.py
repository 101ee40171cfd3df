"""The PNG figures of a report: accuracy, TP-agreement histograms against their null, learning
curves by accessibility, consensus, and the figures comparing stores.

matplotlib is imported on first use, with its non-interactive Agg backend.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    if labelled:
        made.append(_accuracy_figure(plt, result, labelled, out_dir))
    for split in labelled:
        summary = measures[split].overall["summary"]
        made.append(_tpa_figure(plt, split, summary, epochs, out_dir))
        made.append(_learning_curve_figure(plt, split, summary, epochs, out_dir))
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


def _tpa_figure(
    plt, split: str, summary: dict[str, Any], epochs: np.ndarray, out_dir: Path
) -> Path:
    """TP-agreement histograms at the first, middle and last checkpoints, against the null."""
    total = len(summary["tpa_histogram"])
    chosen = sorted({0, total // 2, total - 1})
    figure, axes = plt.subplots(1, len(chosen), figsize=(4 * len(chosen), 3.3), squeeze=False)
    size = summary["networks"]
    for axis, t in zip(axes[0], chosen, strict=True):
        observed = np.asarray(summary["tpa_histogram"][t], float)
        null = np.asarray(summary["null_histogram"][t], float)
        share = np.arange(size + 1) / max(size, 1)
        edges = np.linspace(-0.5, size + 0.5, size + 2) / max(size, 1)
        # stairs, not bars: one path instead of N + 1 rectangles (N is in the thousands).
        axis.stairs(observed, edges, fill=True, color="tab:blue", label="observed")
        axis.plot(share, null, color="tab:red", lw=1, label="independent (Poisson-binomial)")
        axis.set_yscale("symlog", linthresh=1)
        axis.set(
            xlabel="TP-agreement (share of networks right)",
            ylabel="examples",
            title=f"{split}, epoch {epochs[t]:g}",
        )
        axis.legend(fontsize=7)
    return _save(figure, out_dir / f"tpa_histogram_{split}.png", plt)


def _learning_curve_figure(
    plt, split: str, summary: dict[str, Any], epochs: np.ndarray, out_dir: Path
) -> Path:
    figure, axis = plt.subplots(figsize=(6, 4))
    curves = summary["tpa_mean_by_accessibility"]
    edges = curves["edges"]
    for b, curve in enumerate(curves["curves"]):
        if curve is not None:
            axis.plot(epochs, curve, label=f"accessibility {edges[b]:.2f}-{edges[b + 1]:.2f}")
    axis.set(
        xlabel="epoch",
        ylabel="mean TP-agreement",
        ylim=(-0.02, 1.02),
        title=f"{split}: learning curves of examples by accessibility (quintiles)",
    )
    axis.legend(fontsize=7)
    return _save(figure, out_dir / f"learning_curves_{split}.png", plt)


def _consensus_figure(
    plt, split: str, consensus: dict[str, Any], epochs: np.ndarray, out_dir: Path
) -> Path:
    histogram = np.asarray(consensus["histogram"][-1], float)
    null = np.asarray(consensus["null_histogram"][-1], float)
    size = histogram.size - 1
    share = np.arange(size + 1) / max(size, 1)
    figure, axis = plt.subplots(figsize=(6, 4))
    edges = np.linspace(-0.5, size + 0.5, size + 2) / max(size, 1)
    axis.stairs(histogram, edges, fill=True, label="observed")
    axis.plot(share, null, color="tab:red", label="independent draws (null)")
    axis.set(
        xlabel="consensus (share of networks giving the plurality class)",
        ylabel="examples",
        title=f"{split}: consensus at epoch {epochs[-1]:g}",
    )
    axis.legend(fontsize=7)
    return _save(figure, out_dir / f"consensus_{split}.png", plt)


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


__all__ = ["analysis_figures", "compare_figures", "embedded"]

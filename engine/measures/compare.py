"""Comparisons of learning orders between populations (or groups of one population).

Plain NumPy and SciPy on the per-example results of :func:`engine.measures.split_measures`:
the vectors are small (examples), so nothing here is scheduled.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.measures.numbers import nan_to_none, spearman
from engine.measures.verdicts import AccessibilityWindow


def learning_order_correlation(accessibility_0: np.ndarray, accessibility_1: np.ndarray) -> dict:
    """Spearman, Pearson and Kendall correlation of two accessibility vectors, dims (x,)."""
    from scipy.stats import kendalltau, pearsonr, spearmanr

    a = np.asarray(accessibility_0, np.float64)
    b = np.asarray(accessibility_1, np.float64)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return {"spearman": None, "pearson": None, "kendall": None}
    return {
        "spearman": nan_to_none(spearmanr(a, b).statistic),
        "pearson": nan_to_none(pearsonr(a, b).statistic),
        "kendall": nan_to_none(kendalltau(a, b).statistic),
    }


def superset_fraction(tpa_last_weaker: np.ndarray, tpa_last_stronger: np.ndarray) -> float | None:
    """Of the examples the weaker population has learned (TPA above one half at its last
    checkpoint), the fraction the stronger one has learned too."""
    learned = np.asarray(tpa_last_weaker) > 0.5
    if not learned.any():
        return None
    return float((np.asarray(tpa_last_stronger)[learned] > 0.5).mean())


def reliability_ceiling(reliability_0: float | None, reliability_1: float | None) -> float | None:
    """The highest correlation two noisy measurements can reach: the root of the product of
    their reliabilities, None unless both are positive.

    Examples
    --------
    >>> reliability_ceiling(0.25, 0.64)
    0.4
    >>> reliability_ceiling(0.9, None) is None
    True
    """
    if (
        reliability_0 is not None
        and reliability_1 is not None
        and reliability_0 > 0
        and reliability_1 > 0
    ):
        return math.sqrt(reliability_0 * reliability_1)
    return None


def compare_measures(name_0: str, measures_0: dict, name_1: str, measures_1: dict) -> dict:
    """Learning-order agreement of two populations on one split.

    Parameters
    ----------
    measures_0, measures_1 : dict
        Results of :func:`engine.measures.split_measures` (``summary`` and ``examples``) on the
        same examples.
    """
    summary_0, summary_1 = measures_0["summary"], measures_1["summary"]
    examples_0, examples_1 = measures_0["examples"], measures_1["examples"]
    result: dict[str, Any] = {"populations": [name_0, name_1]}
    if "accessibility" not in examples_0 or "accessibility" not in examples_1:
        return result
    labelled = np.isfinite(examples_0["accessibility"]) & np.isfinite(examples_1["accessibility"])
    result.update(
        learning_order_correlation(
            examples_0["accessibility"][labelled], examples_1["accessibility"][labelled]
        )
    )
    tpa_0, tpa_1 = examples_0["tpa"], examples_1["tpa"]
    common = min(tpa_0.shape[0], tpa_1.shape[0])
    result["spearman_per_checkpoint"] = [
        nan_to_none(spearman(tpa_0[t], tpa_1[t])) for t in range(common)
    ]
    reliability_0 = summary_0.get("split_half_spearman")
    reliability_1 = summary_1.get("split_half_spearman")
    result["split_half_spearman"] = [reliability_0, reliability_1]
    ceiling = reliability_ceiling(reliability_0, reliability_1)
    result["ceiling"] = ceiling
    result["spearman_over_ceiling"] = (
        result["spearman"] / ceiling if ceiling and result["spearman"] is not None else None
    )
    accuracy_0 = summary_0["accuracy_mean"][-1]
    accuracy_1 = summary_1["accuracy_mean"][-1]
    weaker, stronger = (0, 1) if accuracy_0 <= accuracy_1 else (1, 0)
    tpa_last = [examples_0["tpa_last"][labelled], examples_1["tpa_last"][labelled]]
    result["weaker"] = [name_0, name_1][weaker]
    result["stronger"] = [name_0, name_1][stronger]
    result["superset_fraction"] = superset_fraction(tpa_last[weaker], tpa_last[stronger])
    result["reverse_superset_fraction"] = superset_fraction(tpa_last[stronger], tpa_last[weaker])
    return result


def generalisation_row(name: str, measures: dict) -> dict:
    """One population's test accuracy against its agreement excess and reliability."""
    summary = measures["summary"]
    return {
        "population": name,
        "accuracy": summary["accuracy_mean"][-1],
        "agreement_excess": summary["agreement_excess"][-1],
        "extreme_fraction": summary["extreme_fraction"][-1],
        "split_half_spearman": summary.get("split_half_spearman"),
        "networks": summary["networks"],
    }


def _epochs_text(epochs: np.ndarray, shown: int = 4) -> str:
    values = ["?" if not np.isfinite(e) else f"{e:g}" for e in epochs]
    return ", ".join(values if len(values) <= shown else [*values[:shown], "..."])


def checkpoint_grids(
    names: list[str], epochs: list[np.ndarray], windows: list[AccessibilityWindow]
) -> dict[str, Any]:
    """How the populations' checkpoints compare, how accessibility was made comparable, and
    the warnings a reader of ``engine compare`` must see.

    Parameters
    ----------
    names : list of str
    epochs : list of float64 (t,)
        Each population's checkpoint epochs (NaN: unknown).
    windows : list of AccessibilityWindow
        The checkpoints each population's accessibility averages over.

    Returns
    -------
    dict
        ``checkpoints`` and ``epochs`` per population, ``same_checkpoints``,
        ``accessibility`` (each window's summary), ``how`` (one sentence) and ``warnings``.
    """
    counts = [int(e.size) for e in epochs]
    same_count = len(set(counts)) == 1
    same_epochs = same_count and all(
        np.array_equal(epochs[0], e, equal_nan=True) for e in epochs[1:]
    )
    common = min(counts)
    warnings = []
    if not same_count:
        listed = ", ".join(f"{n}: {c}" for n, c in zip(names, counts, strict=True))
        warnings.append(
            f"the populations have different checkpoint counts ({listed}); accessibility is "
            "each one's mean TP-agreement over its own checkpoints, so learning orders are "
            f"compared as rankings, and spearman_per_checkpoint pairs the first {common} "
            "checkpoints by index, not by epoch"
        )
    elif not same_epochs:
        listed = "; ".join(f"{n}: {_epochs_text(e)}" for n, e in zip(names, epochs, strict=True))
        warnings.append(
            f"the populations' checkpoints lie at different epochs ({listed}); "
            "spearman_per_checkpoint pairs checkpoints by index, not by epoch"
        )
    left_out = {w.start for w in windows}
    if len(left_out) > 1:
        listed = ", ".join(
            f"{n}: {'left out' if w.start else 'none' if not w.initialisation else 'kept'}"
            for n, w in zip(names, windows, strict=True)
        )
        warnings.append(
            f"the initialisation checkpoint is treated differently ({listed}): only some "
            "populations record one"
        )
    rule = windows[0].rule if windows else "first-trained"
    how = (
        "accessibility is each population's mean TP-agreement over its own checkpoints "
        + (
            "from the first trained one (an initialisation checkpoint left out)"
            if rule == "first-trained"
            else "from checkpoint 0"
        )
        + "; a mean does not grow with the number of checkpoints, and learning orders are "
        "compared by rank"
    )
    return {
        "checkpoints": dict(zip(names, counts, strict=True)),
        "epochs": {
            n: [float(x) if np.isfinite(x) else None for x in e]
            for n, e in zip(names, epochs, strict=True)
        },
        "same_checkpoints": same_epochs,
        "accessibility": {n: w.summary() for n, w in zip(names, windows, strict=True)},
        "how": how,
        "warnings": warnings,
    }

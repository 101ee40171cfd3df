"""The measures of one split that come from its soft-verdict sums, one function per statistic.

Layout letters: k statistics (the order of :data:`STATISTICS`), r regions (:data:`REGIONS`),
x examples of the split. Plain NumPy on the computed sums of
:func:`engine.measures.soft_statistics`, which are small (statistics x examples).

Definitions (kernels/soft.py): per (network, example), over checkpoints, confidence (mean
true-class probability), variability (its standard deviation), correctness (share of right
verdicts), area under the margin (mean true-class logit minus the largest other logit) and mean
loss -log p; regions by fixed thresholds (:class:`RegionThresholds`). Per example, over the
networks that recorded it: the mean and the spread (standard deviation across networks, ddof 0)
of each, the share of networks that put it in each region, and its population region, the region
of its population means by the same thresholds. After Swayamdipta et al. 2020 (data maps) and
Pleiss et al. 2020 (area under the margin), extended to a population.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.measures.numbers import nan_to_none, spearman
from kernels.soft import REGIONS, STATISTICS, RegionThresholds

#: The thresholds of the regions (fixed; see kernels.soft.RegionThresholds for why).
REGION_THRESHOLDS = RegionThresholds()
#: Names of the statistics in tables and summaries, in the order of :data:`STATISTICS`.
STATISTIC_NAMES = ("confidence", "variability", "correctness", "aum", "loss")
CONFIDENCE, VARIABILITY, CORRECTNESS, AUM, LOSS = range(len(STATISTICS))
#: A population region: one of the regions, or ``other`` for an example in none.
POPULATION_REGIONS = (*REGIONS, "other")
OTHER = len(REGIONS)
#: Bin edges of the AUM histogram: fixed, so that stores compare; the end bins also hold the
#: means beyond +-32 (stored margins reach +-127, the int8 code's range).
AUM_EDGES = np.linspace(-32.0, 32.0, 129)
#: Ordinal of each population region for its rank correlation with TP-agreement: hard below
#: ambiguous and other (middling confidence), below easy.
REGION_ORDINAL = {"hard": 0.0, "ambiguous": 1.0, "other": 1.0, "easy": 2.0}

__all__ = [
    "AUM_EDGES",
    "POPULATION_REGIONS",
    "REGIONS",
    "REGION_THRESHOLDS",
    "STATISTICS",
    "STATISTIC_NAMES",
    "PooledSoft",
    "aum_histogram",
    "example_soft_means",
    "example_soft_spreads",
    "population_region",
    "region_agreement",
    "region_shares",
    "soft_links",
    "soft_measures",
    "soft_skipped",
]


@dataclass(frozen=True)
class PooledSoft:
    """The soft sums of the networks of some groups pooled together, on every example."""

    #: int64 (x,): networks that recorded each example.
    network_count: np.ndarray
    #: float64 (k, x): sum over those networks of each statistic.
    statistic_sum: np.ndarray
    #: float64 (k, x): sum of its square.
    statistic_square_sum: np.ndarray
    #: int64 (r, x): networks for which the example is in each region.
    region_count: np.ndarray

    @classmethod
    def pool(cls, counts: dict[str, np.ndarray], groups: list[int]) -> PooledSoft:
        """Sum the computed sums of :func:`~engine.measures.soft_statistics` over ``groups``."""

        def pooled(name: str, dtype: type) -> np.ndarray:
            return np.asarray(counts[name])[groups].sum(axis=0, dtype=dtype)

        return cls(
            network_count=pooled("network_count", np.int64),
            statistic_sum=pooled("statistic_sum", np.float64),
            statistic_square_sum=pooled("statistic_square_sum", np.float64),
            region_count=pooled("region_count", np.int64),
        )

    @property
    def recorded(self) -> np.ndarray:
        """bool (x,): examples that at least one network recorded."""
        return self.network_count > 0


def example_soft_means(pooled: PooledSoft) -> np.ndarray:
    """Mean over networks of each statistic per example, float64 (k, x); NaN where no network
    recorded the example."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pooled.recorded, pooled.statistic_sum / pooled.network_count, np.nan)


def example_soft_spreads(pooled: PooledSoft) -> np.ndarray:
    """Standard deviation across networks (ddof 0) of each statistic per example, float64
    (k, x); NaN where no network recorded the example, 0 where one did."""
    mean = example_soft_means(pooled)
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = pooled.statistic_square_sum / pooled.network_count - mean * mean
    # One-pass sums: rounding can push a variance of 0 just below it.
    return np.where(pooled.recorded, np.sqrt(np.maximum(variance, 0.0)), np.nan)


def region_shares(pooled: PooledSoft) -> np.ndarray:
    """Share of the networks that recorded each example for which it is in each region of
    :data:`POPULATION_REGIONS` (``other`` last: in none), float64 (r + 1, x); NaN where none
    recorded it."""
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(pooled.recorded, pooled.region_count / pooled.network_count, np.nan)
    other = 1.0 - shares.sum(axis=0)
    return np.vstack([shares, np.where(pooled.recorded, np.maximum(other, 0.0), np.nan)])


def population_region(
    confidence_mean: np.ndarray,
    variability_mean: np.ndarray,
    thresholds: RegionThresholds = REGION_THRESHOLDS,
) -> np.ndarray:
    """The region of each example's population means by the networks' thresholds: an index
    into :data:`POPULATION_REGIONS`, int64 (x,), -1 where the means are NaN.

    The precedence is the kernel's: ambiguous, then easy, then hard, else other.

    Examples
    --------
    >>> population_region(np.array([0.9, 0.1, 0.5, 0.9, np.nan]),
    ...                   np.array([0.05, 0.05, 0.05, 0.3, np.nan])).tolist()
    [0, 2, 3, 1, -1]
    """
    region = np.full(confidence_mean.shape, OTHER, np.int64)
    region[confidence_mean < thresholds.hard_confidence] = REGIONS.index("hard")
    region[confidence_mean >= thresholds.easy_confidence] = REGIONS.index("easy")
    region[variability_mean >= thresholds.ambiguous_variability] = REGIONS.index("ambiguous")
    region[np.isnan(confidence_mean) | np.isnan(variability_mean)] = -1
    return region


def region_agreement(shares: np.ndarray) -> np.ndarray:
    """Largest share of networks that put each example in one region (``other`` included),
    float64 (x,), from :func:`region_shares`: 1 where every network agrees."""
    with np.errstate(invalid="ignore"):
        return shares.max(axis=0)


def aum_histogram(aum_mean: np.ndarray) -> dict[str, list[Any]]:
    """Examples per bin of :data:`AUM_EDGES` of the mean area under the margin (NaN left
    out; the end bins hold the means beyond the edges): ``edges`` (129) and ``counts`` (128)."""
    finite = np.clip(aum_mean[np.isfinite(aum_mean)], AUM_EDGES[0], AUM_EDGES[-1])
    counts, _ = np.histogram(finite, bins=AUM_EDGES)
    return {"edges": AUM_EDGES.tolist(), "counts": counts.astype(int).tolist()}


def _mean_by_region(values: np.ndarray, region: np.ndarray) -> dict[str, float | None]:
    """Mean of ``values`` (x,) over the examples of each population region; None for none."""
    out: dict[str, float | None] = {}
    for r, name in enumerate(POPULATION_REGIONS):
        chosen = (region == r) & np.isfinite(values)
        out[name] = nan_to_none(values[chosen].mean()) if chosen.any() else None
    return out


def soft_links(
    means: np.ndarray, region: np.ndarray, accessibility: np.ndarray, tpa_last: np.ndarray
) -> dict[str, Any]:
    """How the soft measures go with the verdict measures, over the examples that have both.

    Spearman correlations of accessibility with the population confidence, variability and AUM,
    and of TP-agreement at the last checkpoint with the population region (its ordinal
    :data:`REGION_ORDINAL`); the mean TP-agreement (last) and accessibility of each population
    region.

    Parameters
    ----------
    means : float64 (k, x)
        :func:`example_soft_means`.
    region : int64 (x,)
        :func:`population_region`.
    accessibility, tpa_last : float64 (x,)
        NaN where the example has no label.
    """
    both = np.isfinite(means[CONFIDENCE]) & np.isfinite(accessibility)

    def with_accessibility(k: int) -> float | None:
        return nan_to_none(spearman(means[k][both], accessibility[both])) if both.any() else None

    ordinal = np.array([REGION_ORDINAL[name] for name in POPULATION_REGIONS])
    placed = (region >= 0) & np.isfinite(tpa_last)
    region_tpa = (
        nan_to_none(spearman(ordinal[region[placed]], tpa_last[placed])) if placed.any() else None
    )
    return {
        "confidence_accessibility_spearman": with_accessibility(CONFIDENCE),
        "variability_accessibility_spearman": with_accessibility(VARIABILITY),
        "aum_accessibility_spearman": with_accessibility(AUM),
        "region_tpa_spearman": region_tpa,
        "tpa_last_by_region": _mean_by_region(tpa_last, region),
        "accessibility_by_region": _mean_by_region(accessibility, region),
    }


def _region_summary(shares: np.ndarray, region: np.ndarray) -> dict[str, Any]:
    """Region shares of the examples and of the networks, and how far networks agree."""
    placed = region >= 0
    count = max(int(placed.sum()), 1)
    agreement = region_agreement(shares[:, placed])
    by_region: dict[str, float | None] = {}
    for r, name in enumerate(POPULATION_REGIONS):
        members = region == r
        by_region[name] = nan_to_none(shares[r, members].mean()) if members.any() else None
    return {
        "population_region_share": {
            name: float((region == r).sum() / count) for r, name in enumerate(POPULATION_REGIONS)
        },
        "network_region_share": {
            name: nan_to_none(shares[r, placed].mean()) if placed.any() else None
            for r, name in enumerate(POPULATION_REGIONS)
        },
        "region_agreement_mean": nan_to_none(agreement.mean()) if placed.any() else None,
        "region_unanimous_share": (
            nan_to_none((agreement >= 1.0 - 1e-12).mean()) if placed.any() else None
        ),
        "region_agreement_by_region": by_region,
    }


def soft_measures(
    counts: dict[str, np.ndarray],
    groups: list[int],
    accessibility: np.ndarray,
    tpa_last: np.ndarray,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every soft measure of one split for the networks of ``groups``: the summary's ``soft``
    section and the arrays per example (see docs/outputs.md).

    Parameters
    ----------
    counts : dict of ndarray
        Computed :func:`~engine.measures.soft_statistics`.
    groups : list of int
    accessibility, tpa_last : float64 (x,)
        Of the same networks, on every example of the split (NaN without a label).
    """
    pooled = PooledSoft.pool(counts, groups)
    means, spreads = example_soft_means(pooled), example_soft_spreads(pooled)
    shares = region_shares(pooled)
    region = population_region(means[CONFIDENCE], means[VARIABILITY])
    recorded = pooled.recorded
    aum = means[AUM]
    summary: dict[str, Any] = {
        "networks": int(pooled.network_count.max(initial=0)),
        "examples": int(recorded.sum()),
        "thresholds": {
            "ambiguous_variability": REGION_THRESHOLDS.ambiguous_variability,
            "easy_confidence": REGION_THRESHOLDS.easy_confidence,
            "hard_confidence": REGION_THRESHOLDS.hard_confidence,
        },
        "means": {
            name: nan_to_none(means[k, recorded].mean()) if recorded.any() else None
            for k, name in enumerate(STATISTIC_NAMES)
        },
        "spreads": {
            name: nan_to_none(spreads[k, recorded].mean()) if recorded.any() else None
            for k, name in enumerate(STATISTIC_NAMES)
        },
        **_region_summary(shares, region),
        "aum_negative_share": nan_to_none((aum[recorded] < 0).mean()) if recorded.any() else None,
        "aum_histogram": aum_histogram(aum),
        **soft_links(means, region, accessibility, tpa_last),
    }
    per_example: dict[str, np.ndarray] = {}
    for k, name in enumerate(STATISTIC_NAMES):
        per_example[f"{name}_mean"] = means[k]
        per_example[f"{name}_std"] = spreads[k]
    for r, name in enumerate(POPULATION_REGIONS):
        per_example[f"{name}_share"] = shares[r]
    per_example["region_agreement"] = region_agreement(shares)
    per_example["population_region"] = region
    return summary, per_example


def soft_skipped(reason: str) -> dict[str, str]:
    """The summary's ``soft`` section of a split whose soft measures are not computed."""
    return {"skipped": reason}

"""Choosing examples to train on, as dataset cartography filters them: by region or by a score.

Layout letters: x examples of a split, g groups. The scores are population measures per example
(:mod:`engine.measures.soft`, or accessibility from the verdicts); :func:`filter_scores` builds
their lazy graph (nothing here computes it), :func:`choose_examples` ranks the computed scores.

Cartography's regions as filters (Swayamdipta et al. 2020): ``ambiguous`` is the examples of
highest variability, ``easy`` of highest confidence, ``hard`` of lowest confidence; ``aum`` puts
the lowest area under the margin first (the likely mislabelled, Pleiss et al. 2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ConfigError, StoreError
from engine.measures.selection import NetworkSelection
from engine.measures.verdicts import accessibility_window

if TYPE_CHECKING:
    from engine.store import Population

#: Each region as a score and the order in which it is taken (True: ascending).
REGION_FILTERS = {
    "ambiguous": ("variability", False),
    "easy": ("confidence", False),
    "hard": ("confidence", True),
}
#: Each score and its default order (True: ascending).
SCORE_ORDERS = {
    "aum": True,
    "confidence": False,
    "variability": False,
    "accessibility": False,
}


@dataclass(frozen=True)
class ExampleFilter:
    """What a filter takes: a score per example and the order in which examples are taken."""

    score: str
    ascending: bool

    @property
    def needs_soft(self) -> bool:
        """Whether the score comes from the soft verdicts (all but accessibility)."""
        return self.score != "accessibility"

    def describe(self) -> str:
        """In words, e.g. ``"highest variability first"``."""
        return f"{'lowest' if self.ascending else 'highest'} {self.score} first"


def example_filter(
    region: str | None = None, by: str | None = None, ascending: bool | None = None
) -> ExampleFilter:
    """The filter of a region or of a score, with its default order unless ``ascending`` is
    given.

    Raises
    ------
    ConfigError
        Unless exactly one of ``region`` and ``by`` is given, and it is known.

    Examples
    --------
    >>> example_filter(region="hard")
    ExampleFilter(score='confidence', ascending=True)
    >>> example_filter(by="aum", ascending=False).describe()
    'highest aum first'
    """
    if (region is None) == (by is None):
        raise ConfigError("give exactly one of --region and --by")
    if region is not None:
        if region not in REGION_FILTERS:
            raise ConfigError(f"region must be one of {', '.join(REGION_FILTERS)}, got {region!r}")
        score, default = REGION_FILTERS[region]
    else:
        if by not in SCORE_ORDERS:
            raise ConfigError(f"--by must be one of {', '.join(SCORE_ORDERS)}, got {by!r}")
        score, default = str(by), SCORE_ORDERS[str(by)]
    return ExampleFilter(score, default if ascending is None else bool(ascending))


def check_fraction(fraction: float) -> float:
    """``fraction`` if it lies in (0, 1]; a ConfigError otherwise.

    >>> check_fraction(0.33)
    0.33
    """
    if not (isinstance(fraction, int | float) and 0 < fraction <= 1):
        raise ConfigError(f"--fraction must lie in (0, 1], got {fraction}")
    return float(fraction)


def filter_scores(
    population: Population,
    split: str,
    selection: NetworkSelection,
    chosen: ExampleFilter,
    accessibility_from: str = "first-trained",
    **options: Any,
) -> Any:
    """The lazy score of every example of ``split`` for the filter, float64 (x,), NaN where an
    example has none (no label, or no soft verdict).

    The soft scores are population means over the selected networks (every group pooled);
    accessibility is the mean TP-agreement over the checkpoints of
    :func:`~engine.measures.accessibility_window` of ``accessibility_from`` (by default an
    initialisation checkpoint is left out).

    Raises
    ------
    StoreError
        If the split has no labels, or the filter needs soft verdicts and the split has none.
    """
    import dask

    from engine.measures.graphs import soft_statistics, verdict_statistics

    population.require_split(split)
    if not population.has_labels(split):
        raise StoreError(f"split {split!r} of {population.path} has no labels to filter on")
    groups = list(range(selection.num_groups))
    if not chosen.needs_soft:
        table = population.checkpoints
        window = accessibility_window(
            table["epoch"].to_numpy(), table["step"].to_numpy(), accessibility_from
        )
        counts = verdict_statistics(population, split, selection, **options)
        return dask.delayed(_accessibility, pure=True)(
            counts["tpa_count"],
            groups,
            int(selection.networks_in(groups).sum()),
            population.labels(split) >= 0,
            window.start,
        )
    soft = soft_statistics(population, split, selection, **options)
    if soft is None:
        raise StoreError(
            f"split {split!r} of {population.path} records no soft verdicts "
            "(only --by accessibility works without them)"
        )
    return dask.delayed(_soft_score, pure=True)(
        {name: soft[name] for name in ("network_count", "statistic_sum")}, groups, chosen.score
    )


def _accessibility(
    tpa_count: np.ndarray, groups: list[int], size: int, labelled: np.ndarray, start: int
) -> np.ndarray:
    total = np.asarray(tpa_count)[groups].sum(axis=0)[:, start:]  # (x, t)
    return np.where(labelled, total.mean(axis=1) / max(size, 1), np.nan)


def _soft_score(counts: dict[str, np.ndarray], groups: list[int], score: str) -> np.ndarray:
    from engine.measures.soft import STATISTIC_NAMES

    network_count = np.asarray(counts["network_count"])[groups].sum(axis=0)
    statistic = np.asarray(counts["statistic_sum"])[groups].sum(axis=0)[
        STATISTIC_NAMES.index(score)
    ]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(network_count > 0, statistic / network_count, np.nan)


def choose_examples(scores: np.ndarray, fraction: float, ascending: bool) -> np.ndarray:
    """The examples taken: the ``round(fraction * X)`` (at least one) best by score among the X
    that have one, best first; ties in example order.

    Parameters
    ----------
    scores : float64 (x,)
        NaN for an example that cannot be taken.

    Returns
    -------
    int64 (chosen,)
        Indices into the split's examples.

    Examples
    --------
    >>> choose_examples(np.array([0.3, np.nan, 0.9, 0.1]), 0.5, ascending=False).tolist()
    [2, 0]
    """
    fraction = check_fraction(fraction)
    scored = np.flatnonzero(np.isfinite(scores))
    if scored.size == 0:
        return np.zeros(0, np.int64)
    values = scores[scored]
    order = np.argsort(values if ascending else -values, kind="stable")
    count = max(1, math.floor(fraction * scored.size + 0.5))
    return scored[order[:count]].astype(np.int64)


__all__ = [
    "REGION_FILTERS",
    "SCORE_ORDERS",
    "ExampleFilter",
    "check_fraction",
    "choose_examples",
    "example_filter",
    "filter_scores",
]

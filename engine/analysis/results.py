"""What an analysis is made of: what is read from each store, resolved once, and what is computed.

:mod:`engine.analysis.compute` builds these; :mod:`~engine.report.tables`,
:mod:`~engine.report.figures` and :mod:`~engine.report.html` only read them, so that none of them
opens or revalidates a store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from engine.measures import AccessibilityWindow, NetworkSelection
    from engine.store import Population


@dataclass(frozen=True, eq=False)
class StoreSelection:
    """What one store contributes to a report, read and validated before anything is computed.

    Attributes
    ----------
    population : Population
        The opened store.
    splits : tuple of str
        The splits analysed, each one of the store's.
    networks : NetworkSelection
        The analysed networks (the complete ones), their groups and halvings.
    incomplete : int
        Networks left out because some of their checkpoints are not recorded.
    num_classes : int
    epochs : ndarray of float64, dims (checkpoints,)
        Epoch of each checkpoint (may be fractional).
    labels : dict of str to ndarray of int32, dims (examples,)
        True class per example of each split, -1 where there is none.
    map_networks : ndarray of int64, dims (networks,)
        The analysed networks whose own data maps are drawn (the first of each group, then
        the next ones), in the order drawn.
    accessibility : AccessibilityWindow
        The checkpoints accessibility averages over (``--accessibility-from``), resolved from
        the store's checkpoints.
    """

    population: Population
    splits: tuple[str, ...]
    networks: NetworkSelection
    incomplete: int
    num_classes: int
    epochs: np.ndarray
    labels: Mapping[str, np.ndarray]
    accessibility: AccessibilityWindow
    map_networks: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def analysed(self) -> np.ndarray:
        """Ids of the analysed networks, dims (networks,), int64."""
        return np.flatnonzero(self.networks.network_group >= 0)

    @property
    def num_analysed(self) -> int:
        return int((self.networks.network_group >= 0).sum())


@dataclass(frozen=True)
class SplitCounts:
    """The counts of one split, lazy (Dask arrays) before the computation and NumPy after it.

    Attributes
    ----------
    verdicts : dict, optional
        :func:`engine.measures.verdict_statistics`, where the split has labels.
    classes : dict, optional
        :func:`engine.measures.class_statistics`, where the split stores predictions.
    classes_last_only : bool
        The class counts cover the last checkpoint only (splits with labels need no more).
    soft : dict, optional
        :func:`engine.measures.soft_statistics` (with the ``network_statistics`` of the
        selection's ``map_networks``), where the split has labels and soft verdicts.
    soft_absent : str
        Why ``soft`` is None (the summary's ``soft`` section says it).
    """

    verdicts: dict[str, Any] | None
    classes: dict[str, Any] | None
    classes_last_only: bool
    soft: dict[str, Any] | None = None
    soft_absent: str = "the split records no soft verdicts"


@dataclass(frozen=True)
class SplitMeasures:
    """:func:`engine.measures.split_measures` of one split (``summary`` and ``examples``).

    ``overall`` pools every analysed network; ``groups`` has one entry per group with networks,
    and is empty where the store has a single group.
    """

    overall: dict[str, Any]
    groups: dict[str, dict[str, Any]]


@dataclass(frozen=True, eq=False)
class StoreResult:
    """One store's selection with its computed counts and measures, split by split."""

    selection: StoreSelection
    counts: Mapping[str, SplitCounts]
    measures: Mapping[str, SplitMeasures]

    @property
    def population(self) -> Population:
        return self.selection.population


@dataclass(frozen=True)
class Comparison:
    """Learning-order comparisons of several stores, made by
    :func:`engine.analysis.compute.compare_populations`.

    Attributes
    ----------
    names : tuple of str
        A short distinct name per store, in the order given.
    labelled : tuple of str
        The splits on which every store has accuracies.
    pairs : dict of str to list of dict
        Per labelled split, :func:`engine.measures.compare_measures` of every two stores
        ``i < j``.
    generalisation_split : str, optional
        ``test`` where it is labelled, else the first labelled split; None without one.
    generalisation : list of dict
        :func:`engine.measures.generalisation_row` of each store on that split.
    """

    names: tuple[str, ...]
    labelled: tuple[str, ...]
    pairs: dict[str, list[dict[str, Any]]]
    generalisation_split: str | None
    generalisation: list[dict[str, Any]]


__all__ = ["Comparison", "SplitCounts", "SplitMeasures", "StoreResult", "StoreSelection"]

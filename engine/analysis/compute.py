"""What an analysis reads of a store, resolved once, and its measures: lazy, then computed.

Each store is opened once and what is read of it (splits, analysed networks, labels, epochs) is
resolved into a :class:`~engine.analysis.results.StoreSelection` before anything is computed,
so that bad input computes and writes nothing. :func:`lazy_counts` builds the lazy graphs of
:mod:`engine.measures` of one selection; :func:`compute_counts` computes those of every store in
one pass on the chosen Dask scheduler; :func:`split_measures_of` takes the measures of the
computed counts. :mod:`engine.analysis.api` and :mod:`engine.report.run` are built on these.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.analysis.results import (
    Comparison,
    SplitCounts,
    SplitMeasures,
    StoreResult,
    StoreSelection,
)
from engine.errors import StoreError
from engine.measures import CHUNK_TASK_PREFIXES
from engine.scheduling import compute_with_progress

if TYPE_CHECKING:
    from distributed import Client

    from engine.store import Population


def resolve_splits(population: Population, splits) -> list[str]:
    """The splits asked for (a list or a comma string), each checked; default every split."""
    if splits is None:
        return list(population.splits)
    if isinstance(splits, str):
        splits = [s for s in splits.split(",") if s]
    for split in splits:
        population.require_split(split)
    return list(splits)


#: Networks whose own data maps are drawn beside the population's.
MAP_NETWORKS = 4
#: Why a split has no soft measures.
NO_SOFT_IN_STORE = "the store records no soft verdicts"
NO_SOFT_IN_SPLIT = "the split records no soft verdicts"
NO_LABELS = "the split has no labels"


def map_networks(network_group: np.ndarray, count: int = MAP_NETWORKS) -> np.ndarray:
    """The first analysed network of each group, then the next analysed ones, ``count`` at
    most, int64."""
    analysed = np.flatnonzero(network_group >= 0)
    firsts = [
        int(analysed[network_group[analysed] == g][0]) for g in np.unique(network_group[analysed])
    ]
    chosen = firsts[:count]
    for network in analysed:
        if len(chosen) >= count:
            break
        if int(network) not in chosen:
            chosen.append(int(network))
    return np.asarray(chosen, np.int64)


def select_store(
    population: Population,
    splits: list[str],
    require_complete: bool,
    *,
    seed: int = 0,
    accessibility_from: str = "first-trained",
) -> StoreSelection:
    """The complete networks of ``population`` and what the report reads of its splits, with
    the checkpoints accessibility averages over under ``accessibility_from`` (one of
    :data:`engine.measures.ACCESSIBILITY_FROM`; another is refused here, before any output)."""
    from engine.measures import accessibility_window, num_classes_of, select_networks

    table = population.checkpoints
    window = accessibility_window(
        table["epoch"].to_numpy(), table["step"].to_numpy(), accessibility_from
    )

    complete = population.complete_networks()
    missing = population.num_networks - complete.size
    if missing and require_complete:
        raise StoreError(
            f"{population.path} has {missing} incomplete networks of "
            f"{population.num_networks} (--require-complete refuses to analyse it)"
        )
    if complete.size == 0:
        raise StoreError(f"{population.path} has no complete network to analyse")
    networks = select_networks(population, networks=complete, seed=seed)
    return StoreSelection(
        population=population,
        splits=tuple(splits),
        networks=networks,
        incomplete=int(missing),
        num_classes=num_classes_of(population),
        epochs=np.asarray(population.checkpoints["epoch"].to_numpy(), np.float64),
        labels={split: population.labels(split) for split in splits},
        map_networks=map_networks(networks.network_group),
        accessibility=window,
    )


def store_names(stores: list[str]) -> list[str]:
    """A short distinct name per store: its folder name without ``.zarr``, numbered if taken."""
    taken: set[str] = set()
    names = []
    for path in stores:
        base = Path(str(path).rstrip("/")).name.removesuffix(".zarr") or "store"
        name, i = base, 1
        while name in taken:
            i += 1
            name = f"{base}-{i}"
        taken.add(name)
        names.append(name)
    return names


# ----------------------------------------------------------------------------------------------
# Computing the measures of one or several stores


def soft_counts(
    selection: StoreSelection, split: str, options: dict[str, Any]
) -> tuple[dict[str, Any] | None, str]:
    """Lazy soft sums of a split (with the map networks' statistics), or None and why not."""
    from engine.measures import soft_statistics

    population = selection.population
    if not any(population.soft_arrays(s) for s in population.splits):
        return None, NO_SOFT_IN_STORE
    if not population.soft_arrays(split):
        return None, NO_SOFT_IN_SPLIT
    if not population.has_labels(split):
        return None, NO_LABELS
    soft = soft_statistics(
        population, split, selection.networks, table_networks=selection.map_networks, **options
    )
    return soft, NO_SOFT_IN_SPLIT


def lazy_counts(selection: StoreSelection, options: dict[str, Any]) -> dict[str, SplitCounts]:
    """Lazy counts per split: verdict counts where the split has labels, class counts where it
    stores predictions (every checkpoint on splits without labels, the last elsewhere), soft
    sums where it has labels and soft verdicts."""
    from engine.measures import class_statistics, verdict_statistics

    population, networks = selection.population, selection.networks
    last = population.num_checkpoints - 1
    counts = {}
    for split in selection.splits:
        labelled = population.has_labels(split)
        verdicts = verdict_statistics(population, split, networks, **options) if labelled else None
        classes = class_statistics(
            population,
            split,
            networks,
            selection.num_classes,
            checkpoints=(last, last + 1) if labelled else None,
            **options,
        )
        soft, soft_absent = soft_counts(selection, split, options)
        counts[split] = SplitCounts(
            verdicts, classes, labelled and classes is not None, soft, soft_absent
        )
    return counts


def compute_counts(
    lazy: list[dict[str, SplitCounts]],
    client: Client | None,
    progress: bool,
) -> list[dict[str, SplitCounts]]:
    """Compute the counts of every store in one pass (shared reads, one progress bar)."""
    # Flattened and refilled in the same order: stores, splits, verdicts, classes then soft
    # sums, fields.
    parts = [
        part
        for store in lazy
        for counts in store.values()
        for part in (counts.verdicts, counts.classes, counts.soft)
        if part is not None
    ]
    collections = [array for part in parts for array in part.values()]
    values = iter(
        compute_with_progress(
            collections, client=client, progress=progress, counted=CHUNK_TASK_PREFIXES
        )
    )

    def computed(part):
        return None if part is None else {name: np.asarray(next(values)) for name in part}

    return [
        {
            split: dataclasses.replace(
                counts,
                verdicts=computed(counts.verdicts),
                classes=computed(counts.classes),
                soft=computed(counts.soft),
            )
            for split, counts in store.items()
        }
        for store in lazy
    ]


def split_measures_of(
    selection: StoreSelection, counts: dict[str, SplitCounts]
) -> dict[str, SplitMeasures]:
    """The measures of every split, of all analysed networks and of each group with networks."""
    from engine.measures import split_measures

    networks = selection.networks
    membership_split = selection.population.attrs.get("membership_split")
    everyone = list(range(networks.num_groups))
    measures = {}
    for split, split_counts in counts.items():

        def measure(groups, split=split, split_counts=split_counts):
            return split_measures(
                split_counts.verdicts,
                networks,
                groups,
                selection.labels[split],
                classes=split_counts.classes,
                classes_last_only=split_counts.classes_last_only,
                membership=split == membership_split,
                soft=split_counts.soft,
                soft_absent=split_counts.soft_absent,
                epochs=selection.epochs,
                accessibility=selection.accessibility,
            )

        groups = {}
        if networks.num_groups > 1:
            for g, name in enumerate(networks.group_names):
                if (networks.network_group == g).any():
                    groups[name] = measure([g])
        measures[split] = SplitMeasures(measure(everyone), groups)
    return measures


def measure_stores(
    selections: list[StoreSelection], client: Client | None, progress: bool, options: dict[str, Any]
) -> list[StoreResult]:
    """Count, in one computation, then take the measures of every store's selection."""
    lazy = [lazy_counts(selection, options) for selection in selections]
    computed = compute_counts(lazy, client, progress)
    return [
        StoreResult(selection, counts, split_measures_of(selection, counts))
        for selection, counts in zip(selections, computed, strict=True)
    ]


def compare_splits(populations: list[Population], splits) -> list[str]:
    """The splits asked for, or those every store has; each must exist in every store."""
    first = populations[0]
    chosen = (
        resolve_splits(first, splits)
        if splits is not None
        else [s for s in first.splits if all(s in p.splits for p in populations)]
    )
    for population in populations:
        resolve_splits(population, chosen)
    return chosen


def compare_populations(names: list[str], results: list[StoreResult]) -> Comparison:
    """Every two stores compared on each split that all of them label, and the generalisation
    table (accuracy against agreement excess) on ``test``, else the first such split."""
    from engine.measures import compare_measures, generalisation_row

    splits = results[0].selection.splits
    labelled = [
        s
        for s in splits
        if all("accuracy_mean" in r.measures[s].overall["summary"] for r in results)
    ]
    pairs = {
        split: [
            compare_measures(
                names[i],
                results[i].measures[split].overall,
                names[j],
                results[j].measures[split].overall,
            )
            for i in range(len(names))
            for j in range(i + 1, len(names))
        ]
        for split in labelled
    }
    generalisation_split = "test" if "test" in labelled else (labelled[0] if labelled else None)
    rows = (
        [
            generalisation_row(name, r.measures[generalisation_split].overall)
            for name, r in zip(names, results, strict=True)
        ]
        if generalisation_split
        else []
    )
    return Comparison(tuple(names), tuple(labelled), pairs, generalisation_split, rows)


__all__ = [
    "MAP_NETWORKS",
    "NO_LABELS",
    "NO_SOFT_IN_SPLIT",
    "NO_SOFT_IN_STORE",
    "compare_populations",
    "compare_splits",
    "compute_counts",
    "lazy_counts",
    "map_networks",
    "measure_stores",
    "resolve_splits",
    "select_store",
    "soft_counts",
    "split_measures_of",
    "store_names",
]

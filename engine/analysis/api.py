"""Analyses as values: :func:`analyze` and :func:`compare` return objects whose splits are
xarray Datasets and whose tables are pandas DataFrames, computed by Dask when asked.

Building an :class:`Analysis` opens the store, checks what is asked and builds the lazy graphs
of counts; nothing is read beyond metadata and labels. :meth:`Analysis.split` gives a Dataset
backed by Dask (``.compute()`` reads every chunk once for all its variables); or
:meth:`Analysis.compute` computes every split at once on the chosen scheduler, after which the
Datasets and tables hold NumPy values. ``engine analyze`` (:func:`engine.report.analyze_store`)
writes its tables from these same objects.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from engine.analysis.compute import (
    compare_populations,
    compare_splits,
    compute_counts,
    lazy_counts,
    resolve_splits,
    select_store,
    split_measures_of,
    store_names,
)
from engine.analysis.dataset import group_indices, lazy_split_datasets, split_dataset
from engine.analysis.results import SplitCounts, StoreResult, StoreSelection
from engine.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr
    from distributed import Client

    from engine.analysis.results import Comparison


class Analysis:
    """The measures of one store's analysed networks, split by split, lazy until computed.

    Made by :func:`analyze`. Attributes: ``selection`` (what is read, resolved once),
    ``splits`` and ``groups`` (the group names with networks; empty for a store of one group).
    """

    def __init__(
        self,
        selection: StoreSelection,
        options: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
    ):
        self.selection = selection
        self._options = dict(options or {})
        self._scheduler = dict(scheduler or {})
        self._result: StoreResult | None = None
        # The computed Datasets, built once each (frames and users ask for them again).
        self._datasets: dict[tuple[str, str | None], xr.Dataset] = {}

    def __repr__(self) -> str:
        state = "computed" if self.computed else "lazy"
        return (
            f"<Analysis of {self.selection.population.path}: {self.selection.num_analysed} "
            f"networks, splits {', '.join(self.splits)}, {state}>"
        )

    @property
    def splits(self) -> tuple[str, ...]:
        return self.selection.splits

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups with analysed networks, each with a Dataset of its own; empty where the
        store has one group."""
        networks = self.selection.networks
        if networks.num_groups < 2:
            return ()
        return tuple(
            name
            for g, name in enumerate(networks.group_names)
            if (networks.network_group == g).any()
        )

    @functools.cached_property
    def lazy_counts(self) -> dict[str, SplitCounts]:
        """The lazy counts of every split (Dask arrays of :mod:`engine.measures`)."""
        return lazy_counts(self.selection, self._options)

    @property
    def computed(self) -> bool:
        return self._result is not None

    def compute_on(self, client: Client | None, progress: bool = False) -> StoreResult:
        """Compute every split's counts in one pass on ``client`` (None: the local scheduler
        already chosen), then their measures; kept, so that this runs once."""
        if self._result is None:
            (counts,) = compute_counts([self.lazy_counts], client, progress)
            self.set_counts(counts)
        assert self._result is not None
        return self._result

    def set_counts(self, counts: Mapping[str, SplitCounts]) -> None:
        """Take computed counts (of :func:`~engine.analysis.compute.compute_counts`)."""
        self._result = StoreResult(
            self.selection, counts, split_measures_of(self.selection, dict(counts))
        )

    def compute(self, progress: bool = False) -> Analysis:
        """Compute every split at once on the scheduler given to :func:`analyze`; returns
        itself, its Datasets and tables then NumPy-backed."""
        from engine.scheduling import dask_scheduler

        if self._result is None:
            with dask_scheduler(**self._scheduler) as client:
                self.compute_on(client, progress)
        return self

    load = compute

    @property
    def result(self) -> StoreResult:
        """The computed counts and measures (computing them first if needed)."""
        self.compute()
        assert self._result is not None
        return self._result

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise ConfigError(
                f"split {split!r} is not analysed; the analysis has {', '.join(self.splits)}"
            )

    def split(self, split: str, group: str | None = None) -> xr.Dataset:
        """The measures of one split as a Dataset (dims ``checkpoints``, ``examples``,
        ``networks``, ``k``; docs/python-api.md lists the variables).

        Parameters
        ----------
        split : str
        group : str, optional
            The networks of one group only (default: every analysed network).

        Returns
        -------
        xarray.Dataset
            NumPy-backed once the analysis is computed, Dask-backed before.
        """
        self._check_split(split)
        group = self._group(group)
        if self._result is not None:
            measures = self._result.measures[split]
            chosen = measures.overall if group is None else measures.groups[group]
            return split_dataset(self.selection, split, group, chosen, self._result.counts[split])
        return lazy_split_datasets(self.selection, split, self.lazy_counts[split], [group])[group]

    def _group(self, group: str | None) -> str | None:
        """``group`` checked: None for every analysed network (also the name of a store's
        only group)."""
        if group is None:
            return None
        group_indices(self.selection, group)
        if not self.groups:
            return None
        if group not in self.groups:
            raise ConfigError(f"group {group!r} has no analysed network")
        return group

    def datasets(self) -> dict[str, dict[str | None, xr.Dataset]]:
        """Per split, its Dataset of every analysed network (key None) and of each group;
        before :meth:`compute`, the Datasets of a split share one Dask task of measures."""
        groups = (None, *self.groups)
        if self._result is None:
            return {
                split: lazy_split_datasets(self.selection, split, self.lazy_counts[split], groups)
                for split in self.splits
            }
        return {
            split: {group: self.split(split, group) for group in groups} for split in self.splits
        }

    def examples(self, by: str | None = None) -> pd.DataFrame:
        """``examples.parquet``: one row per example of every split (computes first)."""
        from engine.analysis.frames import examples_frame

        self.compute()
        return examples_frame(self.datasets(), by=by)

    def networks(self) -> pd.DataFrame:
        """``networks.parquet``: the store's networks with accuracy and forgetting per
        labelled split (computes first)."""
        from engine.analysis.frames import networks_frame

        self.compute()
        return networks_frame(
            self.selection.population.networks,
            self.selection.networks.network_group >= 0,
            {split: self.split(split) for split in self.splits},
        )

    def histograms(self) -> pd.DataFrame:
        """``histograms.parquet``: the exact histograms over k, long (computes first)."""
        from engine.analysis.frames import histogram_frame

        return histogram_frame(self.result)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """``examples``, ``networks`` and ``histograms``: the parquet tables of
        ``engine analyze`` (computes first)."""
        return {
            "examples": self.examples(),
            "networks": self.networks(),
            "histograms": self.histograms(),
        }


def _scheduler(scheduler: str, workers: int | None, cluster: str | None) -> dict[str, Any]:
    return {"scheduler": scheduler, "workers": workers, "cluster": cluster}


def analyze(
    store: Any,
    splits: str | Sequence[str] | None = None,
    *,
    require_complete: bool = False,
    scheduler: str = "threads",
    workers: int | None = None,
    cluster: str | None = None,
    networks_per_task: int | None = None,
    examples_per_task: int | None = None,
    accessibility_from: str = "first-trained",
) -> Analysis:
    """The measures of a store, lazily: nothing heavy is read until they are computed.

    Parameters
    ----------
    store : str, Path or Population
        A population store (folder or URL) or one already opened.
    splits : list of str or comma string, optional
        Default: every split.
    require_complete : bool
        Refuse a store with incomplete networks instead of analysing the complete ones.
    scheduler, workers, cluster
        Where :meth:`Analysis.compute` runs (as ``engine analyze``'s flags); a Dataset
        computed by itself runs on Dask's current scheduler.
    networks_per_task, examples_per_task : int, optional
        Size of a Dask task, rounded up to whole stored chunks.
    accessibility_from : {"first-trained", "initialisation"}
        Whether accessibility leaves out an initialisation checkpoint (the default; it adds
        the same chance-level term to every example) or averages over every checkpoint.

    Returns
    -------
    Analysis

    Raises
    ------
    StoreError, ConfigError
        The store, a split or a flag is wrong (nothing computed).
    """
    from engine.store import Population, open_population

    population = store if isinstance(store, Population) else open_population(str(store))
    selection = select_store(
        population,
        resolve_splits(population, splits),
        require_complete,
        accessibility_from=accessibility_from,
    )
    options = {"networks_per_task": networks_per_task, "examples_per_task": examples_per_task}
    return Analysis(selection, options, _scheduler(scheduler, workers, cluster))


class ComparisonAnalysis:
    """Several stores of the same examples analysed together, lazy until computed.

    Made by :func:`compare`. ``names`` are the stores' short names (their folder names);
    ``analyses`` maps each to its :class:`Analysis`.
    """

    def __init__(self, analyses: Mapping[str, Analysis], scheduler: Mapping[str, Any]):
        self.analyses = dict(analyses)
        self._scheduler = dict(scheduler)

    def __repr__(self) -> str:
        return f"<ComparisonAnalysis of {', '.join(self.names)}>"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.analyses)

    @property
    def splits(self) -> tuple[str, ...]:
        return next(iter(self.analyses.values())).splits

    def compute_on(self, client: Client | None, progress: bool = False) -> list[StoreResult]:
        """Compute every store's counts in one pass (shared progress), then the measures."""
        pending = [a for a in self.analyses.values() if not a.computed]
        if pending:
            counts = compute_counts([a.lazy_counts for a in pending], client, progress)
            for analysis, computed in zip(pending, counts, strict=True):
                analysis.set_counts(computed)
        return [a.compute_on(client) for a in self.analyses.values()]

    def compute(self, progress: bool = False) -> ComparisonAnalysis:
        """Compute every store at once on the scheduler given to :func:`compare`."""
        from engine.scheduling import dask_scheduler

        if not all(a.computed for a in self.analyses.values()):
            with dask_scheduler(**self._scheduler) as client:
                self.compute_on(client, progress)
        return self

    load = compute

    @property
    def comparison(self) -> Comparison:
        """Every two stores compared per labelled split, and the generalisation rows."""
        results = [a.result for a in self.compute().analyses.values()]
        return compare_populations(list(self.names), results)

    def split(self, split: str) -> xr.Dataset:
        """The per-example measures of every store on one split, stacked along a
        ``populations`` dim (the examples are the same; checkpoints and networks differ, so
        only the variables over ``examples`` alone are here). Computes first."""
        import xarray as xr

        datasets = [a.compute().split(split) for a in self.analyses.values()]
        kept = [
            name
            for name, variable in datasets[0].data_vars.items()
            if variable.dims == ("examples",) and all(name in d for d in datasets)
        ]
        stacked = xr.concat(
            [d[kept].reset_coords(drop=True) for d in datasets],
            dim="populations",
            combine_attrs="drop_conflicts",
        )
        first = datasets[0]
        return stacked.assign_coords(
            populations=list(self.names),
            example_id=first["example_id"],
            label=first["label"],
        )

    def pairs(self) -> pd.DataFrame:
        """One row per split and pair of stores: learning-order correlations, ceilings and
        superset fractions (``summary.json``'s ``pairs``; per-checkpoint lists left out)."""
        import pandas as pd

        rows = []
        for split, pairs in self.comparison.pairs.items():
            for pair in pairs:
                row = {"split": split, "population_0": pair["populations"][0]}
                row["population_1"] = pair["populations"][1]
                for key, value in pair.items():
                    if key == "split_half_spearman":
                        row["split_half_spearman_0"], row["split_half_spearman_1"] = value
                    elif not isinstance(value, list):
                        row[key] = value
                rows.append(row)
        return pd.DataFrame(rows)

    def generalisation(self) -> pd.DataFrame:
        """Per store: accuracy, agreement excess, extreme fraction and reliability on the
        generalisation split (``test`` where labelled)."""
        import pandas as pd

        comparison = self.comparison
        frame = pd.DataFrame(comparison.generalisation)
        frame.attrs["split"] = comparison.generalisation_split
        return frame

    def histograms(self) -> pd.DataFrame:
        """``histograms.parquet`` of ``engine compare``: every store's, a ``population``
        column first."""
        import pandas as pd

        from engine.analysis.frames import histogram_frame

        self.compute()
        frame = pd.concat(
            [histogram_frame(a.result, name) for name, a in self.analyses.items()],
            ignore_index=True,
        )
        for name in ("population", "split", "group", "measure"):
            frame[name] = frame[name].astype(str).astype("category")
        return frame

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """``pairs``, ``generalisation`` and ``histograms`` (computes first)."""
        return {
            "pairs": self.pairs(),
            "generalisation": self.generalisation(),
            "histograms": self.histograms(),
        }


def compare(
    stores: Sequence[Any],
    splits: str | Sequence[str] | None = None,
    *,
    require_complete: bool = False,
    scheduler: str = "threads",
    workers: int | None = None,
    cluster: str | None = None,
    accessibility_from: str = "first-trained",
) -> ComparisonAnalysis:
    """Several stores of the same examples, lazily (as ``engine compare`` without its
    pairwise matrices).

    Parameters
    ----------
    stores : sequence of str, Path or Population
        At least two stores of the same data set.
    splits : list of str or comma string, optional
        Default: the splits every store has.
    require_complete, scheduler, workers, cluster, accessibility_from
        As :func:`analyze`.

    Raises
    ------
    ConfigError
        Fewer than two stores.
    StoreError
        A store is missing or foreign, or the stores hold different data sets.
    """
    from engine.store import Population, open_population, require_same_dataset

    if len(stores) < 2:
        raise ConfigError("compare needs at least two stores")
    populations = [s if isinstance(s, Population) else open_population(str(s)) for s in stores]
    require_same_dataset(populations, "compare")
    chosen = compare_splits(populations, splits)
    names = store_names([p.path for p in populations])
    scheduler_options = _scheduler(scheduler, workers, cluster)
    analyses = {
        name: Analysis(
            select_store(p, chosen, require_complete, accessibility_from=accessibility_from),
            {},
            scheduler_options,
        )
        for name, p in zip(names, populations, strict=True)
    }
    return ComparisonAnalysis(analyses, scheduler_options)


__all__ = ["Analysis", "ComparisonAnalysis", "analyze", "compare"]

"""`engine analyze` and `engine compare`: resolve what is read, compute, then write the outputs.

Each store is opened once and what a report reads of it (splits, analysed networks, pairwise
checkpoints, labels, epochs) is resolved into a :class:`~engine.analysis.results.StoreSelection`
before the output folder is made, so that bad input writes nothing. The stores'
:class:`~engine.analysis.Analysis` objects are computed in one pass on the chosen Dask
scheduler; the selection is handed down to the pairwise measures, and the tables (the
analyses' own frames), figures and page are written from the results (see docs/outputs.md).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.analysis.api import Analysis, ComparisonAnalysis
from engine.analysis.compute import (
    NO_SOFT_IN_STORE,
    compare_splits,
    resolve_splits,
    select_store,
    store_names,
)
from engine.analysis.results import SplitCounts, StoreSelection
from engine.errors import ConfigError
from engine.report import figures, html, tables
from engine.scheduling import compute_with_progress, dask_scheduler

if TYPE_CHECKING:
    from distributed import Client

    from engine.store import Population

#: Rows of ``network_examples.parquet`` computed and written at a time (a row group): about
#: 40 bytes each in memory.
NETWORK_TABLE_ROWS = 1 << 22


def _pairwise_checkpoints(population: Population, checkpoints: str) -> list[int] | None:
    """The checkpoints of the pairwise measures, or None for ``"none"`` (no pairwise measures)."""
    from engine.pairwise import resolve_checkpoints

    if str(checkpoints).strip().lower() == "none":
        return None
    return resolve_checkpoints(population, checkpoints)


# ----------------------------------------------------------------------------------------------
# Measures per value of an example-metadata column (--by)

#: Values of a ``--by`` column reported at most per split.
MAX_BY_VALUES = 100


def by_values(population: Population, splits: list[str], column: str) -> dict[str, dict]:
    """Per split, the examples (int64 indices) of each value of the metadata ``column``
    (:func:`engine.pairwise.by_value.example_values`, at most :data:`MAX_BY_VALUES` values)."""
    from engine.pairwise.by_value import example_values

    return example_values(population, splits, column, MAX_BY_VALUES)


def _lazy_network_counts(
    selection: StoreSelection, split: str, counts: SplitCounts, values: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Lazy network-indexed counts of each value's examples, (n, ..., v): the numerator of
    each network's accuracy (``network_count``, n t v) and its class counts
    (``network_class_count``, n t v k), which the per-example counts cannot give."""
    import dask.array as da

    population = selection.population
    onehot = np.zeros((population.num_examples(split), len(values)), np.int32)
    for v, examples in enumerate(values.values()):
        onehot[examples, v] = 1
    lazy = {}
    if counts.verdicts is not None:
        correct = population.correct(split).astype(np.int32)
        lazy["network_count"] = da.tensordot(correct, onehot, axes=([2], [0]))
    if counts.classes is not None:
        last = population.num_checkpoints
        first = last - 1 if counts.classes_last_only else 0
        predictions = population.predictions(split)
        assert predictions is not None  # the split has class counts
        chosen = predictions[:, first:last, :, None] == np.arange(selection.num_classes)
        lazy["network_class_count"] = da.einsum("ntxk,xv->ntvk", chosen.astype(np.int32), onehot)
    return lazy


def _by_measures(
    selection: StoreSelection,
    counts: Mapping[str, SplitCounts],
    values: dict[str, dict[str, np.ndarray]],
    client: Client | None,
    progress: bool,
) -> dict[str, dict[str, dict[str, Any]]]:
    """The measures of all analysed networks on the examples of each value, per split: the
    computed per-example counts restricted to the value's examples, the network-indexed ones
    counted again on them (one more pass over the verdicts and predictions)."""
    from engine.measures import split_measures, subset_counts

    lazy = {
        split: _lazy_network_counts(selection, split, counts[split], values[split])
        for split in values
    }
    arrays = [array for part in lazy.values() for array in part.values()]
    computed = iter(compute_with_progress(arrays, client=client, progress=progress))
    network = {
        split: {name: np.asarray(next(computed)) for name in part} for split, part in lazy.items()
    }
    membership_split = selection.population.attrs.get("membership_split")
    everyone = list(range(selection.networks.num_groups))
    measures: dict[str, dict[str, dict[str, Any]]] = {}
    for split, split_values in values.items():
        c, fields = counts[split], network[split]
        measures[split] = {}
        for v, (value, examples) in enumerate(split_values.items()):
            picked = {name: np.take(field, v, axis=2) for name, field in fields.items()}
            measures[split][value] = split_measures(
                subset_counts(c.verdicts, "verdicts", examples, picked),
                selection.networks,
                everyone,
                selection.labels[split][examples],
                classes=subset_counts(c.classes, "classes", examples, picked),
                classes_last_only=c.classes_last_only,
                membership=split == membership_split,
                soft=subset_counts(c.soft, "soft", examples),
                soft_absent=c.soft_absent,
                accessibility=selection.accessibility,
            )
    return measures


# ----------------------------------------------------------------------------------------------
# The per-(network, example) table


def _table_passes(selection: StoreSelection, split: str) -> list[np.ndarray]:
    """The analysed networks in blocks of at most :data:`NETWORK_TABLE_ROWS` rows (one network
    at least), cut at the store's blocks of networks so that each pass reads its chunks once."""
    population = selection.population
    analysed = selection.analysed
    examples = max(population.num_examples(split), 1)
    chunk = population.array(f"splits/{split}/probability").chunks[0]
    per_pass = max(1, NETWORK_TABLE_ROWS // examples)
    if per_pass >= chunk:
        per_pass -= per_pass % chunk
    passes = []
    for start in range(0, population.num_networks, per_pass):
        block = analysed[(analysed >= start) & (analysed < start + per_pass)]
        if block.size:
            passes.append(block)
    return passes


def _network_table(
    selection: StoreSelection,
    counts: Mapping[str, SplitCounts],
    path: Path,
    client: Client | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Write ``network_examples.parquet`` one block of networks at a time (one row group each);
    returns the summary's ``network_table`` entry."""
    from engine.measures import soft_statistics

    population = selection.population
    splits = [s for s in selection.splits if counts[s].soft is not None]
    if not splits:
        store_has_soft = any(population.soft_arrays(s) for s in population.splits)
        reason = "no analysed split has labels and soft verdicts" if store_has_soft else None
        return {"skipped": reason or NO_SOFT_IN_STORE}
    rows = 0
    with tables.NetworkExampleWriter(path) as writer:
        for split in splits:
            for block in _table_passes(selection, split):
                lazy = soft_statistics(
                    population, split, selection.networks, table_networks=block, **options
                )
                assert lazy is not None  # the split has soft verdicts (counts[split].soft)
                (statistics,) = compute_with_progress(
                    [lazy["network_statistics"]], client=client, progress=False
                )
                rows += writer.write(selection, split, block, np.asarray(statistics))
    return {"path": path.name, "rows": rows, "splits": splits}


# ----------------------------------------------------------------------------------------------
# Pairwise measures of the selection


def _pairwise(
    selection: StoreSelection,
    out_dir: Path,
    checkpoints: list[int] | None,
    device: str,
    matrices: bool | None = None,
    by: str | None = None,
) -> dict | None:
    """Pairwise measures of the analysed networks at ``checkpoints`` (per value of the
    example-metadata column ``by`` too); None for none."""
    from engine.pairwise import pairwise_report

    if checkpoints is None:
        return None
    return pairwise_report(
        selection.population,
        out_dir,
        splits=list(selection.splits),
        checkpoints=checkpoints,
        networks=selection.analysed,
        device=device,
        matrices=matrices,
        by=by,
    )


def _cross_pairwise(selections: list[StoreSelection], out_dir: Path, device: str) -> dict:
    """Pairwise measures between the stores' networks on each split that every store labels."""
    from engine.pairwise import cross_pairwise_report

    populations = [s.population for s in selections]
    results = {}
    for split in selections[0].splits:
        if all(p.has_labels(split) for p in populations):
            folder = out_dir / f"pairwise_{split}"
            results[split] = cross_pairwise_report(populations, folder, split=split, device=device)
            results[split]["figures"] = [str(folder / f) for f in results[split].get("figures", [])]
    return results


# ----------------------------------------------------------------------------------------------
# analyze


def _scheduler_name(scheduler: str, workers: int | None, cluster: str | None) -> str:
    """Where the measures ran, in words (``summary.json``'s ``execution.scheduler``)."""
    if cluster:
        return "cluster " + cluster
    if workers:
        return f"local cluster of {workers} workers"
    return scheduler


def analyze_store(
    store: str,
    out_dir: Path,
    *,
    splits=None,
    scheduler: str = "threads",
    workers: int | None = None,
    cluster: str | None = None,
    require_complete: bool = False,
    pairwise_checkpoints: str = "last",
    device: str = "cpu",
    matrices: bool | None = None,
    progress: bool = True,
    networks_per_task: int | None = None,
    examples_per_task: int | None = None,
    network_table: bool = False,
    by: str | None = None,
    accessibility_from: str = "first-trained",
    data_dir: str | None = None,
) -> Path:
    """Compute every measure of a store and write the outputs to ``out_dir``.

    Parameters
    ----------
    store : str
        Folder or URL of a population store.
    out_dir : Path
        Created if needed; receives summary.json, examples.parquet, networks.parquet, the PNG
        figures and report.html (see docs/outputs.md).
    splits : list of str or comma string, optional
        Default: every split.
    scheduler : "threads" or "processes"
        Local Dask scheduler, when neither ``workers`` nor ``cluster`` is given.
    workers : int, optional
        Start a local distributed cluster of this many single-threaded worker processes.
    cluster : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``).
    require_complete : bool
        Refuse a store with incomplete networks instead of analysing the complete ones.
    pairwise_checkpoints : str
        ``last``, ``all``, a comma list of checkpoints, or ``none`` (no pairwise measures).
    device : "cpu" or "cuda"
        Passed to the pairwise measures.
    matrices : bool, optional
        Write the full pairwise matrices (``pairwise.zarr``); default only up to
        :data:`engine.pairwise.inputs.MATRIX_NETWORKS` networks. The streamed summaries are
        always written.
    progress : bool
        Show a progress bar of chunks done.
    networks_per_task, examples_per_task : int, optional
        Size of a Dask task, rounded up to whole stored chunks (default: one chunk of each).
    network_table : bool
        Also write ``network_examples.parquet``, the soft measures of every analysed network on
        every example of each split with soft verdicts (networks x examples rows), computed
        and written one block of networks at a time.
    by : str, optional
        An example-metadata column: also the measures of each split on the examples of each
        of its values (summary.json's ``by`` section per split, the column in
        examples.parquet, a table in report.html); at most :data:`MAX_BY_VALUES` values.
    accessibility_from : {"first-trained", "initialisation"}
        Accessibility (and its split-half reliability) averages TP-agreement from the first
        trained checkpoint (an initialisation checkpoint, epoch 0 and step 0, left out where
        there are others) or from checkpoint 0; recorded as each split's
        ``accessibility_from`` in summary.json.
    data_dir : str, optional
        The folder of a data set read from files (``train-population --data-dir``): the
        report's example browser then shows the examples' pictures.

    Returns
    -------
    Path
        ``out_dir / "report.html"``.
    """
    from engine.store import open_population

    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device must be 'cpu' or 'cuda', got {device!r}")
    population = open_population(store)
    selection = select_store(
        population,
        resolve_splits(population, splits),
        require_complete,
        accessibility_from=accessibility_from,
    )
    checkpoints = _pairwise_checkpoints(population, pairwise_checkpoints)
    values = by_values(population, list(selection.splits), by) if by is not None else None
    out_dir = Path(out_dir)
    options = {"networks_per_task": networks_per_task, "examples_per_task": examples_per_task}
    started = time.perf_counter()
    with dask_scheduler(scheduler, workers, cluster) as client:
        # Only once the flags are valid and the cluster answers: bad input writes nothing.
        out_dir.mkdir(parents=True, exist_ok=True)
        analysis = Analysis(selection, options)
        result = analysis.compute_on(client, progress)
        by_measures = (
            _by_measures(selection, result.counts, values, client, progress)
            if values is not None
            else None
        )
        seconds = time.perf_counter() - started
        table = (
            _network_table(
                selection, result.counts, out_dir / "network_examples.parquet", client, options
            )
            if network_table
            else None
        )
        pairwise = _pairwise(selection, out_dir, checkpoints, device, matrices, by)
    execution = {
        "scheduler": _scheduler_name(scheduler, workers, cluster),
        "measures_seconds": seconds,
        "total_seconds": time.perf_counter() - started,
    }
    summary = tables.analysis_summary(result, pairwise, execution)
    if table is not None:
        summary["network_table"] = table
    if by is not None and by_measures is not None and values is not None:
        for split, measures in by_measures.items():
            summary["splits"][split]["by"] = tables.by_summary(
                by, values[split], measures, population.num_checkpoints
            )
    tables.write_summary(summary, out_dir)
    # The tables are the analysis's own frames, built from its Datasets: what Python gets from
    # engine.analyze and what is written here are the same numbers.
    tables.write_frame(analysis.histograms(), out_dir / tables.HISTOGRAM_TABLE)
    tables.write_frame(analysis.examples(by=by), out_dir / "examples.parquet", by)
    tables.write_frame(analysis.networks(), out_dir / "networks.parquet")
    made = figures.analysis_figures(result, out_dir)
    soft_made = figures.soft_figures(result, out_dir)
    made += [path for path, _ in soft_made]
    made += figures.embedded(out_dir / f for f in (pairwise or {}).get("figures", []))
    captions = {path.stem: caption for path, caption in soft_made}
    return html.write_page(out_dir, html.analysis_page(summary, made, captions, result, data_dir))


# ----------------------------------------------------------------------------------------------
# compare


def _checkpoint_grids(names: list[str], selections: list[StoreSelection]) -> dict[str, Any]:
    """``summary.json``'s ``checkpoint_grids`` of a comparison (with its warnings)."""
    from engine.measures import checkpoint_grids

    return checkpoint_grids(
        names, [s.epochs for s in selections], [s.accessibility for s in selections]
    )


def compare_stores(
    stores: list[str],
    out_dir: Path,
    *,
    splits=None,
    scheduler: str = "threads",
    workers: int | None = None,
    cluster: str | None = None,
    require_complete: bool = False,
    pairwise: bool = True,
    device: str = "cpu",
    progress: bool = True,
    accessibility_from: str = "first-trained",
) -> Path:
    """Compare the learning orders of populations trained on the same examples.

    For every two stores and every split they share with labels: Spearman, Pearson and Kendall
    correlation of accessibility, Spearman of TP-agreement per checkpoint, each population's
    split-half ceiling, the superset relation; across stores, test accuracy against agreement
    excess. Writes summary.json, the figures and report.html to ``out_dir``.
    ``accessibility_from`` is that of :func:`analyze_store`, applied to every store.

    Returns
    -------
    Path
        ``out_dir / "report.html"``.

    Raises
    ------
    StoreError
        A store is missing or foreign, or the stores hold different data sets.
    """
    from engine.store import open_population, require_same_dataset

    if len(stores) < 2:
        raise ConfigError("compare needs at least two stores")
    populations = [open_population(s) for s in stores]
    require_same_dataset(populations, "compare")
    chosen = compare_splits(populations, splits)
    names = store_names([p.path for p in populations])
    selections = [
        select_store(p, chosen, require_complete, accessibility_from=accessibility_from)
        for p in populations
    ]
    out_dir = Path(out_dir)
    started = time.perf_counter()
    with dask_scheduler(scheduler, workers, cluster) as client:
        out_dir.mkdir(parents=True, exist_ok=True)
        compared = ComparisonAnalysis(
            {name: Analysis(s) for name, s in zip(names, selections, strict=True)}, {}
        )
        results = compared.compute_on(client, progress)
        seconds = time.perf_counter() - started
        cross = _cross_pairwise(selections, out_dir, device) if pairwise else None
    comparison = compared.comparison
    summary = tables.comparison_summary(comparison, results, cross, seconds)
    summary["checkpoint_grids"] = _checkpoint_grids(names, selections)
    tables.write_summary(summary, out_dir)
    tables.write_frame(compared.histograms(), out_dir / tables.HISTOGRAM_TABLE)
    made = figures.compare_figures(comparison, results, out_dir)
    for report in (cross or {}).values():
        if isinstance(report, dict):
            made += figures.embedded(report.get("figures", []))
    return html.write_page(out_dir, html.comparison_page(comparison, made, summary))


__all__ = ["MAX_BY_VALUES", "analyze_store", "by_values", "compare_stores"]

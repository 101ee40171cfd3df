"""The public entry points: every pair of networks of one store, or across stores.

Both reports run the same steps per matrix (:func:`_run_matrix`): compute its strips of tiles
(writing them to a group of ``pairwise.zarr`` only where the matrices are written), summarise
with bootstrap intervals, write the rows of the per-network and histogram tables, draw its
figures. They differ in how they choose the two sides.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.pairwise.by_value import by_value_summary, compute_by_value, example_values
from engine.pairwise.figures import matrix_figures
from engine.pairwise.inputs import (
    MatrixSides,
    PairwiseSide,
    as_population,
    check_bootstrap,
    check_device,
    default_block,
    linear_bootstrap,
    make_side,
    prediction_classes,
    require_same_examples,
    resolve_checkpoints,
    resolve_networks,
    resolve_splits,
    writes_matrices,
)
from engine.pairwise.output import (
    HISTOGRAM_TABLE,
    NETWORK_TABLE,
    PairwiseOutput,
    TableWriter,
    create_matrix_group,
    histogram_table,
    network_table,
    open_output,
    write_correct_counts,
)
from engine.pairwise.summaries import (
    NO_LABELS,
    kappa_sample,
    matrix_histograms,
    network_summary,
    network_sums,
    network_values,
    summarise,
    without_correctness,
)
from engine.pairwise.tiles import TileResult, compute_matrix


@dataclass
class _Run:
    """What every matrix of one report shares; ``pairwise.zarr`` is created on first use."""

    attrs: dict
    out_dir: Path
    device: str
    block: int
    bootstrap: int
    matrices: bool | None
    histograms: TableWriter
    networks: TableWriter
    opened: PairwiseOutput | None = None
    #: The example-metadata column of the summaries per example group, and per split the
    #: examples of each of its values (None: no such summaries).
    by: str | None = None
    by_values: dict[str, dict[str, np.ndarray]] | None = None

    def output(self) -> PairwiseOutput:
        if self.opened is None:
            self.opened = open_output(self.out_dir, self.attrs)
        return self.opened

    def close(self) -> None:
        self.histograms.close()
        self.networks.close()


@dataclass(frozen=True)
class _Matrix:
    """One matrix of a report: its sides, zarr group and attrs, and its figures' names."""

    sides: MatrixSides
    group: str
    attrs: dict
    stem: str
    title: str
    draw: bool


def _start(
    out_dir: Path,
    report: dict,
    per_matrix: Sequence[str],
    device: str,
    block: int,
    bootstrap: int,
    matrices: bool | None,
) -> _Run:
    """Make ``out_dir`` and the report's tables, with the report's settings (all but its
    ``per_matrix`` keys) as the attrs of ``pairwise.zarr`` where one is written. A
    ``pairwise.zarr`` of an earlier report in ``out_dir`` is removed (as it was replaced), so
    that no stale matrices sit beside these summaries."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = out_dir / "pairwise.zarr"
    if stale.is_dir():
        shutil.rmtree(stale)
    attrs = {k: v for k, v in report.items() if k not in per_matrix}
    return _Run(
        attrs,
        out_dir,
        device,
        block,
        bootstrap,
        matrices,
        TableWriter(out_dir / HISTOGRAM_TABLE),
        TableWriter(out_dir / NETWORK_TABLE),
    )


def _run_matrix(run: _Run, matrix: _Matrix, rng: np.random.Generator) -> tuple[dict, list[str]]:
    """Compute, summarise and write one matrix; returns its summary and figure file names."""
    sides = matrix.sides
    target = None
    if writes_matrices(run.matrices, sides):
        target = create_matrix_group(
            run.output(),
            matrix.group,
            sides,
            run.block,
            bool(sides.side_0.num_classes),
            matrix.attrs,
        )
    linear = linear_bootstrap(run.bootstrap, sides)
    strips, counts_0, counts_1 = compute_matrix(sides, target, run.block, run.device, linear)
    if target is not None:
        write_correct_counts(run.output(), target, counts_0, counts_1)
    tiles = TileResult.total([strip.tiles for strip in strips])
    sample = kappa_sample(sides, rng) if run.bootstrap else None
    sums = network_sums(sides, strips) if linear else None
    summary = summarise(sides, [tiles], counts_0, counts_1, run.bootstrap, rng, sample, sums)
    summary["matrices"] = target is not None
    side = sides.side_0
    if run.by is not None and run.by_values is not None and sides.symmetric:
        values = run.by_values[side.split]
        exact = bool(run.bootstrap) and not linear
        value_sums = compute_by_value(sides, run.block, list(values.values()), exact)
        summary["by"] = by_value_summary(
            sides, run.by, values, value_sums, (counts_0, counts_1), run.bootstrap, rng
        )
    values = network_values(strips)
    summary["network_kappa"] = network_summary(values)
    split, checkpoint = side.split, side.checkpoint
    run.histograms.write(
        histogram_table(matrix.group, split, checkpoint, matrix_histograms(sides, tiles))
    )
    names = [side.group_names[g] for g in side.groups]
    run.networks.write(network_table(matrix.group, split, checkpoint, side.ids, names, values))
    if not matrix.draw:
        return summary, []
    figures = matrix_figures(
        sides, tiles.histogram, values, run.out_dir, matrix.stem, matrix.title, rng
    )
    return summary, figures


def _store_matrix(side: PairwiseSide, epoch: float, draw: bool) -> _Matrix:
    """The matrix of one store's networks with themselves at one split and checkpoint."""
    split, t = side.split, side.checkpoint
    return _Matrix(
        MatrixSides(side, side, symmetric=True),
        group=f"{split}/checkpoint_{t}",
        attrs={"split": split, "checkpoint": t, "epoch": epoch, "examples": side.num_examples},
        stem=f"{split}_checkpoint{t}",
        title=f"{split}, checkpoint {t}",
        draw=draw,
    )


def _cross_matrix(
    a: int, b: int, side_0: PairwiseSide, side_1: PairwiseSide, draw: bool
) -> _Matrix:
    """The matrix of store ``a``'s networks with store ``b``'s."""
    split = side_0.split
    stores = [side_0.population.path, side_1.population.path]
    names = f"{Path(stores[0]).name} vs {Path(stores[1]).name}"
    return _Matrix(
        MatrixSides(side_0, side_1, symmetric=False),
        group=f"stores_{a}_{b}/{split}",
        attrs={
            "split": split,
            "stores": stores,
            "checkpoints": [side_0.checkpoint, side_1.checkpoint],
            "examples": side_0.num_examples,
        },
        stem=f"stores_{a}_{b}_{split}",
        title=f"{names}, {split}",
        draw=draw,
    )


def _finish(run: _Run, report: dict) -> dict:
    run.close()
    report["zarr"] = "pairwise.zarr" if run.opened is not None else None
    report["tables"] = {
        "histograms": HISTOGRAM_TABLE if run.histograms.rows else None,
        "networks": NETWORK_TABLE if run.networks.rows else None,
    }
    (run.out_dir / "pairwise.json").write_text(json.dumps(report, indent=1))
    return report


def pairwise_report(
    population: Any,
    out_dir: Path,
    *,
    splits: str | Sequence[str] | None = None,
    checkpoints: Any = "last",
    networks: Any = None,
    device: str = "cpu",
    block: int | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    figures: bool = True,
    matrices: bool | None = None,
    by: str | None = None,
) -> dict:
    """Pairwise agreement and error consistency between every two networks of a store.

    For each split and checkpoint, streamed over strips of tiles with nothing N x N held: the
    means with bootstrap intervals, per group pair too (the returned summary); the exact
    histograms of kappa, agreement and prediction agreement (``pairwise_histograms.parquet``);
    each network's mean and median kappa to the others and its most and least similar networks
    (``pairwise_networks.parquet``). Where the matrices are written (``matrices``), the N x N
    matrices of co-correct counts (``both_correct``), error consistency (``kappa``) and, where
    predictions are stored, prediction agreement counts (``prediction_agree``) go to
    ``out_dir/pairwise.zarr/<split>/checkpoint_<t>/`` (dims ``networks_0``, ``networks_1``),
    written tile by tile. Runs on whatever Dask scheduler or distributed Client is active.

    Parameters
    ----------
    population : Population or path
    out_dir : Path
        Folder for ``pairwise.zarr``, the figures and ``pairwise.json``.
    splits : sequence of str, optional
        Default: every split of the store with examples.
    checkpoints : "last", "all", list of int or comma string
    networks : ndarray of int, dims (networks,), optional
        Network ids to include; default the networks recorded through the latest checkpoint.
    device : "cpu" or "cuda"
        Where the tile counts are computed (equal results).
    block : int, optional
        Networks per tile side (and zarr chunk); default 512 on the CPU, 2048 on a GPU.
    bootstrap : int
        Bootstrap replicates over networks and over examples (0 for none).
    seed : int
    figures : bool
        Draw the kappa heatmap, the distributions of kappa over pairs and over networks and the
        nearest-neighbour figure at each split's last checkpoint asked for.
    matrices : bool, optional
        Write the full matrices to ``pairwise.zarr``; default (None) only where a matrix has at
        most :data:`~engine.pairwise.inputs.MATRIX_NETWORKS` squared pairs.
    by : str, optional
        An example-metadata column: each summary also holds ``by``, the means on the examples
        of each of its values (at most :data:`~engine.pairwise.by_value.MAX_VALUES`), per group
        pair too (:func:`~engine.pairwise.by_value.by_value_summary`).

    Returns
    -------
    dict
        JSON-able and bounded whatever N: ``{"splits": {split: {"checkpoints": {t: summary}}},
        ...}``, each summary with ``agreement``, ``kappa`` and ``prediction_agreement`` entries
        holding ``all`` (and ``within``/``between`` with several groups) as ``{"mean",
        "networks_ci", "examples_ci", "pairs"}``, plus ``group_means`` (group x group),
        ``network_kappa`` (quantiles over networks) and ``matrices`` (whether written).
    """
    check_device(device)
    population = as_population(population)
    block = default_block(block, device)
    bootstrap = check_bootstrap(bootstrap)
    splits = resolve_splits(population, splits)
    checkpoint_list = resolve_checkpoints(population, checkpoints)
    ids = resolve_networks(population, networks, checkpoint_list)
    by_values = example_values(population, splits, by) if by is not None else None
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    report: dict[str, Any] = {
        "store": population.path,
        "dataset_fingerprint": population.dataset_fingerprint,
        "networks": int(ids.size),
        "device": device,
        "block": block,
        "bootstrap": bootstrap,
        "seed": seed,
        "groups": [g["name"] for g in population.attrs["groups"]],
        "splits": {},
        "figures": [],
    }
    run = _start(out_dir, report, ("splits", "figures"), device, block, bootstrap, matrices)
    run.by, run.by_values = by, by_values
    epochs = population.checkpoints["epoch"].to_numpy()
    network_groups = population.network_groups()
    for split in splits:
        num_classes = prediction_classes(population, split)
        split_report = {
            "examples": population.num_examples(split),
            "predictions": bool(num_classes),
            "checkpoints": {},
        }
        labelled = population.has_labels(split)
        if not labelled:
            split_report["has_labels"] = False
            split_report["undefined"] = {"measures": ["agreement", "kappa"], "why": NO_LABELS}
        for t in checkpoint_list:
            side = make_side(population, split, t, ids, bootstrap, rng, num_classes, network_groups)
            # The figures draw kappa and correctness agreement: nothing to draw without labels.
            draw = figures and labelled and t == checkpoint_list[-1]
            matrix = _store_matrix(side, float(epochs[t]), draw)
            summary, drawn = _run_matrix(run, matrix, rng)
            if not labelled:
                without_correctness(summary)
            # An unknown epoch (NaN: an imported final checkpoint) is null; JSON has no NaN.
            summary["epoch"] = float(epochs[t]) if np.isfinite(epochs[t]) else None
            summary["group_names"] = side.group_names
            split_report["checkpoints"][str(t)] = summary
            report["figures"] += drawn
        report["splits"][split] = split_report
    return _finish(run, report)


def cross_pairwise_report(
    populations: list,
    out_dir: Path,
    *,
    split: str = "test",
    checkpoint: Any = "last",
    device: str = "cpu",
    bootstrap: int = 200,
    seed: int = 0,
    block: int | None = None,
    figures: bool = True,
    matrices: bool | None = None,
) -> dict:
    """Agreement and error consistency between the networks of two (or more) stores.

    Every two stores ``a < b`` give one rectangular matrix (networks of a x networks of b) in
    ``out_dir/pairwise.zarr/<a>_<b>/<split>/`` and one summary. The stores must hold the same
    examples of ``split`` (equal split fingerprints).

    Parameters
    ----------
    populations : list of Population or paths
    split : str
    checkpoint : "last" or int
        ``"last"`` takes each store's own last checkpoint.
    device, bootstrap, seed, block, figures, matrices
        As in :func:`pairwise_report` (the per-network table holds the networks of store a
        of each pair, against those of store b).
    """
    check_device(device)
    block = default_block(block, device)
    bootstrap = check_bootstrap(bootstrap)
    populations = [as_population(p) for p in populations]
    if len(populations) < 2:
        raise ConfigError("cross_pairwise_report needs at least two stores")
    for population in populations:
        population.require_split(split)
    require_same_examples(populations, split)
    rng = np.random.default_rng(seed)
    chosen = []
    for population in populations:
        t = resolve_checkpoints(population, "last" if checkpoint == "last" else [checkpoint])[-1]
        chosen.append((t, resolve_networks(population, None, [t])))
    report: dict[str, Any] = {
        "stores": [p.path for p in populations],
        "split": split,
        "device": device,
        "bootstrap": bootstrap,
        "seed": seed,
        "comparisons": [],
        "figures": [],
    }
    out_dir = Path(out_dir)
    run = _start(out_dir, report, ("comparisons", "figures"), device, block, bootstrap, matrices)
    classes = [prediction_classes(p, split) for p in populations]
    # Predictions are compared only where every store keeps them, over the union of classes.
    num_classes = max(classes) if min(classes) > 0 else 0
    for a, b in itertools.combinations(range(len(populations)), 2):
        (t_0, ids_0), (t_1, ids_1) = chosen[a], chosen[b]
        side_0 = make_side(populations[a], split, t_0, ids_0, bootstrap, rng, num_classes)
        side_1 = make_side(populations[b], split, t_1, ids_1, bootstrap, rng, side_0.num_classes)
        matrix = _cross_matrix(a, b, side_0, side_1, figures)
        summary, drawn = _run_matrix(run, matrix, rng)
        summary["stores"] = matrix.attrs["stores"]
        summary["checkpoints"] = matrix.attrs["checkpoints"]
        summary["group_names"] = [side_0.group_names, side_1.group_names]
        summary["zarr_group"] = matrix.group
        report["comparisons"].append(summary)
        report["figures"] += drawn
    return _finish(run, report)

"""The tables of an analysis as pandas DataFrames: ``examples.parquet`` and ``networks.parquet``
built from the split Datasets, ``histograms.parquet`` from the same computed measures.

The report writes these frames as they are (docs/outputs.md gives every column), so that what
:class:`engine.analysis.Analysis` holds in memory and what ``engine analyze`` writes are the
same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.analysis.dataset import metadata_coordinate
from engine.analysis.results import StoreResult

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

#: Per-example measures of the whole population, NaN where a split lacks them.
EXAMPLE_COLUMNS = (
    "accessibility",
    "tpa_last",
    "first_learned_mean",
    "first_learned_median",
    "first_learned_epoch_mean",
    "first_learned_epoch_median",
    "never_learned_share",
    "forgetting_mean",
    "consensus_last",
    "holdout_consistency",
)
#: Soft measures per example of the whole population (columns added where any analysed split
#: has soft verdicts; NaN on the others' rows), then ``population_region`` (str).
SOFT_EXAMPLE_COLUMNS = (
    "confidence_mean",
    "confidence_std",
    "variability_mean",
    "variability_std",
    "correctness_mean",
    "correctness_std",
    "aum_mean",
    "aum_std",
    "loss_mean",
    "loss_std",
    "easy_share",
    "ambiguous_share",
    "hard_share",
    "other_share",
    "region_agreement",
)

#: The measures' histograms over the number of networks (N + 1 bins per checkpoint, so
#: T x (N + 1) numbers each): kept exactly in ``histograms.parquet``, never in ``summary.json``,
#: whose size must not grow with N (docs/outputs.md).
TPA_HISTOGRAMS = {
    "tpa_histogram": "examples",
    "null_histogram": "null",
    "binomial_histogram": "binomial",
}
#: The consensus sections and their histograms of the plurality count (also N + 1 bins).
CONSENSUS_SECTIONS = ("consensus", "consensus_last")
CONSENSUS_HISTOGRAMS = {"histogram": "examples", "null_histogram": "null"}


def _region_names(region: np.ndarray) -> np.ndarray:
    """Population regions as names (object, None where an example has none)."""
    from engine.measures import POPULATION_REGIONS

    names = np.array([*POPULATION_REGIONS, None], dtype=object)
    return names[np.where(region >= 0, region, len(POPULATION_REGIONS))]


def example_column_name(column: str) -> str:
    """The name of a metadata column in ``examples.parquet``: its own, or ``metadata_<name>``
    where it would clash with a measure's column."""
    taken = {"split", "example", "example_id", "label", "learning_order", "population_region"}
    taken |= set(EXAMPLE_COLUMNS) | set(SOFT_EXAMPLE_COLUMNS)
    return (
        f"metadata_{column}" if column in taken or column.startswith("accessibility_") else column
    )


def _column(dataset: xr.Dataset, name: str, default: np.ndarray) -> np.ndarray:
    return dataset[name].to_numpy() if name in dataset else default


def has_soft_columns(datasets: Mapping[str, Mapping[str | None, xr.Dataset]]) -> bool:
    """Whether any split has soft measures (``examples.parquet`` then has their columns)."""
    return any("population_region" in per_group[None] for per_group in datasets.values())


def _example_table(
    split: str, per_group: Mapping[str | None, xr.Dataset], soft: bool
) -> dict[str, np.ndarray]:
    """The columns of one split's rows of ``examples.parquet``, from its Datasets (key None:
    every analysed network; the others: one group each)."""
    dataset = per_group[None]
    size = dataset.sizes["examples"]
    nan = np.full(size, np.nan)
    table = {
        "split": np.full(size, split, dtype=object),
        "example": dataset["examples"].to_numpy().astype(np.int64),
        "example_id": dataset["example_id"].to_numpy(),
        "label": dataset["label"].to_numpy(),
    }
    for column in EXAMPLE_COLUMNS:
        table[column] = _column(dataset, column, nan)
    table["learning_order"] = _column(dataset, "learning_order", np.full(size, -1, np.int64))
    for name, group in per_group.items():
        if name is not None:
            table[f"accessibility_{name}"] = _column(group, "accessibility", nan)
    if soft:
        for column in SOFT_EXAMPLE_COLUMNS:
            table[column] = _column(dataset, column, nan)
        codes = _column(dataset, "population_region", np.full(size, -1, np.int64))
        table["population_region"] = _region_names(codes.astype(np.int64))
    return table


def examples_frame(
    datasets: Mapping[str, Mapping[str | None, xr.Dataset]], by: str | None = None
) -> pd.DataFrame:
    """``examples.parquet``: one row per example of every split of ``datasets`` (per split, the
    Datasets of every analysed network, key None, and of each group), with the metadata column
    ``by`` where given."""
    import pandas as pd

    soft = has_soft_columns(datasets)
    frames = []
    for split, per_group in datasets.items():
        table = _example_table(split, per_group, soft)
        if by is not None:
            table[example_column_name(by)] = per_group[None][metadata_coordinate(by)].to_numpy()
        frames.append(pd.DataFrame(table))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if by is not None and frame[example_column_name(by)].dtype == object:
        frame[example_column_name(by)] = frame[example_column_name(by)].astype("string")
    if len(frame.columns):
        frame["split"] = frame["split"].astype(str)
    if soft:
        # Strings with nulls (examples without soft verdicts), not pandas' object column.
        frame["population_region"] = frame["population_region"].astype("string")
    return frame


def networks_frame(
    networks: pd.DataFrame, analysed: np.ndarray, datasets: Mapping[str, xr.Dataset]
) -> pd.DataFrame:
    """``networks.parquet``: the store's network table (``networks``), whether each network is
    ``analysed`` (bool (networks,)), and its accuracy at the last checkpoint and forgetting
    per labelled split from the split's Dataset of every analysed network (NaN for those left
    out)."""
    table = networks.copy()
    table["analysed"] = analysed
    for split, dataset in datasets.items():
        if "network_accuracy" not in dataset:
            continue
        ids = dataset["networks"].to_numpy()
        for column, values in (
            (f"accuracy_{split}", dataset["network_accuracy"].to_numpy()[:, -1]),
            (f"forgetting_per_example_{split}", dataset["network_forgetting"].to_numpy()),
        ):
            full = np.full(len(table), np.nan)
            full[ids] = values
            table[column] = full
    return table


def _histogram_rows(
    section: dict[str, Any], names: dict[str, str], checkpoints: np.ndarray
) -> dict[str, np.ndarray] | None:
    """Long columns of one set of histograms (each (t, N + 1)) of a summary section: one row per
    checkpoint and count k; None where the section has none."""
    first = section.get(next(iter(names)))
    if first is None:
        return None
    observed = np.asarray(first, np.int64)
    if observed.ndim != 2 or observed.size == 0:
        return None
    kept, bins = observed.shape
    columns = {
        "checkpoint": np.repeat(checkpoints[-kept:], bins).astype(np.int32),
        "k": np.tile(np.arange(bins, dtype=np.int32), kept),
        "networks": np.full(kept * bins, bins - 1, np.int32),
        "examples": observed.ravel(),
    }
    for key, column in names.items():
        if column != "examples":
            columns[column] = np.asarray(section[key], np.float64).ravel()
    return columns


def histogram_frame(result: StoreResult, population: str | None = None) -> Any:
    """The exact histograms of one store's measures as a long table (``histograms.parquet``).

    One row per split, group (``"all"`` pools every analysed network), measure, checkpoint and
    count k = 0..N: for ``measure == "tpa"``, ``examples`` on which k of the N networks are right,
    ``null`` its Poisson-binomial expectation and ``binomial`` its Binomial(N, mean accuracy)
    expectation; for ``measure == "consensus"``, examples whose plurality class is given by k
    networks and ``null`` its expectation under independent draws (``binomial`` NaN).

    Parameters
    ----------
    result : StoreResult
    population : str, optional
        A ``population`` column first, with this name (``engine compare``).

    Returns
    -------
    pandas.DataFrame
        Columns ``split``, ``group``, ``measure`` (categories), ``checkpoint`` (int32), ``k``,
        ``networks`` (int32), ``examples`` (int64), ``null``, ``binomial`` (float64).
    """
    import pandas as pd

    checkpoints = np.arange(result.population.num_checkpoints)
    frames = []
    for split in result.selection.splits:
        measures = result.measures[split]
        sections = [("all", measures.overall["summary"])]
        sections += [(name, group["summary"]) for name, group in measures.groups.items()]
        for group, summary in sections:
            parts = [("tpa", _histogram_rows(summary, TPA_HISTOGRAMS, checkpoints))]
            for key in CONSENSUS_SECTIONS:
                if isinstance(summary.get(key), dict):
                    rows = _histogram_rows(summary[key], CONSENSUS_HISTOGRAMS, checkpoints)
                    parts.append(("consensus", rows))
            for measure, rows in parts:
                if rows is None:
                    continue
                frame = pd.DataFrame(rows)
                frame.insert(0, "measure", measure)
                frame.insert(0, "group", group)
                frame.insert(0, "split", split)
                frames.append(frame)
    columns = ["split", "group", "measure", "checkpoint", "k", "networks", "examples", "null"]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    if "binomial" not in frame:
        frame["binomial"] = np.nan
    frame = frame.astype({"examples": np.int64, "null": np.float64, "binomial": np.float64})
    for name in ("split", "group", "measure"):
        frame[name] = frame[name].astype(str).astype("category")
    if population is not None:
        frame.insert(0, "population", pd.Categorical([population] * len(frame)))
    return frame


__all__ = [
    "CONSENSUS_HISTOGRAMS",
    "CONSENSUS_SECTIONS",
    "EXAMPLE_COLUMNS",
    "SOFT_EXAMPLE_COLUMNS",
    "TPA_HISTOGRAMS",
    "example_column_name",
    "examples_frame",
    "has_soft_columns",
    "histogram_frame",
    "networks_frame",
]

"""The tables of a report: ``summary.json``, ``histograms.parquet``, the comparisons of several
stores and ``network_examples.parquet`` (see docs/outputs.md for every column and key); the
frames of ``examples.parquet`` and ``networks.parquet`` are :mod:`engine.analysis.frames`'."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.analysis.compute import compare_populations
from engine.analysis.frames import (
    CONSENSUS_HISTOGRAMS,
    CONSENSUS_SECTIONS,
    TPA_HISTOGRAMS,
    example_column_name,
    histogram_frame,
)
from engine.analysis.results import Comparison, SplitMeasures, StoreResult, StoreSelection

#: Keys every labelled split's summary has, None where a split has no labels.
REQUIRED_SPLIT_KEYS = (
    "accuracy_mean",
    "extreme_fraction",
    "extreme_fraction_null",
    "agreement_excess",
    "split_half_spearman",
)
HISTOGRAM_TABLE = "histograms.parquet"

#: Each parquet column's units, long name and description, written as the field metadata
#: ``units``, ``long_name`` and ``description`` of the tables' schemas and listed in
#: docs/outputs.md ("Units"). Units: ``checkpoint index`` (0 .. T-1) or ``epoch``; counts of
#: ``examples``, ``networks``, ``checkpoints``; ``fraction`` (0 to 1); ``rank``; ``id``;
#: ``class``; ``logit``; ``nats``; ``events per network``, ``events per example``;
#: ``text``, ``boolean``, ``JSON``, ``seed``.
COLUMN_UNITS: dict[str, tuple[str, str, str]] = {
    # identifying columns of several tables
    "population": ("text", "population", "the store's name (engine compare)"),
    "split": ("text", "split", "the split of the row"),
    "group": ("text", "group", "the group of networks; `all` pools every analysed network"),
    "checkpoint": ("checkpoint index", "checkpoint", "the checkpoint, 0 .. T-1"),
    "network": ("id", "network", "the network's id in the store"),
    "example": ("id", "example", "the example's index in the split"),
    "example_id": ("id", "example id", "the example's index in the source data set"),
    # histograms.parquet
    "measure": ("text", "measure", "`tpa` (TP-agreement) or `consensus`"),
    "k": ("networks", "networks k", "k of the N networks right (tpa) or giving the plurality"),
    "networks": ("networks", "networks N", "the networks of the group"),
    "examples": ("examples", "examples", "examples with k of N (observed)"),
    "null": ("examples", "null", "expected examples under independent networks"),
    "binomial": (
        "examples",
        "binomial null",
        "X times Binomial(N, mean accuracy); NaN for consensus",
    ),
    # examples.parquet
    "label": ("class", "label", "the example's class, -1 without a label"),
    "accessibility": ("fraction", "accessibility", "mean TP-agreement over checkpoints"),
    "learning_order": (
        "rank",
        "learning order",
        "rank by accessibility, 0 learned first; -1 no label",
    ),
    "tpa_last": (
        "fraction",
        "TP-agreement, last",
        "share of networks right at the last checkpoint",
    ),
    "first_learned_mean": (
        "checkpoint index",
        "first-learned checkpoint, mean",
        "mean over the networks that learn the example of the checkpoint from which it stays right",
    ),
    "first_learned_median": (
        "checkpoint index",
        "first-learned checkpoint, median",
        "median over the networks that learn the example of their first-learned checkpoint",
    ),
    "first_learned_epoch_mean": (
        "epoch",
        "first-learned epoch, mean",
        "mean of the epochs of the networks' first-learned checkpoints; NaN where unknown",
    ),
    "first_learned_epoch_median": (
        "epoch",
        "first-learned epoch, median",
        "median of the epochs of the networks' first-learned checkpoints; NaN where unknown",
    ),
    "never_learned_share": (
        "fraction",
        "never learned",
        "share of networks wrong at the last checkpoint",
    ),
    "forgetting_mean": (
        "events per network",
        "forgetting events",
        "mean forgetting events per network",
    ),
    "consensus_last": ("fraction", "consensus, last", "plurality share at the last checkpoint"),
    "holdout_consistency": ("fraction", "C-score", "hold-out consistency at the last checkpoint"),
    "confidence_mean": (
        "fraction",
        "confidence",
        "mean over networks of the mean true-class probability",
    ),
    "confidence_std": ("fraction", "confidence spread", "its standard deviation across networks"),
    "variability_mean": (
        "fraction",
        "variability",
        "mean over networks of the probability's std over checkpoints",
    ),
    "variability_std": ("fraction", "variability spread", "its standard deviation across networks"),
    "correctness_mean": (
        "fraction",
        "correctness",
        "mean over networks of the share of right checkpoints",
    ),
    "correctness_std": ("fraction", "correctness spread", "its standard deviation across networks"),
    "aum_mean": ("logit", "area under the margin", "mean over networks of the mean margin"),
    "aum_std": ("logit", "AUM spread", "its standard deviation across networks"),
    "loss_mean": ("nats", "loss", "mean over networks of the mean -log p"),
    "loss_std": ("nats", "loss spread", "its standard deviation across networks"),
    "easy_share": ("fraction", "easy share", "share of networks that put the example in `easy`"),
    "ambiguous_share": (
        "fraction",
        "ambiguous share",
        "share of networks that put it in `ambiguous`",
    ),
    "hard_share": ("fraction", "hard share", "share of networks that put it in `hard`"),
    "other_share": ("fraction", "other share", "share of networks that put it in `other`"),
    "region_agreement": ("fraction", "region agreement", "the largest of the four region shares"),
    "population_region": (
        "text",
        "population region",
        "region of the mean confidence and variability",
    ),
    # network_examples.parquet
    "confidence": ("fraction", "confidence", "the network's mean true-class probability"),
    "variability": ("fraction", "variability", "its std of the probability over checkpoints"),
    "correctness": ("fraction", "correctness", "its share of right checkpoints"),
    "aum": ("logit", "area under the margin", "its mean margin"),
    "loss": ("nats", "loss", "its mean -log p"),
    "region": ("text", "region", "its region: easy, ambiguous, hard or other"),
    # networks.parquet
    "architecture": ("text", "architecture", "the group's architecture"),
    "init_seed": ("seed", "initialisation seed", "the seed of the network's initial weights"),
    "order_seed": ("seed", "order seed", "the seed of its mini-batch order"),
    "hyperparameters": ("JSON", "hyper-parameters", "the group's hyper-parameters"),
    "checkpoints_completed": (
        "checkpoints",
        "checkpoints completed",
        "checkpoints recorded, in order",
    ),
    "complete": ("boolean", "complete", "every checkpoint recorded"),
    "analysed": ("boolean", "analysed", "the network is in the analysis"),
}
#: Columns named after a split, a group or a metadata column: prefix, units, long name and
#: description (``{}`` is the name's rest).
COLUMN_PATTERNS: tuple[tuple[str, str, str, str], ...] = (
    ("accessibility_", "fraction", "accessibility of {}", "accessibility in group {} alone"),
    ("final_accuracy_", "fraction", "final accuracy, {}", "as recorded on split {}"),
    ("accuracy_", "fraction", "accuracy, {}", "at the last checkpoint on split {}, analysed"),
    (
        "forgetting_per_example_",
        "events per example",
        "forgetting, {}",
        "forgetting events per example on split {}",
    ),
)


def column_units(name: str, by: str | None = None) -> tuple[str, str, str] | None:
    """The units, long name and description of a parquet column, or None where unknown."""
    if by is not None and name == example_column_name(by):
        return ("as stored", by, f"the example-metadata column {by!r}")
    if name in COLUMN_UNITS:
        return COLUMN_UNITS[name]
    for prefix, units, long_name, description in COLUMN_PATTERNS:
        if name.startswith(prefix):
            rest = name.removeprefix(prefix)
            return units, long_name.format(rest), description.format(rest)
    return None


def with_units(table: Any, by: str | None = None) -> Any:
    """A pyarrow table with each known column's ``units``, ``long_name`` and ``description``
    as field metadata (the table's own metadata kept)."""
    import pyarrow as pa

    fields = []
    for field in table.schema:
        known = column_units(field.name, by)
        if known is not None:
            units, long_name, description = known
            metadata = {"units": units, "long_name": long_name, "description": description}
            field = field.with_metadata({**(field.metadata or {}), **metadata})
        fields.append(field)
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def write_frame(frame: Any, path: Path, by: str | None = None) -> None:
    """A pandas table to parquet, with the units of :func:`with_units`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(with_units(pa.Table.from_pandas(frame, preserve_index=False), by), path)


# ----------------------------------------------------------------------------------------------
# summary.json


def write_summary(summary: dict[str, Any], out_dir: Path) -> None:
    """``out_dir/summary.json``; NaN is refused (the summaries hold None instead)."""
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, allow_nan=False))


def without_histograms(summary: dict[str, Any]) -> dict[str, Any]:
    """A split's (or group's) summary without its N + 1 bin histograms (:data:`TPA_HISTOGRAMS`,
    those of :data:`CONSENSUS_SECTIONS`), which go to ``histograms.parquet``."""
    kept = {k: v for k, v in summary.items() if k not in TPA_HISTOGRAMS}
    for section in CONSENSUS_SECTIONS:
        if isinstance(kept.get(section), dict):
            kept[section] = {
                k: v for k, v in kept[section].items() if k not in CONSENSUS_HISTOGRAMS
            }
    return kept


def split_summary(result: StoreResult, split: str) -> dict[str, Any]:
    """The summary of one split: its shape, the measures of all networks and of each group,
    bounded whatever the number of networks (histograms left to :func:`histogram_frame`)."""
    population, measures = result.population, result.measures[split]
    summary: dict[str, Any] = {
        "checkpoints": list(range(population.num_checkpoints)),
        # An unknown epoch (NaN: an imported final checkpoint) is null, as JSON has no NaN.
        "epochs": [float(e) if np.isfinite(e) else None for e in result.selection.epochs],
        "examples": population.num_examples(split),
        "has_labels": population.has_labels(split),
    }
    summary.update({key: None for key in REQUIRED_SPLIT_KEYS})
    summary.update(
        {
            k: v
            for k, v in without_histograms(measures.overall["summary"]).items()
            if k not in ("checkpoints", "examples")
        }
    )
    summary["labelled_examples"] = measures.overall["summary"].get("examples")
    if measures.groups:
        summary["groups"] = {
            name: {
                k: v
                for k, v in without_histograms(group["summary"]).items()
                if k not in ("checkpoints",)
            }
            for name, group in measures.groups.items()
        }
        summary["group_comparison"] = _group_comparison(measures)
    return summary


def _group_comparison(measures: SplitMeasures) -> list[dict[str, Any]]:
    """Learning-order comparison of every two groups that have accuracies."""
    from engine.measures import compare_measures

    groups = measures.groups
    names = list(groups)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if "accuracy_mean" in groups[a]["summary"] and "accuracy_mean" in groups[b]["summary"]:
                pairs.append(compare_measures(a, groups[a], b, groups[b]))
    return pairs


def _networks_summary(result: StoreResult) -> dict[str, Any]:
    return {
        "total": result.population.num_networks,
        "analysed": result.selection.num_analysed,
        "incomplete_left_out": result.selection.incomplete,
    }


def analysis_summary(
    result: StoreResult, pairwise: dict | None, execution: dict[str, Any]
) -> dict[str, Any]:
    """The ``summary.json`` of ``engine analyze``."""
    population, selection = result.population, result.selection
    analysed, missing = selection.num_analysed, selection.incomplete
    note = (
        f"{missing} incomplete networks left out; measures cover the {analysed} complete ones"
        if missing
        else "every network is complete"
    )
    network_group = selection.networks.network_group
    return {
        "store": population.path,
        "dataset": population.attrs["dataset"],
        "networks": dict(_networks_summary(result), note=note),
        "groups": [
            dict(g, networks=int((network_group == i).sum()))
            for i, g in enumerate(population.attrs["groups"])
        ],
        "checkpoints": population.num_checkpoints,
        "splits": {split: split_summary(result, split) for split in selection.splits},
        "histograms": HISTOGRAM_TABLE,
        "pairwise": pairwise,
        "execution": execution,
    }


#: Sections of a split's summary made of lists whatever their length (left out of ``by``).
UNBOUNDED_SECTIONS = ("tpa_mean_by_accessibility", "aum_histogram")


def bounded_summary(summary: dict[str, Any], num_checkpoints: int) -> dict[str, Any]:
    """The scalars of a split's summary: numbers, text and None as they are, a flat list of
    one number per checkpoint as its value at the last checkpoint, sections (dicts) the same
    way; other lists (histograms, per-example or per-network values) and
    :data:`UNBOUNDED_SECTIONS` left out."""
    bounded: dict[str, Any] = {}
    for key, value in summary.items():
        if key in UNBOUNDED_SECTIONS:
            continue
        if isinstance(value, dict):
            bounded[key] = bounded_summary(value, num_checkpoints)
        elif isinstance(value, list):
            flat = all(v is None or isinstance(v, int | float) for v in value)
            if flat and len(value) == num_checkpoints and value:
                bounded[key] = value[-1]
        else:
            bounded[key] = value
    return bounded


def by_summary(
    column: str,
    values: dict[str, np.ndarray],
    measures: dict[str, dict[str, Any]],
    num_checkpoints: int,
) -> dict[str, Any]:
    """A split's ``by`` section: per value of ``column``, its examples and the bounded summary
    (:func:`bounded_summary`) of the measures of all analysed networks on them."""
    sections = {}
    for value, examples in values.items():
        summary = measures[value]["summary"]
        rest = {k: v for k, v in summary.items() if k not in ("checkpoints", "examples")}
        sections[value] = {
            "examples": int(examples.size),
            "labelled_examples": summary.get("examples"),
            **bounded_summary(rest, num_checkpoints),
        }
    return {"column": column, "values": sections}


# ----------------------------------------------------------------------------------------------
# Comparisons of several stores


def comparison_summary(
    comparison: Comparison, results: list[StoreResult], cross: dict | None, measures_seconds: float
) -> dict[str, Any]:
    """The ``summary.json`` of ``engine compare``."""
    first = results[0].population
    return {
        "stores": [r.population.path for r in results],
        "names": list(comparison.names),
        "dataset": first.attrs["dataset"],
        "populations": {
            name: {
                "networks": _networks_summary(r),
                "splits": {split: split_summary(r, split) for split in r.selection.splits},
            }
            for name, r in zip(comparison.names, results, strict=True)
        },
        "pairs": comparison.pairs,
        "generalisation": {
            "split": comparison.generalisation_split,
            "rows": comparison.generalisation,
        },
        "histograms": HISTOGRAM_TABLE,
        "pairwise": cross,
        "execution": {"measures_seconds": measures_seconds},
    }


# ----------------------------------------------------------------------------------------------
# Parquet tables


class NetworkExampleWriter:
    """``network_examples.parquet``, written one block of networks at a time (one row group
    each), so that memory holds one block whatever the population's size.

    Rows: per split, per network (ascending), per example; columns in docs/outputs.md. No file
    is written if no block is.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._writer: Any = None

    def __enter__(self) -> NetworkExampleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()

    def write(
        self, selection: StoreSelection, split: str, networks: np.ndarray, statistics: np.ndarray
    ) -> int:
        """Add the rows of ``networks`` (int64 (m,), ascending) on every example of ``split``
        from their statistics (float32 (k, x, m) of :func:`engine.measures.soft_statistics`);
        returns the rows written."""
        import pyarrow.parquet as pq

        table = with_units(network_example_table(selection, split, networks, statistics))
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table)
        return table.num_rows


def network_example_table(
    selection: StoreSelection, split: str, networks: np.ndarray, statistics: np.ndarray
) -> Any:
    """One row group of ``network_examples.parquet`` as a pyarrow table (see
    :class:`NetworkExampleWriter`); ``split``, ``group`` and ``region`` are dictionary columns
    whose dictionaries are the same in every row group."""
    import pyarrow as pa

    from engine.measures import POPULATION_REGIONS, REGION_THRESHOLDS, STATISTIC_NAMES
    from engine.measures.soft import population_region

    examples = statistics.shape[1]
    count = networks.size * examples
    # (k, x, m) -> (k, m * x): network-major rows.
    values = np.ascontiguousarray(statistics.transpose(0, 2, 1)).reshape(len(STATISTIC_NAMES), -1)
    region = population_region(
        values[STATISTIC_NAMES.index("confidence")],
        values[STATISTIC_NAMES.index("variability")],
        REGION_THRESHOLDS,
    )

    def categories(index: np.ndarray, names: Any, mask: np.ndarray | None = None) -> Any:
        return pa.DictionaryArray.from_arrays(
            pa.array(index.astype(np.int32), mask=mask), pa.array(list(names), pa.string())
        )

    group = selection.networks.network_group[networks]
    columns = {
        "split": categories(
            np.full(count, selection.splits.index(split), np.int32), selection.splits
        ),
        "network": pa.array(np.repeat(networks, examples), pa.int64()),
        "group": categories(np.repeat(group, examples), selection.networks.group_names),
        "example": pa.array(np.tile(np.arange(examples, dtype=np.int64), networks.size)),
        "example_id": pa.array(
            np.tile(selection.population.example_ids(split), networks.size), pa.int64()
        ),
    }
    for k, name in enumerate(STATISTIC_NAMES):
        columns[name] = pa.array(values[k], pa.float32())
    columns["region"] = categories(np.maximum(region, 0), POPULATION_REGIONS, region < 0)
    return pa.table(columns)


__all__ = [
    "NetworkExampleWriter",
    "analysis_summary",
    "bounded_summary",
    "by_summary",
    "compare_populations",
    "comparison_summary",
    "histogram_frame",
    "network_example_table",
    "split_summary",
    "without_histograms",
    "write_summary",
]

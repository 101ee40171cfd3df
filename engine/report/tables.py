"""The tables of a report: ``summary.json``, ``examples.parquet``, ``networks.parquet`` and the
comparisons of several stores (see docs/outputs.md for every column and key)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.report.results import Comparison, SplitMeasures, StoreResult

#: Keys every labelled split's summary has, None where a split has no labels.
REQUIRED_SPLIT_KEYS = (
    "accuracy_mean",
    "tpa_histogram",
    "null_histogram",
    "extreme_fraction",
    "extreme_fraction_null",
    "agreement_excess",
    "split_half_spearman",
)
#: Per-example measures of the whole population, NaN where a split lacks them.
EXAMPLE_COLUMNS = (
    "accessibility",
    "tpa_last",
    "first_learned_mean",
    "first_learned_median",
    "never_learned_share",
    "forgetting_mean",
    "consensus_last",
    "holdout_consistency",
)

# ----------------------------------------------------------------------------------------------
# summary.json


def write_summary(summary: dict[str, Any], out_dir: Path) -> None:
    """``out_dir/summary.json``; NaN is refused (the summaries hold None instead)."""
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, allow_nan=False))


def split_summary(result: StoreResult, split: str) -> dict[str, Any]:
    """The summary of one split: its shape, the measures of all networks and of each group."""
    population, measures = result.population, result.measures[split]
    summary: dict[str, Any] = {
        "checkpoints": list(range(population.num_checkpoints)),
        "epochs": [float(e) for e in result.selection.epochs],
        "examples": population.num_examples(split),
        "has_labels": population.has_labels(split),
    }
    summary.update({key: None for key in REQUIRED_SPLIT_KEYS})
    summary.update(
        {
            k: v
            for k, v in measures.overall["summary"].items()
            if k not in ("checkpoints", "examples")
        }
    )
    summary["labelled_examples"] = measures.overall["summary"].get("examples")
    if measures.groups:
        summary["groups"] = {
            name: {k: v for k, v in group["summary"].items() if k not in ("checkpoints",)}
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
        "pairwise": pairwise,
        "execution": execution,
    }


# ----------------------------------------------------------------------------------------------
# Comparisons of several stores


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
        "pairwise": cross,
        "execution": {"measures_seconds": measures_seconds},
    }


# ----------------------------------------------------------------------------------------------
# Parquet tables


def _example_table(result: StoreResult, split: str) -> dict[str, np.ndarray]:
    """The columns of one split's rows of ``examples.parquet``."""
    measures = result.measures[split]
    examples = measures.overall["examples"]
    size = result.population.num_examples(split)
    nan = np.full(size, np.nan)
    table = {
        "split": np.full(size, split, dtype=object),
        "example": np.arange(size, dtype=np.int64),
        "example_id": result.population.example_ids(split),
        "label": result.selection.labels[split],
    }
    for column in EXAMPLE_COLUMNS:
        table[column] = examples.get(column, nan)
    table["learning_order"] = examples.get("learning_order", np.full(size, -1, np.int64))
    for name, group in measures.groups.items():
        table[f"accessibility_{name}"] = group["examples"].get("accessibility", nan)
    return table


def write_examples(result: StoreResult, path: Path) -> None:
    """``examples.parquet``: one row per example of every analysed split."""
    import pandas as pd

    frames = [pd.DataFrame(_example_table(result, split)) for split in result.selection.splits]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    frame["split"] = frame["split"].astype(str)
    frame.to_parquet(path, index=False)


def write_networks(result: StoreResult, path: Path) -> None:
    """``networks.parquet``: the store's network table, with accuracy and forgetting per
    labelled split for the analysed networks (NaN for those left out)."""
    table = result.population.networks
    table["analysed"] = result.selection.networks.network_group >= 0
    for split in result.selection.splits:
        counts = result.counts[split].verdicts
        labelled = int((result.selection.labels[split] >= 0).sum())
        if counts is None or labelled == 0:
            continue
        accuracy = counts["network_count"][:, -1] / labelled
        table[f"accuracy_{split}"] = np.where(table["analysed"], accuracy, np.nan)
        forgetting = counts["network_forgetting"] / labelled
        table[f"forgetting_per_example_{split}"] = np.where(table["analysed"], forgetting, np.nan)
    table.to_parquet(path, index=False)


__all__ = [
    "analysis_summary",
    "compare_populations",
    "comparison_summary",
    "split_summary",
    "write_examples",
    "write_networks",
    "write_summary",
]

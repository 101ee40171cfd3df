"""Every measure of one split for some groups of networks, from the computed counts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from engine.measures.consensus import consensus_measures
from engine.measures.selection import NetworkSelection
from engine.measures.soft import soft_measures, soft_skipped
from engine.measures.tasks import class_layouts, soft_layouts, verdict_layouts
from engine.measures.verdicts import (
    EVERY_CHECKPOINT,
    AccessibilityWindow,
    PooledVerdicts,
    correctness_measures,
    first_learned_epoch_measures,
    holdout_measures,
)

#: What a split without true labels (a probe set) has and has not, in its summary: its
#: verdicts are wrong by construction, so no measure of correctness is computed there.
WITHOUT_LABELS = {
    "defined": ["consensus", "prediction_agreement"],
    "undefined": ["accuracy", "tp_agreement", "accessibility", "agreement", "kappa"],
    "why": "the split has no true labels: every verdict is wrong by construction, so the "
    "measures of correctness are not computed; consensus (and prediction agreement in the "
    "pairwise measures) need only the predictions",
}


def split_measures(
    counts: dict[str, np.ndarray] | None,
    selection: NetworkSelection,
    groups: Iterable[int],
    labels: np.ndarray,
    classes: dict[str, np.ndarray] | None = None,
    classes_last_only: bool = False,
    membership: bool = False,
    consensus_seed: int = 0,
    soft: dict[str, np.ndarray] | None = None,
    soft_absent: str = "the split records no soft verdicts",
    epochs: np.ndarray | None = None,
    accessibility: AccessibilityWindow = EVERY_CHECKPOINT,
) -> dict[str, Any]:
    """Every measure of one split for the networks of ``groups``, from computed counts.

    Parameters
    ----------
    counts : dict of ndarray
        Computed :func:`~engine.measures.verdict_statistics` (or None for a split without
        labels).
    selection : NetworkSelection
    groups : sequence of int
        Group indices pooled together (all of them for the whole population).
    labels : int (x,)
        Examples without a label (-1) are left out of the correctness measures.
    classes : dict of ndarray, optional
        Computed :func:`~engine.measures.class_statistics`.
    classes_last_only : bool
        ``classes`` covers the last checkpoint only (the summary's key is then
        ``consensus_last`` rather than ``consensus``).
    membership : bool
        The split holds the membership mask: add the hold-out consistency.
    consensus_seed : int
        Seed of the consensus null's draws.
    soft : dict of ndarray, optional
        Computed :func:`~engine.measures.soft_statistics`: adds the summary's ``soft`` section
        and the soft columns per example.
    soft_absent : str
        Why ``soft`` is None: the ``soft`` section then says it was skipped and why.
    epochs : float (t,), optional
        The checkpoints' epochs (NaN where unknown): adds the first-learned epoch per example
        (``first_learned_epoch_mean`` and ``_median``) beside the first-learned checkpoint.
    accessibility : AccessibilityWindow
        The checkpoints accessibility averages over (:func:`accessibility_window` of the
        store; default every checkpoint), recorded as the summary's ``accessibility_from``.

    Returns
    -------
    dict
        ``summary`` (JSON-able numbers and lists) and ``examples`` (arrays per example).
    """
    groups = list(groups)
    in_groups = selection.networks_in(groups)
    size = int(in_groups.sum())
    summary: dict[str, Any] = {"networks": size}
    per_example: dict[str, np.ndarray] = {}
    labelled = labels >= 0
    if counts is not None and labelled.any() and size:
        verdicts = PooledVerdicts.pool(counts, groups, in_groups, labelled)
        parts = [correctness_measures(verdicts, selection, labelled, accessibility)]
        if membership:
            parts.append(holdout_measures(verdicts, labelled, accessibility))
        for part_summary, part_examples in parts:
            summary.update(part_summary)
            per_example.update(part_examples)
        if epochs is not None:
            per_example.update(first_learned_epoch_measures(verdicts, labelled, epochs))
    if not labelled.any():
        summary["without_labels"] = WITHOUT_LABELS
    if soft is None or not size:
        summary["soft"] = soft_skipped(soft_absent if soft is None else "no network analysed")
    elif not labelled.any():
        summary["soft"] = soft_skipped("the split has no labels")
    else:
        nan = np.full(labelled.size, np.nan)
        summary["soft"], soft_examples = soft_measures(
            soft,
            groups,
            per_example.get("accessibility", nan),
            per_example.get("tpa_last", nan),
        )
        per_example.update(soft_examples)
    if classes is not None and size:
        consensus, per_example["consensus_last"] = consensus_measures(
            classes["class_count"][groups].sum(axis=0),
            classes["network_class_count"][in_groups],
            classes_last_only,
            consensus_seed,
        )
        summary["consensus_last" if classes_last_only else "consensus"] = consensus
    return {"summary": summary, "examples": per_example}


def _example_axes(layouts: Mapping[str, Any], network_fields: Iterable[str]) -> dict[str, int]:
    network = set(network_fields)
    return {name: len(layout.before) for name, layout in layouts.items() if name not in network}


#: The examples axis of every per-example field of the computed counts, by kind of count
#: (``verdicts``, ``classes``, ``soft``); the network-indexed fields (``network_count``,
#: ``network_forgetting`` of the verdicts, ``network_class_count`` of the classes) are summed
#: over examples and are not here: they must be counted again on a subset of examples.
EXAMPLE_AXES: dict[str, dict[str, int]] = {
    "verdicts": _example_axes(verdict_layouts(1, 1, 1), ("network_count", "network_forgetting")),
    "classes": _example_axes(class_layouts(1, 1, 1), ("network_class_count",)),
    "soft": {**_example_axes(soft_layouts(1, 1, 1), ()), "network_statistics": 1},
}


def subset_counts(
    counts: Mapping[str, np.ndarray] | None,
    kind: str,
    examples: np.ndarray,
    network_fields: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray] | None:
    """Computed counts of ``kind`` (a key of :data:`EXAMPLE_AXES`) restricted to ``examples``
    (int (e,), indices into the split's examples), as if the split held only those.

    Every per-example field is indexed along its examples axis; network-indexed fields are
    taken from ``network_fields`` (counted on the same examples) and left out where it lacks
    them. A field of neither kind is refused, so that a new count cannot pass unrestricted.
    """
    if counts is None:
        return None
    axes, given = EXAMPLE_AXES[kind], dict(network_fields or {})
    subset = {}
    for name, value in counts.items():
        if name in given:
            subset[name] = np.asarray(given[name])
        elif name in axes:
            subset[name] = np.take(np.asarray(value), examples, axis=axes[name])
        elif not name.startswith("network_"):
            raise KeyError(f"count {name!r} of {kind} has no known examples axis")
    return subset

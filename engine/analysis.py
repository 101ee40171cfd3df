"""Shim: the measures moved to :mod:`engine.measures`; this keeps the imports of
engine/report.py working until the coordinator points them there."""

from engine.measures import (
    CHUNK_TASK_PREFIXES,
    class_statistics,
    num_classes_of,
    select_networks,
    split_measures,
    verdict_statistics,
)

__all__ = [
    "CHUNK_TASK_PREFIXES",
    "class_statistics",
    "num_classes_of",
    "select_networks",
    "split_measures",
    "verdict_statistics",
]

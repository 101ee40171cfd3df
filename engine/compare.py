"""Shim: the comparisons moved to :mod:`engine.measures.compare`; this keeps the imports of
engine/report.py working until the coordinator points them there."""

from engine.measures.compare import compare_measures, generalisation_row

__all__ = ["compare_measures", "generalisation_row"]

"""What a report is made of: the results of :mod:`engine.analysis.results`, under the name the
report's modules (tables, figures, page) import them by."""

from engine.analysis.results import (
    Comparison,
    SplitCounts,
    SplitMeasures,
    StoreResult,
    StoreSelection,
)

__all__ = ["Comparison", "SplitCounts", "SplitMeasures", "StoreResult", "StoreSelection"]

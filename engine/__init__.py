"""Created Equal: train populations of networks, record every verdict, measure their agreement.

The public API for stores and analyses lives here (:func:`analyze` and :func:`compare` return
xarray Datasets and pandas tables, :mod:`engine.analysis`); the measures' graphs are in
:mod:`engine.measures` and training in :mod:`engine.train` (the only part that imports torch).

The store names are loaded on first use (module ``__getattr__``, PEP 562), so that importing
:mod:`engine.errors` or :mod:`engine._version`, which imports this package first, stays light:
``engine --help`` loads neither zarr nor numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from engine._version import __version__
from engine.errors import ConfigError, EngineError, StoreError, WriterError

if TYPE_CHECKING:
    from engine.analysis import Analysis, ComparisonAnalysis, analyze, compare
    from engine.record import StoreLayout, open_recorder
    from engine.store import (
        GroupSpec,
        Population,
        PopulationWriter,
        SplitSpec,
        add_checkpoints,
        add_networks,
        create_population,
        dataset_fingerprint,
        merge_populations,
        open_population,
        open_writer,
        split_fingerprint,
    )

#: The names of :mod:`engine.store` that this package exports.
STORE_NAMES = frozenset(
    {
        "GroupSpec",
        "Population",
        "PopulationWriter",
        "SplitSpec",
        "add_checkpoints",
        "add_networks",
        "create_population",
        "dataset_fingerprint",
        "merge_populations",
        "open_population",
        "open_writer",
        "split_fingerprint",
    }
)

#: The names of :mod:`engine.record` that this package exports.
RECORD_NAMES = frozenset({"StoreLayout", "open_recorder"})

#: The names of :mod:`engine.analysis` that this package exports.
ANALYSIS_NAMES = frozenset({"Analysis", "ComparisonAnalysis", "analyze", "compare"})

#: The module each exported name is loaded from.
_MODULES = {
    **dict.fromkeys(STORE_NAMES, "engine.store"),
    **dict.fromkeys(RECORD_NAMES, "engine.record"),
    **dict.fromkeys(ANALYSIS_NAMES, "engine.analysis"),
}

__all__ = [
    "__version__",
    "Analysis",
    "ComparisonAnalysis",
    "ConfigError",
    "EngineError",
    "GroupSpec",
    "Population",
    "PopulationWriter",
    "SplitSpec",
    "StoreError",
    "StoreLayout",
    "WriterError",
    "add_checkpoints",
    "add_networks",
    "analyze",
    "compare",
    "create_population",
    "dataset_fingerprint",
    "merge_populations",
    "open_population",
    "open_recorder",
    "open_writer",
    "split_fingerprint",
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value = getattr(importlib.import_module(_MODULES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULES))

"""Created Equal: train populations of networks, record every verdict, measure their agreement.

The public API for stores lives here; analyses are in :mod:`engine.measures` and training in
:mod:`engine.train` (the only part that imports torch).
"""

from engine._version import __version__
from engine.errors import ConfigError, EngineError, StoreError, WriterError
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

__all__ = [
    "__version__",
    "ConfigError",
    "EngineError",
    "GroupSpec",
    "Population",
    "PopulationWriter",
    "SplitSpec",
    "StoreError",
    "WriterError",
    "add_checkpoints",
    "add_networks",
    "create_population",
    "dataset_fingerprint",
    "merge_populations",
    "open_population",
    "open_writer",
    "split_fingerprint",
]

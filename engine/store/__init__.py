"""The population store: one Zarr v3 group per population, described in docs/store-format.md.

Layout letters: n networks, t checkpoints, x examples. The root holds per-network and
per-checkpoint arrays; each split (train, test, probes) is a subgroup ``splits/<name>`` holding
``correct_packed`` (n, t, x/8) uint8 (correctness bits packed along examples, little bit order),
optional ``predictions`` (n, t, x) int16, ``labels`` (x) and ``example_ids`` (x).

One module per concern:

- :mod:`engine.store.format`: names, arrays, codecs, specs, fingerprints, opening with the
  format checked, and the stored-order decoder beside the codecs it assumes;
- :mod:`engine.store.create`: :func:`create_population`;
- :mod:`engine.store.writer`: :class:`PopulationWriter` (one per owned range of networks);
- :mod:`engine.store.reader`: :class:`Population`, lazy dask arrays over the store;
- :mod:`engine.store.maintenance`: growing, merging, describing and verifying stores;
- :mod:`engine.store.compact`: :func:`compact_population`, a store rewritten into other blocks.
"""

from engine.store.compact import compact_population
from engine.store.create import create_population
from engine.store.format import (
    ATTRS_KEY,
    BIT_ORDER,
    DEFAULT_CHECKPOINT_BLOCK,
    DEFAULT_EXAMPLE_BLOCK,
    DEFAULT_NETWORK_BLOCK,
    FORMAT_NAME,
    FORMAT_VERSION,
    NETWORK_METADATA_BLOCK,
    NO_LABEL,
    NO_PREDICTION,
    VERDICT_ZSTD_LEVEL,
    GroupSpec,
    SplitSpec,
    StoreHandle,
    dataset_fingerprint,
    read_stored_order,
    split_fingerprint,
)
from engine.store.maintenance import (
    PopulationSummary,
    SplitSummary,
    Verification,
    add_checkpoints,
    add_networks,
    merge_populations,
    require_same_dataset,
    summarize_population,
    verify_population,
)
from engine.store.reader import Population, open_population
from engine.store.writer import PopulationWriter, open_writer

__all__ = [
    "ATTRS_KEY",
    "BIT_ORDER",
    "DEFAULT_CHECKPOINT_BLOCK",
    "DEFAULT_EXAMPLE_BLOCK",
    "DEFAULT_NETWORK_BLOCK",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "NETWORK_METADATA_BLOCK",
    "NO_LABEL",
    "NO_PREDICTION",
    "VERDICT_ZSTD_LEVEL",
    "GroupSpec",
    "Population",
    "PopulationSummary",
    "PopulationWriter",
    "SplitSpec",
    "SplitSummary",
    "StoreHandle",
    "Verification",
    "add_checkpoints",
    "add_networks",
    "compact_population",
    "create_population",
    "dataset_fingerprint",
    "merge_populations",
    "open_population",
    "open_writer",
    "read_stored_order",
    "require_same_dataset",
    "split_fingerprint",
    "summarize_population",
    "verify_population",
]

"""``pairwise.zarr``: creating its matrix groups and writing tiles (engine/pairwise/dataset.py reads
it back).

Layout (docs/pairwise.md, "Outputs"): one group per split and checkpoint,
``<split>/checkpoint_<t>/``, or per pair of stores, ``stores_<a>_<b>/<split>/``, holding the
N x N matrices (dims ``networks_0``, ``networks_1``, chunked ``block x block``), the network ids
and groups of each side, and each side's ``correct_count``. Agreement counts are not stored:
:func:`engine.pairwise.dataset.open_pairwise` derives them.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from engine.pairwise.counts import count_dtype

if TYPE_CHECKING:
    import zarr

    from engine.pairwise.blocks import SideCounts
    from engine.pairwise.inputs import MatrixSides

#: Blosc settings of the stored matrices (None: uncompressed), chosen by
#: benchmarks/bench_pairwise.py (see docs/pairwise.md, "Outputs").
COUNT_COMPRESSORS: dict | None = {"cname": "lz4", "clevel": 1, "shuffle": "shuffle"}
KAPPA_COMPRESSORS: dict | None = {"cname": "lz4", "clevel": 1, "shuffle": "shuffle"}
#: N x N matrices stored per split and checkpoint (agreement counts are derived on read).
MATRICES = ("both_correct", "kappa", "prediction_agree")
ATTRS_KEY = "created_equal_pairwise"


@dataclass(frozen=True)
class PairwiseOutput:
    """A ``pairwise.zarr`` opened for writing: its path (for tasks) and its root group."""

    path: str
    root: zarr.Group


@dataclass(frozen=True)
class MatrixTarget:
    """Where the tiles of one matrix go; small and picklable (dask.distributed).

    Attributes
    ----------
    path : str
        The ``pairwise.zarr`` store.
    group : str
        The matrix group in it, e.g. ``"test/checkpoint_2"``.
    token : str
        Unique to the run that created the group's arrays (names the cache of opened arrays).
    """

    path: str
    group: str
    token: str


def open_output(out_dir: Path, attrs: dict) -> PairwiseOutput:
    """Create ``out_dir`` and an empty ``pairwise.zarr`` in it (replacing one there)."""
    import zarr

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = str(out_dir / "pairwise.zarr")
    root = zarr.open_group(path, mode="w")
    root.attrs[ATTRS_KEY] = attrs
    return PairwiseOutput(path, root)


def _compressors(name: str) -> list | None:
    from zarr.codecs import BloscCodec

    settings = KAPPA_COMPRESSORS if name == "kappa" else COUNT_COMPRESSORS
    return [BloscCodec(**settings)] if settings else None


def _group(parent: zarr.Group, name: str) -> zarr.Group:
    # The layout puts groups at these paths; zarr's types allow an array too.
    return cast("zarr.Group", parent[name])


def _array(group: zarr.Group, name: str) -> zarr.Array:
    return cast("zarr.Array", group[name])


def create_matrix_group(
    output: PairwiseOutput,
    group: str,
    sides: MatrixSides,
    block: int,
    with_predictions: bool,
    attrs: dict,
) -> MatrixTarget:
    """Create one matrix group's arrays (``attrs["examples"]`` sets the count dtype)."""
    matrices = output.root.require_group(group)
    matrices.attrs.update(attrs)
    side_0, side_1 = sides.side_0, sides.side_1
    shape = (side_0.size, side_1.size)
    chunks = (max(1, min(block, shape[0])), max(1, min(block, shape[1])))
    # One shard per band of rows, written once by its strip: N / block files per array where
    # block x block chunks alone make (N / block)^2 (zarr's per-write costs dominated).
    shards = (chunks[0], chunks[1] * -(-shape[1] // chunks[1]))
    dims = ("networks_0", "networks_1")
    counts = np.dtype(count_dtype(attrs["examples"])).name
    specs: list[tuple[str, str, Any]] = [("both_correct", counts, 0), ("kappa", "float32", np.nan)]
    if with_predictions:
        specs.append(("prediction_agree", counts, 0))
    for name, dtype, fill in specs:
        # Tiles are whole chunks, never empty: skip zarr's check of each chunk against the fill.
        matrices.create_array(
            name,
            shape=shape,
            chunks=chunks,
            shards=shards,
            dtype=dtype,
            fill_value=fill,
            dimension_names=dims,
            compressors=_compressors(name),
            config={"write_empty_chunks": True},
            overwrite=True,
        )
    for index, side in enumerate((side_0, side_1)):
        dim = f"networks_{index}"
        matrices.create_array(
            dim, shape=(side.size,), dtype="int64", dimension_names=(dim,), overwrite=True
        )[:] = side.ids
        matrices.create_array(
            f"network_group_{index}",
            shape=(side.size,),
            dtype="int16",
            dimension_names=(dim,),
            overwrite=True,
        )[:] = side.group_codes
    return MatrixTarget(output.path, group, uuid.uuid4().hex)


def write_correct_counts(
    output: PairwiseOutput, target: MatrixTarget, counts_0: SideCounts, counts_1: SideCounts
) -> None:
    """Examples each network gets right, per side: with both_correct they give agreement."""
    for name, dim, counts in (
        ("correct_count", "networks_0", counts_0),
        ("correct_count_1", "networks_1", counts_1),
    ):
        values = counts.network_correct
        _group(output.root, target.group).create_array(
            name, shape=values.shape, dtype="int64", dimension_names=(dim,), overwrite=True
        )[:] = values


#: Zarr arrays of the output opened once per process and matrix (opening the group and its
#: arrays costs ~2.5 ms, as much as writing a tile). Keyed by a token unique to each run, so a
#: later run into the same folder (new shapes, dtypes) never sees stale metadata.
_OPENED: dict[tuple[str, str, str], dict[str, Any]] = {}
_OPENED_LOCK = threading.Lock()
_OPENED_LIMIT = 16


def _open_target(target: MatrixTarget) -> dict[str, Any]:
    import zarr

    key = (target.path, target.group, target.token)
    with _OPENED_LOCK:
        arrays = _OPENED.get(key)
        if arrays is None:
            matrices = _group(zarr.open_group(target.path, mode="r+"), target.group)
            arrays = {name: _array(matrices, name) for name in MATRICES if name in matrices}
            while len(_OPENED) >= _OPENED_LIMIT:
                _OPENED.pop(next(iter(_OPENED)))
            _OPENED[key] = arrays
    return arrays


def write_band(target: MatrixTarget, band: dict[str, np.ndarray], rows: slice) -> None:
    """Write each matrix's band of rows (every column) at once: one shard per array."""
    outputs = _open_target(target)
    for name, values in band.items():
        outputs[name][rows, :] = values


# ----------------------------------------------------------------------------------------------
# The tables of the summaries (streamed: nothing N x N), beside pairwise.json

#: Per network: its kappa with the others and its most and least similar networks.
NETWORK_TABLE = "pairwise_networks.parquet"
#: The exact histograms of kappa, agreement and prediction agreement over pairs.
HISTOGRAM_TABLE = "pairwise_histograms.parquet"


#: Each column's units, long name and description, written as the parquet field metadata
#: ``units``, ``long_name`` and ``description`` (docs/outputs.md, "Units", lists them).
TABLE_UNITS: dict[str, tuple[str, str, str]] = {
    "matrix": ("text", "matrix", "the matrix's group in pairwise.zarr, e.g. test/checkpoint_9"),
    "split": ("text", "split", "the split of the matrix"),
    "checkpoint": ("checkpoint index", "checkpoint", "the checkpoint of the matrix, 0 .. T-1"),
    "network": ("id", "network", "the row network's id in its store"),
    "group": ("text", "group", "the row network's group"),
    "kappa_mean": ("kappa", "mean kappa", "mean error consistency to the other networks"),
    "kappa_median": ("kappa", "median kappa", "its median, to within the 1e-4 bins"),
    "kappa_pairs": ("pairs", "kappa pairs", "pairs with the network where kappa is defined"),
    "most_similar": ("id", "most similar", "the 5 networks of highest kappa, highest first"),
    "most_similar_kappa": ("kappa", "most similar kappa", "their kappa"),
    "least_similar": ("id", "least similar", "the 5 networks of lowest kappa, lowest first"),
    "least_similar_kappa": ("kappa", "least similar kappa", "their kappa"),
    "statistic": ("text", "statistic", "kappa, agreement or prediction_agreement"),
    "pairs": ("text", "pairs", "within or between groups, or all"),
    "low": ("as statistic", "bin low", "the bin's low end (kappa, or a fraction of examples)"),
    "high": ("as statistic", "bin high", "the bin's high end (equal to low: one exact value)"),
    "count": ("pairs", "pairs in bin", "pairs of networks whose statistic is in the bin"),
}


def with_units(table: Any) -> Any:
    """A pyarrow table with the :data:`TABLE_UNITS` of its columns as field metadata."""
    import pyarrow as pa

    fields = []
    for field in table.schema:
        if field.name in TABLE_UNITS:
            units, long_name, description = TABLE_UNITS[field.name]
            metadata = {"units": units, "long_name": long_name, "description": description}
            field = field.with_metadata(metadata)
        fields.append(field)
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


class TableWriter:
    """One parquet file written one matrix at a time (a row group each), opened on first write;
    no file is written if no matrix is."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._writer: Any = None
        self.rows = 0

    def write(self, table: Any) -> None:
        """Append a pyarrow table (every call the same schema)."""
        import pyarrow.parquet as pq

        table = with_units(table)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _labels(count: int, group: str, split: str, checkpoint: int) -> dict[str, Any]:
    import pyarrow as pa

    return {
        "matrix": pa.array([group] * count, pa.string()),
        "split": pa.array([split] * count, pa.string()),
        "checkpoint": pa.array(np.full(count, checkpoint, np.int32)),
    }


def network_table(
    group: str, split: str, checkpoint: int, ids: np.ndarray, names: list[str], values: dict
) -> Any:
    """One matrix's rows of ``pairwise_networks.parquet`` as a pyarrow table.

    Parameters
    ----------
    group, split, checkpoint
        The matrix (its zarr group name, e.g. ``"test/checkpoint_2"``), split and checkpoint.
    ids : ndarray of int64, dims (networks,)
        The row networks.
    names : list of str
        Group name of each row network.
    values : dict
        ``kappa_mean``, ``kappa_median`` (float64 (networks,)), ``kappa_pairs`` (int64),
        ``most``, ``least`` (float32 (networks, k)), ``most_ids``, ``least_ids`` (int64).
    """
    import pyarrow as pa

    def lists(array: np.ndarray, kind: Any) -> Any:
        k = array.shape[1]
        return pa.FixedSizeListArray.from_arrays(pa.array(array.ravel(), kind), k)

    columns = _labels(ids.size, group, split, checkpoint)
    columns.update(
        {
            "network": pa.array(ids, pa.int64()),
            "group": pa.array(names, pa.string()),
            "kappa_mean": pa.array(values["kappa_mean"], pa.float64()),
            "kappa_median": pa.array(values["kappa_median"], pa.float64()),
            "kappa_pairs": pa.array(values["kappa_pairs"], pa.int64()),
            "most_similar": lists(values["most_ids"], pa.int64()),
            "most_similar_kappa": lists(values["most"], pa.float32()),
            "least_similar": lists(values["least_ids"], pa.int64()),
            "least_similar_kappa": lists(values["least"], pa.float32()),
        }
    )
    return pa.table(columns)


def histogram_table(group: str, split: str, checkpoint: int, histograms: dict[str, tuple]) -> Any:
    """One matrix's rows of ``pairwise_histograms.parquet``: one per statistic, kind of pair
    and bin with a nonzero count.

    Parameters
    ----------
    group, split, checkpoint
        As :func:`network_table`.
    histograms : dict of str to (kinds, counts, edges)
        Per statistic (``kappa``, ``agreement``, ``prediction_agreement``), the kinds of pair
        of each row of counts (``within`` and ``between`` groups, ``all`` with one group,
        ``between`` the two stores of a cross matrix), counts int64 (kinds, bins), and edges
        float64 (bins, 2), the low and high end of each bin (equal where the bin is one exact
        value).
    """
    import pyarrow as pa

    parts: dict[str, list] = {"statistic": [], "pairs": [], "low": [], "high": [], "count": []}
    for statistic, (kinds, counts, edges) in histograms.items():
        for kind, row in zip(kinds, counts, strict=True):
            kept = np.flatnonzero(row)
            parts["statistic"] += [statistic] * kept.size
            parts["pairs"] += [kind] * kept.size
            parts["low"].append(edges[kept, 0])
            parts["high"].append(edges[kept, 1])
            parts["count"].append(row[kept])
    count = len(parts["statistic"])

    def joined(name: str, dtype: Any) -> np.ndarray:
        return np.concatenate(parts[name]).astype(dtype) if parts[name] else np.zeros(0, dtype)

    columns = _labels(count, group, split, checkpoint)
    columns.update(
        {
            "statistic": pa.array(parts["statistic"], pa.string()),
            "pairs": pa.array(parts["pairs"], pa.string()),
            "low": pa.array(joined("low", np.float64)),
            "high": pa.array(joined("high", np.float64)),
            "count": pa.array(joined("count", np.int64)),
        }
    )
    return pa.table(columns)

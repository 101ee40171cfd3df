"""Reading a population store: metadata as tables, verdicts as lazy dask arrays.

Layout letters: n networks, t checkpoints, x examples. Reads fail loudly: a chunk whose crc32c
does not match is a one-line StoreError naming the array and region, never data.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from engine.errors import StoreError
from engine.store.format import (
    BIT_ORDER,
    FORMAT_VERSION,
    SOFT_ARRAYS,
    SPLIT_ARRAYS,
    WRITTEN_CHUNKS_VERSION,
    decode_margin,
    decode_probability,
    get_array,
    is_url,
    open_root,
    require_recorded_chunks,
)

if TYPE_CHECKING:
    import dask.array as da
    import pandas as pd


def _unpack_block(block: np.ndarray, examples: int, block_info: Any = None) -> np.ndarray:
    location = block_info[0]["array-location"][2] if block_info else (0, block.shape[2])
    count = min(8 * block.shape[2], examples - 8 * location[0])
    return np.unpackbits(block, axis=2, count=count, bitorder=BIT_ORDER).view(bool)


def _describe(key: Any) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return (
        "["
        + ", ".join(
            f"{p.start or 0}:{'' if p.stop is None else p.stop}" if isinstance(p, slice) else str(p)
            for p in parts
        )
        + "]"
    )


def _region(key: Any, shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """The half-open range along each dim of a basic-indexing key (slices and integers)."""
    parts = key if isinstance(key, tuple) else (key,)
    region = []
    for axis, size in enumerate(shape):
        part = parts[axis] if axis < len(parts) else slice(None)
        if isinstance(part, slice):
            start, stop, _ = part.indices(size)
            region.append((start, stop))
        else:
            index = int(part) % size if size else 0
            region.append((index, index + 1))
    return region


class CheckedZarr:
    """Array-like view of a zarr array for dask that turns read failures into StoreError.

    A chunk whose crc32c does not match raises inside zarr with a generic message; this names the
    array and region instead, so that the CLI can print one line.

    Parameters
    ----------
    array : zarr.Array
    label : str
        What the error names, e.g. ``"pop.zarr/splits/test/correct_packed"``.
    shape : tuple of int, optional
        The shape readers see (the store's authoritative sizes); the array's by default.
    """

    def __init__(
        self,
        array: zarr.Array,
        label: str,
        shape: tuple[int, ...] | None = None,
        completed: np.ndarray | None = None,
    ):
        self.array = array
        self.label = label
        self.shape = tuple(shape if shape is not None else array.shape)
        self.dtype = array.dtype
        self.ndim = len(self.shape)
        #: checkpoints_completed of every network (format 2 and later, writer-filled arrays of
        #: dims (networks, checkpoints, ...)): a missing chunk holding recorded entries is an
        #: error, not fill.
        self.completed = completed

    def __getitem__(self, key: Any) -> Any:
        if self.completed is not None:
            region = _region(key, self.shape)
            require_recorded_chunks(self.array, region, self.completed[region[0][0] :])
        try:
            return self.array[key]
        except Exception as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise StoreError(
                f"corrupt or unreadable chunk in {self.label} at {_describe(key)}: {reason}"
            ) from error


class Population:
    """A population store opened for reading. Use :func:`open_population`.

    Attributes
    ----------
    path : str
    attrs : dict
        The store's root metadata (format version, data set, groups, command, ...).
    """

    def __init__(self, path: str | os.PathLike, storage_options: dict | None = None):
        self.path = str(path)
        #: fsspec options of a URL store, kept so that workers can reopen it by path.
        self.storage_options = storage_options
        self._root, self.attrs = open_root(path, mode="r", storage_options=storage_options)
        self.num_networks: int = self.attrs["num_networks"]
        self.num_checkpoints: int = self.attrs["num_checkpoints"]

    def __repr__(self) -> str:
        return (
            f"Population({self.path!r}, networks={self.num_networks}, "
            f"checkpoints={self.num_checkpoints}, splits={self.splits})"
        )

    # -- metadata ---------------------------------------------------------------------------

    @property
    def splits(self) -> list[str]:
        return list(self.attrs["splits"])

    @property
    def dataset_fingerprint(self) -> str:
        return self.attrs["dataset"]["fingerprint"]

    @property
    def group_names(self) -> list[str]:
        return [g["name"] for g in self.attrs["groups"]]

    def num_examples(self, split: str) -> int:
        self.require_split(split)
        return self.attrs["splits"][split]["examples"]

    def has_labels(self, split: str) -> bool:
        self.require_split(split)
        return self.attrs["splits"][split]["has_labels"]

    def require_split(self, split: str) -> None:
        """Raise StoreError naming the splits there are if ``split`` is not one of them."""
        if split not in self.attrs["splits"]:
            raise StoreError(
                f"split {split!r} does not exist in {self.path}; it has {', '.join(self.splits)}"
            )

    def has_array(self, name: str) -> bool:
        """Whether the store holds the array ``name`` (``predictions`` and ``membership`` are
        optional)."""
        return name in self._root

    def array(self, name: str) -> zarr.Array:
        """The zarr array ``name`` (for instance ``"splits/test/labels"``), opened for reading."""
        try:
            return get_array(self._root, name)
        except KeyError as error:
            raise StoreError(
                f"{self.path} lacks the array {name!r}: not a complete "
                f"population store of format {FORMAT_VERSION}"
            ) from error

    def checked_array(self, name: str, shape: tuple[int, ...] | None = None) -> CheckedZarr:
        """The array ``name`` behind a view whose failed reads are one-line StoreErrors.

        In stores of format 2 and later, reading a chunk of a writer-filled (networks,
        checkpoints, ...) array that holds recorded entries but is missing is one too.
        """
        array = self.array(name)
        completed = None
        if self.format_version >= WRITTEN_CHUNKS_VERSION and _tracks_written(name, array):
            completed = self.checkpoints_completed()
        return CheckedZarr(array, f"{self.path}/{name}", shape, completed)

    @property
    def format_version(self) -> int:
        """The store's format version (docs/store-format.md)."""
        return int(self.attrs["format_version"])

    def soft_arrays(self, split: str) -> list[str]:
        """The soft-verdict arrays ``split`` stores (``probability``, ``margin``), or none."""
        self.require_split(split)
        return list(SOFT_ARRAYS) if self.attrs["splits"][split].get("soft", False) else []

    def read_array(self, name: str) -> np.ndarray:
        """The whole of the array ``name`` as NumPy; a failed read is a one-line StoreError."""
        array = self.array(name)
        try:
            return np.asarray(array[:])
        except Exception as error:
            raise StoreError(
                f"corrupt or unreadable array {name!r} in {self.path}: {type(error).__name__}"
            ) from error

    def checkpoints_completed(self) -> np.ndarray:
        """Checkpoints recorded for each network, dims (networks,), int32."""
        return self.read_array("checkpoints_completed")[: self.num_networks]

    def complete_networks(self) -> np.ndarray:
        """Ids of networks whose every checkpoint is recorded, dims (networks,), int64."""
        return np.flatnonzero(self.checkpoints_completed() >= self.num_checkpoints)

    @property
    def networks(self) -> pd.DataFrame:
        """One row per network: group, architecture, seeds, progress, final accuracy per split."""
        import pandas as pd

        n = self.num_networks
        groups = self.attrs["groups"]
        group_index = self.read_array("network_group")[:n]
        completed = self.checkpoints_completed()
        table = pd.DataFrame(
            {
                "network": self.read_array("networks")[:n],
                "group": [groups[i]["name"] for i in group_index],
                "architecture": [groups[i]["architecture"] for i in group_index],
                "init_seed": self.read_array("network_init_seed")[:n],
                "order_seed": self.read_array("network_order_seed")[:n],
                "hyperparameters": [
                    json.dumps(groups[i]["hyperparameters"], sort_keys=True) for i in group_index
                ],
                "checkpoints_completed": completed,
                "complete": completed >= self.num_checkpoints,
            }
        )
        for split in self.splits:
            table[f"final_accuracy_{split}"] = self.read_array(f"splits/{split}/final_accuracy")[:n]
        return table

    @property
    def checkpoints(self) -> pd.DataFrame:
        """One row per checkpoint: index, epoch (may be fractional) and optimiser step."""
        import pandas as pd

        t = self.num_checkpoints
        return pd.DataFrame(
            {
                "checkpoint": self.read_array("checkpoints")[:t],
                "epoch": self.read_array("checkpoint_epoch")[:t],
                "step": self.read_array("checkpoint_step")[:t],
            }
        )

    def network_groups(self) -> np.ndarray:
        """Group index of each network, dims (networks,), int16 (see ``attrs['groups']``)."""
        return self.read_array("network_group")[: self.num_networks]

    def labels(self, split: str) -> np.ndarray:
        """True class per example, -1 where there is none, dims (examples,), int32."""
        self.require_split(split)
        return self.read_array(f"splits/{split}/labels")[: self.num_examples(split)]

    def example_metadata(self, split: str) -> pd.DataFrame:
        """The split's per-example metadata columns, one row per example (categorical columns
        for text); an empty table where it has none (and in stores of format 1)."""
        from engine.store.metadata import METADATA_GROUP, decode_columns

        self.require_split(split)
        name = f"splits/{split}/{METADATA_GROUP}"
        group = self._root[name] if name in self._root else None
        try:
            if group is not None and not isinstance(group, zarr.Group):
                raise TypeError(f"{name} is not a group")
            return decode_columns(group, self.num_examples(split))
        except Exception as error:
            raise StoreError(
                f"corrupt or unreadable example metadata of {split!r} in {self.path}: "
                f"{type(error).__name__}"
            ) from error

    def example_ids(self, split: str) -> np.ndarray:
        """Index of each example in the source data set, dims (examples,), int64."""
        self.require_split(split)
        return self.read_array(f"splits/{split}/example_ids")[: self.num_examples(split)]

    # -- lazy verdicts ----------------------------------------------------------------------

    def lazy_array(self, name: str, chunks: Any = None) -> da.Array:
        """The array ``name`` as stored (codes, not decoded values), as a dask array of the
        store's authoritative shape (``num_networks``, ``num_checkpoints``, examples)."""
        array = self.array(name)
        sizes = {"networks": self.num_networks, "checkpoints": self.num_checkpoints}
        dims = tuple(getattr(array.metadata, "dimension_names", None) or ())
        shape = tuple(sizes.get(dim, size) for dim, size in zip(dims, array.shape, strict=True))
        return self._lazy(name, shape, chunks)

    def _lazy(self, name: str, shape: tuple[int, ...], chunks: Any = None) -> da.Array:
        import dask.array as da
        from dask.base import tokenize

        view = self.checked_array(name, shape)
        chunks = chunks if chunks is not None else view.array.chunks
        # A deterministic name lets two reads of the same store share their tasks in one graph.
        token = tokenize(self.path, name, shape, chunks)
        return da.from_array(
            view, chunks=chunks, fancy=False, name=f"{name.replace('/', '-')}-{token}"
        )

    def correct_packed(self, split: str, chunks: Any = None) -> da.Array:
        """Correctness bits as stored: packed along examples, 8 to a byte, little bit order.

        The fast input of kernels (``numpy.unpackbits(..., bitorder="little")`` undoes it);
        padding bits past the last example are 0.

        Returns
        -------
        dask.array.Array of uint8, dims (networks, checkpoints, example_bytes)
        """
        self.require_split(split)
        shape = (self.num_networks, self.num_checkpoints, -(-self.num_examples(split) // 8))
        return self._lazy(f"splits/{split}/correct_packed", shape, chunks)

    def correct(self, split: str, chunks: Any = None) -> da.Array:
        """Correctness of every network at every checkpoint on every example.

        Parameters
        ----------
        chunks : tuple, optional
            Chunks of the packed array (networks, checkpoints, example bytes); the store's by
            default.

        Returns
        -------
        dask.array.Array of bool, dims (networks, checkpoints, examples)
            Unpacked lazily from :meth:`correct_packed`. Entries at or past a network's
            ``checkpoints_completed`` are not yet recorded (False).
        """
        import dask.array as da

        packed = self.correct_packed(split, chunks)
        examples = self.num_examples(split)
        byte_chunks = packed.chunks[2]
        example_chunks = (
            tuple(8 * b for b in byte_chunks[:-1]) + (examples - 8 * sum(byte_chunks[:-1]),)
            if byte_chunks
            else ()
        )
        return da.map_blocks(
            _unpack_block,
            packed,
            examples,
            dtype=bool,
            chunks=(packed.chunks[0], packed.chunks[1], example_chunks),
            meta=np.zeros((0, 0, 0), bool),
        )

    def predictions(self, split: str, chunks: Any = None) -> da.Array | None:
        """Predicted class, dask array of int16, dims (networks, checkpoints, examples), or None
        where the split was recorded without predictions (-1 marks entries not recorded)."""
        self.require_split(split)
        if not self.attrs["splits"][split]["predictions"]:
            return None
        shape = (self.num_networks, self.num_checkpoints, self.num_examples(split))
        return self._lazy(f"splits/{split}/predictions", shape, chunks)

    def probability(self, split: str, chunks: Any = None) -> da.Array | None:
        """Probability each network gives the true class, dask float32, dims (networks,
        checkpoints, examples), NaN where not recorded or without a label; None where the split
        stores no soft verdicts. Decoded from uint8 codes: error at most 1/64."""
        return self._soft(split, "probability", decode_probability, chunks)

    def margin(self, split: str, chunks: Any = None) -> da.Array | None:
        """True-class logit minus the largest other logit, dask float32, dims (networks,
        checkpoints, examples), NaN where not recorded or without a label; None where the split
        stores no soft verdicts. Decoded from int8 codes: step 1 (error at most 1/2), clipped
        to +-127."""
        return self._soft(split, "margin", decode_margin, chunks)

    def _soft(self, split: str, name: str, decode: Any, chunks: Any) -> da.Array | None:
        if name not in self.soft_arrays(split):
            return None
        shape = (self.num_networks, self.num_checkpoints, self.num_examples(split))
        import dask.array as da

        codes = self._lazy(f"splits/{split}/{name}", shape, chunks)
        return da.map_blocks(decode, codes, dtype=np.float32, meta=np.zeros((0, 0, 0), np.float32))

    def membership(self, split: str | None = None, chunks: Any = None) -> da.Array | None:
        """Training-subset membership, dask array of bool, dims (networks, examples), or None."""
        split = split or self.attrs.get("membership_split")
        if split is None or split != self.attrs.get("membership_split"):
            return None
        shape = (self.num_networks, self.num_examples(split))
        return self._lazy(f"splits/{split}/membership", shape, chunks)

    def train_loss(self) -> da.Array:
        """Training loss per network per checkpoint, dask float32, dims (networks, checkpoints)."""
        return self._lazy("train_loss", (self.num_networks, self.num_checkpoints))

    # -- size -------------------------------------------------------------------------------

    def stored_bytes(self, name: str | None = None) -> int:
        """Bytes on disk of one array (e.g. ``"splits/train/correct"``) or of the whole store."""
        if is_url(self.path):
            target = self.array(name) if name else None
            return int(target.nbytes_stored()) if target is not None else -1
        base = Path(self.path) / name if name else Path(self.path)
        return sum(f.stat().st_size for f in base.rglob("*") if f.is_file())


def _tracks_written(name: str, array: zarr.Array) -> bool:
    """Whether a missing chunk of this array is damage once its networks are recorded: the
    verdict arrays of a split, which every record writes; not ``train_loss``, which a user's
    loop need not record, nor ``membership`` (never recorded reads as trained on everything)."""
    layout = SPLIT_ARRAYS.get(name.rsplit("/", 1)[-1]) if name.startswith("splits/") else None
    dims = tuple(getattr(array.metadata, "dimension_names", None) or ())
    return layout is not None and layout.writer_owned and dims[:2] == ("networks", "checkpoints")


def open_population(path: str | os.PathLike, storage_options: dict | None = None) -> Population:
    """Open a population store for reading.

    Parameters
    ----------
    path : str or path
        A folder, or a URL that Zarr and fsspec understand (``s3://bucket/pop.zarr``).
    storage_options : dict, optional
        Passed to fsspec for URLs.

    Raises
    ------
    StoreError
        If the path does not exist, is not a population store, or has a newer format version.
    """
    return Population(path, storage_options)

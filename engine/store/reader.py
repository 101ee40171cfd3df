"""Reading a population store: metadata as tables, verdicts as lazy dask arrays.

Layout letters: n networks, t checkpoints, x examples. Reads fail loudly: a chunk whose crc32c
does not match is a one-line StoreError naming the array and region, never data.
"""

from __future__ import annotations

import itertools
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
    ROOT_ARRAYS,
    SOFT_ARRAYS,
    SPLIT_ARRAYS,
    WRITTEN_CHUNKS_VERSION,
    chunk_exists,
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
    """Array-like view of a zarr array for dask that turns read failures into StoreError and
    masks entries not yet recorded.

    A chunk whose crc32c does not match raises inside zarr with a generic message; this names the
    array and region instead, so that the CLI can print one line.

    Parameters
    ----------
    array : zarr.Array
    label : str
        What the error names, e.g. ``"pop.zarr/splits/test/correct_packed"``.
    shape : tuple of int, optional
        The shape readers see (the store's authoritative sizes); the array's by default.
    completed : ndarray of int, dims (networks,), optional
        ``checkpoints_completed`` of every network, read once when the view was made, for an
        array of dims (networks, checkpoints, ...): entries of network n at checkpoints at or
        after ``completed[n]`` read as the array's fill value (not recorded), whatever a writer
        still at work has put there since, so that every read of the view sees one snapshot.
    require_written : bool
        With ``completed``: a missing chunk that holds recorded entries is an error, not fill
        (writer-filled verdict arrays of format 2 and later).
    """

    def __init__(
        self,
        array: zarr.Array,
        label: str,
        shape: tuple[int, ...] | None = None,
        completed: np.ndarray | None = None,
        *,
        require_written: bool = False,
    ):
        self.array = array
        self.label = label
        self.shape = tuple(shape if shape is not None else array.shape)
        self.dtype = array.dtype
        self.ndim = len(self.shape)
        self.completed = completed
        self.require_written = require_written and completed is not None

    def __getitem__(self, key: Any) -> Any:
        region = _region(key, self.shape)
        if self.require_written:
            assert self.completed is not None  # require_written implies it
            require_recorded_chunks(self.array, region, self.completed[region[0][0] :])
        try:
            read = self.array[tuple(slice(start, stop) for start, stop in region)]
        except Exception as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise StoreError(
                f"corrupt or unreadable chunk in {self.label} at {_describe(key)}: {reason}"
            ) from error
        values: np.ndarray = np.asarray(read)
        if self.completed is not None:
            values = _mask_unrecorded(values, region, self.completed, self.array.fill_value)
        parts = key if isinstance(key, tuple) else (key,)
        # Integers drop their dim, as they would have in zarr.
        return values[
            tuple(0 if isinstance(part, int | np.integer) else slice(None) for part in parts)
        ]


def _mask_unrecorded(
    values: np.ndarray, region: list[tuple[int, int]], completed: np.ndarray, fill: Any
) -> np.ndarray:
    """``values`` of a (networks, checkpoints, ...) region with every entry of network n at a
    checkpoint at or after ``completed[n]`` set to ``fill`` (networks past ``completed``'s end
    count as not started)."""
    (n0, n1), (t0, t1) = region[0], region[1]
    done = np.zeros(n1 - n0, np.int64)
    known = completed[n0:n1]
    done[: known.size] = known
    unrecorded = np.arange(t0, t1)[None, :] >= done[:, None]
    if not unrecorded.any():
        return values
    if not values.flags.writeable:
        values = values.copy()
    values[unrecorded] = fill
    return values


class Population:
    """A population store opened for reading. Use :func:`open_population`.

    Attributes
    ----------
    path : str
    attrs : dict
        The store's root metadata (format version, data set, groups, command, ...).
    """

    def __init__(
        self, path: str | os.PathLike, storage_options: dict | None = None, *, check: bool = True
    ):
        self.path = str(path)
        #: fsspec options of a URL store, kept so that workers can reopen it by path.
        self.storage_options = storage_options
        self._root, self.attrs = open_root(path, mode="r", storage_options=storage_options)
        self.num_networks: int = self.attrs["num_networks"]
        self.num_checkpoints: int = self.attrs["num_checkpoints"]
        if check:
            self.check_arrays()

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
                f"{self.path} lacks the array {name!r} (no {name}/zarr.json): not a complete "
                f"population store of format {FORMAT_VERSION}, or damaged"
            ) from error
        except StoreError:
            raise
        except Exception as error:  # zarr raises JSON, value and type errors for bad metadata
            raise StoreError(
                f"unreadable metadata of the array {name!r} in {self.path} ({name}/zarr.json): "
                f"{type(error).__name__}; the store is damaged"
            ) from error

    def checked_array(self, name: str, shape: tuple[int, ...] | None = None) -> CheckedZarr:
        """The array ``name`` behind a view whose failed reads are one-line StoreErrors.

        For the writer-filled arrays of dims (networks, checkpoints, ...) (the verdicts, the soft
        verdicts, ``train_loss``), entries at or after each network's ``checkpoints_completed``,
        read once now, come back as the array's fill value, as the format says: nothing a
        writer still at work has put there since is seen. In stores of format 2 and later,
        reading a chunk of a split's verdict arrays that holds recorded entries but is missing
        is a one-line error too.
        """
        array = self.array(name)
        completed = None
        if _records_checkpoints(name, array):
            completed = self.checkpoints_completed()
        require = self.format_version >= WRITTEN_CHUNKS_VERSION and _tracks_written(name, array)
        return CheckedZarr(array, f"{self.path}/{name}", shape, completed, require_written=require)

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
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise StoreError(
                f"corrupt or unreadable chunk in {self.path}/{name}: {reason}"
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

    # -- integrity --------------------------------------------------------------------------

    def array_names(self) -> list[str]:
        """Every array the store holds by its metadata, by path: the root's, then each split's
        (predictions, soft verdicts, membership and example metadata where it has them)."""
        from engine.store.metadata import METADATA_GROUP

        names = list(ROOT_ARRAYS)
        membership = self.attrs.get("membership_split")
        for split, meta in self.attrs["splits"].items():
            for name in SPLIT_ARRAYS:
                if (
                    (name == "predictions" and not meta.get("predictions"))
                    or (name in SOFT_ARRAYS and not meta.get("soft", False))
                    or (name == "membership" and split != membership)
                ):
                    continue
                names.append(f"splits/{split}/{name}")
            columns = meta.get("example_metadata", [])
            names += [f"splits/{split}/{METADATA_GROUP}/{column}" for column in columns]
        return names

    def shape_of(self, name: str, array: zarr.Array | None = None) -> tuple[int, ...]:
        """The shape readers see of the array ``name``: the store's authoritative sizes
        (``num_networks``, ``num_checkpoints``, the split's examples) along its named dims.

        Raises
        ------
        StoreError
            If the array is shorter than those sizes along a dim.
        """
        array = array if array is not None else self.array(name)
        sizes = {"networks": self.num_networks, "checkpoints": self.num_checkpoints}
        if name.startswith("splits/"):
            examples = self.num_examples(name.split("/")[1])
            sizes.update(examples=examples, example_bytes=-(-examples // 8))
        dims = tuple(getattr(array.metadata, "dimension_names", None) or ())
        if len(dims) != len(array.shape):
            raise StoreError(f"the array {name!r} in {self.path} has no dimension names")
        shape = tuple(
            sizes.get(str(dim), size) for dim, size in zip(dims, array.shape, strict=True)
        )
        if any(have < want for have, want in zip(array.shape, shape, strict=True)):
            raise StoreError(
                f"the array {name!r} in {self.path} has shape {array.shape}, smaller than the "
                f"store's sizes {shape}: its metadata is damaged"
            )
        return shape

    def check_arrays(self) -> None:
        """Check what every reader relies on, cheaply: done when a store is opened.

        Opens every array of :meth:`array_names` (a missing or unreadable ``zarr.json`` is an
        error naming it) and reads whole, with their checksums, the arrays that are not
        verdicts (ids, groups, seeds, ``checkpoints_completed``, ``train_loss``, coordinates,
        labels, ``final_accuracy``, example metadata). In stores of format 2 and later also:
        every chunk of the arrays written when the store was created exists (ids, groups,
        checkpoint and example indices, example ids, labels, metadata); the ``final_accuracy``
        chunk of every block with a complete network exists; and no network with a recorded
        final accuracy reads as completed short of its last checkpoint (a lost
        ``checkpoints_completed`` chunk reads 0). The verdict arrays themselves are read by
        the analyses, which check their chunks as they go, and by
        :func:`engine.store.verify_population`.

        Raises
        ------
        StoreError
            Naming the first damaged array.
        """
        names = self.array_names()
        arrays = {name: self.array(name) for name in names}
        shapes = {name: self.shape_of(name, array) for name, array in arrays.items()}
        # Read below, once, in the order that is safe against a writer at work.
        later = {"checkpoints_completed", *(f"splits/{s}/final_accuracy" for s in self.splits)}
        for name, array in arrays.items():
            if name not in later and not _is_verdict_sized(array):
                self._read_whole(name, array, shapes[name])
        # final_accuracy first: it is written before checkpoints_completed at the last
        # checkpoint, so a reader racing a writer never sees it recorded ahead of completion.
        accuracies = {
            split: self.read_array(f"splits/{split}/final_accuracy")[: self.num_networks]
            for split in self.splits
        }
        completed = self.checkpoints_completed()
        if self.format_version < WRITTEN_CHUNKS_VERSION:
            return
        for name, array in arrays.items():
            if name.rsplit("/", 1)[-1] in _STORED_AT_CREATION or "/example_metadata/" in name:
                _require_every_chunk(array, shapes[name], f"{self.path}/{name}")
        for split, accuracy in accuracies.items():
            self._check_final_accuracy(split, accuracy, completed)

    def _read_whole(self, name: str, array: zarr.Array, shape: tuple[int, ...]) -> None:
        """Read the region ``shape`` of ``array`` in slabs of bounded size (checksums checked)."""
        if not shape or 0 in shape:
            return
        row = int(np.prod(shape[1:], dtype=np.int64))
        rows = max(1, _SLAB_ENTRIES // max(row, 1))
        rest = tuple(slice(0, size) for size in shape[1:])
        for start in range(0, shape[0], rows):
            key = (slice(start, min(start + rows, shape[0])), *rest)
            try:
                array[key]
            except Exception as error:
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise StoreError(
                    f"corrupt or unreadable chunk in {self.path}/{name} at {_describe(key)}: "
                    f"{reason}"
                ) from error

    def _check_final_accuracy(
        self, split: str, accuracy: np.ndarray, completed: np.ndarray
    ) -> None:
        """The format-2 rules that tie ``final_accuracy`` to ``checkpoints_completed``."""
        name = f"splits/{split}/final_accuracy"
        array = self.array(name)
        block = array.chunks[0]
        complete = completed >= self.num_checkpoints
        for index in range(-(-self.num_networks // block)):
            if complete[index * block : (index + 1) * block].any() and (
                chunk_exists(array, (index,)) is False
            ):
                raise StoreError(
                    f"missing chunk {array.metadata.encode_chunk_key((index,))} of "
                    f"{self.path}/{name}: its networks are complete but the chunk is gone "
                    "(deleted or lost); the store is damaged"
                )
        behind = np.isfinite(accuracy) & (completed < self.num_checkpoints - 1)
        if self.has_labels(split) and behind.any():
            network = int(np.flatnonzero(behind)[0])
            raise StoreError(
                f"{self.path}/checkpoints_completed says network {network} recorded "
                f"{int(completed[network])} of {self.num_checkpoints} checkpoints, but its final "
                f"accuracy on {split!r} is recorded: the chunk of checkpoints_completed was lost "
                "or damaged"
            )

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
        token = tokenize(self.path, name, shape, chunks, view.completed)
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
            ``checkpoints_completed`` (read once, when this is called) are not yet recorded:
            they read False, chunk by chunk, even while a writer is filling them.
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
        where the split was recorded without predictions (-1 marks entries not recorded: every
        entry at or past a network's ``checkpoints_completed``, read once when this is called)."""
        self.require_split(split)
        if not self.attrs["splits"][split]["predictions"]:
            return None
        shape = (self.num_networks, self.num_checkpoints, self.num_examples(split))
        return self._lazy(f"splits/{split}/predictions", shape, chunks)

    def probability(self, split: str, chunks: Any = None) -> da.Array | None:
        """Probability each network gives the true class, dask float32, dims (networks,
        checkpoints, examples), NaN where not recorded (at or past a network's
        ``checkpoints_completed``, read once when this is called) or without a label; None where
        the split stores no soft verdicts. Decoded from uint8 codes: error at most 1/64."""
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
        """Training loss per network per checkpoint, dask float32, dims (networks, checkpoints);
        NaN at or past a network's ``checkpoints_completed`` (read once when this is called)."""
        return self._lazy("train_loss", (self.num_networks, self.num_checkpoints))

    # -- size -------------------------------------------------------------------------------

    def stored_bytes(self, name: str | None = None) -> int:
        """Bytes on disk of one array (e.g. ``"splits/train/correct"``) or of the whole store."""
        if is_url(self.path):
            target = self.array(name) if name else None
            return int(target.nbytes_stored()) if target is not None else -1
        base = Path(self.path) / name if name else Path(self.path)
        return sum(f.stat().st_size for f in base.rglob("*") if f.is_file())


#: Entries read at once when a store's small arrays are checked (bounds the memory).
_SLAB_ENTRIES = 1 << 22
#: Arrays written whole when a store is created, whose every chunk format 2 stores (zarr's
#: ``write_empty_chunks``): a missing one is damage. Seeds and checkpoint epochs and steps are
#: left out: growing a store writes them without it, so a chunk of unknowns (-1, NaN) may be
#: absent there, and it reads as what it held.
_STORED_AT_CREATION = frozenset(
    {"networks", "network_group", "checkpoints", "examples", "example_ids", "labels"}
)


def _is_verdict_sized(array: zarr.Array) -> bool:
    """Whether an array is networks by examples in size (verdicts, soft verdicts, membership):
    the arrays the analyses read chunk by chunk, too large to read whole on opening."""
    dims = tuple(getattr(array.metadata, "dimension_names", None) or ())
    return "networks" in dims and ("examples" in dims or "example_bytes" in dims)


def _require_every_chunk(array: zarr.Array, shape: tuple[int, ...], label: str) -> None:
    """Raise StoreError if a chunk of the region ``shape`` of ``array`` is not stored."""
    grid = [range(-(-size // chunk)) for size, chunk in zip(shape, array.chunks, strict=True)]
    for coords in itertools.product(*grid):
        if chunk_exists(array, coords) is False:
            raise StoreError(
                f"missing chunk {array.metadata.encode_chunk_key(coords)} of {label}: written "
                "when the store was created, now gone (deleted or lost); the store is damaged"
            )


def _tracks_written(name: str, array: zarr.Array) -> bool:
    """Whether a missing chunk of this array is damage once its networks are recorded: the
    verdict arrays of a split, which every record writes; not ``train_loss``, which a user's
    loop need not record, nor ``membership`` (never recorded reads as trained on everything)."""
    return name.startswith("splits/") and _records_checkpoints(name, array)


def _records_checkpoints(name: str, array: zarr.Array) -> bool:
    """Whether ``array`` is written checkpoint by checkpoint and trusted below
    ``checkpoints_completed``: a writer-filled array of dims (networks, checkpoints, ...)."""
    layout = (
        SPLIT_ARRAYS.get(name.rsplit("/", 1)[-1])
        if name.startswith("splits/")
        else ROOT_ARRAYS.get(name)
    )
    dims = tuple(getattr(array.metadata, "dimension_names", None) or ())
    return layout is not None and layout.writer_owned and dims[:2] == ("networks", "checkpoints")


def open_population(
    path: str | os.PathLike, storage_options: dict | None = None, *, check: bool = True
) -> Population:
    """Open a population store for reading.

    Parameters
    ----------
    path : str or path
        A folder, or a URL that Zarr and fsspec understand (``s3://bucket/pop.zarr``).
    storage_options : dict, optional
        Passed to fsspec for URLs.
    check : bool
        Check the arrays every reader relies on first (:meth:`Population.check_arrays`: every
        array's metadata, the small arrays read whole); ``engine info`` opens without, to
        describe a damaged store.

    Raises
    ------
    StoreError
        If the path does not exist, is not a population store, has a newer format version, or
        (with ``check``) an array is missing, unreadable or damaged.
    """
    return Population(path, storage_options, check=check)

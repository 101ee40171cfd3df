"""Compacting a store: the same population rewritten into blocks of many networks.

A store that many independent runs filled holds one network per stored object
(``network_block=1``, docs/recording.md): no two runs ever share one, but every object compresses
alone and is a file of its own. Once the runs are done, :func:`compact_population` rewrites it
into blocks of 32 networks (fewer bits per entry, a fraction of the files, faster reads),
keeping everything else: every array with its dtype, fill, codecs, dimension names and
attributes, every group, the seeds, the example metadata and the soft verdicts.

What is kept of incomplete networks: everything, with ``checkpoints_completed`` as it is. The
network ids are the runs' ids (dropping a network would renumber the rest and lose the link to
the job array), and readers already leave out what is not marked complete, so the compacted store
reads and analyses exactly as the source. A crashed run cannot be rerun one network at a time in
the compacted store (a writer owns whole blocks of 32 there): rerun it first, or pass
``require_complete=True`` to refuse a store that still has one.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from engine.errors import StoreError
from engine.store.format import (
    ATTRS_KEY,
    NETWORK_METADATA_BLOCK,
    ROOT_ARRAYS,
    SPLIT_ARRAYS,
    ArrayLayout,
    chunk_exists,
    recorded_writes,
    require_recorded_chunks,
)
from engine.store.reader import CheckedZarr, Population, open_population

#: The arrays along checkpoints that hold no network's data: chunked like the checkpoint block.
CHECKPOINT_COORDINATES = ("checkpoints", "checkpoint_epoch", "checkpoint_step")


def compact_population(
    input: str | os.PathLike,
    output: str | os.PathLike,
    network_block: int = 32,
    *,
    checkpoint_block: int | None = None,
    require_complete: bool = False,
) -> Population:
    """Rewrite the store ``input`` into a new store ``output`` of ``network_block`` networks per
    stored object.

    The copy streams one region at a time whose size along each dimension is the least common
    multiple of the source's and the destination's chunk there (32 networks from one-network
    chunks), so memory stays a few destination chunks and no destination chunk is written
    twice. The result is built in a hidden sibling folder and renamed into place once complete.
    Run it once the runs are done: a run still writing into ``input`` would be lost.

    Parameters
    ----------
    input : str or path
        A population store (a folder or a URL).
    output : str or path
        Folder of the new store; it must not exist.
    network_block : int
        Networks per stored object of the arrays that writers fill (and the unit a writer owns).
    checkpoint_block : int, optional
        Checkpoints per stored object of those arrays; the source's by default.
    require_complete : bool
        Refuse a store with networks not marked complete (crashed or unfinished runs).

    Returns
    -------
    Population
        The new store, opened for reading.

    Raises
    ------
    StoreError
        If ``input`` is not a store or a chunk of it is corrupt or missing, ``output`` exists,
        the blocks are not positive integers, or (with ``require_complete``) a network is
        incomplete.
    """
    output = Path(output)
    blocks = {"network_block": network_block, "checkpoint_block": checkpoint_block}
    for name, value in blocks.items():
        if value is not None and (not isinstance(value, int | np.integer) or value < 1):
            raise StoreError(f"{name} must be a positive integer, got {value!r}")
    source = open_population(input)
    if output.exists():
        raise StoreError(f"{output} already exists; compact writes a new store")
    incomplete = source.num_networks - source.complete_networks().size
    if require_complete and incomplete:
        raise StoreError(
            f"{input} has {incomplete} incomplete networks of {source.num_networks}: rerun "
            "them before compacting (or compact without requiring complete networks)"
        )
    staging = output.with_name(f".{output.name}.compacting-{os.getpid()}")
    try:
        _copy_store(source, staging, int(network_block), checkpoint_block)
        try:
            os.replace(staging, output)
        except OSError as error:  # made by someone else while we copied
            raise StoreError(f"{output} appeared while compacting; nothing written") from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return open_population(output)


def _copy_store(
    source: Population, staging: Path, network_block: int, checkpoint_block: int | None
) -> None:
    """Every group and array of ``source`` into a new store at ``staging``, rechunked."""
    meta = dict(source.attrs)
    meta["network_block"] = network_block
    if checkpoint_block is not None:
        meta["checkpoint_block"] = int(checkpoint_block)
    meta["extra"] = {
        **(meta.get("extra") or {}),
        "compacted_from": {
            "path": source.path,
            "network_block": source.attrs["network_block"],
            "checkpoint_block": source.attrs["checkpoint_block"],
        },
    }
    source_root = zarr.open_group(source.path, mode="r", storage_options=source.storage_options)
    root = zarr.open_group(str(staging), mode="w")
    root.attrs.update(dict(source_root.attrs))
    members = source_root.members(max_depth=None)
    groups = sorted(
        (name for name, member in members if isinstance(member, zarr.Group)),
        key=lambda name: name.count("/"),
    )
    for name in groups:  # parents first, and every group before its arrays
        root.create_group(name, attributes=dict(source_root[name].attrs))
    arrays = [(name, member) for name, member in members if isinstance(member, zarr.Array)]
    # checkpoints_completed last: the copy is complete before the flags that make it trusted.
    arrays.sort(key=lambda item: item[0] == "checkpoints_completed")
    sizes = {"networks": source.num_networks, "checkpoints": source.num_checkpoints}
    recorded = recorded_writes(int(meta["format_version"]))
    for name, array in arrays:
        names = getattr(array.metadata, "dimension_names", None)
        dims = tuple(names or ())
        shape = tuple(
            sizes.get(dim, size) for dim, size in itertools.zip_longest(dims, array.shape)
        )
        chunks = _chunks(name, array, dims, sizes, network_block, checkpoint_block)
        parent, _, base = name.rpartition("/")
        group = root[parent] if parent else root
        assert isinstance(group, zarr.Group)  # made from the source's groups above
        target = group.create_array(
            base,
            shape=shape,
            chunks=chunks,
            dtype=array.dtype,
            fill_value=array.fill_value,
            filters=array.filters,
            compressors=array.compressors,
            serializer=array.serializer or "auto",
            attributes=dict(array.attrs),
            dimension_names=names,
            config=recorded,
        )
        _copy_array(source, name, shape, target)
    root.attrs[ATTRS_KEY] = meta


def _layout(name: str) -> ArrayLayout | None:
    """The format's description of the array at ``name``, None for one the format does not
    name (such as an example-metadata column)."""
    if "/" not in name:
        return ROOT_ARRAYS.get(name)
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "splits":
        return SPLIT_ARRAYS.get(parts[2])
    return None


def _chunks(
    name: str,
    array: zarr.Array,
    dims: tuple[str, ...],
    sizes: dict[str, int],
    network_block: int,
    checkpoint_block: int | None,
) -> tuple[int, ...]:
    """The destination's chunks, as :func:`engine.store.create_population` would make them for
    these blocks; the source's along every other dimension."""
    layout = _layout(name)
    owned = layout is not None and layout.writer_owned
    chunks = list(array.chunks)
    for axis, dim in enumerate(dims):
        if dim == "networks":
            # Arrays no writer fills (ids, groups, seeds) keep one chunk of many networks.
            chunks[axis] = (
                network_block
                if owned
                else max(network_block, min(sizes["networks"], NETWORK_METADATA_BLOCK))
            )
        elif dim == "checkpoints" and checkpoint_block is not None:
            if owned or name in CHECKPOINT_COORDINATES:
                chunks[axis] = max(1, min(checkpoint_block, sizes["checkpoints"]))
    return tuple(chunks)


def _copy_array(source: Population, name: str, shape: tuple[int, ...], target: Any) -> None:
    """Copy one array region by region: each region covers whole source and destination chunks
    (the least common multiple of the two along each dimension). A region none of whose source
    chunks is stored (a ``train_loss`` nobody recorded) is left out, as it was."""
    view = source.checked_array(name, shape)
    raw = CheckedZarr(view.array, view.label, shape)  # errors named, nothing masked
    if not shape:
        target[...] = view.array[...]
        return
    sources = view.array.chunks
    steps = [math.lcm(a, b) for a, b in zip(sources, target.chunks, strict=True)]
    starts = [range(0, size, step) for size, step in zip(shape, steps, strict=True)]
    for corner in itertools.product(*starts):
        region = tuple(
            slice(start, min(start + step, size))
            for start, step, size in zip(corner, steps, shape, strict=True)
        )
        chunks = itertools.product(
            *(range(r.start // c, -(-r.stop // c)) for r, c in zip(region, sources, strict=True))
        )
        # Unknown (None, a store that cannot tell cheaply) counts as stored.
        if all(chunk_exists(view.array, coords) is False for coords in chunks):
            # Unless recorded there, in an array every record writes: that is damage
            # (train_loss and membership are optional, so a missing chunk is never recorded).
            if view.require_written and view.completed is not None:
                bounds = [(r.start, r.stop) for r in region]
                require_recorded_chunks(view.array, bounds, view.completed[region[0].start :])
            continue
        if view.require_written and view.completed is not None:
            bounds = [(r.start, r.stop) for r in region]
            require_recorded_chunks(view.array, bounds, view.completed[region[0].start :])
        # Copied as stored, entries past checkpoints_completed included, as it was.
        target[region] = raw[region]

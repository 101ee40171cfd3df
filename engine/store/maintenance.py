"""Growing, merging, describing and verifying population stores.

Growing (``add_networks``, ``add_checkpoints``) runs in one process while no writer is active: it
resizes every sibling array first and publishes the new size in the root metadata last, so a
reader or a crash in between sees the old population unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from engine.errors import StoreError, WriterError
from engine.store.create import create_population, validate_seeds
from engine.store.format import (
    ATTRS_KEY,
    GroupSpec,
    SplitSpec,
    array_paths,
    arrays_along,
    consolidate,
    get_array,
    name_groups,
    open_root,
)
from engine.store.reader import Population, open_population
from engine.store.writer import PopulationWriter

# ----------------------------------------------------------------------------------------------
# Growing


def _resize(array: Any, axis: int, size: int) -> None:
    shape = list(array.shape)
    shape[axis] = size
    array.resize(tuple(shape))


def _resize_along(root: zarr.Group, dim: str, splits: Sequence[str], size: int) -> None:
    """Resize every array of the store with the dimension ``dim`` to ``size`` along it."""
    for name, axis in arrays_along(dim, splits):
        if name in root:
            _resize(get_array(root, name), axis, size)


def add_networks(
    path: str | os.PathLike,
    groups: Sequence[GroupSpec],
    init_seeds: Sequence[int] | None = None,
    order_seeds: Sequence[int] | None = None,
) -> tuple[int, int]:
    """Append networks to an existing store (one process at a time); return their id range.

    Run it while no writer is active. A writer of the new range may share the last, partly filled
    block of the old networks only once those are complete (see :class:`PopulationWriter`).
    """
    root, meta = open_root(path, mode="r+")
    existing = {g["name"]: (i, g) for i, g in enumerate(meta["groups"])}
    count = sum(int(g.networks) for g in groups)
    if count < 1:
        raise WriterError("add_networks needs at least one network")
    group_index = []
    for spec in groups:
        if spec.name in existing:
            index, known = existing[spec.name]
            if known != spec.to_json():
                raise WriterError(
                    f"group {spec.name!r} exists with another architecture or hyper-parameters"
                )
        else:
            index = len(meta["groups"])
            meta["groups"].append(spec.to_json())
            existing[spec.name] = (index, spec.to_json())
        group_index += [index] * spec.networks
    start = meta["num_networks"]
    stop = start + count
    seeds = {
        "init": validate_seeds("init", init_seeds, count),
        "order": validate_seeds("order", order_seeds, count),
    }
    _resize_along(root, "networks", meta["splits"], stop)
    get_array(root, "networks")[start:stop] = np.arange(start, stop)
    get_array(root, "network_group")[start:stop] = np.asarray(group_index, np.int16)
    get_array(root, "network_init_seed")[start:stop] = seeds["init"]
    get_array(root, "network_order_seed")[start:stop] = seeds["order"]
    meta["num_networks"] = stop
    root.attrs[ATTRS_KEY] = meta
    name_groups(root, [g["name"] for g in meta["groups"]])
    consolidate(path)
    return start, stop


def add_checkpoints(
    path: str | os.PathLike,
    checkpoint_epochs: Sequence[float],
    checkpoint_steps: Sequence[int] | None = None,
) -> tuple[int, int]:
    """Append checkpoints (to continue training); return their index range."""
    root, meta = open_root(path, mode="r+")
    epochs = np.asarray(checkpoint_epochs, np.float64)
    steps = np.asarray(
        checkpoint_steps if checkpoint_steps is not None else np.full(epochs.size, -1), np.int64
    )
    if epochs.size < 1 or steps.shape != epochs.shape:
        raise WriterError("add_checkpoints needs matching, non-empty epochs and steps")
    old = meta["num_checkpoints"]
    stop = old + epochs.size
    _resize_along(root, "checkpoints", meta["splits"], stop)
    for split in meta["splits"]:
        # Final accuracies belonged to the old last checkpoint.
        get_array(root, f"splits/{split}/final_accuracy")[:] = np.float32(np.nan)
    get_array(root, "checkpoints")[old:stop] = np.arange(old, stop)
    get_array(root, "checkpoint_epoch")[old:stop] = epochs
    get_array(root, "checkpoint_step")[old:stop] = steps
    meta["num_checkpoints"] = stop
    root.attrs[ATTRS_KEY] = meta
    consolidate(path)
    return old, stop


# ----------------------------------------------------------------------------------------------
# Merging


def require_same_dataset(populations: Sequence[Population], action: str) -> None:
    """Raise a one-line StoreError unless every store holds the same examples in the same order
    (equal data set fingerprints); ``action`` names what was attempted ("merge", "compare")."""
    first = populations[0]
    for other in populations[1:]:
        if other.dataset_fingerprint != first.dataset_fingerprint:
            raise StoreError(
                f"cannot {action} {first.path} and {other.path}: they hold different data sets "
                f"({first.attrs['dataset']['name']} {first.dataset_fingerprint[:12]} vs "
                f"{other.attrs['dataset']['name']} {other.dataset_fingerprint[:12]})"
            )


def merge_populations(
    inputs: Sequence[str | os.PathLike], output: str | os.PathLike, command: str | None = None
) -> Population:
    """Merge stores of the same data set and checkpoints into a new store at ``output``.

    Networks keep their order (all of the first input, then the second, ...) and are renumbered
    from 0. Groups with the same name must have the same architecture and hyper-parameters; they
    become one group. Only recorded checkpoints are copied, one block of networks at a time, and
    the result appears at ``output`` only once complete.

    Raises
    ------
    StoreError
        If an input is not a store, the stores hold different data sets (fingerprints),
        splits or checkpoints, or ``output`` exists.
    """
    output = Path(output)
    if output.exists():
        raise StoreError(f"{output} already exists; merge writes a new store")
    if len(inputs) < 2:
        raise StoreError("merge needs at least two stores")
    resolved = [Path(p).resolve() for p in inputs]
    if len(set(resolved)) < len(resolved):
        twice = next(p for p in resolved if resolved.count(p) > 1)
        raise StoreError(f"merge got the same store twice ({twice}): its networks would repeat")
    populations = [open_population(p) for p in inputs]
    _require_mergeable(populations)
    groups, network_groups = _merged_groups(populations)
    first = populations[0]
    splits = {
        name: SplitSpec(
            labels=first.labels(name),
            example_ids=first.example_ids(name),
            predictions=meta["predictions"],
            fingerprint=meta["fingerprint"],
            # Soft verdicts survive a merge only where every store has them.
            soft=all(p.attrs["splits"][name].get("soft", False) for p in populations),
            metadata=_metadata_columns(first, name),
        )
        for name, meta in first.attrs["splits"].items()
    }
    staging = output.with_name(f".{output.name}.merging-{os.getpid()}")
    checkpoints = first.checkpoints
    writer = create_population(
        staging,
        dataset_name=first.attrs["dataset"]["name"],
        splits=splits,
        groups=groups,
        network_groups=network_groups,
        checkpoint_epochs=checkpoints["epoch"].to_numpy(),
        checkpoint_steps=checkpoints["step"].to_numpy(),
        class_names=first.attrs.get("class_names"),
        init_seeds=np.concatenate(
            [p.read_array("network_init_seed")[: p.num_networks] for p in populations]
        ),
        order_seeds=np.concatenate(
            [p.read_array("network_order_seed")[: p.num_networks] for p in populations]
        ),
        membership_split=first.attrs.get("membership_split"),
        network_block=first.attrs["network_block"],
        checkpoint_block=first.attrs["checkpoint_block"],
        example_block=first.attrs["example_block"],
        command=command,
        extra_attrs={
            "merged_from": [{"path": p.path, "networks": p.num_networks} for p in populations]
        },
    )
    _copy_networks(populations, writer, list(splits))
    os.replace(staging, output)
    return open_population(output)


def _metadata_columns(population: Population, split: str) -> dict[str, np.ndarray]:
    """A split's example metadata as :class:`SplitSpec` takes it (categories as their values)."""
    table = population.example_metadata(split)
    return {
        column: table[column].to_numpy(dtype=object)
        if table[column].dtype == "category"
        else table[column].to_numpy()
        for column in table.columns
    }


def _require_mergeable(populations: Sequence[Population]) -> None:
    require_same_dataset(populations, "merge")
    first = populations[0]
    for other in populations[1:]:
        if other.attrs["splits"] != first.attrs["splits"]:
            raise StoreError(f"cannot merge {other.path}: its splits differ from {first.path}'s")
        if not other.checkpoints[["epoch", "step"]].equals(first.checkpoints[["epoch", "step"]]):
            raise StoreError(
                f"cannot merge {other.path}: its checkpoints (epochs, steps) differ "
                f"from {first.path}'s"
            )


def _merged_groups(populations: Sequence[Population]) -> tuple[list[GroupSpec], np.ndarray]:
    """Groups of the merged store (one per name) and the group index of each merged network."""
    merged: dict[str, dict] = {}
    network_groups = []
    for population in populations:
        for index in population.network_groups():
            spec = population.attrs["groups"][index]
            known = merged.setdefault(spec["name"], spec)
            if known != spec:
                raise StoreError(
                    f"group {spec['name']!r} has different architectures or "
                    f"hyper-parameters in the stores to merge"
                )
            network_groups.append(list(merged).index(spec["name"]))
    index = np.asarray(network_groups)
    counts = np.bincount(index, minlength=len(merged))
    groups = [
        GroupSpec(g["name"], g["architecture"], int(c), g["hyperparameters"])
        for g, c in zip(merged.values(), counts, strict=True)
    ]
    return groups, index


def _copy_networks(
    populations: Sequence[Population], writer: PopulationWriter, splits: Sequence[str]
) -> None:
    """Copy every writer-filled array, one network block at a time, completion flags last."""
    names = [
        name
        for name, layout in array_paths(splits).items()
        if layout.writer_owned and "networks" in layout.dims and name != "checkpoints_completed"
    ]
    offset = 0
    for population in populations:
        block = population.attrs["network_block"]
        for start in range(0, population.num_networks, block):
            stop = min(start + block, population.num_networks)
            for name in names:
                if population.has_array(name):
                    source = population.checked_array(name)
                    writer.array(name)[offset + start : offset + stop] = source[start:stop]
        writer.array("checkpoints_completed")[offset : offset + population.num_networks] = (
            population.checkpoints_completed()
        )
        offset += population.num_networks


# ----------------------------------------------------------------------------------------------
# Describing and verifying (``engine info``)


@dataclass(frozen=True)
class SplitSummary:
    """One split of a store as ``engine info`` lists it.

    Parameters
    ----------
    name : str
    examples : int
    has_labels : bool
        False for a probe set (no example has a true label).
    predictions : bool
        Whether predicted classes are stored.
    correct_bytes : int
        Bytes on disk of ``correct_packed`` (-1 where the store cannot tell).
    bits_per_entry : float or None
        Bits on disk per verdict (one network, one checkpoint, one example); None for a split
        without entries.
    soft_bits_per_entry : dict of str to float or None
        Each soft-verdict array the split stores (``probability``, ``margin``) and its bits on
        disk per entry; empty where it stores none.
    """

    name: str
    examples: int
    has_labels: bool
    predictions: bool
    correct_bytes: int
    bits_per_entry: float | None
    soft_bits_per_entry: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class PopulationSummary:
    """What ``engine info`` shows of a store: format, data set, sizes, splits, bytes on disk.

    Parameters
    ----------
    format_version : int
    engine_version : str
        Version of the engine that created the store.
    dataset_name, dataset_fingerprint : str
    num_networks, complete_networks, num_checkpoints : int
    groups : tuple of (str, str)
        Name and architecture of each group.
    splits : tuple of SplitSummary
    stored_bytes : int
        Bytes on disk of the whole store.
    """

    format_version: int
    engine_version: str
    dataset_name: str
    dataset_fingerprint: str
    num_networks: int
    complete_networks: int
    num_checkpoints: int
    groups: tuple[tuple[str, str], ...]
    splits: tuple[SplitSummary, ...]
    stored_bytes: int


def summarize_population(population: Population) -> PopulationSummary:
    """Sizes, completeness and bytes on disk of a store (reads metadata and file sizes only)."""
    attrs = population.attrs
    completed = population.checkpoints_completed()
    splits = []
    for split in population.splits:
        examples = population.num_examples(split)
        entries = population.num_networks * population.num_checkpoints * examples
        stored = population.stored_bytes(f"splits/{split}/correct_packed")
        soft = {
            name: 8 * population.stored_bytes(f"splits/{split}/{name}") / entries
            if entries
            else None
            for name in population.soft_arrays(split)
        }
        splits.append(
            SplitSummary(
                name=split,
                examples=examples,
                has_labels=population.has_labels(split),
                predictions=bool(attrs["splits"][split]["predictions"]),
                correct_bytes=stored,
                bits_per_entry=8 * stored / entries if entries else None,
                soft_bits_per_entry=soft,
            )
        )
    return PopulationSummary(
        format_version=attrs["format_version"],
        engine_version=attrs["engine_version"],
        dataset_name=attrs["dataset"]["name"],
        dataset_fingerprint=attrs["dataset"]["fingerprint"],
        num_networks=population.num_networks,
        complete_networks=int((completed >= population.num_checkpoints).sum()),
        num_checkpoints=population.num_checkpoints,
        groups=tuple((g["name"], g["architecture"]) for g in attrs["groups"]),
        splits=tuple(splits),
        stored_bytes=population.stored_bytes(),
    )


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify_population`: which arrays were read back whole.

    Parameters
    ----------
    arrays : tuple of str
        Paths of every array of the store (:meth:`Population.array_names`), each chunk of
        which was decoded with a matching checksum, or found absent where the format allows.
    """

    arrays: tuple[str, ...]


def verify_population(population: Population) -> Verification:
    """Read back every chunk of every array of a store, checking crc32c and the format's rules.

    First :meth:`Population.check_arrays` (every array's metadata, the small arrays read whole,
    and in stores of format 2 and later the chunks that must exist); then every chunk of the
    verdict-sized arrays (correctness, predictions, soft verdicts, membership), on the default
    Dask scheduler, where in stores of format 2 and later a missing verdict chunk that holds
    recorded entries is an error too. Chunks the format lets be absent (``train_loss``,
    ``membership``, chunks of networks not yet recorded) read as their fill value.

    Raises
    ------
    StoreError
        Naming the array, and where it is a chunk, its key or region, of the first damage found.
    """
    import dask

    population.check_arrays()
    names = population.array_names()
    reads = []
    for name in names:
        array = population.array(name)
        dims = tuple(getattr(array.metadata, "dimension_names", None) or ())
        if "networks" in dims and ("examples" in dims or "example_bytes" in dims):
            reads.append(population.lazy_array(name).sum())
    dask.compute(*reads)
    return Verification(tuple(names))

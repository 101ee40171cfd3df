"""Creating a population store: check the inputs, write the metadata and every array, publish.

A new store is built in a hidden sibling folder and renamed into place once complete, so a
crash never leaves a half-made store at the path (docs/store-format.md, "Writing").
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from engine._version import __version__
from engine.errors import StoreError, WriterError
from engine.store.format import (
    ATTRS_KEY,
    DEFAULT_CHECKPOINT_BLOCK,
    DEFAULT_EXAMPLE_BLOCK,
    DEFAULT_NETWORK_BLOCK,
    FORMAT_NAME,
    FORMAT_VERSION,
    NETWORK_METADATA_BLOCK,
    NO_LABEL,
    ROOT_ARRAYS,
    SOFT_ARRAYS,
    SPLIT_ARRAYS,
    ArrayLayout,
    GroupSpec,
    SplitSpec,
    consolidate,
    dataset_fingerprint,
    name_groups,
    recorded_writes,
)
from engine.store.metadata import METADATA_GROUP, MISSING_CATEGORY, check_columns
from engine.store.writer import PopulationWriter


def create_population(
    path: str | os.PathLike,
    *,
    dataset_name: str,
    splits: Mapping[str, SplitSpec],
    groups: Sequence[GroupSpec],
    checkpoint_epochs: Sequence[float] | np.ndarray,
    checkpoint_steps: Sequence[int] | np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    init_seeds: Sequence[int] | np.ndarray | None = None,
    order_seeds: Sequence[int] | np.ndarray | None = None,
    membership_split: str | None = None,
    network_block: int = DEFAULT_NETWORK_BLOCK,
    checkpoint_block: int = DEFAULT_CHECKPOINT_BLOCK,
    example_block: int = DEFAULT_EXAMPLE_BLOCK,
    command: str | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
    network_groups: np.ndarray | None = None,
) -> PopulationWriter:
    """Create an empty population store and return a writer that owns all its networks.

    Parameters
    ----------
    path : str or path
        Folder of the new Zarr v3 group; it must not exist yet.
    dataset_name : str
        Name of the data set (``"digits"``, ``"mnist1d"``, or the user's own).
    splits : mapping of str to SplitSpec
        The splits to record, e.g. ``{"train": ..., "test": ...}``.
    groups : sequence of GroupSpec
        Groups of networks; the store holds ``sum(g.networks)`` networks.
    checkpoint_epochs : sequence of float, dims (checkpoints,)
        Epoch of each checkpoint (0 before training; may be fractional).
    checkpoint_steps : sequence of int, dims (checkpoints,), optional
        Optimiser step of each checkpoint.
    class_names : sequence of str, optional
    init_seeds, order_seeds : sequence of int, dims (networks,), optional
        Seeds of each network's initialisation and mini-batch order (-1 when unknown).
    membership_split : str, optional
        A split whose training-subset membership is recorded per network (for the C-score).
    network_block, checkpoint_block, example_block : int
        Chunk shape of the verdict arrays; ``network_block`` is also the unit a writer owns.
    command : str, optional
        The command that created the store (defaults to ``sys.argv``).
    extra_attrs : mapping, optional
        Free-form JSON kept under ``attrs["extra"]`` (the trainer's configuration, say).
    network_groups : ndarray of int, dims (networks,), optional
        Group index of each network where groups do not occupy consecutive ids (merged stores);
        the group sizes must then agree with it.

    Returns
    -------
    PopulationWriter

    Raises
    ------
    StoreError
        If ``path`` exists.
    WriterError
        If the inputs do not describe a store (no split, group or checkpoint, shapes that
        disagree, block sizes that are not positive or an ``example_block`` not a multiple of 8).
    """
    path = Path(path)
    if path.exists():
        raise StoreError(f"{path} already exists; choose a new path or grow it with the writer")
    inputs = _check_inputs(
        splits=splits,
        groups=groups,
        checkpoint_epochs=checkpoint_epochs,
        checkpoint_steps=checkpoint_steps,
        init_seeds=init_seeds,
        order_seeds=order_seeds,
        membership_split=membership_split,
        blocks=(network_block, checkpoint_block, example_block),
        network_groups=network_groups,
    )
    meta = _root_metadata(
        inputs,
        dataset_name=dataset_name,
        groups=groups,
        class_names=class_names,
        command=command,
        extra_attrs=extra_attrs,
    )
    staging = path.with_name(f".{path.name}.creating-{os.getpid()}")
    try:
        root = zarr.open_group(str(staging), mode="w")
        chunks = inputs.chunks()
        _create_network_arrays(root, inputs, chunks)
        _create_checkpoint_arrays(root, inputs.checkpoints, chunks)
        for split in inputs.splits:
            _create_split_arrays(root, inputs, split, chunks)
        root.attrs[ATTRS_KEY] = meta
        name_groups(root, [g.name for g in groups])
        consolidate(staging)
    except BaseException:
        # A full disk (or a kill by signal that Python sees) part-way through: the half-made
        # store is never published, so its staging folder is only litter.
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _publish(staging, path)
    return PopulationWriter(path, networks=(0, inputs.num_networks))


def validate_seeds(label: str, values: Sequence[int] | np.ndarray | None, count: int) -> np.ndarray:
    """Seeds of ``count`` networks as int64, dims (networks,); all -1 (unknown) when None.

    Parameters
    ----------
    label : str
        ``"init"`` or ``"order"``: names the argument in the error.
    values : sequence of int, dims (networks,), optional
    count : int

    Raises
    ------
    WriterError
        If ``values`` does not hold one seed per network.
    """
    array = np.full(count, -1, np.int64) if values is None else np.asarray(values)
    if array.shape != (count,):
        raise WriterError(f"{label}_seeds has shape {array.shape}, expected ({count},)")
    return array.astype(np.int64)


# ----------------------------------------------------------------------------------------------
# Checking the inputs


@dataclass(frozen=True)
class _Checkpoints:
    epochs: np.ndarray  # float64 (checkpoints,)
    steps: np.ndarray  # int64 (checkpoints,)


@dataclass(frozen=True)
class _SplitData:
    name: str
    labels: np.ndarray  # int32 (examples,)
    example_ids: np.ndarray  # (examples,)
    predictions: bool
    fingerprint: str
    soft: bool
    #: Encoded example metadata: column -> (stored array, categories or None).
    columns: Mapping[str, tuple[np.ndarray, list | None]]

    def metadata(self) -> dict[str, Any]:
        return {
            "examples": int(self.labels.size),
            "has_labels": bool((self.labels != NO_LABEL).any()),
            "predictions": self.predictions,
            "fingerprint": self.fingerprint,
            "soft": self.soft,
            "example_metadata": list(self.columns),
        }


@dataclass(frozen=True)
class _Chunks:
    """Chunk sizes along each dimension, as the arrays are created."""

    network: int
    checkpoint: int
    example: int
    network_metadata: int


@dataclass(frozen=True)
class _Inputs:
    """The arguments of :func:`create_population`, checked and normalised."""

    num_networks: int
    group_index: np.ndarray  # int (networks,)
    seeds: Mapping[str, np.ndarray]  # "init", "order": int64 (networks,)
    checkpoints: _Checkpoints
    splits: tuple[_SplitData, ...]
    membership_split: str | None
    blocks: tuple[int, int, int]  # requested network, checkpoint and example blocks

    @property
    def num_checkpoints(self) -> int:
        return int(self.checkpoints.epochs.size)

    def chunks(self) -> _Chunks:
        network_block, checkpoint_block, example_block = self.blocks
        return _Chunks(
            network=network_block,
            # A chunk never spans more checkpoints than the store has: reading one checkpoint
            # decodes the whole chunk.
            checkpoint=min(checkpoint_block, self.num_checkpoints),
            example=example_block,
            # Arrays written only here and by add_networks (one process, no writer active) are
            # not owned by writers: one chunk of many networks keeps reading them cheap.
            network_metadata=max(network_block, min(self.num_networks, NETWORK_METADATA_BLOCK)),
        )


def _check_inputs(
    *,
    splits: Mapping[str, SplitSpec],
    groups: Sequence[GroupSpec],
    checkpoint_epochs: Sequence[float] | np.ndarray,
    checkpoint_steps: Sequence[int] | np.ndarray | None,
    init_seeds: Sequence[int] | np.ndarray | None,
    order_seeds: Sequence[int] | np.ndarray | None,
    membership_split: str | None,
    blocks: tuple[int, int, int],
    network_groups: np.ndarray | None,
) -> _Inputs:
    """Every check of :func:`create_population`, before anything is written."""
    num_networks = _count_networks(splits, groups)
    checkpoints = _checkpoints(checkpoint_epochs, checkpoint_steps)
    network_block, checkpoint_block, example_block = blocks
    if min(network_block, checkpoint_block, example_block) < 1 or example_block % 8:
        raise WriterError("block sizes must be positive, example_block a multiple of 8")
    seeds = {
        "init": validate_seeds("init", init_seeds, num_networks),
        "order": validate_seeds("order", order_seeds, num_networks),
    }
    if membership_split is not None and membership_split not in splits:
        raise WriterError(f"membership_split {membership_split!r} is not one of the splits")
    labels = {name: _labels(name, spec) for name, spec in splits.items()}
    group_index = _group_index(groups, network_groups, num_networks)
    split_data = tuple(
        _SplitData(
            name=name,
            labels=labels[name],
            example_ids=_example_ids(name, spec, labels[name].size),
            predictions=bool(spec.predictions),
            fingerprint=spec.fingerprint,
            soft=bool(spec.soft),
            columns=check_columns(name, spec.metadata, labels[name].size),
        )
        for name, spec in splits.items()
    )
    return _Inputs(
        num_networks, group_index, seeds, checkpoints, split_data, membership_split, blocks
    )


def _count_networks(splits: Mapping[str, SplitSpec], groups: Sequence[GroupSpec]) -> int:
    if not splits:
        raise WriterError("a population needs at least one split")
    if not groups:
        raise WriterError("a population needs at least one group of networks")
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise WriterError(f"group names must be unique, got {names}")
    num_networks = sum(int(g.networks) for g in groups)
    if num_networks < 1 or any(g.networks < 1 for g in groups):
        raise WriterError("every group needs at least one network")
    return num_networks


def _checkpoints(
    epochs: Sequence[float] | np.ndarray, steps: Sequence[int] | np.ndarray | None
) -> _Checkpoints:
    epoch = np.asarray(epochs, dtype=np.float64)
    if len(epoch) < 1:
        raise WriterError("a population needs at least one checkpoint")
    step = np.asarray(steps if steps is not None else np.full(len(epoch), -1), dtype=np.int64)
    if step.shape != epoch.shape:
        raise WriterError("checkpoint_steps and checkpoint_epochs differ in length")
    return _Checkpoints(epoch, step)


def _labels(name: str, spec: SplitSpec) -> np.ndarray:
    labels = np.asarray(spec.labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise WriterError(f"labels of split {name!r} must be a 1-D integer array")
    if labels.size and labels.min() < NO_LABEL:
        raise WriterError(f"labels of split {name!r} contain values below -1")
    return labels.astype(np.int32)


def _group_index(
    groups: Sequence[GroupSpec], network_groups: np.ndarray | None, num_networks: int
) -> np.ndarray:
    sizes = [g.networks for g in groups]
    if network_groups is None:
        return np.repeat(np.arange(len(groups)), sizes)
    network_groups = np.asarray(network_groups)
    if network_groups.shape != (num_networks,) or not np.array_equal(
        np.bincount(network_groups, minlength=len(groups)), sizes
    ):
        raise WriterError("network_groups does not agree with the group sizes")
    return network_groups


def _example_ids(name: str, spec: SplitSpec, num_examples: int) -> np.ndarray:
    example_ids = (
        np.arange(num_examples) if spec.example_ids is None else np.asarray(spec.example_ids)
    )
    if example_ids.shape != (num_examples,):
        raise WriterError(f"example_ids of split {name!r} do not match its labels")
    return example_ids


# ----------------------------------------------------------------------------------------------
# Writing


def _root_metadata(
    inputs: _Inputs,
    *,
    dataset_name: str,
    groups: Sequence[GroupSpec],
    class_names: Sequence[str] | None,
    command: str | None,
    extra_attrs: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The root attribute ``created_equal`` (its keys in docs/store-format.md's order)."""
    network_block, checkpoint_block, example_block = inputs.blocks
    fingerprints = {split.name: split.fingerprint for split in inputs.splits}
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "engine_version": __version__,
        "dataset": {"name": dataset_name, "fingerprint": dataset_fingerprint(fingerprints)},
        "class_names": list(class_names) if class_names is not None else None,
        "command": command if command is not None else " ".join(sys.argv),
        "groups": [g.to_json() for g in groups],
        "splits": {split.name: split.metadata() for split in inputs.splits},
        "membership_split": inputs.membership_split,
        "network_block": int(network_block),
        "checkpoint_block": int(checkpoint_block),
        "example_block": int(example_block),
        "num_networks": inputs.num_networks,
        "num_checkpoints": inputs.num_checkpoints,
        "extra": dict(extra_attrs or {}),
    }


def _create_array(
    group: zarr.Group,
    name: str,
    layout: ArrayLayout,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
) -> zarr.Array:
    codecs = layout.codecs()
    return group.create_array(
        name,
        shape=shape,
        chunks=tuple(max(1, c) for c in chunks),
        dtype=layout.dtype,
        fill_value=layout.fill,
        dimension_names=layout.dims,
        filters=codecs.filters,
        compressors=codecs.compressors,
        config=recorded_writes(FORMAT_VERSION),
        attributes=dict(layout.attributes),
    )


def _create_network_arrays(root: zarr.Group, inputs: _Inputs, chunks: _Chunks) -> None:
    """The per-network arrays of the root: ids, groups and seeds filled, the rest empty."""
    num_networks = inputs.num_networks
    nb, nc = chunks.network, chunks.network_metadata
    filled = (
        ("networks", np.arange(num_networks)),
        ("network_group", inputs.group_index),
        ("network_init_seed", inputs.seeds["init"]),
        ("network_order_seed", inputs.seeds["order"]),
    )
    for name, value in filled:
        _create_array(root, name, ROOT_ARRAYS[name], (num_networks,), (nc,))[:] = value
    _create_array(
        root, "checkpoints_completed", ROOT_ARRAYS["checkpoints_completed"], (num_networks,), (nb,)
    )
    _create_array(
        root,
        "train_loss",
        ROOT_ARRAYS["train_loss"],
        (num_networks, inputs.num_checkpoints),
        (nb, chunks.checkpoint),
    )


def _create_checkpoint_arrays(root: zarr.Group, checkpoints: _Checkpoints, chunks: _Chunks) -> None:
    """The per-checkpoint coordinates of the root: index, epoch, step."""
    size = checkpoints.epochs.size
    values = {
        "checkpoints": np.arange(size),
        "checkpoint_epoch": checkpoints.epochs,
        "checkpoint_step": checkpoints.steps,
    }
    for name, value in values.items():
        _create_array(root, name, ROOT_ARRAYS[name], (size,), (chunks.checkpoint,))[:] = value


def _create_split_arrays(
    root: zarr.Group, inputs: _Inputs, split: _SplitData, chunks: _Chunks
) -> None:
    """The group ``splits/<name>``: verdict arrays (empty), coordinates, labels."""
    num_networks, num_checkpoints = inputs.num_networks, inputs.num_checkpoints
    num_examples = split.labels.size
    nb, tb = chunks.network, chunks.checkpoint
    xb = max(1, min(chunks.example, num_examples))
    group = root.create_group(f"splits/{split.name}")

    def create(name: str, shape: tuple[int, ...], chunk: tuple[int, ...]) -> zarr.Array:
        return _create_array(group, name, SPLIT_ARRAYS[name], shape, chunk)

    # Packed bytes of 8 examples each; the byte chunk is never wider than the split.
    create(
        "correct_packed",
        (num_networks, num_checkpoints, -(-num_examples // 8)),
        (nb, tb, max(1, min(chunks.example, num_examples + 7) // 8)),
    )
    if split.predictions:
        create("predictions", (num_networks, num_checkpoints, num_examples), (nb, tb, xb))
    if split.soft:
        for name in SOFT_ARRAYS:
            create(name, (num_networks, num_checkpoints, num_examples), (nb, tb, xb))
    create("examples", (num_examples,), (xb,))[:] = np.arange(num_examples)
    create("example_ids", (num_examples,), (xb,))[:] = split.example_ids
    create("labels", (num_examples,), (xb,))[:] = split.labels
    create("final_accuracy", (num_networks,), (nb,))
    if split.name == inputs.membership_split:
        create("membership", (num_networks, num_examples), (nb, xb))
    if split.columns:
        _create_metadata_columns(group.create_group(METADATA_GROUP), split.columns, xb)


def _create_metadata_columns(
    group: zarr.Group, columns: Mapping[str, tuple[np.ndarray, list | None]], chunk: int
) -> None:
    """One array per example-metadata column, categories in its attributes."""
    for name, (values, categories) in columns.items():
        fill = MISSING_CATEGORY if categories is not None else _metadata_fill(values.dtype)
        layout = ArrayLayout(("examples",), str(values.dtype), fill)
        array = _create_array(group, name, layout, values.shape, (chunk,))
        array[:] = values
        if categories is not None:
            array.attrs["categories"] = categories


def _metadata_fill(dtype: np.dtype) -> int | float | bool:
    if dtype.kind == "f":
        return float("nan")
    return False if dtype.kind == "b" else 0


def _publish(staging: Path, path: Path) -> None:
    try:
        os.replace(staging, path)
    except OSError:
        # Another process made the store first (concurrent shards): ours is left over.
        shutil.rmtree(staging, ignore_errors=True)
        raise

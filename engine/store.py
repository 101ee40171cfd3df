"""The population store: one Zarr v3 group per population, described in docs/store-format.md.

Layout letters: n networks, t checkpoints, x examples. The root holds per-network and
per-checkpoint arrays; each split (train, test, probes) is a subgroup ``splits/<name>`` holding
``correct_packed`` (n, t, x/8) uint8 (correctness bits packed along examples, little bit order),
optional ``predictions`` (n, t, x) int16, ``labels`` (x) and ``example_ids`` (x).

Concurrency contract: a writer owns whole blocks of ``network_block`` networks. Every array with a
``networks`` dimension is chunked by exactly that block, so two writers that own different blocks
never touch the same stored object and need no lock. ``checkpoints_completed`` is written last for a
checkpoint; readers trust a network's entries only below its ``checkpoints_completed``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec, TransposeCodec, ZstdCodec

from engine._version import __version__
from engine.errors import StoreError, WriterError

FORMAT_NAME = "created-equal-population"
FORMAT_VERSION = 1
ATTRS_KEY = "created_equal"

#: Networks per stored object along ``networks``; also the unit a writer owns.
DEFAULT_NETWORK_BLOCK = 32
#: Checkpoints per stored object. Compression gains across checkpoints (a network's verdicts
#: change little between epochs); each recorded checkpoint rewrites its chunk, so the block
#: bounds that write amplification. Chosen by benchmarks/bench_store.py.
DEFAULT_CHECKPOINT_BLOCK = 16
#: Examples per stored object (a multiple of 8, so that packed bytes never straddle chunks);
#: larger splits are cut so one chunk stays a few MB.
DEFAULT_EXAMPLE_BLOCK = 65536
#: Networks per chunk of the arrays no writer owns (ids, groups, seeds).
NETWORK_METADATA_BLOCK = 65536
#: Bit order of ``correct_packed``, as numpy.packbits names it.
BIT_ORDER = "little"

#: zstd level inside blosc for the verdict bits: each recorded checkpoint re-encodes its chunk,
#: and level 1 encodes about 5x faster than 5 for nearly the same size (bench_store.py).
VERDICT_ZSTD_LEVEL = int(os.environ.get("CREATED_EQUAL_ZSTD_LEVEL", "1"))

NO_LABEL = -1
NO_PREDICTION = -1


def _verdict_codecs() -> dict[str, Any]:
    """Codecs of ``correct_packed`` (networks, checkpoints, example bytes).

    The transpose puts example bytes outermost and checkpoints innermost; the bit shuffle then
    gathers bit j of consecutive bytes, so that one example's verdicts across the block's networks
    and checkpoints sit side by side in one bit plane (a learned example is a run of ones). Chosen
    in benchmarks/bench_store.py: 0.41 bits per entry on real MNIST-1D populations, and reads move
    one bit per entry.
    """
    return dict(
        filters=[TransposeCodec(order=(2, 0, 1))],
        compressors=[
            BloscCodec(cname="zstd", clevel=VERDICT_ZSTD_LEVEL, shuffle="bitshuffle", typesize=1),
            Crc32cCodec(),
        ],
    )


def _plain_codecs() -> dict[str, Any]:
    return dict(compressors=[ZstdCodec(level=3), Crc32cCodec()])


@dataclass(frozen=True)
class GroupSpec:
    """A group of networks that share an architecture and hyper-parameters.

    Parameters
    ----------
    name : str
        Group name, unique within the store (e.g. ``"mlp"`` or ``"cnn-lr0.1"``).
    architecture : str
        Architecture name as the trainer knows it, or any label for a user's own model.
    networks : int
        Number of networks in the group; groups occupy consecutive network ids in order.
    hyperparameters : dict
        JSON-serialisable settings shared by the group's networks.
    """

    name: str
    architecture: str
    networks: int
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "architecture": self.architecture,
            "hyperparameters": dict(self.hyperparameters),
        }


@dataclass(frozen=True)
class SplitSpec:
    """One split of the data set as the store records it.

    Parameters
    ----------
    labels : ndarray of int, dims (examples,)
        True class of each example, ``-1`` where there is none (probe sets).
    example_ids : ndarray of int, dims (examples,), optional
        Index of each example in the source data set; defaults to ``0..examples-1``.
    predictions : bool
        Whether predicted classes are stored for this split (needed for probes).
    fingerprint : str, optional
        Digest of the split's inputs and labels, see :func:`split_fingerprint`.
    """

    labels: np.ndarray
    example_ids: np.ndarray | None = None
    predictions: bool = True
    fingerprint: str = ""


def split_fingerprint(inputs: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of a split's inputs and labels (values, dtype and shape), in example order."""
    digest = hashlib.sha256()
    for array in (np.ascontiguousarray(inputs), np.ascontiguousarray(labels)):
        digest.update(str(array.dtype).encode())
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def dataset_fingerprint(split_fingerprints: Mapping[str, str]) -> str:
    """One digest over every split's fingerprint, in split-name order."""
    digest = hashlib.sha256()
    for name in sorted(split_fingerprints):
        digest.update(f"{name}={split_fingerprints[name]};".encode())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------
# Opening and validating


def _is_url(path: str | os.PathLike) -> bool:
    return "://" in str(path)


def _open_root(path: str | os.PathLike, mode: str, storage_options: dict | None = None):
    if not _is_url(path) and not Path(path).exists():
        raise StoreError(f"no population store at {path}: the path does not exist")
    try:
        root = zarr.open_group(str(path), mode=mode, storage_options=storage_options)
    except Exception as error:  # zarr raises several types for a folder that is not a group
        if type(error).__name__ == "GroupNotFoundError":
            raise StoreError(f"{path} is not a population store: no Zarr group there") from error
        raise StoreError(f"{path} is not a population store: {type(error).__name__}") from error
    meta = root.attrs.get(ATTRS_KEY)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise StoreError(f"{path} is a Zarr group but not a population store (no '{ATTRS_KEY}')")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise StoreError(
            f"{path} has store format version {version}; this engine ({__version__}) reads "
            f"up to {FORMAT_VERSION}: upgrade created-equal"
        )
    return root, meta


def _create_array(group, name, *, shape, chunks, dtype, dims, fill, codecs=None):
    codecs = codecs if codecs is not None else _plain_codecs()
    return group.create_array(
        name,
        shape=shape,
        chunks=tuple(max(1, c) for c in chunks),
        dtype=dtype,
        fill_value=fill,
        dimension_names=dims,
        **codecs,
    )


# ----------------------------------------------------------------------------------------------
# Creating


def create_population(
    path: str | os.PathLike,
    *,
    dataset_name: str,
    splits: Mapping[str, SplitSpec],
    groups: Sequence[GroupSpec],
    checkpoint_epochs: Sequence[float],
    checkpoint_steps: Sequence[int] | None = None,
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
    """
    path = Path(path)
    if path.exists():
        raise StoreError(f"{path} already exists; choose a new path or grow it with the writer")
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
    epochs = np.asarray(checkpoint_epochs, dtype=np.float64)
    num_checkpoints = len(epochs)
    if num_checkpoints < 1:
        raise WriterError("a population needs at least one checkpoint")
    steps = np.asarray(
        checkpoint_steps if checkpoint_steps is not None else np.full(num_checkpoints, -1),
        dtype=np.int64,
    )
    if steps.shape != epochs.shape:
        raise WriterError("checkpoint_steps and checkpoint_epochs differ in length")
    if min(network_block, checkpoint_block, example_block) < 1 or example_block % 8:
        raise WriterError("block sizes must be positive, example_block a multiple of 8")
    seeds = {}
    for label, values in (("init", init_seeds), ("order", order_seeds)):
        array = np.full(num_networks, -1, np.int64) if values is None else np.asarray(values)
        if array.shape != (num_networks,):
            raise WriterError(f"{label}_seeds has shape {array.shape}, expected ({num_networks},)")
        seeds[label] = array.astype(np.int64)
    if membership_split is not None and membership_split not in splits:
        raise WriterError(f"membership_split {membership_split!r} is not one of the splits")
    split_meta = {}
    for name, spec in splits.items():
        labels = np.asarray(spec.labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise WriterError(f"labels of split {name!r} must be a 1-D integer array")
        if labels.size and labels.min() < NO_LABEL:
            raise WriterError(f"labels of split {name!r} contain values below -1")
        split_meta[name] = {
            "examples": int(labels.size),
            "has_labels": bool((labels != NO_LABEL).any()),
            "predictions": bool(spec.predictions),
            "fingerprint": spec.fingerprint,
        }

    fingerprints = {n: m["fingerprint"] for n, m in split_meta.items()}
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "engine_version": __version__,
        "dataset": {
            "name": dataset_name,
            "fingerprint": dataset_fingerprint(fingerprints),
        },
        "class_names": list(class_names) if class_names is not None else None,
        "command": command if command is not None else " ".join(sys.argv),
        "groups": [g.to_json() for g in groups],
        "splits": split_meta,
        "membership_split": membership_split,
        "network_block": int(network_block),
        "checkpoint_block": int(checkpoint_block),
        "example_block": int(example_block),
        "num_networks": num_networks,
        "num_checkpoints": num_checkpoints,
        "extra": dict(extra_attrs or {}),
    }

    # Build in a sibling folder and rename, so a crash never leaves a half-made store at path.
    staging = path.with_name(f".{path.name}.creating-{os.getpid()}")
    root = zarr.open_group(str(staging), mode="w")
    # A chunk never spans more checkpoints than the store has: reading one checkpoint decodes
    # the whole chunk.
    nb, tb = network_block, min(checkpoint_block, num_checkpoints)
    # Arrays written only here and by add_networks (one process, no writer active) are not
    # owned by writers: one chunk of many networks keeps reading them cheap.
    nc = max(nb, min(num_networks, NETWORK_METADATA_BLOCK))
    _create_array(root, "networks", shape=(num_networks,), chunks=(nc,), dtype="int64",
                  dims=("networks",), fill=-1)[:] = np.arange(num_networks)
    group_index = np.repeat(np.arange(len(groups)), [g.networks for g in groups])
    if network_groups is not None:
        network_groups = np.asarray(network_groups)
        if network_groups.shape != (num_networks,) or not np.array_equal(
            np.bincount(network_groups, minlength=len(groups)), [g.networks for g in groups]
        ):
            raise WriterError("network_groups does not agree with the group sizes")
        group_index = network_groups
    _create_array(root, "network_group", shape=(num_networks,), chunks=(nc,), dtype="int16",
                  dims=("networks",), fill=-1)[:] = group_index
    for label in ("init", "order"):
        _create_array(root, f"network_{label}_seed", shape=(num_networks,), chunks=(nc,),
                      dtype="int64", dims=("networks",), fill=-1)[:] = seeds[label]
    _create_array(root, "checkpoints_completed", shape=(num_networks,), chunks=(nb,),
                  dtype="int32", dims=("networks",), fill=0)
    _create_array(root, "train_loss", shape=(num_networks, num_checkpoints), chunks=(nb, tb),
                  dtype="float32", dims=("networks", "checkpoints"), fill=float("nan"))
    _create_array(root, "checkpoints", shape=(num_checkpoints,), chunks=(tb,), dtype="int64",
                  dims=("checkpoints",), fill=-1)[:] = np.arange(num_checkpoints)
    _create_array(root, "checkpoint_epoch", shape=(num_checkpoints,), chunks=(tb,),
                  dtype="float64", dims=("checkpoints",), fill=float("nan"))[:] = epochs
    _create_array(root, "checkpoint_step", shape=(num_checkpoints,), chunks=(tb,),
                  dtype="int64", dims=("checkpoints",), fill=-1)[:] = steps

    for name, spec in splits.items():
        labels = np.asarray(spec.labels).astype(np.int32)
        num_examples = labels.size
        xb = max(1, min(example_block, num_examples))
        group = root.create_group(f"splits/{name}")
        verdict_dims = ("networks", "checkpoints", "examples")
        _create_array(group, "correct_packed",
                      shape=(num_networks, num_checkpoints, -(-num_examples // 8)),
                      chunks=(nb, tb, max(1, min(example_block, num_examples + 7) // 8)),
                      dtype="uint8",
                      dims=("networks", "checkpoints", "example_bytes"), fill=0,
                      codecs=_verdict_codecs())
        if spec.predictions:
            _create_array(group, "predictions",
                          shape=(num_networks, num_checkpoints, num_examples),
                          chunks=(nb, tb, xb), dtype="int16", dims=verdict_dims,
                          fill=NO_PREDICTION,
                          codecs=dict(filters=[TransposeCodec(order=(2, 0, 1))],
                                      compressors=[ZstdCodec(level=3), Crc32cCodec()]))
        _create_array(group, "examples", shape=(num_examples,), chunks=(xb,), dtype="int64",
                      dims=("examples",), fill=-1)[:] = np.arange(num_examples)
        example_ids = (np.arange(num_examples) if spec.example_ids is None
                       else np.asarray(spec.example_ids))
        if example_ids.shape != (num_examples,):
            raise WriterError(f"example_ids of split {name!r} do not match its labels")
        _create_array(group, "example_ids", shape=(num_examples,), chunks=(xb,),
                      dtype="int64", dims=("examples",), fill=-1)[:] = example_ids
        _create_array(group, "labels", shape=(num_examples,), chunks=(xb,), dtype="int32",
                      dims=("examples",), fill=NO_LABEL)[:] = labels
        _create_array(group, "final_accuracy", shape=(num_networks,), chunks=(nb,),
                      dtype="float32", dims=("networks",), fill=float("nan"))
        if name == membership_split:
            _create_array(group, "membership", shape=(num_networks, num_examples),
                          chunks=(nb, xb), dtype="bool", dims=("networks", "examples"),
                          fill=True)
    root.attrs[ATTRS_KEY] = meta
    try:
        os.replace(staging, path)
    except OSError:
        # Another process made the store first (concurrent shards): ours is left over.
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PopulationWriter(path, networks=(0, num_networks))


# ----------------------------------------------------------------------------------------------
# Writing


class PopulationWriter:
    """Records verdicts for a range of networks that this process owns.

    Parameters
    ----------
    path : str or path
        An existing population store.
    networks : (int, int)
        The half-open range ``[start, stop)`` of network ids this writer owns. It must cover whole
        network blocks (``start`` a multiple of the block, ``stop`` a multiple of it or the end),
        so that no other writer shares a stored object with it.
    """

    def __init__(self, path: str | os.PathLike, networks: tuple[int, int] | None = None):
        self.path = Path(path)
        self._root, self._meta = _open_root(self.path, mode="r+")
        total = self._meta["num_networks"]
        start, stop = networks if networks is not None else (0, total)
        block = self._meta["network_block"]
        if not 0 <= start < stop <= total:
            raise WriterError(f"network range {start}:{stop} is outside 0:{total}")
        if stop % block and stop != total:
            raise WriterError(
                f"network range {start}:{stop} does not end on a block of {block} networks; "
                "writers must own whole blocks"
            )
        if start % block:
            # Allowed only where the rest of the block is finished (networks appended to a store
            # whose last block was partly filled): no other writer can be active there.
            first = start - start % block
            done = self._root["checkpoints_completed"][first:start]
            if (done < self._meta["num_checkpoints"]).any():
                raise WriterError(
                    f"network range {start}:{stop} does not start on a block of {block} networks"
                    " and shares it with unfinished networks; writers must own whole blocks"
                )
        self.networks = (start, stop)
        self._labels: dict[str, np.ndarray] = {}
        self._arrays: dict[str, Any] = {}

    def array(self, name: str):
        """An array of the store, opened once: opening reads its metadata from the store."""
        if name not in self._arrays:
            self._arrays[name] = self._root[name]
        return self._arrays[name]

    # -- properties -------------------------------------------------------------------------

    @property
    def num_checkpoints(self) -> int:
        return self._meta["num_checkpoints"]

    @property
    def splits(self) -> list[str]:
        return list(self._meta["splits"])

    def labels(self, split: str) -> np.ndarray:
        if split not in self._labels:
            self.require_split(split)
            self._labels[split] = self.array(f"splits/{split}/labels")[:]
        return self._labels[split]

    def checkpoints_completed(self) -> np.ndarray:
        """Completed checkpoints of each owned network, dims (networks,)."""
        start, stop = self.networks
        return self.array("checkpoints_completed")[start:stop]

    # -- checks -----------------------------------------------------------------------------

    def require_split(self, split: str) -> None:
        """Raise WriterError if the store has no split ``split``."""
        if split not in self._meta["splits"]:
            raise WriterError(f"unknown split {split!r}; the store has {self.splits}")

    def _check_networks(self, networks: tuple[int, int] | range | slice) -> tuple[int, int]:
        if isinstance(networks, range | slice):
            start, stop = networks.start, networks.stop
        else:
            start, stop = networks
        own_start, own_stop = self.networks
        if not own_start <= start < stop <= own_stop:
            raise WriterError(
                f"networks {start}:{stop} are outside this writer's range {own_start}:{own_stop}"
            )
        return int(start), int(stop)

    def _check_checkpoint(self, checkpoint: int) -> int:
        if not 0 <= checkpoint < self.num_checkpoints:
            raise WriterError(
                f"checkpoint {checkpoint} is outside 0:{self.num_checkpoints} of this store"
            )
        return int(checkpoint)

    # -- recording --------------------------------------------------------------------------

    def record(
        self,
        split: str,
        checkpoint: int,
        networks: tuple[int, int] | range | slice,
        *,
        predictions: np.ndarray | None = None,
        correct: np.ndarray | None = None,
    ) -> None:
        """Record one checkpoint of one split for a block of networks.

        Parameters
        ----------
        split : str
        checkpoint : int
        networks : (int, int)
            Range ``[start, stop)`` inside the writer's own range.
        predictions : ndarray of int, dims (networks, examples), optional
            Predicted classes; correctness is derived from the split's labels (examples without
            a label count as not correct).
        correct : ndarray of bool, dims (networks, examples), optional
            Correctness alone, for splits recorded without predictions.
        """
        self.require_split(split)
        start, stop = self._check_networks(networks)
        checkpoint = self._check_checkpoint(checkpoint)
        labels = self.labels(split)
        expected = (stop - start, labels.size)
        stores_predictions = self._meta["splits"][split]["predictions"]
        if predictions is None and correct is None:
            raise WriterError("record needs predictions or correct")
        if predictions is not None:
            predictions = np.asarray(predictions)
            if predictions.shape != expected:
                raise WriterError(
                    f"predictions for split {split!r} have shape {predictions.shape}, "
                    f"expected (networks, examples) = {expected}"
                )
            if not np.issubdtype(predictions.dtype, np.integer):
                raise WriterError("predictions must be integer class indices")
            derived = (predictions == labels[None, :]) & (labels[None, :] != NO_LABEL)
            if correct is not None and not np.array_equal(np.asarray(correct, bool), derived):
                raise WriterError("correct disagrees with predictions and labels")
            correct = derived
            if stores_predictions:
                self.array(f"splits/{split}/predictions")[start:stop, checkpoint, :] = (
                    predictions.astype(np.int16))
        else:
            if stores_predictions:
                raise WriterError(
                    f"split {split!r} stores predictions: record predictions, not correct alone"
                )
        correct = np.asarray(correct)
        if correct.shape != expected:
            raise WriterError(
                f"correct for split {split!r} has shape {correct.shape}, "
                f"expected (networks, examples) = {expected}"
            )
        # An example without a label is never correct (docs/store-format.md), however recorded.
        correct = correct.astype(bool, copy=False) & (labels[None, :] != NO_LABEL)
        self.array(f"splits/{split}/correct_packed")[start:stop, checkpoint, :] = np.packbits(
            correct, axis=1, bitorder=BIT_ORDER)
        if checkpoint == self.num_checkpoints - 1:
            labeled = labels != NO_LABEL
            accuracy = (correct[:, labeled].mean(axis=1) if labeled.any()
                        else np.full(stop - start, np.nan))
            self.array(f"splits/{split}/final_accuracy")[start:stop] = accuracy.astype(np.float32)

    def record_loss(self, checkpoint: int, networks, loss: np.ndarray) -> None:
        """Record each network's training loss at a checkpoint, dims (networks,)."""
        start, stop = self._check_networks(networks)
        checkpoint = self._check_checkpoint(checkpoint)
        loss = np.asarray(loss, dtype=np.float32)
        if loss.shape != (stop - start,):
            raise WriterError(f"loss has shape {loss.shape}, expected ({stop - start},)")
        self.array("train_loss")[start:stop, checkpoint] = loss

    def record_membership(self, networks, membership: np.ndarray) -> None:
        """Record which examples of the membership split each network trains on.

        Parameters
        ----------
        membership : ndarray of bool, dims (networks, examples)
        """
        split = self._meta.get("membership_split")
        if split is None:
            raise WriterError("this store was created without membership_split")
        start, stop = self._check_networks(networks)
        expected = (stop - start, self._meta["splits"][split]["examples"])
        membership = np.asarray(membership, dtype=bool)
        if membership.shape != expected:
            raise WriterError(f"membership has shape {membership.shape}, expected {expected}")
        self.array(f"splits/{split}/membership")[start:stop] = membership

    def mark_checkpoint(self, checkpoint: int, networks) -> None:
        """Declare ``checkpoint`` recorded for every split: written last, trusted by readers."""
        start, stop = self._check_networks(networks)
        checkpoint = self._check_checkpoint(checkpoint)
        completed = self.array("checkpoints_completed")
        done = completed[start:stop]
        completed[start:stop] = np.maximum(done, checkpoint + 1).astype(np.int32)

    def mark_complete(self, networks) -> None:
        """Declare the networks fully recorded (every checkpoint of every split)."""
        self.mark_checkpoint(self.num_checkpoints - 1, networks)


def open_writer(path: str | os.PathLike, networks: tuple[int, int] | None = None):
    """Open a writer on an existing store for the networks ``[start, stop)`` it will own."""
    return PopulationWriter(path, networks)


# ----------------------------------------------------------------------------------------------
# Reading


def _unpack_block(block: np.ndarray, examples: int, block_info=None) -> np.ndarray:
    location = block_info[0]["array-location"][2] if block_info else (0, block.shape[2])
    count = min(8 * block.shape[2], examples - 8 * location[0])
    return np.unpackbits(block, axis=2, count=count, bitorder=BIT_ORDER).view(bool)


def _describe(key) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return "[" + ", ".join(
        f"{p.start or 0}:{'' if p.stop is None else p.stop}" if isinstance(p, slice) else str(p)
        for p in parts
    ) + "]"


class _CheckedZarr:
    """Array-like view of a zarr array for dask that turns read failures into StoreError.

    A chunk whose crc32c does not match raises inside zarr with a generic message; this names the
    array and region instead, so that the CLI can print one line.
    """

    def __init__(self, array, label: str, shape: tuple[int, ...] | None = None):
        self.array = array
        self.label = label
        self.shape = tuple(shape if shape is not None else array.shape)
        self.dtype = array.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, key):
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
        self._root, self.attrs = _open_root(path, mode="r", storage_options=storage_options)
        self.num_networks: int = self.attrs["num_networks"]
        self.num_checkpoints: int = self.attrs["num_checkpoints"]

    def __repr__(self) -> str:
        return (f"Population({self.path!r}, networks={self.num_networks}, "
                f"checkpoints={self.num_checkpoints}, splits={self.splits})")

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
            raise StoreError(f"split {split!r} does not exist in {self.path}; it has "
                             f"{', '.join(self.splits)}")

    def array(self, name: str):
        """The zarr array ``name`` (for instance ``"splits/test/labels"``), opened for reading."""
        try:
            return self._root[name]
        except KeyError as error:
            raise StoreError(f"{self.path} lacks the array {name!r}: not a complete "
                             f"population store of format {FORMAT_VERSION}") from error

    def read_array(self, name: str) -> np.ndarray:
        """The whole of the array ``name`` as NumPy; a failed read is a one-line StoreError."""
        array = self.array(name)
        try:
            return array[:]
        except Exception as error:
            raise StoreError(f"corrupt or unreadable array {name!r} in {self.path}: "
                             f"{type(error).__name__}") from error

    def checkpoints_completed(self) -> np.ndarray:
        """Checkpoints recorded for each network, dims (networks,), int32."""
        return self.read_array("checkpoints_completed")[: self.num_networks]

    def complete_networks(self) -> np.ndarray:
        """Ids of networks whose every checkpoint is recorded, dims (networks,), int64."""
        return np.flatnonzero(self.checkpoints_completed() >= self.num_checkpoints)

    @property
    def networks(self):
        """One row per network: group, architecture, seeds, progress, final accuracy per split."""
        import pandas as pd

        n = self.num_networks
        groups = self.attrs["groups"]
        group_index = self.read_array("network_group")[:n]
        completed = self.checkpoints_completed()
        table = pd.DataFrame({
            "network": self.read_array("networks")[:n],
            "group": [groups[i]["name"] for i in group_index],
            "architecture": [groups[i]["architecture"] for i in group_index],
            "init_seed": self.read_array("network_init_seed")[:n],
            "order_seed": self.read_array("network_order_seed")[:n],
            "hyperparameters": [json.dumps(groups[i]["hyperparameters"], sort_keys=True)
                                for i in group_index],
            "checkpoints_completed": completed,
            "complete": completed >= self.num_checkpoints,
        })
        for split in self.splits:
            table[f"final_accuracy_{split}"] = self.read_array(f"splits/{split}/final_accuracy")[:n]
        return table

    @property
    def checkpoints(self):
        """One row per checkpoint: index, epoch (may be fractional) and optimiser step."""
        import pandas as pd

        t = self.num_checkpoints
        return pd.DataFrame({
            "checkpoint": self.read_array("checkpoints")[:t],
            "epoch": self.read_array("checkpoint_epoch")[:t],
            "step": self.read_array("checkpoint_step")[:t],
        })

    def network_groups(self) -> np.ndarray:
        """Group index of each network, dims (networks,), int16 (see ``attrs['groups']``)."""
        return self.read_array("network_group")[: self.num_networks]

    def labels(self, split: str) -> np.ndarray:
        """True class per example, -1 where there is none, dims (examples,), int32."""
        self.require_split(split)
        return self.read_array(f"splits/{split}/labels")[: self.num_examples(split)]

    def example_ids(self, split: str) -> np.ndarray:
        """Index of each example in the source data set, dims (examples,), int64."""
        self.require_split(split)
        return self.read_array(f"splits/{split}/example_ids")[: self.num_examples(split)]

    # -- lazy verdicts ----------------------------------------------------------------------

    def _lazy(self, name: str, shape: tuple[int, ...], chunks=None):
        import dask.array as da
        from dask.base import tokenize

        array = self.array(name)
        native = array.chunks
        chunks = chunks if chunks is not None else native
        view = _CheckedZarr(array, f"{self.path}/{name}", shape)
        # A deterministic name lets two reads of the same store share their tasks in one graph.
        token = tokenize(self.path, name, shape, chunks)
        return da.from_array(view, chunks=chunks, fancy=False,
                             name=f"{name.replace('/', '-')}-{token}")

    def correct_packed(self, split: str, chunks=None):
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

    def correct(self, split: str, chunks=None):
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
        example_chunks = tuple(8 * b for b in byte_chunks[:-1]) + (
            examples - 8 * sum(byte_chunks[:-1]),) if byte_chunks else ()
        return da.map_blocks(_unpack_block, packed, examples, dtype=bool,
                             chunks=(packed.chunks[0], packed.chunks[1], example_chunks),
                             meta=np.zeros((0, 0, 0), bool))

    def predictions(self, split: str, chunks=None):
        """Predicted class, dask array of int16, dims (networks, checkpoints, examples), or None
        where the split was recorded without predictions (-1 marks entries not recorded)."""
        self.require_split(split)
        if not self.attrs["splits"][split]["predictions"]:
            return None
        shape = (self.num_networks, self.num_checkpoints, self.num_examples(split))
        return self._lazy(f"splits/{split}/predictions", shape, chunks)

    def membership(self, split: str | None = None, chunks=None):
        """Training-subset membership, dask array of bool, dims (networks, examples), or None."""
        split = split or self.attrs.get("membership_split")
        if split is None or split != self.attrs.get("membership_split"):
            return None
        shape = (self.num_networks, self.num_examples(split))
        return self._lazy(f"splits/{split}/membership", shape, chunks)

    def train_loss(self):
        """Training loss per network per checkpoint, dask float32, dims (networks, checkpoints)."""
        return self._lazy("train_loss", (self.num_networks, self.num_checkpoints))

    # -- size -------------------------------------------------------------------------------

    def stored_bytes(self, name: str | None = None) -> int:
        """Bytes on disk of one array (e.g. ``"splits/train/correct"``) or of the whole store."""
        if _is_url(self.path):
            target = self._root[name] if name else None
            return int(target.nbytes_stored()) if target is not None else -1
        base = Path(self.path) / name if name else Path(self.path)
        return sum(f.stat().st_size for f in base.rglob("*") if f.is_file())


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


# ----------------------------------------------------------------------------------------------
# Reading chunks in stored order (the fast path of the analysis tasks)


@dataclass(frozen=True)
class StoreHandle:
    """What a task needs to open a store itself: a path or URL and fsspec options."""

    path: str
    storage_options: tuple = ()

    def open_array(self, name: str):
        import zarr

        options = dict(self.storage_options) or None
        try:
            return zarr.open_array(f"{self.path.rstrip('/')}/{name}", mode="r",
                                   storage_options=options)
        except Exception as error:
            raise StoreError(f"cannot open {name} in {self.path}: {type(error).__name__}") \
                from error


def _stored_order_codecs(array):
    """The bytes-to-bytes codecs, outermost last, if the array stores chunks transposed to
    (x, n, t) and then compresses them with codecs this module decodes directly; else None."""
    from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, TransposeCodec, ZstdCodec

    codecs = list(array.metadata.codecs)
    if (len(codecs) < 2 or not isinstance(codecs[0], TransposeCodec)
            or tuple(codecs[0].order) != (2, 0, 1) or not isinstance(codecs[1], BytesCodec)):
        return None
    rest = codecs[2:]
    if not all(isinstance(c, BloscCodec | ZstdCodec | Crc32cCodec) for c in rest):
        return None
    if array.dtype.itemsize > 1 and codecs[1].endian is not None and \
            codecs[1].endian.value != sys.byteorder:
        return None
    return rest


def _decode(raw: bytes, codecs) -> bytes:
    import numcodecs

    data = raw
    for codec in reversed(codecs):
        name = type(codec).__name__
        if name == "Crc32cCodec":
            import google_crc32c

            body, stored = data[:-4], data[-4:]
            if np.uint32(google_crc32c.value(body)).tobytes() != bytes(stored):
                raise ValueError("crc32c checksum mismatch")
            data = body
        elif name == "BloscCodec":
            data = numcodecs.blosc.decompress(data)
        else:
            data = numcodecs.Zstd().decode(data)
    return data


def read_stored_order(array, networks: tuple[int, int], checkpoints: tuple[int, int],
                      examples: tuple[int, int], *, direct: bool = True) -> np.ndarray:
    """Read a region of a (networks, checkpoints, examples) array as dims (x, n, t).

    Where the region is one stored chunk of the store's own encoding (transposed to (x, n, t),
    then Blosc or Zstd and crc32c), the chunk is decoded straight into that order, which saves
    the transpose back that Zarr would do and that this module would undo. Any other region or
    encoding goes through Zarr.
    """
    (n0, n1), (t0, t1), (x0, x1) = networks, checkpoints, examples
    label = f"{array.store_path} at [{n0}:{n1}, {t0}:{t1}, {x0}:{x1}]"
    chunk = array.chunks
    codecs = _stored_order_codecs(array) if direct else None
    aligned = (n0 % chunk[0] == 0 and t0 % chunk[1] == 0 and x0 % chunk[2] == 0
               and n1 - n0 <= chunk[0] and t1 - t0 <= chunk[1] and x1 - x0 <= chunk[2])
    try:
        if codecs is not None and aligned:
            from zarr.core.buffer import default_buffer_prototype
            from zarr.core.sync import sync

            key = array.metadata.encode_chunk_key((n0 // chunk[0], t0 // chunk[1],
                                                   x0 // chunk[2]))
            buffer = sync((array.store_path / key).get(prototype=default_buffer_prototype()))
            shape = (chunk[2], chunk[0], chunk[1])
            if buffer is None:
                block = np.full(shape, array.fill_value, dtype=array.dtype)
            else:
                block = np.frombuffer(_decode(buffer.to_bytes(), codecs),
                                      dtype=array.dtype).reshape(shape)
            return block[: x1 - x0, : n1 - n0, : t1 - t0]
        region = np.asarray(array[n0:n1, t0:t1, x0:x1])
        return np.ascontiguousarray(region.transpose(2, 0, 1))
    except StoreError:
        raise
    except Exception as error:
        raise StoreError(f"corrupt or unreadable chunk in {label}: {type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''}") from error


# ----------------------------------------------------------------------------------------------
# Growing and merging


def _resize(array, axis: int, size: int) -> None:
    shape = list(array.shape)
    shape[axis] = size
    array.resize(tuple(shape))


def _network_arrays(root, meta):
    """Every array with a ``networks`` dimension, with the axis it is on."""
    names = ["networks", "network_group", "network_init_seed", "network_order_seed",
             "checkpoints_completed", "train_loss"]
    for split in meta["splits"]:
        names += [f"splits/{split}/{a}" for a in
                  ("correct_packed", "predictions", "final_accuracy", "membership")]
    for name in names:
        if name in root:
            yield root[name], 0


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
    root, meta = _open_root(path, mode="r+")
    existing = {g["name"]: (i, g) for i, g in enumerate(meta["groups"])}
    count = sum(int(g.networks) for g in groups)
    if count < 1:
        raise WriterError("add_networks needs at least one network")
    group_index = []
    for spec in groups:
        if spec.name in existing:
            index, known = existing[spec.name]
            if known != spec.to_json():
                raise WriterError(f"group {spec.name!r} exists with another architecture or "
                                  "hyper-parameters")
        else:
            index = len(meta["groups"])
            meta["groups"].append(spec.to_json())
            existing[spec.name] = (index, spec.to_json())
        group_index += [index] * spec.networks
    start = meta["num_networks"]
    stop = start + count
    seeds = {}
    for label, values in (("init", init_seeds), ("order", order_seeds)):
        array = np.full(count, -1, np.int64) if values is None else np.asarray(values, np.int64)
        if array.shape != (count,):
            raise WriterError(f"{label}_seeds has shape {array.shape}, expected ({count},)")
        seeds[label] = array
    # Resize every sibling first, fill the new ids, then publish the count in the attributes:
    # a reader or a crash in between sees the old population unchanged.
    for array, axis in _network_arrays(root, meta):
        _resize(array, axis, stop)
    root["networks"][start:stop] = np.arange(start, stop)
    root["network_group"][start:stop] = np.asarray(group_index, np.int16)
    root["network_init_seed"][start:stop] = seeds["init"]
    root["network_order_seed"][start:stop] = seeds["order"]
    meta["num_networks"] = stop
    root.attrs[ATTRS_KEY] = meta
    return start, stop


def add_checkpoints(
    path: str | os.PathLike,
    checkpoint_epochs: Sequence[float],
    checkpoint_steps: Sequence[int] | None = None,
) -> tuple[int, int]:
    """Append checkpoints (to continue training); return their index range."""
    root, meta = _open_root(path, mode="r+")
    epochs = np.asarray(checkpoint_epochs, np.float64)
    steps = np.asarray(checkpoint_steps if checkpoint_steps is not None
                       else np.full(epochs.size, -1), np.int64)
    if epochs.size < 1 or steps.shape != epochs.shape:
        raise WriterError("add_checkpoints needs matching, non-empty epochs and steps")
    old = meta["num_checkpoints"]
    stop = old + epochs.size
    names = ["checkpoints", "checkpoint_epoch", "checkpoint_step"]
    for name in names:
        _resize(root[name], 0, stop)
    _resize(root["train_loss"], 1, stop)
    for split in meta["splits"]:
        for name in ("correct_packed", "predictions"):
            if f"splits/{split}/{name}" in root:
                _resize(root[f"splits/{split}/{name}"], 1, stop)
        # Final accuracies belonged to the old last checkpoint.
        root[f"splits/{split}/final_accuracy"][:] = np.float32(np.nan)
    root["checkpoints"][old:stop] = np.arange(old, stop)
    root["checkpoint_epoch"][old:stop] = epochs
    root["checkpoint_step"][old:stop] = steps
    meta["num_checkpoints"] = stop
    root.attrs[ATTRS_KEY] = meta
    return old, stop


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
    populations = [open_population(p) for p in inputs]
    require_same_dataset(populations, "merge")
    first = populations[0]
    for other in populations[1:]:
        if other.attrs["splits"] != first.attrs["splits"]:
            raise StoreError(f"cannot merge {other.path}: its splits differ from {first.path}'s")
        if not other.checkpoints[["epoch", "step"]].equals(first.checkpoints[["epoch", "step"]]):
            raise StoreError(f"cannot merge {other.path}: its checkpoints (epochs, steps) differ "
                             f"from {first.path}'s")
    merged_groups: dict[str, dict] = {}
    network_groups = []
    for population in populations:
        for index in population.network_groups():
            spec = population.attrs["groups"][index]
            known = merged_groups.setdefault(spec["name"], spec)
            if known != spec:
                raise StoreError(f"group {spec['name']!r} has different architectures or "
                                 f"hyper-parameters in the stores to merge")
            network_groups.append(list(merged_groups).index(spec["name"]))
    network_groups = np.asarray(network_groups)
    counts = np.bincount(network_groups, minlength=len(merged_groups))
    groups = [GroupSpec(g["name"], g["architecture"], int(c), g["hyperparameters"])
              for g, c in zip(merged_groups.values(), counts, strict=True)]
    splits = {
        name: SplitSpec(labels=first.labels(name), example_ids=first.example_ids(name),
                        predictions=meta["predictions"], fingerprint=meta["fingerprint"])
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
        init_seeds=np.concatenate([p.read_array("network_init_seed")[: p.num_networks]
                                   for p in populations]),
        order_seeds=np.concatenate([p.read_array("network_order_seed")[: p.num_networks]
                                    for p in populations]),
        membership_split=first.attrs.get("membership_split"),
        network_block=first.attrs["network_block"],
        checkpoint_block=first.attrs["checkpoint_block"],
        example_block=first.attrs["example_block"],
        command=command,
        extra_attrs={"merged_from": [{"path": p.path, "networks": p.num_networks}
                                     for p in populations]},
    )
    out_root = writer._root
    names = ["train_loss"] + [f"splits/{s}/{a}" for s in splits
                              for a in ("correct_packed", "predictions", "final_accuracy",
                                        "membership")]
    offset = 0
    for population in populations:
        block = population.attrs["network_block"]
        for start in range(0, population.num_networks, block):
            stop = min(start + block, population.num_networks)
            for name in names:
                if name in population._root:
                    source = _CheckedZarr(population._root[name], f"{population.path}/{name}")
                    out_root[name][offset + start: offset + stop] = source[start:stop]
        out_root["checkpoints_completed"][offset: offset + population.num_networks] = (
            population.checkpoints_completed()
        )
        offset += population.num_networks
    os.replace(staging, output)
    return open_population(output)

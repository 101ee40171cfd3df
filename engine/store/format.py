"""What a population store is: names, arrays, codecs, specs, fingerprints (docs/store-format.md).

Layout letters: n networks, t checkpoints, x examples. This module is the format in code: the
root metadata key and version, the arrays of the root and of each split (dims, dtype, fill, codec
chain), the block sizes, the sentinels, and opening a store with its format checked. Beside the
codec definitions sits the stored-order decoder, which reads the verdict arrays' chunks without
zarr's transpose back and so depends on exactly those definitions.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr
from zarr.buffer import default_buffer_prototype
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, TransposeCodec, ZstdCodec

from engine._version import __version__
from engine.errors import StoreError

FORMAT_NAME = "created-equal-population"
#: Version 2 adds the soft-verdict arrays and the guarantee that every chunk holding a recorded
#: entry exists (so a missing chunk is damage, not fill); this engine reads versions 1 and 2.
FORMAT_VERSION = 2
#: The first version in which a writer writes every chunk it touches, even one equal to the fill.
WRITTEN_CHUNKS_VERSION = 2
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
BIT_ORDER: Literal["little"] = "little"

#: zstd level inside blosc for the verdict bits: each recorded checkpoint re-encodes its chunk,
#: and level 1 encodes about 5x faster than 5 for nearly the same size (bench_store.py).
VERDICT_ZSTD_LEVEL = int(os.environ.get("CREATED_EQUAL_ZSTD_LEVEL", "1"))

NO_LABEL = -1
NO_PREDICTION = -1

#: Soft verdicts (format 2). The probability of the true class is stored as the uint8 code
#: round(PROBABILITY_SCALE * p), error at most 1 / (2 * PROBABILITY_SCALE); PROBABILITY_MISSING
#: marks an entry not recorded (or an example without a label). The steps were chosen by
#: benchmarks/bench_store.py --soft on a real population (RESULTS.md): the coarsest that keep
#: confidence and variability within 0.01 and the area under the margin's order; finer codes
#: store the epoch-to-epoch noise of the low bits and cost twice the bits.
PROBABILITY_SCALE = 32
PROBABILITY_MISSING = 255
#: The margin (true-class logit minus the largest other logit) is stored as the int8 code
#: round(MARGIN_SCALE * m) clipped to +-MARGIN_LIMIT: error at most 1 / (2 * MARGIN_SCALE) inside
#: +-MARGIN_LIMIT / MARGIN_SCALE, clipped beyond; MARGIN_MISSING marks an entry not recorded.
MARGIN_SCALE = 1
MARGIN_LIMIT = 127
MARGIN_MISSING = -128
#: The soft-verdict arrays of a split, where it records them.
SOFT_ARRAYS = ("probability", "margin")

#: The transpose of the verdict arrays' chunks: (networks, checkpoints, examples) is stored as
#: (examples, networks, checkpoints), the order the analysis kernels read.
STORED_ORDER = (2, 0, 1)


# ----------------------------------------------------------------------------------------------
# Codecs


@dataclass(frozen=True)
class ArrayCodecs:
    """The codec chain of one kind of array, as ``zarr.Group.create_array`` takes it.

    Parameters
    ----------
    filters : tuple of zarr array-to-array codecs
        Applied to a chunk before it is serialised (a transpose, for the verdict arrays).
    compressors : tuple of zarr bytes-to-bytes codecs
        Applied to the serialised bytes in order; the last one is always ``Crc32cCodec``.
    """

    filters: tuple[Any, ...] = ()
    compressors: tuple[Any, ...] = ()


def verdict_codecs() -> ArrayCodecs:
    """Codecs of ``correct_packed`` (networks, checkpoints, example bytes).

    The transpose puts example bytes outermost and checkpoints innermost; the bit shuffle then
    gathers bit j of consecutive bytes, so that one example's verdicts across the block's networks
    and checkpoints sit side by side in one bit plane (a learned example is a run of ones). Chosen
    in benchmarks/bench_store.py: 0.41 bits per entry on real MNIST-1D populations, and reads move
    one bit per entry.
    """
    return ArrayCodecs(
        filters=(TransposeCodec(order=STORED_ORDER),),
        compressors=(
            BloscCodec(cname="zstd", clevel=VERDICT_ZSTD_LEVEL, shuffle="bitshuffle", typesize=1),
            Crc32cCodec(),
        ),
    )


def prediction_codecs() -> ArrayCodecs:
    """Codecs of ``predictions`` (networks, checkpoints, examples): stored order, then zstd."""
    return ArrayCodecs(
        filters=(TransposeCodec(order=STORED_ORDER),),
        compressors=(ZstdCodec(level=3), Crc32cCodec()),
    )


def soft_codecs() -> ArrayCodecs:
    """Codecs of ``probability`` and ``margin`` (networks, checkpoints, examples), one byte per
    entry: stored order, then a bit shuffle and zstd, as the verdict bits (a trained network's
    codes change little between checkpoints and sit near the ends of their range)."""
    return ArrayCodecs(
        filters=(TransposeCodec(order=STORED_ORDER),),
        compressors=(
            BloscCodec(cname="zstd", clevel=VERDICT_ZSTD_LEVEL, shuffle="bitshuffle", typesize=1),
            Crc32cCodec(),
        ),
    )


def encode_probability(probability: np.ndarray) -> np.ndarray:
    """The stored code of true-class probabilities: uint8, NaN becomes PROBABILITY_MISSING.

    >>> encode_probability(np.array([0.0, 0.5, 0.51, 1.0, np.nan]))
    array([  0,  16,  16,  32, 255], dtype=uint8)
    """
    probability = np.asarray(probability, dtype=np.float64)
    code = np.rint(np.clip(probability, 0.0, 1.0) * PROBABILITY_SCALE)
    return np.where(np.isnan(probability), PROBABILITY_MISSING, code).astype(np.uint8)


def decode_probability(code: np.ndarray) -> np.ndarray:
    """True-class probabilities from their codes, float32; NaN where not recorded.

    >>> decode_probability(np.array([0, 16, 32, 255], np.uint8))
    array([0. , 0.5, 1. , nan], dtype=float32)
    """
    code = np.asarray(code)
    value = code.astype(np.float32) / np.float32(PROBABILITY_SCALE)
    return np.where(code == PROBABILITY_MISSING, np.float32(np.nan), value)


def encode_margin(margin: np.ndarray) -> np.ndarray:
    """The stored code of margins: int8, clipped, NaN becomes MARGIN_MISSING.

    >>> encode_margin(np.array([-np.inf, -0.4, 0.7, 3.3, np.nan]))
    array([-127,    0,    1,    3, -128], dtype=int8)
    """
    margin = np.asarray(margin, dtype=np.float64)
    # Clipped before scaling, so that an infinite margin (a probability of 0) cannot overflow.
    bound = (MARGIN_LIMIT + 1) / MARGIN_SCALE
    code = np.clip(
        np.rint(np.clip(np.nan_to_num(margin), -bound, bound) * MARGIN_SCALE),
        -MARGIN_LIMIT,
        MARGIN_LIMIT,
    )
    return np.where(np.isnan(margin), MARGIN_MISSING, code).astype(np.int8)


def decode_margin(code: np.ndarray) -> np.ndarray:
    """Margins from their codes, float32; NaN where not recorded.

    >>> decode_margin(np.array([-127, 0, 3, -128], np.int8))
    array([-127.,    0.,    3.,   nan], dtype=float32)
    """
    code = np.asarray(code)
    value = code.astype(np.float32) / np.float32(MARGIN_SCALE)
    return np.where(code == MARGIN_MISSING, np.float32(np.nan), value)


def probability_values() -> np.ndarray:
    """The probability of every code, float32 (256,): :func:`decode_probability` of 0..255 (what
    :func:`kernels.soft.accumulate_soft_codes` looks codes up in)."""
    return decode_probability(np.arange(256, dtype=np.uint8))


def margin_values() -> np.ndarray:
    """The margin of every code c at c + 128, float32 (256,): :func:`decode_margin` of
    -128..127."""
    return decode_margin(np.arange(-128, 128, dtype=np.int16).astype(np.int8))


def plain_codecs() -> ArrayCodecs:
    """Codecs of every other array: zstd, then the checksum."""
    return ArrayCodecs(compressors=(ZstdCodec(level=3), Crc32cCodec()))


# ----------------------------------------------------------------------------------------------
# Arrays


@dataclass(frozen=True)
class ArrayLayout:
    """Dims, dtype, fill value and codecs of one array of the format.

    Parameters
    ----------
    dims : tuple of str
        Dimension names, stored as zarr ``dimension_names``.
    dtype : str
    fill : int, float or bool
        Fill value: what a reader sees where nothing was written.
    codecs : callable returning ArrayCodecs
    writer_owned : bool
        Whether writers fill it: such an array is chunked by exactly ``network_block`` along
        ``networks``. The others are written only when a store is created or grown.
    """

    dims: tuple[str, ...]
    dtype: str
    fill: int | float | bool
    codecs: Callable[[], ArrayCodecs] = plain_codecs
    writer_owned: bool = False
    #: Array attributes; for the coded soft verdicts, the CF ``scale_factor`` with which
    #: xarray decodes them (and masks the fill value, the "not recorded" code, to NaN).
    attributes: Mapping[str, Any] = field(default_factory=dict)


_NETWORKS = ("networks",)
_CHECKPOINTS = ("checkpoints",)
_EXAMPLES = ("examples",)
_NAN = float("nan")

#: The root's coordinates besides the dimension coordinates: xarray (CF decoding) reads the
#: ``coordinates`` attribute of the root's variables and shows these as coordinates.
ROOT_COORDINATES = (
    "network_group network_init_seed network_order_seed checkpoint_epoch checkpoint_step"
)


def _about(long_name: str, units: str, description: str, **more: Any) -> dict[str, Any]:
    """CF-style attributes of an array: what a reader of the store sees (docs/store-format.md)."""
    return {"long_name": long_name, "units": units, "description": description, **more}


#: Arrays of the root group, by name.
ROOT_ARRAYS: Mapping[str, ArrayLayout] = {
    "networks": ArrayLayout(
        _NETWORKS, "int64", -1, attributes=_about("network id", "1", "0 to networks - 1")
    ),
    "network_group": ArrayLayout(
        _NETWORKS,
        "int16",
        -1,
        # flag_values and flag_meanings (the group names) are added when the store is made.
        attributes=_about("group of the network", "1", "index into the root's groups"),
    ),
    "network_init_seed": ArrayLayout(
        _NETWORKS, "int64", -1, attributes=_about("initialisation seed", "1", "-1 if unknown")
    ),
    "network_order_seed": ArrayLayout(
        _NETWORKS, "int64", -1, attributes=_about("mini-batch order seed", "1", "-1 if unknown")
    ),
    "checkpoints_completed": ArrayLayout(
        _NETWORKS,
        "int32",
        0,
        writer_owned=True,
        attributes=_about(
            "checkpoints completed",
            "checkpoints",
            "entries of a network are recorded below this checkpoint index only; the network "
            "is complete when it equals the number of checkpoints",
            coordinates=ROOT_COORDINATES,
        ),
    ),
    "train_loss": ArrayLayout(
        ("networks", "checkpoints"),
        "float32",
        _NAN,
        writer_owned=True,
        attributes=_about(
            "training loss",
            "nats",
            "mean training loss of the network at the checkpoint; NaN where not recorded",
            coordinates=ROOT_COORDINATES,
        ),
    ),
    "checkpoints": ArrayLayout(
        _CHECKPOINTS, "int64", -1, attributes=_about("checkpoint index", "1", "0 to T - 1")
    ),
    "checkpoint_epoch": ArrayLayout(
        _CHECKPOINTS,
        "float64",
        _NAN,
        attributes=_about("epoch", "epochs", "epochs trained at the checkpoint; 0 is the init"),
    ),
    "checkpoint_step": ArrayLayout(
        _CHECKPOINTS,
        "int64",
        -1,
        attributes=_about("optimiser step", "steps", "steps taken at the checkpoint; -1 unknown"),
    ),
}

#: Arrays of each split group ``splits/<name>``, by name. ``predictions`` exists only where the
#: split records them, ``probability`` and ``margin`` only where it records soft verdicts
#: (format 2), ``membership`` only in the membership split.
SPLIT_ARRAYS: Mapping[str, ArrayLayout] = {
    "correct_packed": ArrayLayout(
        ("networks", "checkpoints", "example_bytes"),
        "uint8",
        0,
        codecs=verdict_codecs,
        writer_owned=True,
        attributes=_about(
            "correctness, 8 examples per byte",
            "1",
            "bit e % 8 of byte e // 8 (little bit order) is 1 where the network classifies "
            "example e correctly; numpy.unpackbits(..., axis=2, count=examples, "
            "bitorder='little') gives the bool view, as Population.correct does",
        ),
    ),
    "predictions": ArrayLayout(
        ("networks", "checkpoints", "examples"),
        "int16",
        NO_PREDICTION,
        codecs=prediction_codecs,
        writer_owned=True,
        attributes=_about(
            "predicted class",
            "1",
            f"class index of the largest output; {NO_PREDICTION} where there is no prediction",
        ),
    ),
    "probability": ArrayLayout(
        ("networks", "checkpoints", "examples"),
        "uint8",
        PROBABILITY_MISSING,
        codecs=soft_codecs,
        writer_owned=True,
        attributes={
            "long_name": "probability of the true class",
            "units": "1",
            "description": "softmax probability of the true class, in steps of 1/32; "
            f"{PROBABILITY_MISSING} (masked) where not recorded or the example has no label",
            "scale_factor": 1 / PROBABILITY_SCALE,
            "_FillValue": PROBABILITY_MISSING,
        },
    ),
    "margin": ArrayLayout(
        ("networks", "checkpoints", "examples"),
        "int8",
        MARGIN_MISSING,
        codecs=soft_codecs,
        writer_owned=True,
        attributes={
            "long_name": "true-class logit minus the largest other logit",
            "units": "logit",
            "description": f"rounded and clipped to [-{MARGIN_LIMIT}, {MARGIN_LIMIT}]; "
            f"{MARGIN_MISSING} (masked) where not recorded or the example has no label",
            "scale_factor": 1 / MARGIN_SCALE,
            "_FillValue": MARGIN_MISSING,
        },
    ),
    "examples": ArrayLayout(
        _EXAMPLES, "int64", -1, attributes=_about("example index", "1", "0 to examples - 1")
    ),
    "example_ids": ArrayLayout(
        _EXAMPLES, "int64", -1, attributes=_about("example id", "1", "index in the source set")
    ),
    "labels": ArrayLayout(
        _EXAMPLES,
        "int32",
        NO_LABEL,
        attributes=_about("true class", "1", f"{NO_LABEL} where the example has no label"),
    ),
    "final_accuracy": ArrayLayout(
        _NETWORKS,
        "float32",
        _NAN,
        writer_owned=True,
        attributes=_about(
            "accuracy at the last checkpoint", "1", "over labelled examples; NaN if none"
        ),
    ),
    "membership": ArrayLayout(
        ("networks", "examples"),
        "bool",
        True,
        writer_owned=True,
        attributes=_about("in the training subset", "1", "whether the network trains on it"),
    ),
}


def array_paths(splits: Iterable[str]) -> dict[str, ArrayLayout]:
    """Every array a store with these splits may hold, by path (``"splits/test/labels"``)."""
    paths = dict(ROOT_ARRAYS)
    for split in splits:
        paths.update({f"splits/{split}/{name}": layout for name, layout in SPLIT_ARRAYS.items()})
    return paths


def arrays_along(dim: str, splits: Iterable[str]) -> list[tuple[str, int]]:
    """Path and axis of every array with the dimension ``dim`` in a store with these splits."""
    return [
        (path, layout.dims.index(dim))
        for path, layout in array_paths(splits).items()
        if dim in layout.dims
    ]


# ----------------------------------------------------------------------------------------------
# Specs and fingerprints


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
        """The group as the root metadata lists it (its size is in ``network_group``)."""
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
    soft : bool
        Whether soft verdicts (true-class probability and margin) are stored for this split;
        they are recorded from logits or probabilities (:meth:`PopulationWriter.record`).
    metadata : mapping of str to array, dims (examples,), optional
        Per-example columns kept with the split (condition, corruption, severity, source):
        numbers as they are, anything else as categories (see :mod:`engine.store.metadata`).
    """

    labels: np.ndarray
    example_ids: np.ndarray | None = None
    predictions: bool = True
    fingerprint: str = ""
    soft: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)


def split_fingerprint(inputs: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of a split's inputs and labels (values, dtype and shape), in example order.

    Two stores hold the same split exactly when their fingerprints are equal:

    >>> x, y = np.zeros((3, 2), np.float32), np.array([0, 1, 1])
    >>> split_fingerprint(x, y) == split_fingerprint(x.copy(), y.copy())
    True
    >>> split_fingerprint(x, y) == split_fingerprint(x, y[::-1])
    False
    """
    digest = hashlib.sha256()
    for array in (np.ascontiguousarray(inputs), np.ascontiguousarray(labels)):
        digest.update(str(array.dtype).encode())
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def dataset_fingerprint(split_fingerprints: Mapping[str, str]) -> str:
    """One digest over every split's fingerprint, in split-name order.

    >>> dataset_fingerprint({"train": "a", "test": "b"}) == dataset_fingerprint(
    ...     {"test": "b", "train": "a"})
    True
    """
    digest = hashlib.sha256()
    for name in sorted(split_fingerprints):
        digest.update(f"{name}={split_fingerprints[name]};".encode())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------
# Opening and validating


def is_url(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a store by URL (``s3://...``, ``file://...``) rather than a folder."""
    return "://" in str(path)


def open_root(
    path: str | os.PathLike, mode: str, storage_options: dict | None = None
) -> tuple[zarr.Group, dict[str, Any]]:
    """Open the root group of a population store and check its format.

    Parameters
    ----------
    path : str or path
        A folder or a URL.
    mode : str
        ``"r"`` to read, ``"r+"`` to write into an existing store.
    storage_options : dict, optional
        Passed to fsspec for URLs.

    Returns
    -------
    root : zarr.Group
    meta : dict
        The root metadata (``attrs["created_equal"]``).

    Raises
    ------
    StoreError
        If the path does not exist, is not a population store, or has a newer format version.
    """
    if not is_url(path) and not Path(path).exists():
        raise StoreError(f"no population store at {path}: the path does not exist")
    try:
        # The engine reads each array's own metadata; the consolidated copy is for others.
        root = zarr.open_group(
            str(path),
            mode=mode,  # type: ignore[arg-type]
            storage_options=storage_options,
            use_consolidated=False,
        )
    except Exception as error:  # zarr raises several types for a folder that is not a group
        if type(error).__name__ == "GroupNotFoundError":
            raise StoreError(
                f"{path} is not a population store: no Zarr group there (no zarr.json)"
            ) from error
        if isinstance(error, ValueError):  # json.JSONDecodeError is one: a damaged zarr.json
            raise StoreError(
                f"unreadable root metadata of {path} (zarr.json): {type(error).__name__}; the "
                "store is damaged or not a population store"
            ) from error
        if isinstance(error, ImportError):  # fsspec's file system for the URL is missing
            raise StoreError(missing_file_system(path, error)) from error
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


#: The package fsspec needs for each URL scheme (``pip install`` names).
FILE_SYSTEM_PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "http": "aiohttp",
    "https": "aiohttp",
}


def missing_file_system(path: str | os.PathLike, error: ImportError) -> str:
    """The line that says which package to install to reach ``path``, where fsspec raised
    ``error`` for the file system of its URL.

    Examples
    --------
    >>> missing_file_system("s3://bucket/p.zarr", ImportError("Install s3fs to access S3"))
    's3://bucket/p.zarr needs the optional package s3fs to be read: pip install s3fs'
    """
    scheme = str(path).partition("://")[0].lower()
    package = FILE_SYSTEM_PACKAGES.get(scheme) or getattr(error, "name", None)
    if not package:
        return f"{path} cannot be read: a package it needs is missing ({error})"
    return f"{path} needs the optional package {package} to be read: pip install {package}"


def consolidate(path: str | os.PathLike, storage_options: dict | None = None) -> None:
    """Write the consolidated metadata of every group and array into the root ``zarr.json``,
    so that readers such as xarray open the store in one read and without a warning; every
    step that changes metadata after creation calls it again."""
    with warnings.catch_warnings():
        # zarr says consolidated metadata is not in the v3 spec yet; xarray reads it.
        warnings.simplefilter("ignore", zarr.errors.ZarrUserWarning)
        store: Any = str(path)
        if is_url(path):
            store = zarr.storage.FsspecStore.from_url(str(path), storage_options=storage_options)
        zarr.consolidate_metadata(store)


def name_groups(root: zarr.Group, names: Sequence[str]) -> None:
    """Give ``network_group`` the group names as CF flags (``flag_values``, ``flag_meanings``,
    and ``group_names`` for names with spaces), so that readers of the codes see the names."""
    array = get_array(root, "network_group")
    array.attrs.update(
        {
            "flag_values": list(range(len(names))),
            "flag_meanings": " ".join(name.replace(" ", "_") for name in names),
            "group_names": list(names),
        }
    )


def get_array(group: zarr.Group, name: str) -> zarr.Array:
    """The array at ``name`` in ``group`` (a path such as ``"splits/test/labels"``).

    Raises
    ------
    KeyError
        If there is nothing at ``name``.
    StoreError
        If ``name`` is a group, not an array.
    """
    found = group[name]
    if not isinstance(found, zarr.Array):
        raise StoreError(f"{group.store_path} holds a group, not an array, at {name!r}")
    return found


# ----------------------------------------------------------------------------------------------
# Reading chunks in stored order (the fast path of the analysis tasks)


@dataclass(frozen=True)
class StoreHandle:
    """What a task needs to open a store itself: a path or URL and fsspec options."""

    path: str
    storage_options: tuple = ()
    #: The store's format version: from 2 on, a missing chunk that holds recorded entries is
    #: an error (see :meth:`completed`).
    format_version: int = 1

    def completed(self, networks: tuple[int, int]) -> np.ndarray | None:
        """``checkpoints_completed`` of the networks ``[start, stop)``, dims (networks,), for
        :func:`read_stored_order` to tell a lost chunk from one never written; None for stores
        of format 1, where an unwritten chunk may hold recorded fill values."""
        if self.format_version < WRITTEN_CHUNKS_VERSION:
            return None
        start, stop = networks
        array = self.open_array("checkpoints_completed")
        try:
            return np.asarray(array[start:stop])
        except Exception as error:
            raise StoreError(
                f"corrupt or unreadable chunk in {self.path}/checkpoints_completed: "
                f"{type(error).__name__}"
            ) from error

    def open_array(self, name: str) -> zarr.Array:
        """Open the array ``name`` (``"splits/test/correct_packed"``) for reading."""
        options = dict(self.storage_options) or None
        try:
            return zarr.open_array(
                f"{self.path.rstrip('/')}/{name}", mode="r", storage_options=options
            )
        except Exception as error:
            raise StoreError(
                f"cannot open {name} in {self.path}: {type(error).__name__}"
            ) from error


def _check_crc32c(data: bytes) -> bytes:
    import google_crc32c

    body, stored = data[:-4], data[-4:]
    if np.uint32(google_crc32c.value(body)).tobytes() != bytes(stored):
        raise ValueError("crc32c checksum mismatch")
    return body


def _decompress_blosc(data: bytes) -> bytes:
    import numcodecs

    return numcodecs.blosc.decompress(data)


def _decompress_zstd(data: bytes) -> bytes:
    import numcodecs

    return numcodecs.Zstd().decode(data)


# One decoder per kind of compressor the codec definitions above use. Levels, shuffles and type
# sizes are recorded in each blosc or zstd frame, so chunks written at other settings decode too.
_DECODERS: dict[type, Callable[[bytes], bytes]] = {
    Crc32cCodec: _check_crc32c,
    BloscCodec: _decompress_blosc,
    ZstdCodec: _decompress_zstd,
}


@functools.cache
def stored_order_definitions() -> tuple[ArrayCodecs, ...]:
    """The codec chains of the format that store chunks in :data:`STORED_ORDER`."""
    stored_order = (TransposeCodec(order=STORED_ORDER),)
    chains = [layout.codecs() for layout in SPLIT_ARRAYS.values()]
    return tuple(chain for chain in chains if chain.filters == stored_order)


def stored_order_decoders(array: zarr.Array) -> list[Callable[[bytes], bytes]] | None:
    """The decoders, outermost codec first, that turn a stored chunk of ``array`` into its
    bytes in stored order; None where the chunks must go through zarr instead.

    That is where the array's codec chain is not one of :func:`stored_order_definitions` (same
    filters, plain bytes, same kinds of compressors in the same order), where chunks are sharded
    or stored in the other byte order than this machine's, or where the store has no synchronous
    read (fsspec stores, zarr before 3.1.6).
    """
    if array.shards is not None or not callable(getattr(array.store, "get_sync", None)):
        return None
    serializer = array.serializer
    if not isinstance(serializer, BytesCodec):
        return None
    endian = serializer.endian
    if array.dtype.itemsize > 1 and endian is not None and endian.value != sys.byteorder:
        return None
    kinds = [type(codec) for codec in array.compressors]
    for chain in stored_order_definitions():
        if array.filters == chain.filters and kinds == [type(c) for c in chain.compressors]:
            return [_DECODERS[kind] for kind in reversed(kinds)]
    return None


# ----------------------------------------------------------------------------------------------
# Chunks that must exist (format 2)
#
# Zarr reads a chunk that is not there as its fill value, by design. From format 2 on, writers
# write every chunk they touch (zarr's ``write_empty_chunks``), so a chunk of a writer-filled
# (networks, checkpoints[, ...]) array must exist as soon as any network of its block is marked
# complete past the chunk's first checkpoint; one that does not was deleted or lost, and reading
# it as fill would turn damage into numbers (an accuracy of 0, an agreement of 1).


def recorded_writes(version: int) -> Any:
    """The zarr array config (``ArrayConfigParams``) writers of a store of format ``version``
    use."""
    return {"write_empty_chunks": version >= WRITTEN_CHUNKS_VERSION}


def chunk_exists(array: zarr.Array, chunk_coords: tuple[int, ...]) -> bool | None:
    """Whether the chunk at ``chunk_coords`` is stored; None where the store cannot tell cheaply
    (a store that is neither a local folder nor readable synchronously)."""
    key = array.metadata.encode_chunk_key(chunk_coords)
    root = getattr(array.store, "root", None)
    if isinstance(root, Path):
        return (root / array.path / key).exists()
    if callable(getattr(array.store, "get_sync", None)):
        buffer = (array.store_path / key).get_sync(prototype=default_buffer_prototype())
        return buffer is not None
    return None


def chunk_is_recorded(
    array: zarr.Array, chunk_coords: tuple[int, ...], completed: np.ndarray, first_network: int
) -> bool:
    """Whether a chunk of a (networks, checkpoints[, ...]) array holds recorded entries.

    Parameters
    ----------
    completed : ndarray of int, dims (networks,)
        ``checkpoints_completed`` of the networks from ``first_network`` on (at least those of
        the chunk's block).
    """
    network_chunk, checkpoint_chunk = array.chunks[0], array.chunks[1]
    start = chunk_coords[0] * network_chunk - first_network
    block = completed[max(start, 0) : start + network_chunk]
    return bool(block.size) and int(block.max()) > chunk_coords[1] * checkpoint_chunk


def require_recorded_chunks(
    array: zarr.Array, region: Sequence[tuple[int, int]], completed: np.ndarray
) -> None:
    """Raise StoreError if a chunk of the region that holds recorded entries is missing.

    Parameters
    ----------
    array : zarr.Array, dims (networks, checkpoints[, ...])
    region : sequence of (int, int)
        Half-open range read along each dim (networks first); dims left out are read whole.
    completed : ndarray of int, dims (networks,)
        ``checkpoints_completed`` of the networks from the region's first one on.
    """
    chunks, shape = array.chunks, array.shape
    ranges = [tuple(region[d]) if d < len(region) else (0, shape[d]) for d in range(len(shape))]
    if any(stop <= start for start, stop in ranges):
        return
    coords = [
        range(start // c, -(-stop // c)) for (start, stop), c in zip(ranges, chunks, strict=True)
    ]
    first_network = ranges[0][0]
    for i in coords[0]:
        for j in coords[1]:
            if not chunk_is_recorded(array, (i, j), completed, first_network):
                continue
            for tail in itertools.product(*coords[2:]):
                if chunk_exists(array, (i, j, *tail)) is False:
                    key = array.metadata.encode_chunk_key((i, j, *tail))
                    raise StoreError(
                        f"missing chunk {key} of {array.store_path}: its networks are recorded "
                        "there but the chunk is gone (deleted or lost); the store is damaged"
                    )


def _read_chunk(
    array: zarr.Array,
    chunk_coords: tuple[int, ...],
    decoders: list[Callable[[bytes], bytes]],
    completed: np.ndarray | None,
    first_network: int,
) -> np.ndarray:
    """One whole stored chunk of a (networks, checkpoints, examples) array, dims (x, n, t)."""
    key = array.metadata.encode_chunk_key(chunk_coords)
    buffer = (array.store_path / key).get_sync(prototype=default_buffer_prototype())
    chunk = array.chunks
    shape = (chunk[2], chunk[0], chunk[1])
    if buffer is None:
        if completed is not None and chunk_is_recorded(
            array, chunk_coords, completed, first_network
        ):
            raise StoreError(
                f"missing chunk {key} of {array.store_path}: its networks are recorded there "
                "but the chunk is gone (deleted or lost); the store is damaged"
            )
        return np.full(shape, array.fill_value, dtype=array.dtype)
    data = buffer.to_bytes()
    for decode in decoders:
        data = decode(data)
    return np.frombuffer(data, dtype=array.dtype).reshape(shape)


def read_stored_order(
    array: zarr.Array,
    networks: tuple[int, int],
    checkpoints: tuple[int, int],
    examples: tuple[int, int],
    *,
    direct: bool = True,
    completed: np.ndarray | None = None,
) -> np.ndarray:
    """Read a region of a (networks, checkpoints, examples) array as dims (x, n, t).

    Where the region lies inside one stored chunk, starts at its corner, and the array has one
    of the format's stored-order encodings (:func:`stored_order_decoders`), the chunk is decoded
    straight into that order, which saves the transpose back that Zarr would do and that the
    caller would undo. Any other region or encoding, or ``direct=False``, goes through Zarr.

    ``completed`` (``checkpoints_completed`` of networks ``networks[0]`` on; give it for stores
    of format 2 and later) turns a missing chunk that holds recorded entries into an error
    instead of fill values.

    Raises
    ------
    StoreError
        If a chunk is corrupt (its crc32c does not match), missing though recorded, or cannot
        be read.
    """
    (n0, n1), (t0, t1), (x0, x1) = networks, checkpoints, examples
    label = f"{array.store_path} at [{n0}:{n1}, {t0}:{t1}, {x0}:{x1}]"
    chunk = array.chunks
    decoders = stored_order_decoders(array) if direct else None
    aligned = (
        n0 % chunk[0] == 0
        and t0 % chunk[1] == 0
        and x0 % chunk[2] == 0
        and n1 - n0 <= chunk[0]
        and t1 - t0 <= chunk[1]
        and x1 - x0 <= chunk[2]
    )
    try:
        if decoders is not None and aligned:
            coords = (n0 // chunk[0], t0 // chunk[1], x0 // chunk[2])
            block = _read_chunk(array, coords, decoders, completed, n0)
            return block[: x1 - x0, : n1 - n0, : t1 - t0]
        if completed is not None:
            require_recorded_chunks(array, (networks, checkpoints, examples), completed)
        region = np.asarray(array[n0:n1, t0:t1, x0:x1])
        return np.ascontiguousarray(region.transpose(2, 0, 1))
    except StoreError:
        raise
    except Exception as error:
        raise StoreError(
            f"corrupt or unreadable chunk in {label}: {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        ) from error

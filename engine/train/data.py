"""Data sets for population training: built-in offline sets, users' files, probes and hold-outs.

Every loader returns a :class:`Dataset`: float32 inputs of one kind (``image`` (C, H, W),
``sequence`` (C, L) or ``vector`` (D,)), int64 labels (-1 where an example has none) and example
ids that index the source data set. Inputs are standardised with the training split's statistics
(per channel for images and sequences, per feature for vectors), so every architecture sees data
of the same scale. This module imports numpy (and scipy, PIL, scikit-learn where a format needs
them) but never torch: the trainer moves the arrays to its device.

Users' formats are parsed here, without torchvision: MNIST and Fashion-MNIST idx files (optionally
gzipped), CIFAR-10/100 python pickle batches, SVHN ``.mat`` files, ``.npz`` arrays and a folder of
images per class.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import ConfigError
from engine.train.limits import (
    MAX_CLASSES,
    MAX_DIMS,
    MAX_GENERATED_VALUES,
    MAX_IMAGE_SIZE,
    MAX_PROBE_EXAMPLES,
    MAX_SAMPLES,
    MAX_SEED,
    Bound,
)

#: Names accepted by ``--dataset``.
BUILTIN_DATASETS = ("digits", "mnist1d", "gaussian", "teacher")
FILE_DATASETS = ("npz", "mnist", "fashion-mnist", "cifar10", "cifar100", "svhn", "imagefolder")
DATASETS = BUILTIN_DATASETS + FILE_DATASETS
PROBES = ("noise", "patterns")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

#: Standard download locations of the public data sets (``--download``). Tests point these at
#: ``file://`` mirrors; a missing connection becomes a one-line :class:`ConfigError`.
DOWNLOAD_URLS: dict[str, list[str]] = {
    "mnist": [
        f"https://ossci-datasets.s3.amazonaws.com/mnist/{name}"
        for name in (
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        )
    ],
    "fashion-mnist": [
        f"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{name}"
        for name in (
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        )
    ],
    "cifar10": ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"],
    "cifar100": ["https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"],
    "svhn": [
        "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
        "http://ufldl.stanford.edu/housenumbers/test_32x32.mat",
    ],
}

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


@dataclass(frozen=True)
class DataConfig:
    """Which data set to build and how; saved with the study (without the paths).

    Attributes
    ----------
    name : str
        One of :data:`DATASETS`.
    data_dir : str, optional
        Folder (or ``.npz`` file) of a user's data set.
    download : bool
        Fetch a public data set into ``data_dir`` when its files are missing.
    samples : int
        Examples to generate for ``mnist1d`` (default 5000), ``gaussian`` and ``teacher``
        (default 3000); 0 means the default.
    classes, dims : int
        Classes and input dimensions of the synthetic ``gaussian`` and ``teacher`` sets.
    separation : float
        Standard deviation of the Gaussian class means (in units of the within-class spread).
    holdout_classes : tuple of int
        Classes removed from training and testing and recorded as the label-free ``holdout``
        split (out-of-sample examples); the remaining classes are renumbered from 0.
    probes : tuple of str
        Artificial probe splits to add: ``noise`` and/or ``patterns`` (labels -1).
    probe_examples : int
        Examples per probe split.
    test_fraction : float
        Share of examples held out as ``test`` where the source has no test split.
    image_size : int
        Side in pixels that ``imagefolder`` images are resized to (0: the first image's size).
    data_seed : int
        Seed of the synthetic generators, the train/test cut and the probes (not of networks).
    """

    name: str = "digits"
    data_dir: str | None = None
    download: bool = False
    samples: int = 0
    classes: int = 10
    dims: int = 20
    separation: float = 1.0
    holdout_classes: tuple[int, ...] = ()
    probes: tuple[str, ...] = ()
    probe_examples: int = 500
    test_fraction: float = 0.25
    image_size: int = 0
    data_seed: int = 0

    def to_json(self) -> dict:
        """The settings that define the data (where the files live does not)."""
        values = asdict(self)
        values.pop("data_dir")
        values.pop("download")
        values["holdout_classes"] = list(self.holdout_classes)
        values["probes"] = list(self.probes)
        return values

    def validate(self) -> None:
        if self.name not in DATASETS:
            raise ConfigError(
                f"unknown data set {self.name!r}; choose one of {', '.join(DATASETS)}"
            )
        unknown = [p for p in self.probes if p not in PROBES]
        if unknown:
            raise ConfigError(f"unknown probe set {unknown[0]!r}; choose from {', '.join(PROBES)}")
        if self.name in FILE_DATASETS and not self.data_dir:
            raise ConfigError(f"data set {self.name!r} reads files: give --data-dir")
        if self.data_seed < 0 or self.image_size < 0:
            raise ConfigError("data_seed and image_size must be >= 0")
        for name, bound in DATA_BOUNDS.items():
            bound.check(name, getattr(self, name))
        self._check_generated_size()

    def _check_generated_size(self) -> None:
        """Refuse generated sets too small to give train and test an example, or too large."""
        if self.name not in ("mnist1d", "gaussian", "teacher") or not self.samples:
            return
        if self.name == "mnist1d":
            # MNIST-1D makes samples // 10 examples of each of its 10 classes, 80% to train.
            if self.samples < 10:
                raise ConfigError(
                    f"samples must be >= 10 for mnist1d (one per class), got {self.samples}"
                )
            return
        test = max(1, int(round(self.test_fraction * self.samples)))
        if self.samples - test < 1:
            raise ConfigError(
                f"samples {self.samples} leaves no training example once test_fraction "
                f"{self.test_fraction} of them is held out for testing; give more"
            )
        if self.samples * self.dims > MAX_GENERATED_VALUES:
            raise ConfigError(
                f"samples x dims must be <= {MAX_GENERATED_VALUES:,} values, got "
                f"{self.samples} x {self.dims}"
            )


#: The range of every number of a data set (``samples``, ``image_size`` 0: the default).
DATA_BOUNDS = {
    "samples": Bound(0, MAX_SAMPLES),
    "classes": Bound(2, MAX_CLASSES),
    "dims": Bound(1, MAX_DIMS),
    "separation": Bound(0.0),
    "probe_examples": Bound(1, MAX_PROBE_EXAMPLES),
    "test_fraction": Bound(0.0, 1.0, low_open=True, high_open=True),
    "image_size": Bound(0, MAX_IMAGE_SIZE),
    "data_seed": Bound(0, MAX_SEED),
}


@dataclass
class Split:
    """One split: inputs (examples, *input_shape) float32, labels (examples,) int64 (-1: none),
    example_ids (examples,) int64 indices into the source data set."""

    inputs: np.ndarray
    labels: np.ndarray
    example_ids: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.size)


@dataclass
class Dataset:
    """A data set ready for training: ``splits['train']`` first, then test, then probes."""

    name: str
    kind: str  # "image" (C, H, W), "sequence" (C, L) or "vector" (D,)
    num_classes: int
    class_names: list[str]
    splits: dict[str, Split] = field(default_factory=dict)
    #: Added to test ids where train and test come from separate source arrays (MNIST-1D, idx
    #: files, ...), so that ids of a split mixing both (the class hold-out) stay unique.
    test_id_offset: int = 0

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.splits["train"].inputs.shape[1:])

    def fingerprints(self) -> dict[str, str]:
        """Split fingerprint (engine.split_fingerprint) of every split."""
        from engine.store import split_fingerprint

        return {name: split_fingerprint(s.inputs, s.labels) for name, s in self.splits.items()}


# ----------------------------------------------------------------------------------------------
# Entry point


def load_dataset(config: DataConfig) -> Dataset:
    """Build the data set that ``config`` describes.

    Raises
    ------
    ConfigError
        For an unknown name, a data dir without the expected files, a failed download, or
        inconsistent options (hold-out classes that do not exist, say).
    """
    config.validate()
    loader = _LOADERS[config.name]
    dataset = loader(config)
    if config.holdout_classes:
        dataset = hold_out_classes(dataset, config.holdout_classes)
    for split in ("train", "test"):
        # Training on no examples divides by zero; a split of none cannot be recorded.
        if len(dataset.splits[split]) == 0:
            raise ConfigError(
                f"data set {dataset.name!r} has no {split} examples (after test_fraction "
                f"{config.test_fraction} and hold-out classes); give more examples"
            )
    dataset = standardise(dataset)
    for probe in config.probes:
        dataset.splits[f"probe_{probe}"] = make_probe(
            probe, dataset.kind, dataset.input_shape, config.probe_examples, config.data_seed
        )
    return dataset


# ----------------------------------------------------------------------------------------------
# Transformations


def _split_by_fraction(inputs, labels, ids, fraction, seed) -> tuple[Split, Split]:
    order = np.random.default_rng(seed).permutation(labels.size)
    test_count = max(1, int(round(fraction * labels.size)))
    test, train = np.sort(order[:test_count]), np.sort(order[test_count:])
    return (
        Split(inputs[train], labels[train], ids[train]),
        Split(inputs[test], labels[test], ids[test]),
    )


def _with_test_split(splits: dict[str, Split], config: DataConfig) -> tuple[dict, int]:
    """Splits with a ``test`` split (cut from train by ``test_fraction`` where the source has
    none) placed second, and the test-id offset (train's size where test came separately)."""
    if "test" in splits:
        return splits, len(splits["train"])
    train, test = _split_by_fraction(
        splits["train"].inputs,
        splits["train"].labels,
        splits["train"].example_ids,
        config.test_fraction,
        config.data_seed,
    )
    return {"train": train, "test": test, **{k: v for k, v in splits.items() if k != "train"}}, 0


def hold_out_classes(dataset: Dataset, classes: tuple[int, ...]) -> Dataset:
    """Move every example of ``classes`` out of train and test into a label-free ``holdout``
    split and renumber the remaining classes 0..K'-1 (class names follow)."""
    held = sorted(set(int(c) for c in classes))
    if any(c < 0 or c >= dataset.num_classes for c in held):
        raise ConfigError(f"hold-out classes {held} are not all in 0..{dataset.num_classes - 1}")
    if len(held) >= dataset.num_classes - 1:
        raise ConfigError("hold-out must leave at least two classes to train on")
    kept = [c for c in range(dataset.num_classes) if c not in held]
    remap = np.full(dataset.num_classes, -1, np.int64)
    remap[kept] = np.arange(len(kept))
    splits: dict[str, Split] = {}
    holdout_inputs, holdout_ids = [], []
    for name, split in dataset.splits.items():
        is_held = np.isin(split.labels, held)
        splits[name] = Split(
            split.inputs[~is_held], remap[split.labels[~is_held]], split.example_ids[~is_held]
        )
        if name in ("train", "test"):
            holdout_inputs.append(split.inputs[is_held])
            holdout_ids.append(split.example_ids[is_held])
    if len(holdout_ids) == 2:
        holdout_ids[1] = holdout_ids[1] + dataset.test_id_offset
    inputs = np.concatenate(holdout_inputs)
    splits["holdout"] = Split(
        inputs, np.full(len(inputs), -1, np.int64), np.concatenate(holdout_ids).astype(np.int64)
    )
    return Dataset(
        dataset.name,
        dataset.kind,
        len(kept),
        [dataset.class_names[c] for c in kept],
        splits,
        dataset.test_id_offset,
    )


def standardise(dataset: Dataset) -> Dataset:
    """Centre and scale every split with the training split's mean and spread (per channel)."""
    train = dataset.splits["train"].inputs.astype(np.float64)
    axes = (0,) if dataset.kind == "vector" else (0,) + tuple(range(2, train.ndim))
    mean = train.mean(axis=axes, keepdims=True)
    std = train.std(axis=axes, keepdims=True)
    std[std < 1e-8] = 1.0
    for split in dataset.splits.values():
        split.inputs = ((split.inputs - mean) / std).astype(np.float32)
        split.labels = split.labels.astype(np.int64)
        split.example_ids = split.example_ids.astype(np.int64)
    return dataset


def make_probe(kind: str, data_kind: str, shape: tuple[int, ...], count: int, seed: int) -> Split:
    """Artificial probe inputs without labels, on the scale of standardised data.

    ``noise``: i.i.d. standard normal values. ``patterns``: stripes, checkerboards, gradients
    and blobs (images) or sines, square waves and ramps (sequences) of random frequency, phase
    and orientation, each scaled to mean 0 and standard deviation 1.
    """
    rng = np.random.default_rng([seed, 7919, PROBES.index(kind)])
    if kind == "noise":
        inputs = rng.standard_normal((count, *shape))
    elif data_kind == "image":
        channels, height, width = shape
        y, x = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
        inputs = np.empty((count, channels, height, width))
        for i in range(count):
            frequency = rng.uniform(0.5, max(1.0, min(height, width) / 2))
            angle, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
            along = np.cos(angle) * x + np.sin(angle) * y
            style = i % 4
            if style == 0:
                image = np.sin(2 * np.pi * frequency * along + phase)
            elif style == 1:
                image = np.sign(
                    np.sin(2 * np.pi * frequency * x + phase)
                    * np.sin(2 * np.pi * frequency * y + phase)
                )
            elif style == 2:
                image = along
            else:
                cy, cx, radius = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.5)
                image = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * radius**2))
            inputs[i] = image[None] * rng.uniform(0.5, 1.5, size=(channels, 1, 1))
    elif data_kind == "sequence":
        channels, length = shape
        t = np.linspace(0, 1, length)
        inputs = np.empty((count, channels, length))
        for i in range(count):
            frequency, phase = rng.uniform(0.5, max(1.0, length / 4)), rng.uniform(0, 2 * np.pi)
            wave = np.sin(2 * np.pi * frequency * t + phase)
            inputs[i] = [wave, np.sign(wave), t * rng.choice([-1, 1])][i % 3][None]
    else:
        inputs = np.sign(rng.standard_normal((count, *shape))) * (rng.random((count, *shape)) < 0.2)
    inputs = inputs.reshape(count, -1)
    inputs = inputs - inputs.mean(axis=1, keepdims=True)
    spread = inputs.std(axis=1, keepdims=True)
    inputs = inputs / np.where(spread < 1e-8, 1.0, spread)
    return Split(
        inputs.reshape(count, *shape).astype(np.float32),
        np.full(count, -1, np.int64),
        np.arange(count, dtype=np.int64),
    )


# ----------------------------------------------------------------------------------------------
# Built-in data sets


def _digits(config: DataConfig) -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    inputs = (digits.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    train, test = _split_by_fraction(
        inputs, labels, np.arange(labels.size), config.test_fraction, config.data_seed
    )
    return Dataset(
        "digits", "image", 10, [str(c) for c in range(10)], {"train": train, "test": test}
    )


def _mnist1d(config: DataConfig) -> Dataset:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = config.samples or 5000
    # make_dataset generates offline (get_dataset would download); it reseeds numpy's and
    # python's global generators, which we put back so the caller's state is untouched.
    import random

    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    train = Split(
        data["x"].astype(np.float32)[:, None], data["y"].astype(np.int64), np.arange(len(data["y"]))
    )
    test = Split(
        data["x_test"].astype(np.float32)[:, None],
        data["y_test"].astype(np.int64),
        np.arange(len(data["y_test"])),
    )
    return Dataset(
        "mnist1d",
        "sequence",
        10,
        [str(c) for c in range(10)],
        {"train": train, "test": test},
        len(train),
    )


def _gaussian(config: DataConfig) -> Dataset:
    rng = np.random.default_rng([config.data_seed, 1])
    count = config.samples or 3000
    means = rng.standard_normal((config.classes, config.dims)) * config.separation
    labels = rng.integers(0, config.classes, count)
    inputs = (means[labels] + rng.standard_normal((count, config.dims))).astype(np.float32)
    return _vector_dataset("gaussian", inputs, labels, config)


def _teacher(config: DataConfig) -> Dataset:
    """Gaussian inputs labelled by a random two-layer ReLU teacher network (argmax of logits)."""
    rng = np.random.default_rng([config.data_seed, 2])
    count = config.samples or 3000
    inputs = rng.standard_normal((count, config.dims)).astype(np.float32)
    hidden = 4 * config.dims
    first = rng.standard_normal((config.dims, hidden)) / np.sqrt(config.dims)
    second = rng.standard_normal((hidden, config.classes)) / np.sqrt(hidden)
    labels = np.argmax(np.maximum(inputs @ first, 0) @ second, axis=1).astype(np.int64)
    return _vector_dataset("teacher", inputs, labels, config)


def _vector_dataset(
    name: str, inputs: np.ndarray, labels: np.ndarray, config: DataConfig
) -> Dataset:
    """A generated set of vectors, cut into train and test by ``config.test_fraction``."""
    train, test = _split_by_fraction(
        inputs, labels, np.arange(labels.size), config.test_fraction, config.data_seed
    )
    return Dataset(
        name,
        "vector",
        config.classes,
        [str(c) for c in range(config.classes)],
        {"train": train, "test": test},
    )


# ----------------------------------------------------------------------------------------------
# Users' files


def _data_dir(config: DataConfig) -> Path:
    path = Path(os.path.expanduser(str(config.data_dir)))
    if not path.exists():
        if config.download and config.name in DOWNLOAD_URLS:
            path.mkdir(parents=True, exist_ok=True)
        else:
            raise ConfigError(f"data dir {path} does not exist")
    return path


def download(name: str, folder: Path) -> None:
    """Fetch the files of a public data set into ``folder`` (tar archives are unpacked)."""
    import tarfile
    import urllib.error
    import urllib.request

    folder.mkdir(parents=True, exist_ok=True)
    for url in DOWNLOAD_URLS[name]:
        target = folder / url.rsplit("/", 1)[-1]
        if not target.exists():
            partial = target.with_name(target.name + ".part")
            try:
                with (
                    urllib.request.urlopen(url, timeout=30) as response,
                    open(partial, "wb") as out,
                ):
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
            except (urllib.error.URLError, OSError, ValueError) as error:
                partial.unlink(missing_ok=True)
                reason = getattr(error, "reason", error)
                raise ConfigError(
                    f"cannot download {name} from {url} ({reason}); put the "
                    f"files in {folder} instead"
                ) from error
            os.replace(partial, target)
        if target.name.endswith(".tar.gz"):
            # Unpacked even when the archive was already there: we are called because its
            # files are missing (an earlier run stopped while unpacking, say).
            try:
                with tarfile.open(target) as archive:
                    archive.extractall(folder, filter="data")
            except (tarfile.TarError, EOFError, OSError) as error:
                target.unlink(missing_ok=True)
                reason = (str(error).splitlines() or [type(error).__name__])[0].rstrip(":")
                raise ConfigError(
                    f"cannot unpack {target} ({reason}); removed it, run again to download it anew"
                ) from error


def _find(folder: Path, names: list[str], subfolders: list[str]) -> Path | None:
    for sub in ["", *subfolders]:
        for name in names:
            candidate = folder / sub / name
            if candidate.exists():
                return candidate
    return None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an idx file (the MNIST format), gzipped or not, into an array of its stored shape."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ConfigError(f"{path} is not an idx file (bad magic number)")
    dtypes = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ConfigError(f"{path} has an unknown idx data type {data[2]:#x}")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(dtypes[data[2]])
    body = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ConfigError(f"{path} is truncated: expected {int(np.prod(shape))} values")
    return body.reshape(shape)


def _mnist_like(config: DataConfig) -> Dataset:
    folder = _data_dir(config)
    subfolders = (
        ["MNIST/raw", "mnist"]
        if config.name == "mnist"
        else ["FashionMNIST/raw", "fashion-mnist", "fashion_mnist"]
    )
    arrays = {}
    for key, stem in MNIST_FILES.items():
        found = _find(folder, [stem, stem + ".gz", stem.replace("-idx", ".idx")], subfolders)
        if found is None and config.download:
            download(config.name, folder)
            found = _find(folder, [stem, stem + ".gz"], subfolders)
        if found is None:
            raise ConfigError(
                f"data dir {folder} has no {stem}[.gz] for {config.name} "
                "(use --download where a connection exists)"
            )
        arrays[key] = read_idx(found)
    splits = {}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"].astype(np.int64)
        if images.ndim != 3 or images.shape[0] != labels.size:
            raise ConfigError(
                f"{config.name} {split} images {images.shape} and labels "
                f"{labels.shape} do not match"
            )
        splits[split] = Split(
            (images.astype(np.float32) / 255.0)[:, None], labels, np.arange(labels.size)
        )
    names = [str(c) for c in range(10)] if config.name == "mnist" else FASHION_CLASSES
    return Dataset(config.name, "image", 10, names, splits, len(splits["train"]))


def _unpickle(path: Path) -> dict:
    # CIFAR's own format is a python pickle; load only files the user pointed us at.
    with open(path, "rb") as handle:
        return pickle.load(handle, encoding="bytes")


def _cifar(config: DataConfig) -> Dataset:
    folder = _data_dir(config)
    ten = config.name == "cifar10"
    sub = "cifar-10-batches-py" if ten else "cifar-100-python"
    train_names = [f"data_batch_{i}" for i in range(1, 6)] if ten else ["train"]
    needed = [*train_names, "test_batch" if ten else "test"]

    def locate() -> Path | None:
        for base in (folder / sub, folder):
            if all((base / n).exists() for n in needed):
                return base
        return None

    base = locate()
    if base is None and config.download:
        download(config.name, folder)
        base = locate()
    if base is None:
        raise ConfigError(
            f"data dir {folder} has no {sub}/ with {', '.join(needed)} for "
            f"{config.name} (use --download where a connection exists)"
        )
    label_key = b"labels" if ten else b"fine_labels"

    def read(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        parts = [_unpickle(base / n) for n in names]
        data = np.concatenate([np.asarray(p[b"data"], np.uint8) for p in parts])
        labels = np.concatenate([np.asarray(p[label_key], np.int64) for p in parts])
        return (data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0), labels

    splits = {}
    for split, names in (("train", train_names), ("test", needed[-1:])):
        inputs, labels = read(names)
        splits[split] = Split(inputs, labels, np.arange(labels.size))
    classes = 10 if ten else 100
    meta = base / ("batches.meta" if ten else "meta")
    names = [str(c) for c in range(classes)]
    if meta.exists():
        raw = _unpickle(meta).get(b"label_names" if ten else b"fine_label_names")
        if raw is not None and len(raw) == classes:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in raw]
    return Dataset(config.name, "image", classes, names, splits, len(splits["train"]))


def _svhn(config: DataConfig) -> Dataset:
    from scipy.io import loadmat

    folder = _data_dir(config)
    files = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
    if not all(_find(folder, [f], ["svhn", "SVHN"]) for f in files.values()):
        if config.download:
            download("svhn", folder)
        else:
            raise ConfigError(
                f"data dir {folder} has no train_32x32.mat and test_32x32.mat for "
                "svhn (use --download where a connection exists)"
            )
    splits = {}
    for split, name in files.items():
        data = loadmat(_find(folder, [name], ["svhn", "SVHN"]))
        images = np.asarray(data["X"])  # (32, 32, 3, examples)
        labels = np.asarray(data["y"]).reshape(-1).astype(np.int64) % 10  # the digit 0 is 10
        splits[split] = Split(
            images.transpose(3, 2, 0, 1).astype(np.float32) / 255.0, labels, np.arange(labels.size)
        )
    return Dataset("svhn", "image", 10, [str(c) for c in range(10)], splits, len(splits["train"]))


def _npz_inputs(array: np.ndarray) -> tuple[np.ndarray, str]:
    array = np.asarray(array)
    scale = 255.0 if array.dtype == np.uint8 else 1.0
    array = array.astype(np.float32) / scale
    if array.ndim == 2:
        return array, "vector"
    if array.ndim == 3:
        return array[:, None], "image"  # (examples, H, W): one channel
    if array.ndim == 4:
        if array.shape[-1] in (1, 3, 4) and array.shape[1] not in (1, 3, 4):
            array = array.transpose(0, 3, 1, 2)  # channels last to channels first
        return np.ascontiguousarray(array), "image"
    raise ConfigError(f"npz inputs must have 2, 3 or 4 dimensions, not {array.ndim}")


def _npz(config: DataConfig) -> Dataset:
    """Arrays ``x_train``, ``y_train`` and optional ``x_test``, ``y_test``; any other
    ``x_<name>`` becomes split ``<name>`` (a probe if it has no ``y_<name>``)."""
    path = Path(os.path.expanduser(str(config.data_dir)))
    if path.is_dir():
        candidates = sorted(path.glob("*.npz"))
        if not candidates:
            raise ConfigError(f"data dir {path} holds no .npz file")
        path = candidates[0]
    if not path.exists():
        raise ConfigError(f"npz file {path} does not exist")
    try:
        arrays = dict(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path} as .npz: {error}") from error
    if "x_train" not in arrays or "y_train" not in arrays:
        raise ConfigError(f"{path} lacks the arrays x_train and y_train")
    names = ["train"] + (["test"] if "x_test" in arrays else [])
    names += sorted(k[2:] for k in arrays if k.startswith("x_") and k[2:] not in names)
    splits, kinds = {}, set()
    for name in names:
        inputs, kind = _npz_inputs(arrays[f"x_{name}"])
        kinds.add(kind)
        labels = np.asarray(arrays.get(f"y_{name}", np.full(len(inputs), -1))).astype(np.int64)
        if labels.shape != (len(inputs),):
            raise ConfigError(
                f"{path}: y_{name} has shape {labels.shape}, expected ({len(inputs)},)"
            )
        splits[name] = Split(inputs, labels, np.arange(len(inputs)))
    if len(kinds) != 1 or len({s.inputs.shape[1:] for s in splits.values()}) != 1:
        raise ConfigError(f"{path}: the x_ arrays differ in shape")
    splits, offset = _with_test_split(splits, config)
    classes = int(max(s.labels.max(initial=-1) for s in splits.values())) + 1
    if classes < 2:
        raise ConfigError(f"{path}: y_train needs at least two classes")
    if (splits["train"].labels < 0).any():
        # The loss would fail mid-training (a device-side assert on CUDA), after the store exists.
        raise ConfigError(
            f"{path}: y_train holds negative labels; every training example needs a class 0..K-1"
        )
    kind = kinds.pop()
    if kind == "image" and splits["train"].inputs.shape[2] == 1:
        kind = "sequence"
    return Dataset(path.stem, kind, classes, [str(c) for c in range(classes)], splits, offset)


def _imagefolder(config: DataConfig) -> Dataset:
    """``<dir>/train/<class>/*.png`` (+ ``<dir>/test/<class>/``) or ``<dir>/<class>/*.png``."""
    from PIL import Image

    folder = _data_dir(config)
    if (folder / "train").is_dir():
        sources = {"train": folder / "train"}
        if (folder / "test").is_dir():
            sources["test"] = folder / "test"
    else:
        sources = {"train": folder}
    class_names = sorted(p.name for p in sources["train"].iterdir() if p.is_dir())
    files = {
        split: [
            (f, c)
            for c, name in enumerate(class_names)
            for f in sorted((root / name).iterdir() if (root / name).is_dir() else [])
            if f.suffix.lower() in IMAGE_SUFFIXES
        ]
        for split, root in sources.items()
    }
    if len(class_names) < 2 or not files["train"]:
        raise ConfigError(
            f"image folder {folder} needs at least two class folders of images "
            f"({', '.join(IMAGE_SUFFIXES)})"
        )
    modes, sizes = set(), []
    for entries in files.values():
        for path, _ in entries:
            with Image.open(path) as image:
                modes.add(image.mode)
                sizes.append(image.size)
    mode = "L" if modes <= {"L", "1", "I;16"} else "RGB"
    size = (config.image_size, config.image_size) if config.image_size else sizes[0]
    splits = {}
    for split, entries in files.items():
        arrays = []
        for path, _ in entries:
            with Image.open(path) as opened:
                picture = opened.convert(mode)
                if picture.size != size:
                    picture = picture.resize(size, Image.Resampling.BILINEAR)
                array = np.asarray(picture, np.float32) / 255.0
            arrays.append(array[None] if mode == "L" else array.transpose(2, 0, 1))
        labels = np.asarray([c for _, c in entries], np.int64)
        channels = 1 if mode == "L" else 3
        splits[split] = Split(
            np.stack(arrays) if arrays else np.zeros((0, channels, size[1], size[0]), np.float32),
            labels,
            np.arange(labels.size),
        )
    splits, offset = _with_test_split(splits, config)
    return Dataset(folder.name, "image", len(class_names), class_names, splits, offset)


_LOADERS = {
    "digits": _digits,
    "mnist1d": _mnist1d,
    "gaussian": _gaussian,
    "teacher": _teacher,
    "npz": _npz,
    "mnist": _mnist_like,
    "fashion-mnist": _mnist_like,
    "cifar10": _cifar,
    "cifar100": _cifar,
    "svhn": _svhn,
    "imagefolder": _imagefolder,
}

"""Data sets: built-in generators, every users' file format (written here in its real format),
downloads from file:// mirrors, hold-out and probe splits, and the one-line errors."""

from __future__ import annotations

import gzip
import pickle
import random
import struct
import tarfile

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.train import data as data_module
from engine.train.data import DataConfig, load_dataset, read_idx


def write_idx(path, array: np.ndarray, gz: bool) -> None:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    if gz:
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def make_mnist_files(folder, gz=True, train=30, test=12):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz)
    return images, labels


def checks_standardised(split) -> None:
    assert split.inputs.dtype == np.float32
    assert split.labels.dtype == np.int64


def test_digits_split_is_fixed_and_standardised():
    dataset = load_dataset(DataConfig("digits"))
    train, test = dataset.splits["train"], dataset.splits["test"]
    assert dataset.kind == "image" and dataset.input_shape == (1, 8, 8)
    assert len(train) + len(test) == 1797
    assert set(train.example_ids).isdisjoint(test.example_ids)
    assert abs(float(train.inputs.mean())) < 1e-5 and abs(float(train.inputs.std()) - 1) < 1e-3
    again = load_dataset(DataConfig("digits"))
    assert dataset.fingerprints() == again.fingerprints()


def test_mnist1d_generates_offline_and_keeps_global_random_state():
    np.random.seed(123)
    random.seed(5)
    before = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(5)
    dataset = load_dataset(DataConfig("mnist1d", samples=400))
    after = (np.random.random(), random.random())
    assert before == after
    assert dataset.kind == "sequence" and dataset.input_shape == (1, 40)
    assert len(dataset.splits["train"]) == 320 and len(dataset.splits["test"]) == 80
    assert set(np.unique(dataset.splits["train"].labels)) == set(range(10))


@pytest.mark.parametrize("name", ["gaussian", "teacher"])
def test_synthetic_sets(name):
    dataset = load_dataset(DataConfig(name, samples=200, classes=4, dims=6))
    assert dataset.kind == "vector" and dataset.input_shape == (6,)
    labels = np.concatenate([s.labels for s in dataset.splits.values()])
    assert labels.min() >= 0 and labels.max() < 4 and len(labels) == 200
    other_seed = load_dataset(DataConfig(name, samples=200, classes=4, dims=6, data_seed=1))
    assert dataset.fingerprints() != other_seed.fingerprints()


def test_holdout_classes_become_a_label_free_split():
    full = load_dataset(DataConfig("digits"))
    dataset = load_dataset(DataConfig("digits", holdout_classes=(3, 7)))
    assert dataset.num_classes == 8 and "3" not in dataset.class_names
    holdout = dataset.splits["holdout"]
    assert (holdout.labels == -1).all()
    held_count = sum(int(np.isin(full.splits[s].labels, [3, 7]).sum()) for s in ("train", "test"))
    assert len(holdout) == held_count
    assert dataset.splits["train"].labels.max() == 7
    assert len(np.unique(holdout.example_ids)) == len(holdout)
    with pytest.raises(ConfigError, match="hold-out classes"):
        load_dataset(DataConfig("digits", holdout_classes=(12,)))


def test_probes_have_the_data_shape_and_no_labels():
    for name, samples in (("digits", 0), ("mnist1d", 200), ("gaussian", 100)):
        dataset = load_dataset(
            DataConfig(name, samples=samples, probes=("noise", "patterns"), probe_examples=40)
        )
        for probe in ("probe_noise", "probe_patterns"):
            split = dataset.splits[probe]
            assert split.inputs.shape == (40, *dataset.input_shape)
            assert (split.labels == -1).all()
            assert np.isfinite(split.inputs).all()
        assert not np.allclose(
            dataset.splits["probe_noise"].inputs, dataset.splits["probe_patterns"].inputs
        )


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_loader(tmp_path, name, gz):
    images, labels = make_mnist_files(tmp_path / "raw", gz=gz)
    dataset = load_dataset(DataConfig(name, data_dir=str(tmp_path / "raw")))
    assert dataset.input_shape == (1, 28, 28)
    assert len(dataset.splits["train"]) == 30 and len(dataset.splits["test"]) == 12
    np.testing.assert_array_equal(dataset.splits["test"].labels, labels)
    suffix = ".gz" if gz else ""
    raw = read_idx(tmp_path / "raw" / f"t10k-images-idx3-ubyte{suffix}")
    np.testing.assert_array_equal(raw, images)
    # torchvision's layout, <root>/MNIST/raw, is found too.
    if name == "mnist":
        make_mnist_files(tmp_path / "tv" / "MNIST" / "raw", gz=gz)
        assert len(load_dataset(DataConfig(name, data_dir=str(tmp_path / "tv"))).splits) == 2


def test_idx_reader_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ConfigError, match="not an idx file"):
        read_idx(tmp_path / "bad")
    truncated = struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x00" * 3
    (tmp_path / "short").write_bytes(truncated)
    with pytest.raises(ConfigError, match="truncated"):
        read_idx(tmp_path / "short")


def make_cifar(folder, hundred=False, per_batch=6):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    classes = 100 if hundred else 10
    names = ["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    key = b"fine_labels" if hundred else b"labels"
    for name in [*names, "test" if hundred else "test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            key: list(rng.integers(0, classes, per_batch)),
        }
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle)
    meta_key = b"fine_label_names" if hundred else b"label_names"
    with open(folder / ("meta" if hundred else "batches.meta"), "wb") as handle:
        pickle.dump({meta_key: [f"class{c}".encode() for c in range(classes)]}, handle)
    return batch


@pytest.mark.parametrize("hundred", [False, True])
def test_cifar_loader(tmp_path, hundred):
    sub = "cifar-100-python" if hundred else "cifar-10-batches-py"
    last = make_cifar(tmp_path / sub, hundred)
    name = "cifar100" if hundred else "cifar10"
    dataset = load_dataset(DataConfig(name, data_dir=str(tmp_path)))
    assert dataset.input_shape == (3, 32, 32)
    assert len(dataset.splits["train"]) == (6 if hundred else 30)
    assert dataset.num_classes == (100 if hundred else 10)
    assert dataset.class_names[3] == "class3"
    key = b"fine_labels" if hundred else b"labels"
    np.testing.assert_array_equal(dataset.splits["test"].labels, last[key])


def test_svhn_loader(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(2)
    for name, count in (("train_32x32.mat", 9), ("test_32x32.mat", 4)):
        images = rng.integers(0, 256, (32, 32, 3, count), dtype=np.uint8)
        digits = np.arange(count) % 10
        labels = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)
        savemat(tmp_path / name, {"X": images, "y": labels})
    dataset = load_dataset(DataConfig("svhn", data_dir=str(tmp_path)))
    assert dataset.input_shape == (3, 32, 32)
    assert len(dataset.splits["train"]) == 9
    assert dataset.splits["test"].labels.max() <= 9 and dataset.splits["test"].labels.min() >= 0
    # The digit 0 is stored as 10 in SVHN.
    assert 0 in dataset.splits["train"].labels


def test_npz_loader_vectors_images_and_probe_arrays(tmp_path):
    rng = np.random.default_rng(3)
    np.savez(
        tmp_path / "vectors.npz",
        x_train=rng.normal(size=(20, 5)),
        y_train=np.arange(20) % 3,
        x_test=rng.normal(size=(6, 5)),
        y_test=np.arange(6) % 3,
        x_ood=rng.normal(size=(4, 5)),
    )
    dataset = load_dataset(DataConfig("npz", data_dir=str(tmp_path / "vectors.npz")))
    assert dataset.kind == "vector" and dataset.num_classes == 3
    assert list(dataset.splits) == ["train", "test", "ood"]
    assert (dataset.splits["ood"].labels == -1).all()
    np.savez(
        tmp_path / "images.npz",
        x_train=rng.integers(0, 256, (12, 10, 10, 3), np.uint8),
        y_train=np.arange(12) % 2,
    )
    images = load_dataset(DataConfig("npz", data_dir=str(tmp_path / "images.npz")))
    assert images.kind == "image" and images.input_shape == (3, 10, 10)
    assert len(images.splits["train"]) + len(images.splits["test"]) == 12
    np.savez(
        tmp_path / "unlabelled.npz",
        x_train=rng.normal(size=(6, 5)),
        y_train=np.array([0, 1, -1, 1, 0, 1]),
        x_test=rng.normal(size=(2, 5)),
        y_test=np.array([-1, -1]),
    )
    with pytest.raises(ConfigError, match="y_train holds negative labels"):
        load_dataset(DataConfig("npz", data_dir=str(tmp_path / "unlabelled.npz")))
    np.savez(tmp_path / "broken.npz", x_train=np.zeros((3, 2)))
    with pytest.raises(ConfigError, match="x_train and y_train"):
        load_dataset(DataConfig("npz", data_dir=str(tmp_path / "broken.npz")))


def test_npz_and_image_folder_without_test_cut_one_from_train(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(5)
    np.savez(
        tmp_path / "mixed.npz",
        x_train=rng.normal(size=(20, 4)),
        y_train=np.arange(20) % 2,
        x_ood=rng.normal(size=(3, 4)),
    )
    npz = load_dataset(DataConfig("npz", data_dir=str(tmp_path / "mixed.npz"), test_fraction=0.25))
    assert list(npz.splits) == ["train", "test", "ood"]
    assert (len(npz.splits["train"]), len(npz.splits["test"])) == (15, 5)
    # Train and test ids index one source array: no offset, and together they cover it.
    assert npz.test_id_offset == 0
    ids = np.concatenate([npz.splits["train"].example_ids, npz.splits["test"].example_ids])
    assert sorted(ids) == list(range(20))
    with_test = tmp_path / "with_test.npz"
    np.savez(
        with_test,
        x_train=rng.normal(size=(8, 4)),
        y_train=np.arange(8) % 2,
        x_test=rng.normal(size=(3, 4)),
        y_test=np.arange(3) % 2,
    )
    assert load_dataset(DataConfig("npz", data_dir=str(with_test))).test_id_offset == 8
    for name in ("cat", "dog"):
        (tmp_path / "flat" / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (5, 5), dtype=np.uint8)).save(
                tmp_path / "flat" / name / f"{i}.png"
            )
    flat = load_dataset(
        DataConfig("imagefolder", data_dir=str(tmp_path / "flat"), test_fraction=0.25)
    )
    assert list(flat.splits) == ["train", "test"] and flat.test_id_offset == 0
    assert (len(flat.splits["train"]), len(flat.splits["test"])) == (6, 2)
    assert flat.input_shape == (1, 5, 5)


def test_image_folder_loader(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(4)
    for split, count in (("train", 3), ("test", 2)):
        for name in ("cat", "dog"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    dataset = load_dataset(DataConfig("imagefolder", data_dir=str(tmp_path)))
    assert dataset.class_names == ["cat", "dog"]
    assert dataset.input_shape == (3, 6, 6)
    assert len(dataset.splits["train"]) == 6 and len(dataset.splits["test"]) == 4
    resized = load_dataset(DataConfig("imagefolder", data_dir=str(tmp_path), image_size=4))
    assert resized.input_shape == (3, 4, 4)


def test_download_from_mirror(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    make_mnist_files(mirror, gz=True)
    urls = [(mirror / f).as_uri() for f in sorted(p.name for p in mirror.iterdir())]
    monkeypatch.setitem(data_module.DOWNLOAD_URLS, "mnist", urls)
    target = tmp_path / "data"
    dataset = load_dataset(DataConfig("mnist", data_dir=str(target), download=True))
    assert len(dataset.splits["train"]) == 30
    assert (target / "train-images-idx3-ubyte.gz").exists()
    # A CIFAR archive is unpacked after download.
    make_cifar(tmp_path / "src" / "cifar-10-batches-py")
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setitem(
        data_module.DOWNLOAD_URLS, "cifar10", [(tmp_path / "cifar-10-python.tar.gz").as_uri()]
    )
    cifar = load_dataset(DataConfig("cifar10", data_dir=str(tmp_path / "c"), download=True))
    assert len(cifar.splits["train"]) == 30
    # An archive downloaded but never unpacked (a run stopped in between) is unpacked now ...
    monkeypatch.setitem(
        data_module.DOWNLOAD_URLS, "cifar10", [(tmp_path / "nowhere.tar.gz").as_uri()]
    )
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "nowhere.tar.gz").write_bytes(
        (tmp_path / "cifar-10-python.tar.gz").read_bytes()
    )
    again = load_dataset(DataConfig("cifar10", data_dir=str(tmp_path / "d"), download=True))
    assert len(again.splits["train"]) == 30
    # ... and a damaged one is a one-line error that removes it, so a rerun downloads it anew.
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "nowhere.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(ConfigError, match="cannot unpack") as error:
        load_dataset(DataConfig("cifar10", data_dir=str(tmp_path / "e"), download=True))
    assert "\n" not in str(error.value)
    assert not (tmp_path / "e" / "nowhere.tar.gz").exists()


def test_download_without_connection_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(data_module.DOWNLOAD_URLS, "svhn", ["http://127.0.0.1:9/train_32x32.mat"])
    with pytest.raises(ConfigError, match="cannot download svhn") as error:
        load_dataset(DataConfig("svhn", data_dir=str(tmp_path / "svhn"), download=True))
    assert "\n" not in str(error.value)
    assert not list((tmp_path / "svhn").glob("*.part"))


@pytest.mark.parametrize(
    "name", ["mnist", "fashion-mnist", "cifar10", "cifar100", "svhn", "imagefolder"]
)
def test_data_dir_without_expected_files(tmp_path, name):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("nothing here")
    with pytest.raises(ConfigError) as error:
        load_dataset(DataConfig(name, data_dir=str(tmp_path / "empty")))
    assert "\n" not in str(error.value)


def test_unknown_names_and_missing_dir(tmp_path):
    with pytest.raises(ConfigError, match="unknown data set 'imagenet'"):
        load_dataset(DataConfig("imagenet"))
    with pytest.raises(ConfigError, match="unknown probe"):
        load_dataset(DataConfig("digits", probes=("stars",)))
    with pytest.raises(ConfigError, match="does not exist"):
        load_dataset(DataConfig("mnist", data_dir=str(tmp_path / "nowhere")))
    with pytest.raises(ConfigError, match="--data-dir"):
        load_dataset(DataConfig("cifar10"))
    with pytest.raises(ConfigError, match="data_seed and image_size must be >= 0"):
        load_dataset(DataConfig("digits", data_seed=-1))

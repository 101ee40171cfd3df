"""The examples of an import: labels from a file or a built-in data set, ids, a fingerprint.

The fingerprint is what makes two imports of the same examples provably aligned (equal
``dataset.fingerprint`` in their stores). It is :func:`engine.store.split_fingerprint` of the
examples' inputs and labels where the inputs are given (a ``.npy`` file, digested a block at a
time) or come from a data set the engine knows (then it equals the fingerprint of a population
the engine trained on that data set), and otherwise of the example ids and the labels.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.importers.core import Examples
from engine.importers.files import ArrayFile

#: Rows of an inputs file digested at a time.
_DIGEST_ROWS = 4096


def read_vector(path: str | os.PathLike, what: str, member: str | None = None) -> np.ndarray:
    """A 1-D array from a ``.npy`` file or an ``.npz`` member (``member``, else one named
    ``what``, else the only one), or a text file of one value per line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file {path} does not exist")
    if path.suffix in (".txt", ".csv"):
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        try:
            return np.array([int(line) for line in lines if line], np.int64)
        except ValueError:
            raise ConfigError(f"{path.name}: expected one integer per line") from None
    if path.suffix == ".npz" and member is None:
        import zipfile

        with zipfile.ZipFile(path) as archive:
            names = [n[: -len(".npy")] for n in archive.namelist() if n.endswith(".npy")]
        member = what if what in names else None
    with ArrayFile(path, member) as array:
        if len(array.shape) != 1:
            raise ConfigError(f"{array.name} has shape {array.shape}; {what} are one per example")
        return array.read(0, array.rows) if array.rows else np.empty(0, array.dtype)


def streamed_fingerprint(inputs: str | os.PathLike, labels: np.ndarray) -> str:
    """:func:`engine.store.split_fingerprint` of an inputs file and ``labels``, read a block of
    rows at a time (equal to it on the loaded array)."""
    labels = np.ascontiguousarray(labels)
    with ArrayFile(inputs) as array:
        if not array.shape or array.rows != labels.size:
            raise ConfigError(
                f"{array.name} holds {array.rows if array.shape else 0} inputs but there are "
                f"{labels.size} labels"
            )
        digest = hashlib.sha256()
        digest.update(str(array.dtype).encode())
        digest.update(str(tuple(array.shape)).encode())
        for start in range(0, array.rows, _DIGEST_ROWS):
            digest.update(array.read(start, min(start + _DIGEST_ROWS, array.rows)).tobytes())
    for part in (str(labels.dtype), str(labels.shape)):
        digest.update(part.encode())
    digest.update(labels.tobytes())
    return digest.hexdigest()


def load_examples(
    *,
    labels: str | os.PathLike | np.ndarray | None = None,
    dataset: str | None = None,
    data_dir: str | os.PathLike | None = None,
    dataset_split: str = "test",
    example_ids: str | os.PathLike | np.ndarray | None = None,
    inputs: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    metadata: str | os.PathLike | None = None,
    split: str = "test",
    dataset_name: str | None = None,
) -> Examples:
    """The examples of an import, from a labels file (or array) or from a data set.

    Parameters
    ----------
    labels : path or ndarray of int, dims (examples,), optional
        ``.npy``, ``.npz`` (member ``labels`` or the only one) or a text file of one per line.
    dataset : str, optional
        A data set :mod:`engine.train.data` knows (``digits``, ``mnist1d``, ``cifar10`` with
        ``data_dir``, ...): its ``dataset_split``'s labels, ids, class names and fingerprint.
    example_ids : path or ndarray of int, dims (examples,), optional
    inputs : path, optional
        A ``.npy`` file of the examples' inputs, for the fingerprint.
    class_names : sequence of str, optional
    metadata : path, optional
        A CSV or Parquet table, one row per example in order: its columns are kept as the
        examples' metadata.
    split : str
        The store's split.
    dataset_name : str, optional
        The store's data set name (the data set's, or ``"imported"``, where None).

    Raises
    ------
    ConfigError
        If neither or both of ``labels`` and ``dataset`` are given, or the files disagree.
    """
    if (labels is None) == (dataset is None):
        raise ConfigError(
            "the examples' labels are needed: give --labels FILE or --labels-from-dataset NAME "
            "(one of them)"
        )
    if dataset is not None:
        found = _dataset_examples(dataset, data_dir, dataset_split)
        values, ids, fingerprint, names = found
        name = dataset_name or dataset
    else:
        assert labels is not None
        values = labels if isinstance(labels, np.ndarray) else read_vector(labels, "labels")
        if not np.issubdtype(values.dtype, np.integer):
            raise ConfigError(f"labels must be integers, got {values.dtype}")
        ids, fingerprint, names = None, "", None
        name = dataset_name or "imported"
    if example_ids is not None:
        ids = (
            example_ids
            if isinstance(example_ids, np.ndarray)
            else read_vector(example_ids, "example_ids")
        )
        if ids.shape != values.shape:
            raise ConfigError(f"there are {ids.size} example ids but {values.size} labels")
    if inputs is not None:
        fingerprint = streamed_fingerprint(inputs, values)
    return Examples(
        labels=values.astype(np.int64),
        example_ids=None if ids is None else np.asarray(ids, np.int64),
        fingerprint=fingerprint,
        class_names=list(class_names) if class_names is not None else names,
        metadata=_metadata(metadata, values.size) if metadata is not None else {},
        dataset_name=name,
        split=split,
    )


def _dataset_examples(
    dataset: str, data_dir: str | os.PathLike | None, split: str
) -> tuple[np.ndarray, np.ndarray, str, list[str]]:
    from engine.store import split_fingerprint
    from engine.train.data import DataConfig, load_dataset

    loaded = load_dataset(DataConfig(name=dataset, data_dir=str(data_dir) if data_dir else None))
    if split not in loaded.splits:
        raise ConfigError(
            f"data set {dataset!r} has no split {split!r}; it has {', '.join(loaded.splits)}"
        )
    part = loaded.splits[split]
    return (
        np.asarray(part.labels),
        np.asarray(part.example_ids),
        split_fingerprint(part.inputs, part.labels),
        list(loaded.class_names),
    )


def _metadata(path: str | os.PathLike, num_examples: int) -> dict[str, Any]:
    from engine.importers.trials import read_table

    table, _ = read_table(path)
    if len(table) != num_examples:
        raise ConfigError(
            f"the metadata table has {len(table)} rows but there are {num_examples} examples"
        )
    return {str(name): table[name].to_numpy() for name in table.columns}

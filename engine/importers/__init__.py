"""Bringing existing populations into a store: ``engine import`` (docs/import.md).

Layout letters: n networks, t checkpoints, x examples, c classes. One module per source format,
each a :class:`~engine.importers.core.Source` read one block of networks at a time:

- :mod:`engine.importers.dense`: one ``.npy`` file or ``.npz`` member of logits, probabilities,
  predictions, correctness or margins, (n, [t,] x[, c]);
- :mod:`engine.importers.runs`: a folder of one ``.npy``, ``.npz`` or ``.pt`` file per run;
- :mod:`engine.importers.datamodels`: a datamodels store (``(num_models, ...)`` arrays and
  ``_completed.npy``), its training-subset masks as the store's membership;
- :mod:`engine.importers.trials`: long trial tables (CSV, Parquet), observers as networks;

and the common parts: :mod:`engine.importers.files` (arrays on disk, read by rows),
:mod:`engine.importers.examples` (labels, ids, fingerprints), :mod:`engine.importers.core` (the
streaming, resumable import) and :mod:`engine.importers.progress` (the bar).

>>> import numpy as np, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> rng = np.random.default_rng(0)
>>> np.save(folder / "logits.npy", rng.standard_normal((4, 30, 3)).astype(np.float16))
>>> examples = load_examples(labels=rng.integers(0, 3, 30))
>>> with open_source(folder / "logits.npy") as source:
...     report = import_population(source, folder / "pop.zarr", examples=examples)
>>> report.imported_networks, report.shape.kind
(4, 'logits')
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import ConfigError
from engine.importers.core import (
    FINAL_CHECKPOINT,
    KINDS,
    Examples,
    ImportReport,
    Source,
    SourceShape,
    default_block,
    import_population,
)
from engine.importers.datamodels import COMPLETED, DatamodelsSource
from engine.importers.dense import DenseSource
from engine.importers.examples import load_examples
from engine.importers.runs import RunFolderSource
from engine.importers.trials import TABLE_SUFFIXES, TrialColumns, TrialTableSource

#: The formats :func:`open_source` reads (``auto`` tells them apart).
FORMATS = ("auto", "npy", "npz", "runs", "datamodels", "trials")

__all__ = [
    "FINAL_CHECKPOINT",
    "FORMATS",
    "KINDS",
    "DatamodelsSource",
    "DenseSource",
    "Examples",
    "ImportReport",
    "RunFolderSource",
    "Source",
    "SourceShape",
    "TrialColumns",
    "TrialTableSource",
    "default_block",
    "detect_format",
    "import_population",
    "load_examples",
    "open_source",
]


def detect_format(path: str | os.PathLike) -> str:
    """The format of ``path``: by suffix for files; a folder is a datamodels store where it has
    ``_completed.npy``, trial tables where it holds only tables, else a folder of runs.

    Raises
    ------
    ConfigError
        If the path does not exist or its format cannot be told.
    """
    path = Path(path)
    if path.is_file():
        if path.suffix in (".npy", ".npz"):
            return path.suffix[1:]
        if path.suffix in TABLE_SUFFIXES:
            return "trials"
        raise ConfigError(
            f"cannot tell the format of {path.name}; give --format ({', '.join(FORMATS[1:])})"
        )
    if not path.is_dir():
        raise ConfigError(f"{path} does not exist")
    if (path / COMPLETED).is_file():
        return "datamodels"
    suffixes = {p.suffix for p in path.iterdir() if not p.name.startswith(".")}
    if suffixes and suffixes <= set(TABLE_SUFFIXES):
        return "trials"
    return "runs"


def open_source(
    path: str | os.PathLike,
    *,
    format: str = "auto",
    kind: str | None = None,
    member: str | None = None,
    order: str = "name",
    key: str | None = None,
    masks: str | None = None,
    columns: TrialColumns | None = None,
    split: str = "test",
    dataset_name: str | None = None,
) -> Source:
    """Open a population on disk for :func:`import_population` (use it as a context manager).

    Parameters
    ----------
    path : str or path
    format : str
        One of :data:`FORMATS`.
    kind : str, optional
        One of :data:`KINDS` (dense arrays, runs, datamodels); inferred where None.
    member : str, optional
        The ``.npz`` member (``.pt`` dict key) to read.
    order : str
        The order of a folder of runs: ``name``, ``natural`` or a file listing them.
    key, masks : str, optional
        The arrays of a datamodels store to import, and its masks (``""``: none).
    columns : TrialColumns, optional
        The columns of a trial table.
    split, dataset_name : str
        The split and data set name of a trial table's examples (other sources take them from
        :func:`load_examples`).
    """
    if format not in FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if format == "auto":
        format = detect_format(path)
    if format in ("npy", "npz"):
        return DenseSource(path, kind=kind, member=member)
    if format == "runs":
        return RunFolderSource(path, order=order, kind=kind, member=member)
    if format == "datamodels":
        return DatamodelsSource(path, key=key, masks=masks, kind=kind)
    if kind not in (None, "predictions"):
        raise ConfigError("trial tables hold responses: their kind is predictions")
    return TrialTableSource(path, columns=columns, dataset_name=dataset_name, split=split)

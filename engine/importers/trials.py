"""Long trial tables: one row per (observer, example[, checkpoint]) with a response and a label.

The layout of the model-vs-human benchmark's raw data (columns ``subj, session, trial, rt,
object_response, category, condition, imagename``; one CSV per observer and experiment): a CSV
or Parquet file, or a folder of them read as one table. Observers become networks (sorted by
name, kept as the networks' names), examples are aligned by the id column across observers
(sorted by id), and class names are the sorted union of the labels and the responses. Every
observer must have seen the same examples (at every checkpoint): otherwise the import is
refused with the counts. A missing response (empty or NaN) is a wrong answer of no class (-1).

Every other column that is constant per example (the condition, say) is kept as the examples'
metadata; columns that vary between observers of one example (reaction time, session, trial)
are not per-example and are left out. The id column itself is kept as metadata too, so the
examples keep their names.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ConfigError
from engine.importers.core import Examples, Source, SourceShape

if TYPE_CHECKING:
    import pandas as pd

#: File suffixes read as trial tables.
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
#: What a metadata column's name may hold (a Zarr array name); anything else becomes ``_``.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class TrialColumns:
    """The columns of a trial table; the defaults are model-vs-human's.

    Attributes
    ----------
    observer : str
        Who responded (a human subject, a model): one network each.
    example : str
        The example's id, the same for every observer who saw it.
    response : str
        The class the observer chose.
    label : str
        The example's true class.
    checkpoint : str, optional
        The checkpoint of a response (numbers become epochs; anything else is kept as names of
        checkpoints of unknown epoch); one checkpoint where None.
    """

    observer: str = "subj"
    example: str = "imagename"
    response: str = "object_response"
    label: str = "category"
    checkpoint: str | None = None

    def used(self) -> list[str]:
        names = [self.observer, self.example, self.response, self.label, self.checkpoint]
        return [name for name in names if name is not None]


def read_table(path: str | os.PathLike) -> tuple[pd.DataFrame, list[Path]]:
    """A CSV or Parquet table, or every table of a folder (sorted by name) as one."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in TABLE_SUFFIXES)
        if not files:
            raise ConfigError(f"{path} holds no trial tables ({', '.join(TABLE_SUFFIXES)})")
    elif path.is_file():
        files = [path]
    else:
        raise ConfigError(f"{path} does not exist")
    tables = []
    for file in files:
        try:
            if file.suffix == ".csv":
                tables.append(pd.read_csv(file))
            else:
                tables.append(pd.read_parquet(file))
        except Exception as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ConfigError(f"cannot read {file.name} as a table: {reason[:200]}") from None
    return pd.concat(tables, ignore_index=True), files


class TrialTableSource(Source):
    """The responses of a trial table as predictions, with the table's own examples.

    Parameters
    ----------
    path : str or path
        A CSV or Parquet file, or a folder of them.
    columns : TrialColumns
    dataset_name : str, optional
        The store's data set name; the table's name where None.
    split : str
        The store's split.

    Raises
    ------
    ConfigError
        If a column is missing, a label is missing, an observer answered one example twice, or
        observers saw different examples (with the counts).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        columns: TrialColumns | None = None,
        dataset_name: str | None = None,
        split: str = "test",
    ):
        from engine.store import split_fingerprint

        self.columns = columns = columns or TrialColumns()
        table, self.files = read_table(path)
        missing = [name for name in columns.used() if name not in table.columns]
        if missing:
            raise ConfigError(
                f"the trial table has no column {', '.join(map(repr, missing))}; it has "
                f"{', '.join(map(str, table.columns[:12]))} (name them with --observer-column, "
                "--example-column, --response-column, --label-column)"
            )
        if table[columns.label].isna().any():
            raise ConfigError(
                f"{int(table[columns.label].isna().sum())} trials have no {columns.label!r}"
            )
        for name in (columns.observer, columns.example):
            if table[name].isna().any():
                raise ConfigError(f"{int(table[name].isna().sum())} trials have no {name!r}")
        self._digest = _table_digest(self.files)
        observers = np.array(sorted(table[columns.observer].unique(), key=str))
        example_ids = np.array(sorted(table[columns.example].unique(), key=_sort_key))
        checkpoint_values = (
            sorted(table[columns.checkpoint].unique(), key=_sort_key)
            if columns.checkpoint is not None
            else [None]
        )
        classes = sorted(
            {str(v) for v in table[columns.label]}
            | {str(v) for v in table[columns.response].dropna()}
        )
        _require_same_examples(table, columns, observers, example_ids.size)
        labels = _labels(table, columns, example_ids, classes)
        self.predictions = _predictions(
            table, columns, observers, example_ids, checkpoint_values, classes
        )
        metadata = _metadata(table, columns, example_ids)
        numeric_ids = np.issubdtype(example_ids.dtype, np.integer)
        name = dataset_name or Path(path).stem
        self.examples = Examples(
            labels=labels,
            example_ids=example_ids.astype(np.int64) if numeric_ids else None,
            fingerprint=split_fingerprint(example_ids.astype(str), labels),
            class_names=classes,
            metadata=metadata,
            dataset_name=name,
            split=split,
        )
        self.shape = SourceShape(
            kind="predictions",
            networks=int(observers.size),
            checkpoints=len(checkpoint_values),
            examples=int(example_ids.size),
        )
        self.network_names = [str(o) for o in observers]
        self.item_bytes = self.predictions.dtype.itemsize
        if columns.checkpoint is not None:
            self.checkpoint_epochs, self.checkpoint_labels = _checkpoints(checkpoint_values)

    def read(self, start: int, stop: int, checkpoint: int) -> np.ndarray:
        return self.predictions[start:stop, checkpoint]

    def identity(self) -> dict[str, Any]:
        return {
            "format": "trials",
            "files": [p.name for p in self.files],
            "columns": self.columns.used(),
            "digest": self._digest,
        }


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before text, each in its own order (a column may mix them)."""
    if isinstance(value, int | float | np.integer | np.floating):
        return (0, float(value))
    return (1, str(value))


def _table_digest(files: list[Path]) -> str:
    """SHA-256 of every table file (tables of trials are small)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name};".encode())
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _require_same_examples(
    table: pd.DataFrame, columns: TrialColumns, observers: np.ndarray, num_examples: int
) -> None:
    """Refuse, with the counts, observers that saw different examples or one example twice."""
    keys = [columns.observer, columns.example] + (
        [columns.checkpoint] if columns.checkpoint else []
    )
    repeated = table.duplicated(keys)
    if repeated.any():
        first = table.loc[repeated.idxmax(), keys].tolist()
        raise ConfigError(
            f"{int(repeated.sum())} trials repeat an (observer, example"
            f"{', checkpoint' if columns.checkpoint else ''}) already answered (first: {first})"
        )
    per_observer = table.groupby(keys[:1] + keys[2:])[columns.example].nunique()
    partial = per_observer[per_observer < num_examples]
    if len(partial):
        seen = ", ".join(
            f"{_label(key)} saw {count}" for key, count in list(partial.sort_values().items())[:4]
        )
        raise ConfigError(
            f"observers saw different examples ({num_examples} in all): "
            f"{len(per_observer) - len(partial)} of {len(per_observer)} saw all of them, {seen}"
            + (f" and {len(partial) - 4} more" if len(partial) > 4 else "")
            + "; import observers that saw the same examples apart"
        )


def _label(key: Any) -> str:
    return "/".join(map(str, key)) if isinstance(key, tuple) else str(key)


def _labels(
    table: pd.DataFrame, columns: TrialColumns, example_ids: np.ndarray, classes: list[str]
) -> np.ndarray:
    per_example = table.groupby(columns.example)[columns.label].agg(lambda v: set(map(str, v)))
    conflicting = per_example[per_example.map(len) > 1]
    if len(conflicting):
        raise ConfigError(
            f"{len(conflicting)} examples have more than one {columns.label!r} "
            f"(first: {conflicting.index[0]}: {sorted(conflicting.iloc[0])})"
        )
    index = {name: k for k, name in enumerate(classes)}
    return np.array([index[next(iter(per_example[e]))] for e in example_ids], np.int64)


def _predictions(
    table: pd.DataFrame,
    columns: TrialColumns,
    observers: np.ndarray,
    example_ids: np.ndarray,
    checkpoint_values: list[Any],
    classes: list[str],
) -> np.ndarray:
    """Predicted class of each (observer, checkpoint, example), -1 for no response."""
    import pandas as pd

    index = {name: k for k, name in enumerate(classes)}
    response = table[columns.response]
    code = np.array([-1 if pd.isna(v) else index[str(v)] for v in response], np.int16)
    observer = pd.Index(observers).get_indexer(table[columns.observer])
    example = pd.Index(example_ids).get_indexer(table[columns.example])
    if columns.checkpoint is not None:
        checkpoint = pd.Index(checkpoint_values).get_indexer(table[columns.checkpoint])
    else:
        checkpoint = np.zeros(len(table), np.int64)
    out = np.full((observers.size, len(checkpoint_values), example_ids.size), -1, np.int16)
    out[observer, checkpoint, example] = code
    return out


def _metadata(
    table: pd.DataFrame, columns: TrialColumns, example_ids: np.ndarray
) -> dict[str, np.ndarray]:
    """Every column constant per example, in example order (the id column included)."""
    skip = {columns.observer, columns.response, columns.label, columns.checkpoint}
    grouped = table.groupby(columns.example, sort=False)
    metadata: dict[str, np.ndarray] = {}
    for name in table.columns:
        if name in skip:
            continue
        if name == columns.example:
            values = example_ids
        elif (grouped[name].nunique(dropna=False) > 1).any():
            continue  # it varies between the trials of one example: not the example's
        else:
            values = grouped[name].first().reindex(example_ids).to_numpy()
        safe = _UNSAFE.sub("_", str(name)).lstrip(".-") or "column"
        metadata[safe] = values
    return metadata


def _checkpoints(values: list[Any]) -> tuple[np.ndarray, list[str] | None]:
    """Epochs of the checkpoint column's values: themselves where numbers, else unknown (NaN)
    with the values kept as the checkpoints' names."""
    if all(isinstance(v, int | float | np.integer | np.floating) for v in values):
        return np.asarray(values, np.float64), None
    return np.full(len(values), np.nan), [str(v) for v in values]

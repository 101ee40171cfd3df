"""Per-example metadata columns of a split (format 2): condition, corruption, severity, source.

A column is one array ``splits/<split>/example_metadata/<column>`` of dims (examples,). Numbers
(integers, floats, booleans) are stored as they are; anything else (strings, objects) as int32
codes into the sorted list of its distinct values, kept in the array's attribute
``categories`` (-1 for a missing value, None or NaN).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import WriterError

if TYPE_CHECKING:
    import pandas as pd
    import zarr

#: The group of a split that holds its metadata columns.
METADATA_GROUP = "example_metadata"
#: A column name is also a zarr array name.
_COLUMN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
#: Code of a missing categorical value.
MISSING_CATEGORY = -1


def encode_column(name: str, values: Any, num_examples: int) -> tuple[np.ndarray, list | None]:
    """The stored array of one metadata column and its categories (None for numbers).

    >>> encode_column("condition", ["b", "a", "b", None], 4)
    (array([ 1,  0,  1, -1], dtype=int32), ['a', 'b'])
    >>> encode_column("severity", np.array([1, 3]), 2)
    (array([1, 3]), None)

    Raises
    ------
    WriterError
        If the name is not a valid column name or the column has the wrong length.
    """
    if not isinstance(name, str) or not _COLUMN_NAME.match(name):
        raise WriterError(f"example metadata column {name!r}: use letters, digits, _ . -")
    array = np.asarray(values)
    if array.shape != (num_examples,):
        raise WriterError(
            f"example metadata column {name!r} has shape {array.shape}, expected ({num_examples},)"
        )
    if array.dtype.kind in "biuf":
        return array, None
    text = [None if _missing(value) else str(value) for value in array.tolist()]
    categories = sorted({value for value in text if value is not None})
    index = {value: code for code, value in enumerate(categories)}
    codes = [MISSING_CATEGORY if value is None else index[value] for value in text]
    return np.asarray(codes, np.int32), categories


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def decode_columns(group: zarr.Group | None, num_examples: int) -> pd.DataFrame:
    """Every metadata column of a split as a table, one row per example (categoricals for
    coded columns); an empty table where the split has none."""
    import pandas as pd

    columns: dict[str, Any] = {}
    if group is not None:
        for name, array in sorted(group.arrays()):
            values = np.asarray(array[:num_examples])
            categories = array.attrs.get("categories")
            if categories is None:
                columns[name] = values
            else:
                columns[name] = pd.Categorical.from_codes(values, categories=categories)
    return pd.DataFrame(columns, index=pd.RangeIndex(num_examples, name="example"))


def check_columns(
    split: str, columns: Mapping[str, Any], num_examples: int
) -> dict[str, tuple[np.ndarray, list | None]]:
    """Every column of a split encoded, checked before anything is written."""
    try:
        return {name: encode_column(name, values, num_examples) for name, values in columns.items()}
    except WriterError as error:
        raise WriterError(f"split {split!r}: {error}") from None

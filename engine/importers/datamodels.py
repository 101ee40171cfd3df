"""A datamodels-style store: a folder of pre-allocated ``(num_models, ...)`` ``.npy`` arrays.

The layout of the datamodels project's writer: one memory-mappable ``.npy`` array per key
(``logits.npy`` (m, x, c), ``margins.npy`` (m, x), ``masks.npy`` (m, x) bool: which examples
each model trained on, ...), all of the same first dimension, and ``_completed.npy`` (m,) bool,
set as each model finishes. Only completed models are imported, in index order; their indices
become the networks' names (``extra["network_names"]``). The masks become the store's
membership (``membership_split``), so that hold-out consistency works on them: they must be
over the same examples as the verdicts.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.importers.core import Source, SourceShape, check_kind, infer_kind
from engine.importers.files import ArrayFile

#: The completion mask of a datamodels store.
COMPLETED = "_completed.npy"
#: Keys tried, in order, where none is given.
DEFAULT_KEYS = ("logits", "margins", "predictions")
#: The training-subset masks, where none is named.
DEFAULT_MASKS = "masks"


class DatamodelsSource(Source):
    """The completed models of a datamodels store.

    Parameters
    ----------
    folder : str or path
    key : str, optional
        The array to import (``logits``, ``margins``, ...); the first of :data:`DEFAULT_KEYS`
        present where None.
    masks : str, optional
        The key of the training-subset masks; ``"masks"`` where present when None; ``""``
        imports no membership.
    kind : str, optional
        Inferred where None: floats (m, x) are margins, floats (m, x, c) logits or
        probabilities (:func:`engine.importers.core.infer_kind`), integers predictions.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        key: str | None = None,
        masks: str | None = None,
        kind: str | None = None,
    ):
        self.folder = Path(folder)
        completed_path = self.folder / COMPLETED
        if not completed_path.is_file():
            raise ConfigError(f"{self.folder} is not a datamodels store: it has no {COMPLETED}")
        completed = np.load(completed_path)
        if completed.ndim != 1 or completed.dtype != bool:
            raise ConfigError(f"{COMPLETED} must be a 1-D bool array, got {completed.dtype}")
        self.indices = np.flatnonzero(completed)
        if not self.indices.size:
            raise ConfigError(
                f"{self.folder}: no model is completed yet ({COMPLETED} is all false)"
            )
        self.key = key or next(
            (k for k in DEFAULT_KEYS if (self.folder / f"{k}.npy").is_file()), None
        )
        if self.key is None:
            present = sorted(p.stem for p in self.folder.glob("*.npy") if p.name != COMPLETED)
            raise ConfigError(
                f"{self.folder} has none of {', '.join(DEFAULT_KEYS)}; choose the array to import "
                f"with --key ({', '.join(present) or 'none there'})"
            )
        self.values = self._open(self.key, completed.size)
        try:
            self.shape = self._source_shape(kind)
            self.masks = self._masks(masks, completed.size)
        except ConfigError:
            self.close()
            raise
        self.item_bytes = self.values.dtype.itemsize
        self.network_names = [str(i) for i in self.indices]

    def _open(self, key: str, models: int) -> ArrayFile:
        path = self.folder / f"{key}.npy"
        if not path.is_file():
            raise ConfigError(f"{self.folder} has no array {key}.npy")
        array = ArrayFile(path)
        if array.rows != models:
            array.close()
            raise ConfigError(
                f"{key}.npy holds {array.rows} models but {COMPLETED} {models}: not one store"
            )
        return array

    def _source_shape(self, kind: str | None) -> SourceShape:
        values = self.values
        ndim = len(values.shape)
        if kind is None and values.dtype.kind == "f" and ndim == 2:
            kind = "margins"
        elif kind is None:
            sample = values.read_rows(self.indices[:1])[0] if ndim == 3 else None
            kind = infer_kind(values.dtype, sample, values.name)
        check_kind(kind, values.dtype, values.name)
        classed = kind in ("logits", "probabilities")
        if ndim != (3 if classed else 2):
            layout = "models, examples" + (", classes" if classed else "")
            raise ConfigError(f"{values.name} has shape {values.shape}; {kind} need ({layout})")
        return SourceShape(
            kind=kind,
            networks=int(self.indices.size),
            checkpoints=1,
            examples=int(values.shape[1]),
            classes=int(values.shape[2]) if classed else None,
        )

    def _masks(self, masks: str | None, models: int) -> ArrayFile | None:
        if masks == "":
            return None
        if masks is None:
            if not (self.folder / f"{DEFAULT_MASKS}.npy").is_file():
                return None
            masks = DEFAULT_MASKS
        array = self._open(masks, models)
        if array.shape != (models, self.shape.examples):
            array.close()
            raise ConfigError(
                f"{masks}.npy has shape {array.shape}, but membership needs one mask per model "
                f"over the {self.shape.examples} examples of {self.values.name}"
            )
        return array

    @property
    def has_membership(self) -> bool:
        return self.masks is not None

    def read(self, start: int, stop: int, checkpoint: int) -> np.ndarray:
        return self.values.read_rows(self.indices[start:stop])

    def membership(self, start: int, stop: int) -> np.ndarray | None:
        if self.masks is None:
            return None
        return self.masks.read_rows(self.indices[start:stop]).astype(bool)

    def identity(self) -> dict[str, Any]:
        """The key, its shape and dtype, which models are completed, and a digest of the first
        and last completed rows (rows of models still running change, so they are left out)."""
        digest = hashlib.sha256(self.indices.astype(np.int64).tobytes())
        for row in {int(self.indices[0]), int(self.indices[-1])}:
            digest.update(self.values.read_rows(np.array([row])).tobytes())
        return {
            "format": "datamodels",
            "folder": self.folder.name,
            "key": self.key,
            "shape": list(self.values.shape),
            "dtype": str(self.values.dtype),
            "completed": int(self.indices.size),
            "masks": None if self.masks is None else self.masks.name,
            "digest": digest.hexdigest(),
        }

    def close(self) -> None:
        self.values.close()
        if getattr(self, "masks", None) is not None:
            assert self.masks is not None
            self.masks.close()

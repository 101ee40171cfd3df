"""Dense arrays: one ``.npy`` file or ``.npz`` member holding the whole population.

Layouts (n networks, t checkpoints, x examples, c classes):

- logits or probabilities, float16/32/64: (n, x, c), or (n, t, x, c) with checkpoints;
- predictions, integers: (n, x) or (n, t, x);
- correctness, bool: (n, x) or (n, t, x);
- margins (true-class logit minus the largest other), float: (n, x) or (n, t, x).

The kind is declared, or inferred where the dtype and shape say it (see
:func:`engine.importers.core.infer_kind`). The largest public population, the CIFAR-10 test-set
logits of 61,565 ResNets (61565 x 10000 x 10 float16, 12 GB), reads as it is.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.importers.core import SOFT_KINDS, Source, SourceShape, check_kind, infer_kind
from engine.importers.files import ArrayFile


class DenseSource(Source):
    """A population in one array, read a block of networks at a time.

    Parameters
    ----------
    path : str or path
        A ``.npy`` file or an ``.npz`` file.
    kind : str, optional
        One of :data:`engine.importers.core.KINDS`; inferred where None.
    member : str, optional
        The ``.npz`` member (without ``.npy``); the only one where None.
    """

    def __init__(
        self, path: str | os.PathLike, *, kind: str | None = None, member: str | None = None
    ):
        self.array = ArrayFile(path, member)
        try:
            self.shape = _shape(self.array, kind)
        except ConfigError:
            self.array.close()
            raise
        self.item_bytes = self.array.dtype.itemsize
        self.reads_whole = self.array.compressed
        # (n, t, x[, c]) rather than (n, x[, c]).
        self._with_checkpoints = len(self.array.shape) == (4 if self.shape.classes else 3)

    def read(self, start: int, stop: int, checkpoint: int) -> np.ndarray:
        if self._with_checkpoints:
            return self.array.read(start, stop, checkpoint)
        return self.array.read(start, stop)

    def identity(self) -> dict[str, Any]:
        return {"format": "dense", **self.array.identity()}

    def close(self) -> None:
        self.array.close()


def _shape(array: ArrayFile, kind: str | None) -> SourceShape:
    """The source's kind and sizes from the array's header (and its first network)."""
    shape = array.shape
    if kind is None:
        sample = None
        if array.dtype.kind == "f" and len(shape) in (3, 4) and shape[0]:
            first = array.read(0, 1)[0]
            sample = first if len(shape) == 3 else first[0]
        elif array.dtype.kind == "f" and len(shape) == 2:
            kind = "margins"
        kind = kind or infer_kind(array.dtype, sample, array.name)
    check_kind(kind, array.dtype, array.name)
    classed = kind in SOFT_KINDS
    allowed = (3, 4) if classed else (2, 3)
    if len(shape) not in allowed or not shape[0]:
        layout = "networks, [checkpoints,] examples" + (", classes" if classed else "")
        raise ConfigError(f"{array.name} has shape {shape}; {kind} need ({layout})")
    with_checkpoints = len(shape) == allowed[1]
    return SourceShape(
        kind=kind,
        networks=int(shape[0]),
        checkpoints=int(shape[1]) if with_checkpoints else 1,
        examples=int(shape[2 if with_checkpoints else 1]),
        classes=int(shape[-1]) if classed else None,
    )

"""A folder of one file per run: ``.npy``, ``.npz`` or ``.pt`` files, one network each.

Each file holds one network's logits or probabilities (x, c) or (t, x, c), or its predictions
(x,) or (t, x) (or correctness or margins, as a dense array would), all files alike. The files
are taken in a stated order: ``name`` (sorted by name), ``natural`` (numbers inside names
compared as numbers: ``run2`` before ``run10``) or the lines of a text file listing the names.
Each file's name becomes its network's name, kept in the store's ``extra["network_names"]``.

``.pt`` files are read with ``torch.load(weights_only=True)``: a tensor, or a dict of tensors
from which ``member`` picks one (the only one where None). A block of networks is one file per
network, read when the block is written; no more than a block is held at once.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.importers.core import SOFT_KINDS, Source, SourceShape, check_kind, infer_kind
from engine.importers.files import ArrayFile

#: The files a folder of runs may hold.
RUN_SUFFIXES = (".npy", ".npz", ".pt")
#: The orders a folder of runs may be taken in (else a file listing the names).
ORDERS = ("name", "natural")
#: Bytes of each run file read for the folder's identity (its start and its end).
_RUN_DIGEST_BYTES = 1 << 12


def run_files(folder: str | os.PathLike, order: str = "name") -> list[Path]:
    """The run files of ``folder`` in the stated order.

    Parameters
    ----------
    folder : str or path
    order : str
        ``"name"``, ``"natural"``, or the path of a text file with one file name per line
        (blank lines and lines starting with ``#`` are skipped).

    Raises
    ------
    ConfigError
        If the folder has no run files, or a listed file is missing.

    >>> sorted(["run10.npy", "run2.npy"], key=natural_key)
    ['run2.npy', 'run10.npy']
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder of runs")
    found = sorted(
        p for p in folder.iterdir() if p.suffix in RUN_SUFFIXES and not p.name.startswith(".")
    )
    if order == "name":
        files = found
    elif order == "natural":
        files = sorted(found, key=lambda p: natural_key(p.name))
    else:
        listing = Path(order)
        if not listing.is_file():
            raise ConfigError(
                f"--order {order!r} is neither {' nor '.join(ORDERS)} nor a file listing the runs"
            )
        names = [
            line.strip()
            for line in listing.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
        files = [folder / name for name in names]
        missing = [p.name for p in files if not p.is_file()]
        if missing:
            raise ConfigError(
                f"{len(missing)} of the {len(files)} runs {listing.name} lists are not in "
                f"{folder} (first: {missing[0]})"
            )
        if len(set(names)) != len(names):
            raise ConfigError(f"{listing.name} lists a run twice")
    if not files:
        raise ConfigError(f"{folder} holds no run files ({', '.join(RUN_SUFFIXES)})")
    return files


def natural_key(name: str) -> list[Any]:
    """Sort key that compares the numbers inside a name as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class RunFolderSource(Source):
    """A population of one file per network.

    Parameters
    ----------
    folder : str or path
    order : str
        See :func:`run_files`.
    kind : str, optional
        Inferred from the first file where None.
    member : str, optional
        The ``.npz`` member or the ``.pt`` dict key of every file.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        order: str = "name",
        kind: str | None = None,
        member: str | None = None,
    ):
        self.folder = Path(folder)
        self.order = order
        self.files = run_files(folder, order)
        self.member = member
        first = self._load(0)
        self.dtype = first.dtype
        self.run_shape = first.shape
        if kind is None:
            sample = first if first.ndim == 2 else first[0] if first.ndim == 3 else None
            if first.dtype.kind == "f" and first.ndim == 1:
                kind = "margins"
            kind = kind or infer_kind(first.dtype, sample, self.files[0].name)
        check_kind(kind, first.dtype, self.files[0].name)
        classed = kind in SOFT_KINDS
        allowed = (2, 3) if classed else (1, 2)
        if first.ndim not in allowed:
            layout = "[checkpoints,] examples" + (", classes" if classed else "")
            raise ConfigError(
                f"{self.files[0].name} has shape {first.shape}; a run's {kind} need ({layout})"
            )
        self._with_checkpoints = first.ndim == allowed[1]
        self.shape = SourceShape(
            kind=kind,
            networks=len(self.files),
            checkpoints=first.shape[0] if self._with_checkpoints else 1,
            examples=first.shape[1 if self._with_checkpoints else 0],
            classes=first.shape[-1] if classed else None,
        )
        self.item_bytes = first.dtype.itemsize
        self.reads_whole = True
        self.network_names = [p.name for p in self.files]
        self._block: tuple[int, int, np.ndarray] | None = None

    def _load(self, index: int) -> np.ndarray:
        path = self.files[index]
        if path.suffix == ".pt":
            values = _load_torch(path, self.member)
        else:
            member = self.member if path.suffix == ".npz" else None
            with ArrayFile(path, member) as array:
                values = array.read(0, array.rows) if array.shape else np.empty(0)
                if len(array.shape) == 1:
                    values = values.reshape(array.shape)
        return values

    def read(self, start: int, stop: int, checkpoint: int) -> np.ndarray:
        if self._block is None or self._block[:2] != (start, stop):
            self._block = (start, stop, self._stack(start, stop))
        block = self._block[2]
        return block[:, checkpoint] if self._with_checkpoints else block

    def _stack(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self.run_shape), self.dtype)
        for index in range(start, stop):
            values = self._load(index)
            if values.shape != self.run_shape or values.dtype.kind != self.dtype.kind:
                raise ConfigError(
                    f"{self.files[index].name} holds {values.dtype} {values.shape}, unlike the "
                    f"first run's {self.dtype} {self.run_shape}"
                )
            out[index - start] = values
        return out

    def identity(self) -> dict[str, Any]:
        """The folder, the order, each file's name and size, and a digest of their ends."""
        digest = hashlib.sha256()
        for path in self.files:
            size = path.stat().st_size
            digest.update(f"{path.name};{size};".encode())
            with open(path, "rb") as file:
                digest.update(file.read(_RUN_DIGEST_BYTES))
                file.seek(max(size - _RUN_DIGEST_BYTES, 0))
                digest.update(file.read(_RUN_DIGEST_BYTES))
        return {
            "format": "runs",
            "folder": self.folder.name,
            "order": self.order if self.order in ORDERS else Path(self.order).name,
            "files": len(self.files),
            "run_shape": list(self.run_shape),
            "dtype": str(self.dtype),
            "member": self.member,
            "digest": digest.hexdigest(),
        }


def _load_torch(path: Path, member: str | None) -> np.ndarray:
    """A ``.pt`` file's tensor (or its dict's ``member``) as a NumPy array."""
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"cannot read {path.name} with torch.load: {reason[:200]}") from None
    if isinstance(loaded, dict):
        tensors = {k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
        if member is None and len(tensors) == 1:
            member = next(iter(tensors))
        if member not in tensors:
            raise ConfigError(
                f"{path.name} holds {', '.join(map(str, tensors)) or 'no tensors'}; "
                "choose one with --member"
            )
        loaded = tensors[member]
    if not isinstance(loaded, torch.Tensor):
        raise ConfigError(f"{path.name} holds a {type(loaded).__name__}, not a tensor")
    if loaded.dtype == torch.bfloat16:  # NumPy has no bfloat16
        loaded = loaded.float()
    return loaded.detach().cpu().numpy()

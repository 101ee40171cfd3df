"""Arrays on disk, read a block of rows at a time: ``.npy`` files and ``.npz`` members.

Nothing here loads a file whole. A ``.npy`` file, and an ``.npz`` member stored without
compression (``numpy.savez``), are read with positioned reads straight into a block's buffer:
unlike a memory map, whose pages count towards the process's resident memory until the kernel
drops them, this keeps the memory of a 12 GB import at one block. A compressed member
(``numpy.savez_compressed``) is decompressed as a stream, forwards, one block of rows at a time.

Rows are the first axis (networks, or models). A row may be read whole, or at one index of its
second axis (one checkpoint of a network), or rows may be taken at arbitrary indices (the
completed models of a datamodels store).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import struct
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from engine.errors import ConfigError

#: Bytes read at each of :data:`DIGEST_SAMPLES` evenly spaced places for a file's digest.
DIGEST_SAMPLE_BYTES = 1 << 16
DIGEST_SAMPLES = 16
#: The fixed part of a zip local file header (signature to extra-field length).
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")


class ArrayFile:
    """One array of a ``.npy`` file or an ``.npz`` member, read by rows.

    Parameters
    ----------
    path : str or path
    member : str, optional
        For an ``.npz`` file, the member's name without ``.npy``; where None, the only member.

    Attributes
    ----------
    shape : tuple of int
    dtype : numpy.dtype
    name : str
        ``file.npy`` or ``file.npz:member``, for messages.

    Raises
    ------
    ConfigError
        If the file is missing, not an array file, in Fortran order or of object dtype, or the
        member does not exist.
    """

    def __init__(self, path: str | os.PathLike, member: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"{self.path} does not exist or is not a file")
        self._zip: zipfile.ZipFile | None = None
        self._stream: IO[bytes] | None = None
        self._stream_at = 0  # bytes of the member's data already read from the stream
        self._info: zipfile.ZipInfo | None = None
        #: The last block of whole rows decompressed, kept so that reading it checkpoint by
        #: checkpoint decompresses it once.
        self._cached: tuple[int, int, np.ndarray] | None = None
        self.member: str | None = None
        if self.path.suffix == ".npz" or zipfile.is_zipfile(self.path):
            try:
                self.member = self._open_member(member)
            except ConfigError:
                self.close()
                raise
            self.name = f"{self.path.name}:{self.member}"
        else:
            if member is not None:
                raise ConfigError(f"{self.path} is not an .npz file: it has no member {member!r}")
            self.name = self.path.name
            with open(self.path, "rb") as file:
                self._header = _read_header(file, self.name)
                self._data_offset = file.tell()
            self.compressed = False
        self.shape, fortran_order, self.dtype = self._header
        problem = None
        if fortran_order and len(self.shape) > 1:
            problem = (
                f"{self.name} is stored in Fortran order; save it C-contiguous "
                "(numpy.ascontiguousarray) to import it a block at a time"
            )
        elif self.dtype.hasobject:
            problem = f"{self.name} holds Python objects, not numbers"
        if problem is not None:
            self.close()
            raise ConfigError(problem)
        self.row_bytes = math.prod(self.shape[1:]) * self.dtype.itemsize
        # Unbuffered: every read is one block, straight into its array.
        self._file: io.FileIO | None = io.FileIO(self.path, "rb")

    # -- opening ------------------------------------------------------------------------------

    def _open_member(self, member: str | None) -> str:
        try:
            self._zip = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile as error:
            raise ConfigError(f"{self.path} is not a valid .npz file: {error}") from None
        members = [n[: -len(".npy")] for n in self._zip.namelist() if n.endswith(".npy")]
        if member is None:
            if len(members) != 1:
                raise ConfigError(
                    f"{self.path.name} holds {len(members)} arrays ({', '.join(members[:8])}); "
                    "choose one with --member"
                )
            member = members[0]
        if member not in members:
            raise ConfigError(
                f"{self.path.name} has no array {member!r}; it holds {', '.join(members[:8])}"
            )
        self._info = self._zip.getinfo(f"{member}.npy")
        if self._info.flag_bits & 0x1:
            raise ConfigError(f"{self.path.name}:{member} is encrypted")
        self.compressed = self._info.compress_type != zipfile.ZIP_STORED
        with self._zip.open(self._info) as stream:
            self._header = _read_header(stream, f"{self.path.name}:{member}")
            header_bytes = stream.tell()
        if self.compressed:
            self._data_offset = header_bytes  # inside the decompressed member
        else:
            self._data_offset = _member_data_offset(self.path, self._info) + header_bytes
        return member

    # -- reading ------------------------------------------------------------------------------

    @property
    def rows(self) -> int:
        return int(self.shape[0]) if self.shape else 0

    def read(self, start: int, stop: int, index: int | None = None) -> np.ndarray:
        """Rows ``[start, stop)``, whole or at ``index`` of their second axis.

        Returns
        -------
        ndarray, dims (rows, *shape[1:]) or (rows, *shape[2:]) with ``index``
        """
        if index is None:
            out = np.empty((stop - start, *self.shape[1:]), self.dtype)
            self._read_into(out, self._data_offset + start * self.row_bytes)
            return out
        if self.compressed:
            if self._cached is None or self._cached[:2] != (start, stop):
                self._cached = (start, stop, self.read(start, stop))
            return self._cached[2][:, index]
        inner = self.shape[2:]
        out = np.empty((stop - start, *inner), self.dtype)
        part = math.prod(inner) * self.dtype.itemsize
        for row in range(start, stop):
            offset = self._data_offset + row * self.row_bytes + index * part
            self._read_into(out[row - start], offset)
        return out

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        """The rows at ``rows`` (increasing indices), dims (len(rows), *shape[1:])."""
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        if self.compressed:
            for i, row in enumerate(rows):
                out[i] = self.read(int(row), int(row) + 1)[0]
            return out
        for i, row in enumerate(rows):
            self._read_into(out[i], self._data_offset + int(row) * self.row_bytes)
        return out

    def _read_into(self, out: np.ndarray, offset: int) -> None:
        view = out.data.cast("B")
        if self.compressed:
            self._read_stream(view, offset - self._data_offset)
            return
        assert self._file is not None, "read after close"
        self._file.seek(offset)
        filled = 0
        while filled < len(view):
            count = self._file.readinto(view[filled:])
            if not count:
                raise ConfigError(
                    f"{self.name} ends early: it is shorter than its header's shape {self.shape}"
                )
            filled += count

    def _read_stream(self, view: memoryview, data_at: int) -> None:
        """Decompress the member forwards to ``data_at``, then into ``view``; a backward
        request restarts the stream (only a resumed or out-of-order import does that)."""
        assert self._zip is not None and self._info is not None
        if self._stream is None or data_at < self._stream_at:
            if self._stream is not None:
                self._stream.close()
            self._stream = self._zip.open(self._info)
            self._stream.seek(self._data_offset)
            self._stream_at = 0
        if data_at > self._stream_at:
            self._stream.seek(data_at - self._stream_at, os.SEEK_CUR)
        filled = 0
        while filled < len(view):
            chunk = self._stream.read(min(len(view) - filled, 1 << 24))
            if not chunk:
                raise ConfigError(f"{self.name} ends early: shorter than its shape {self.shape}")
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        self._stream_at = data_at + filled

    # -- identity -----------------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """What names this array's contents cheaply: name, shape, dtype and a digest (the zip
        CRC of an ``.npz`` member; of a ``.npy`` file, :func:`sampled_digest`)."""
        if self._info is not None:
            digest = f"crc32:{self._info.CRC:08x}:{self._info.file_size}"
        else:
            digest = sampled_digest(self.path)
        return {
            "file": self.name,
            "shape": list(self.shape),
            "dtype": str(self.dtype),
            "digest": digest,
        }

    def close(self) -> None:
        for handle in (getattr(self, "_file", None), self._stream, self._zip):
            if handle is not None:
                handle.close()
        self._file = self._stream = self._zip = None

    def __enter__(self) -> ArrayFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_header(file: IO[bytes], name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from an ``.npy`` header; the file is left at the data."""
    try:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(file)
        return np.lib.format.read_array_header_2_0(file)
    except ValueError as error:
        raise ConfigError(f"{name} is not a .npy array: {error}") from None


def _member_data_offset(path: Path, info: zipfile.ZipInfo) -> int:
    """Where a stored member's bytes begin in the zip file: after its local header."""
    with open(path, "rb") as file:
        file.seek(info.header_offset)
        fields = _LOCAL_HEADER.unpack(file.read(_LOCAL_HEADER.size))
    if fields[0] != b"PK\x03\x04":
        raise ConfigError(f"{path.name}: damaged zip header of {info.filename}")
    name_length, extra_length = fields[-2:]
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


def sampled_digest(path: str | os.PathLike, skip: int = 0) -> str:
    """SHA-256 of a file's size and of :data:`DIGEST_SAMPLES` evenly spaced pieces of it.

    Reading 1 MiB of a 12 GB file names it well enough to tell two dumps apart when an import
    resumes, without reading it all; ``skip`` leaves out a header.
    """
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(f"{size};".encode())
    with open(path, "rb") as file:
        span = max(size - skip - DIGEST_SAMPLE_BYTES, 0)
        for i in range(DIGEST_SAMPLES):
            file.seek(skip + span * i // max(DIGEST_SAMPLES - 1, 1))
            digest.update(file.read(DIGEST_SAMPLE_BYTES))
    return digest.hexdigest()

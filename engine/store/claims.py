"""Ownership claims: one writer at a time per block of networks, with a lease.

A writer claims every block of ``network_block`` networks it writes before writing it: the claim
is a folder ``claims/<first>-<stop>`` made with ``mkdir``, which is atomic on a local or network
file system, holding a ``zarr.json`` (a Zarr group, so that the store stays a valid hierarchy)
whose attributes name the owner (host, process id and start time) and when its lease ends. The
owner renews the lease from a background thread; a second writer that finds a live claim is
refused with the owner named. A claim is taken over when its owner is gone: at once on the same
host (the process is not running, or its id now belongs to another process), and after the lease
ends elsewhere (docs/store-format.md, "Ownership claims").

Claims are counted per process, so that two writers of one process may share a block.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.errors import WriterError

CLAIMS_GROUP = "claims"
#: Seconds a claim stays valid without renewal; the owner renews it every third of that.
DEFAULT_LEASE_SECONDS = float(os.environ.get("CREATED_EQUAL_CLAIM_LEASE", "300"))
_GROUP_JSON = {"zarr_format": 3, "node_type": "group", "attributes": {}}

#: Claims this process holds: claim folder -> (token, number of writers sharing it).
_held: dict[Path, tuple[str, int]] = {}
_held_lock = threading.Lock()


@dataclass(frozen=True)
class Owner:
    """Who holds a claim, as its ``zarr.json`` attributes record it."""

    host: str
    pid: int
    started: str  # the process's start time in clock ticks since boot, "" where unknown
    token: str
    expires: float  # Unix time

    @staticmethod
    def this_process(token: str, lease: float) -> Owner:
        pid = os.getpid()
        return Owner(socket.gethostname(), pid, _start_time(pid), token, time.time() + lease)

    def is_gone(self) -> bool:
        """Whether the owner is certainly not running, or its lease has ended."""
        if time.time() > self.expires:
            return True
        if self.host != socket.gethostname():
            return False  # another machine: only the lease tells
        started = _start_time(self.pid)
        return started == "" or (self.started != "" and started != self.started)

    def describe(self) -> str:
        until = time.strftime("%H:%M:%S", time.localtime(self.expires))
        return f"process {self.pid} on {self.host} (lease until {until})"


def _start_time(pid: int) -> str:
    """A process's start time from /proc, "" where it is not running (or not Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return fields[19] if len(fields) > 19 else ""


def _write_owner(folder: Path, owner: Owner) -> None:
    """Write the claim's metadata whole (a temporary file renamed over it)."""
    metadata = {**_GROUP_JSON, "attributes": {"created_equal_claim": asdict(owner)}}
    temporary = folder / f".zarr.json.{owner.token}"
    try:
        temporary.write_text(json.dumps(metadata))
        os.replace(temporary, folder / "zarr.json")
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def _read_owner(folder: Path) -> Owner | None:
    """The owner of a claim; None while its metadata is not written yet."""
    try:
        metadata = json.loads((folder / "zarr.json").read_text())
        return Owner(**metadata["attributes"]["created_equal_claim"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Claims:
    """The claims of one writer on blocks of networks of one store.

    Parameters
    ----------
    store : Path
        A local store.
    blocks : list of (int, int)
        The blocks ``[first, stop)`` the writer owns, each one stored object along networks.
    lease : float
        Seconds a claim lives without renewal.
    """

    def __init__(self, store: Path, blocks: list[tuple[int, int]], lease: float):
        self.folder = store / CLAIMS_GROUP
        self.blocks = blocks
        self.lease = lease
        self.token = uuid.uuid4().hex
        self._mine: list[Path] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Claim every block, or none: raises WriterError naming a live owner."""
        self._ensure_group()
        try:
            for first, stop in self.blocks:
                self._claim(self.folder / f"{first}-{stop}", (first, stop))
        except BaseException:
            self.release()
            raise
        if self._mine and self._thread is None:
            self._thread = threading.Thread(target=self._renew_until_stopped, daemon=True)
            self._thread.start()

    def release(self, blocks: list[tuple[int, int]] | None = None) -> None:
        """Give up the claims on ``blocks`` (all by default); the last writer of this process
        sharing one removes its folder."""
        wanted = None if blocks is None else {self.folder / f"{a}-{b}" for a, b in blocks}
        keep = []
        for path in self._mine:
            if wanted is not None and path not in wanted:
                keep.append(path)
                continue
            with _held_lock:
                token, count = _held.get(path, ("", 0))
                if count > 1:
                    _held[path] = (token, count - 1)
                    continue
                _held.pop(path, None)
            owner = _read_owner(path)
            if owner is not None and owner.token == token:
                shutil.rmtree(path, ignore_errors=True)
        self._mine = keep
        if not self._mine:
            self._stop.set()

    def held(self) -> bool:
        """Whether this writer still holds a claim."""
        return bool(self._mine)

    def _ensure_group(self) -> None:
        with contextlib.suppress(FileExistsError):
            self.folder.mkdir()
        group = self.folder / "zarr.json"
        if not group.exists():
            with contextlib.suppress(FileExistsError):
                with open(group, "x") as file:
                    json.dump(_GROUP_JSON, file)

    def _claim(self, path: Path, block: tuple[int, int]) -> None:
        with _held_lock:
            if path in _held:  # another writer of this process holds it: share
                token, count = _held[path]
                _held[path] = (token, count + 1)
                self._mine.append(path)
                return
        for _ in range(3):
            try:
                path.mkdir()
            except FileExistsError:
                owner = _read_owner(path)
                if owner is None and time.time() - _mtime(path) < self.lease:
                    owner = Owner("?", -1, "", "", _mtime(path) + self.lease)
                if owner is not None and not owner.is_gone():
                    raise WriterError(
                        f"networks {block[0]}:{block[1]} of {self.folder.parent} are being "
                        f"written by {owner.describe()}; wait for it to finish, or rerun once "
                        "it has stopped"
                    ) from None
                _take_over(path)
                continue
            try:
                _write_owner(path, Owner.this_process(self.token, self.lease))
            except OSError:
                # A full disk: an ownerless claim would hold the block for a whole lease
                # against every rerun, so it is given up at once.
                shutil.rmtree(path, ignore_errors=True)
                raise
            with _held_lock:
                _held[path] = (self.token, 1)
            self._mine.append(path)
            return
        raise WriterError(f"could not claim networks {block[0]}:{block[1]}: others keep taking it")

    def renew(self) -> None:
        """Extend the lease of every claim this writer holds, made by it or shared."""
        for path in list(self._mine):
            with _held_lock:
                token = _held.get(path, ("", 0))[0]
            current = _read_owner(path)
            if token and current is not None and current.token == token:
                _write_owner(path, Owner.this_process(token, self.lease))

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.lease / 3):
            with contextlib.suppress(OSError):
                self.renew()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _take_over(path: Path) -> None:
    """Remove a gone owner's claim; of several processes taking it over, one renames it away."""
    away = path.with_name(f".gone-{uuid.uuid4().hex}")
    try:
        os.rename(path, away)
    except OSError:
        return  # another process took it first; the caller tries again
    shutil.rmtree(away, ignore_errors=True)

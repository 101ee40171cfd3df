"""Training state saved between checkpoints, so that a rerun resumes where a crash left off.

Each block saves, after every checkpoint is marked complete in the store, its weights, batch-norm
statistics and optimiser state to one file in the state folder
``<store parent>/.<store name>.train-state/`` (beside the store, so the store holds only Zarr
data), through a temporary file and ``os.replace``. A state is resumed only if it belongs to the
same study, the same block and a store that has its checkpoint marked.

A save that fails (a full disk, a quota, a read-only folder) removes its temporary file and
raises a one-line :class:`~engine.errors.EngineError` naming the file and the space left; the
store is untouched by it (its checkpoint is already marked), so a rerun resumes. Temporary files
that a killed process left behind are removed by the next run that loads or finishes a block's
state, and when the state folder is removed at the end of training.
"""

from __future__ import annotations

import glob
import io
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import EngineError
from engine.train.block import Block, BlockRun, TrainContext

STATE_FORMAT = 1
#: A temporary state file older than this is left over from a crash wherever it was written
#: (a save takes seconds); younger ones are removed only when their process on this machine is
#: gone, since shards on other machines may share the folder.
STALE_TEMPORARY_SECONDS = 3600.0


def state_folder(store: Path) -> Path:
    """Where a store's training state lives: beside it, so the store holds only Zarr data."""
    return store.parent / f".{store.name}.train-state"


def state_path(context: TrainContext, block: Block) -> Path | None:
    """The block's state file, or None where the run saves no state."""
    return context.state_dir / f"{block.key}.pt" if context.state_dir else None


def _on_host(value: Any, copy: bool) -> Any:
    """``value`` with every tensor in it on the host (nested dicts, lists and tuples); with
    ``copy``, copies even of the tensors already there."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=copy)
    if isinstance(value, dict):
        return {k: _on_host(v, copy) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_on_host(v, copy) for v in value)
    return value


def save_state(context: TrainContext, run: BlockRun) -> None:
    """Save the block's tensors and optimiser at its current checkpoint (atomically).

    With a recorder that writes from a thread of its own (``defer``, as
    :class:`engine.train.recorders.BackgroundRecorder`), a copy of the state is written there,
    after the checkpoint's mark: a state file never claims a checkpoint the store lacks.

    Raises
    ------
    EngineError
        If the file cannot be written (no space left, a quota, a read-only folder): one line
        naming the file and the space left on its disk; no temporary file is left behind.
    """
    path = state_path(context, run.block)
    if path is None:
        return
    state = {
        "format": STATE_FORMAT,
        "config": context.config_json,
        "block": [run.block.start, run.block.stop],
        "checkpoint": run.checkpoint,
        "step": run.step,
        "params": {k: v.detach() for k, v in run.params.items()},
        "buffers": dict(run.buffers),
        "optimizer": run.optimizer.state_dict(),
    }
    defer = getattr(context.recorder, "defer", None)
    if defer is None:
        write_state(path, _on_host(state, copy=False))
    else:
        snapshot = _on_host(state, copy=True)  # training goes on and changes the tensors
        defer(lambda: write_state(path, snapshot))


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write a state (tensors on the host) to ``path`` through a temporary file.

    Raises
    ------
    EngineError
        If the file cannot be written: one line naming the file and the space left.
    """
    import torch

    # Serialised in memory first, so that every write to disk goes through write_file, where a
    # failure is an OSError with its errno (torch's own writer reports its internals instead).
    buffer = io.BytesIO()
    torch.save(state, buffer)
    temporary = path.with_name(f".{path.name}.{_temporary_tag()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(temporary, buffer.getbuffer())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise EngineError(_save_failure(path, error, buffer.getbuffer().nbytes)) from error


def _temporary_tag() -> str:
    """Names this process's temporary files: host and pid (now, not at import: a forked
    worker has its own), so that a later run can tell its machine's dead processes' files."""
    return f"{socket.gethostname().replace('.', '_')}.{os.getpid()}"


def write_file(path: Path, data: memoryview) -> None:
    """Write ``data`` to a new file ``path`` and flush it to disk (the one write of a state).

    The fsync is there because some file systems (NFS, quotas) report a full disk only when
    data is flushed or the file closed, which must happen before the rename publishes it.
    """
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _save_failure(path: Path, error: OSError, size: int) -> str:
    """The one line of a failed save: the file, the reason, the space it needed and had."""
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    reason = error.strerror or type(error).__name__
    return (
        f"cannot save training state {path}: {reason} (needs {size / 2**20:.1f} MiB; "
        f"{free} on its disk); the store is intact: free space and rerun the same command "
        "to resume"
    )


def remove_stale_temporaries(folder: Path, prefix: str = "") -> None:
    """Remove the temporary state files in ``folder`` (those of ``prefix``, a state file's
    name, or all) that a killed or failed process left: this machine's whose process is gone,
    and any older than :data:`STALE_TEMPORARY_SECONDS`."""
    if not folder.is_dir():
        return
    host = socket.gethostname().replace(".", "_")
    now = time.time()
    for file in folder.glob(f".{glob.escape(prefix)}*.tmp"):
        parts = file.name[: -len(".tmp")].rsplit(".", 2)
        # ".<name>.pt.<pid>.tmp", without a host, is what earlier engines wrote: take it as ours.
        same_host = len(parts) == 3 and parts[1] in (host, "pt")
        try:
            dead = same_host and not _alive(int(parts[2]))
            old = now - file.stat().st_mtime > STALE_TEMPORARY_SECONDS
        except (ValueError, OSError):
            continue
        if dead or old:
            file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def load_state(context: TrainContext, block: Block, completed: np.ndarray) -> dict[str, Any] | None:
    """The block's saved state, or None where there is none that belongs to this run.

    Parameters
    ----------
    completed : ndarray of int32, dims (block networks,)
        Checkpoints the store has marked complete for each of the block's networks.
    """
    import torch

    path = state_path(context, block)
    if path is None:
        return None
    remove_stale_temporaries(path.parent, path.name)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a foreign or damaged file: start the block afresh
        return None
    if (
        state.get("format") != STATE_FORMAT
        or state.get("config") != context.config_json
        or state.get("block") != [block.start, block.stop]
    ):
        return None
    # The state is saved after its checkpoint is marked; a store that says otherwise was made
    # anew since, so the state does not belong to it.
    if (completed < state["checkpoint"] + 1).any():
        return None
    return state


def restore_state(run: BlockRun, state: dict[str, Any]) -> None:
    """Copy a loaded state into the block's tensors (on their device) and optimiser."""
    import torch

    with torch.no_grad():
        for name, value in state["params"].items():
            run.params[name].copy_(value)
        for name, value in state["buffers"].items():
            run.buffers[name].copy_(value)
    run.optimizer.load_state_dict(state["optimizer"])
    run.checkpoint, run.step = int(state["checkpoint"]), int(state["step"])


def remove_state(context: TrainContext, block: Block) -> None:
    """Delete a finished block's state file, unless the run keeps final weights."""
    path = state_path(context, block)
    if path is None:
        return
    remove_stale_temporaries(path.parent, path.name)
    if context.keep_state:
        return
    defer = getattr(context.recorder, "defer", None)
    if defer is None:
        path.unlink(missing_ok=True)
    else:  # after the state writes queued before it
        defer(lambda: path.unlink(missing_ok=True))


def remove_state_folder(store: Path) -> None:
    """Remove the state folder once it is empty: other shards may still be saving there.

    First go its stale temporary files and the states of blocks the store has complete: a run
    killed after a block's last checkpoint was marked, before its state was removed, leaves
    one that no later run would otherwise touch (complete blocks are not trained again).
    """
    folder = state_folder(store)
    remove_stale_temporaries(folder)
    _remove_finished_states(store, folder)
    try:
        folder.rmdir()
    except OSError:
        pass


def _remove_finished_states(store: Path, folder: Path) -> None:
    """Delete ``<group>-<start>-<stop>.pt`` files whose networks the store has all complete."""
    states = sorted(folder.glob("*.pt")) if folder.is_dir() else []
    if not states:
        return
    from engine.errors import StoreError
    from engine.store import open_population

    try:
        population = open_population(store, check=False)
        completed = population.checkpoints_completed()
    except StoreError:
        return  # no store to tell finished blocks by: leave the states alone
    for path in states:
        try:
            start, stop = (int(part) for part in path.stem.rsplit("-", 2)[1:])
        except ValueError:
            continue
        block = completed[start:stop]
        if 0 <= start < stop and block.size == stop - start:
            if (block >= population.num_checkpoints).all():
                path.unlink(missing_ok=True)

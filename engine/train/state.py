"""Training state saved between checkpoints, so that a rerun resumes where a crash left off.

Each block saves, after every checkpoint is marked complete in the store, its weights, batch-norm
statistics and optimiser state to one file in the state folder
``<store parent>/.<store name>.train-state/`` (beside the store, so the store holds only Zarr
data), through a temporary file and ``os.replace``. A state is resumed only if it belongs to the
same study, the same block and a store that has its checkpoint marked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.train.block import Block, BlockRun, TrainContext

STATE_FORMAT = 1


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


def _write_state(path: Path, state: dict[str, Any]) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def save_state(context: TrainContext, run: BlockRun) -> None:
    """Save the block's tensors and optimiser at its current checkpoint (atomically).

    With a recorder that writes from a thread of its own (``defer``, as
    :class:`engine.train.recorders.BackgroundRecorder`), a copy of the state is written there,
    after the checkpoint's mark: a state file never claims a checkpoint the store lacks.
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
        _write_state(path, _on_host(state, copy=False))
    else:
        snapshot = _on_host(state, copy=True)  # training goes on and changes the tensors
        defer(lambda: _write_state(path, snapshot))


def load_state(context: TrainContext, block: Block, completed: np.ndarray) -> dict[str, Any] | None:
    """The block's saved state, or None where there is none that belongs to this run.

    Parameters
    ----------
    completed : ndarray of int32, dims (block networks,)
        Checkpoints the store has marked complete for each of the block's networks.
    """
    import torch

    path = state_path(context, block)
    if path is None or not path.exists():
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
    if path is None or context.keep_state:
        return
    defer = getattr(context.recorder, "defer", None)
    if defer is None:
        path.unlink(missing_ok=True)
    else:  # after the state writes queued before it
        defer(lambda: path.unlink(missing_ok=True))


def remove_state_folder(store: Path) -> None:
    """Remove the state folder once it is empty: other shards may still be saving there."""
    try:
        state_folder(store).rmdir()
    except OSError:
        pass

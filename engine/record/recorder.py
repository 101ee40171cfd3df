"""Recording a population from the user's own training loop: open, record, close.

One recorder per run (one process of a job array, one network id) or per block of runs. The first
run to open a missing store creates it, race-free: each process builds it in a hidden sibling
folder and renames it into place, and the losers of the race open the winner's store and check
that it is the one they would have made. Stores made here default to one network per stored
object (``network_block=1``), so that any number of independent runs fill one store with no lock
and no coordinator: no two runs ever write the same chunk (docs/recording.md).

A checkpoint is marked complete, and becomes visible to readers, once every split of the store
holds it; a run that crashes leaves its network incomplete, and the rerun that opens it again
starts it over (or, with ``resume=True``, goes on from its last complete checkpoint).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.errors import StoreError, WriterError
from engine.store import (
    GroupSpec,
    PopulationWriter,
    SplitSpec,
    create_population,
    open_population,
    open_writer,
)

#: Networks per stored object of the stores that recorders create: one, so that every run owns
#: its own objects. ``engine compact`` rewrites a finished store into blocks of 32.
RUN_NETWORK_BLOCK = 1

#: Checkpoints per stored object of the stores that recorders create: twice the block layout's
#: 16. An object of one network is small, and more checkpoints in it compress better: at 30
#: checkpoints of 2,400 examples, all in one object took 23% fewer bits per entry (predictions
#: and correctness) and 32% fewer files than objects of 16, for 4 ms more per recorded
#: checkpoint (benchmarks/bench_runs.py, RESULTS.md "Many independent runs"). Bounded, since each
#: recorded checkpoint rewrites its object.
RUN_CHECKPOINT_BLOCK = 32

#: What a float array given to :meth:`Recorder.record` holds.
Outputs = Literal["logits", "probabilities"]


@dataclass(frozen=True)
class StoreLayout:
    """What a store made by the first recorder holds; every run of the store gives the same.

    Parameters
    ----------
    labels : mapping of str to ndarray of int, dims (examples,)
        True class of each example of each split, ``-1`` where it has none (probes).
    num_networks : int
        Networks of the whole population (every run's id lies in ``0:num_networks``).
    checkpoints : int or sequence of float
        Number of checkpoints (epochs ``0, 1, ...``: 0 is the initialisation), or the epoch of
        each checkpoint.
    num_classes : int, optional
        Classes of the task; defaults to one more than the largest label.
    class_names : sequence of str, optional
    soft : bool
        Whether to store soft verdicts (true-class probability and margin): record logits.
    predictions : bool
        Whether to store predicted classes besides correctness.
    steps : sequence of int, optional
        Optimiser step of each checkpoint.
    dataset : str
        Name of the data set.
    groups : sequence of GroupSpec, optional
        Groups of networks in id order; one group ``"runs"`` of every network by default.
    network_block : int
        Networks per stored object; runs that own single networks need 1.
    checkpoint_block : int
        Checkpoints per stored object (at most the store's checkpoints).
    """

    labels: Mapping[str, Any]
    num_networks: int
    checkpoints: int | Sequence[float]
    num_classes: int | None = None
    class_names: Sequence[str] | None = None
    soft: bool = False
    predictions: bool = True
    steps: Sequence[int] | None = None
    dataset: str = "custom"
    groups: Sequence[GroupSpec] | None = None
    network_block: int = RUN_NETWORK_BLOCK
    checkpoint_block: int = RUN_CHECKPOINT_BLOCK

    def epochs(self) -> np.ndarray:
        """Epoch of each checkpoint, dims (checkpoints,)."""
        if isinstance(self.checkpoints, int | np.integer):
            if self.checkpoints < 1:
                raise WriterError(f"checkpoints must be at least 1, got {self.checkpoints}")
            return np.arange(int(self.checkpoints), dtype=np.float64)
        epochs = np.asarray(self.checkpoints, dtype=np.float64)
        if epochs.ndim != 1 or epochs.size < 1 or not np.isfinite(epochs).all():
            raise WriterError("checkpoints must be a count or a list of finite epochs")
        return epochs

    def names(self) -> list[str]:
        """The class names of the store."""
        if self.class_names is not None:
            return [str(name) for name in self.class_names]
        largest = max((int(np.max(v)) for v in self.labels.values() if np.size(v)), default=0)
        count = self.num_classes if self.num_classes is not None else largest + 1
        if count <= largest:
            raise WriterError(f"num_classes {count} is not above the largest label {largest}")
        return [str(c) for c in range(count)]

    def create(self, path: Path) -> None:
        """Create the store at ``path``, unless another process does so first."""
        if not self.labels:
            raise WriterError("a store needs at least one split: give labels per split")
        if self.num_networks < 1:
            raise WriterError(f"num_networks must be at least 1, got {self.num_networks}")
        groups = self.groups or [GroupSpec("runs", "custom", self.num_networks)]
        try:
            create_population(
                path,
                dataset_name=self.dataset,
                splits={
                    name: SplitSpec(
                        labels=_labels(name, labels), predictions=self.predictions, soft=self.soft
                    )
                    for name, labels in self.labels.items()
                },
                groups=groups,
                checkpoint_epochs=self.epochs(),
                checkpoint_steps=self.steps,
                class_names=self.names(),
                network_block=self.network_block,
                checkpoint_block=self.checkpoint_block,
            )
        except (OSError, StoreError):
            # Another run published the store first (or the path holds something else): the
            # check against the existing store below says which.
            if not path.exists():
                raise

    def require_matches(self, path: Path) -> None:
        """Raise StoreError where the store at ``path`` is not the one this layout makes."""
        population = open_population(path)
        attrs = population.attrs
        if set(attrs["splits"]) != set(self.labels):
            raise StoreError(
                f"{path} holds the splits {sorted(attrs['splits'])}, not {sorted(self.labels)}"
            )
        for name, labels in self.labels.items():
            if not np.array_equal(population.labels(name), _labels(name, labels)):
                raise StoreError(f"{path}: the labels of split {name!r} differ from the store's")
            if bool(attrs["splits"][name].get("soft", False)) != self.soft:
                raise StoreError(f"{path}: split {name!r} soft={not self.soft} in the store")
        if population.num_networks != self.num_networks:
            raise StoreError(
                f"{path} holds {population.num_networks} networks, not {self.num_networks}"
            )
        # The array itself, not the checkpoints table: that would import pandas into every run.
        epochs = population.read_array("checkpoint_epoch")[: population.num_checkpoints]
        if not np.array_equal(epochs, self.epochs()):
            raise StoreError(
                f"{path} has checkpoints at epochs {epochs.tolist()}, not {self.epochs().tolist()}"
            )
        steps = population.checkpoints["step"].to_numpy()
        if self.steps is not None and not np.array_equal(steps, np.asarray(self.steps)):
            # One step per checkpoint for the whole population: a run of another length in
            # steps would be stored under the first run's steps.
            raise StoreError(
                f"{path} has checkpoints at steps {steps.tolist()}, not {list(self.steps)}"
            )


class Recorder:
    """Records the verdicts of the networks one run trains (see :func:`open_recorder`).

    Attributes
    ----------
    networks : (int, int)
        The network ids ``[start, stop)`` this recorder owns.
    splits : list of str
    num_checkpoints : int
    """

    def __init__(
        self,
        writer: PopulationWriter,
        outputs: Outputs = "logits",
        overwrite: bool = False,
    ):
        self.writer = writer
        self.networks = writer.networks
        self.splits = writer.splits
        self.num_checkpoints = writer.num_checkpoints
        self.outputs: Outputs = outputs
        self._overwrite = overwrite
        self._closed = False

    # -- state ------------------------------------------------------------------------------

    @property
    def num_networks(self) -> int:
        return self.networks[1] - self.networks[0]

    @property
    def completed(self) -> int:
        """Checkpoints complete for every owned network (visible to readers)."""
        return int(self.writer.checkpoints_completed().min())

    @property
    def complete(self) -> bool:
        """Whether every checkpoint of every owned network is recorded."""
        return self.completed >= self.num_checkpoints

    @property
    def next_checkpoint(self) -> int:
        """The first checkpoint that some split does not hold yet: where ``record`` goes."""
        return self.writer.recorded_through(self.networks)

    # -- recording --------------------------------------------------------------------------

    def record(
        self,
        verdicts: Mapping[str, Any] | None = None,
        /,
        *,
        checkpoint: int | None = None,
        loss: Any = None,
        **splits: Any,
    ) -> int:
        """Record the networks' outputs on one or more splits at one checkpoint.

        Each split's value is a torch tensor or an array: floats are logits (or probabilities,
        as the recorder was opened), dims ([networks,] examples, classes); integers are
        predicted classes and booleans correctness, dims ([networks,] examples). The networks
        axis may be left out by a recorder of one network. Once every split holds the
        checkpoint, it is marked complete.

        Parameters
        ----------
        verdicts : mapping of str to array, optional
            Values per split (for split names that are not Python identifiers).
        checkpoint : int, optional
            Which checkpoint; by default :attr:`next_checkpoint`.
        loss : float or array, dims (networks,), optional
            Training loss of each network at this checkpoint.
        **splits : array
            Values per split, by name: ``record(test=logits)``.

        Returns
        -------
        int
            The checkpoint recorded.
        """
        if self._closed:
            raise WriterError("this recorder is closed")
        values = {**(verdicts or {}), **splits}
        if not values and loss is None:
            raise WriterError(f"record needs the outputs of at least one split of {self.splits}")
        # Read once: each read of checkpoints_completed is a stored object (one file) read.
        completed = self.completed
        if completed >= self.num_checkpoints and not self._overwrite:
            start, stop = self.networks
            raise WriterError(
                f"networks {start}:{stop} are already complete; open the recorder with "
                "overwrite=True to record them again"
            )
        at = self.next_checkpoint if checkpoint is None else int(checkpoint)
        if checkpoint is not None and not 0 <= at < self.num_checkpoints:
            raise WriterError(f"checkpoint {at} is outside 0:{self.num_checkpoints} of this store")
        if at >= self.num_checkpoints:
            raise WriterError(f"every one of the {self.num_checkpoints} checkpoints is recorded")
        if at < completed:
            raise WriterError(f"checkpoint {at} is already recorded and marked complete")
        # The loss is checked before any split is written, so that a refused one writes nothing.
        losses = None if loss is None else self._per_network(_numpy(loss))
        for split, value in values.items():
            self.writer.record(split, at, self.networks, **self._verdicts(split, value))
        if losses is not None:
            self.writer.record_loss(at, self.networks, losses)
        through = self.writer.recorded_through(self.networks)
        if through > completed:
            self.writer.mark_checkpoint(through - 1, self.networks)
        return at

    def _verdicts(self, split: str, value: Any) -> dict[str, np.ndarray]:
        """The writer's keyword for one split's value, with the networks axis."""
        self.writer.require_split(split)
        array = _numpy(value)
        if array.dtype == bool:
            return {"correct": self._with_networks(array, 2, split)}
        if np.issubdtype(array.dtype, np.integer):
            return {"predictions": self._with_networks(array, 2, split)}
        if np.issubdtype(array.dtype, np.floating):
            return {self.outputs: self._with_networks(array, 3, split)}
        raise WriterError(
            f"outputs for split {split!r} must be floats (logits), integers (classes) or "
            f"booleans (correctness), got {array.dtype}"
        )

    def _with_networks(self, array: np.ndarray, ndim: int, split: str) -> np.ndarray:
        if array.ndim == ndim - 1 and self.num_networks == 1:
            return array[None]
        if array.ndim != ndim:
            axes = "(networks, examples, classes)" if ndim == 3 else "(networks, examples)"
            raise WriterError(
                f"outputs for split {split!r} have {array.ndim} dimensions, expected {axes}"
                + (" or without networks for one network" if self.num_networks == 1 else "")
            )
        return array

    def _per_network(self, loss: np.ndarray) -> np.ndarray:
        """The loss of each network, dims (networks,), refused as the writer would refuse it."""
        if loss.ndim == 0:
            loss = np.full(self.num_networks, loss)
        if loss.shape != (self.num_networks,):
            raise WriterError(f"loss has shape {loss.shape}, expected ({self.num_networks},)")
        if not (np.issubdtype(loss.dtype, np.floating) or np.issubdtype(loss.dtype, np.integer)):
            raise WriterError(f"loss must be numbers, got {loss.dtype}")
        with np.errstate(over="ignore"):
            stored = loss.astype(np.float32)
        if (np.isinf(stored) & np.isfinite(loss)).any():
            raise WriterError("loss holds values beyond float32 (about 3.4e38)")
        return loss

    # -- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Finish recording; raises WriterError where a checkpoint lacks some split (it is
        not marked complete, so readers never see it)."""
        if self._closed:
            return
        self._closed = True
        self.writer.close()
        through = self.writer.recorded_through(self.networks)
        partial = [
            split
            for split, recorded in self.writer.recorded_splits(self.networks, through).items()
            if not recorded
        ]
        if through < self.num_checkpoints and len(partial) < len(self.splits):
            raise WriterError(
                f"checkpoint {through} was recorded for some splits but not {partial}; "
                "it is not marked complete"
            )

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if kind is None:
            self.close()
        else:  # a failing run: nothing more is marked, and the error is the one to see
            self._closed = True
            self.writer.close()


def open_recorder(
    path: str | os.PathLike,
    network: int | tuple[int, int] = 0,
    *,
    layout: StoreLayout | None = None,
    outputs: Outputs = "logits",
    resume: bool = False,
    overwrite: bool = False,
) -> Recorder:
    """Open a recorder for one run's network (or block of networks), creating the store if it
    is missing.

    Parameters
    ----------
    path : str or path
        The population store.
    network : int or (int, int)
        The network id this run trains, or a range ``[start, stop)`` of them.
    layout : StoreLayout, optional
        What the store holds; needed when the store may not exist yet, and checked against it
        when it does (every run of a job array passes the same).
    outputs : {"logits", "probabilities"}
        What float arrays given to :meth:`Recorder.record` hold.
    resume : bool
        Keep the checkpoints an earlier run of these networks completed and go on from there;
        by default a rerun of a network that did not finish starts it over.
    overwrite : bool
        Record networks that are already complete again, from the first checkpoint.

    Returns
    -------
    Recorder

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from engine.record import StoreLayout, open_recorder
    >>> path = os.path.join(tempfile.mkdtemp(), "runs.zarr")
    >>> layout = StoreLayout(labels={"test": np.array([0, 1, 1])}, num_networks=4, checkpoints=2)
    >>> with open_recorder(path, network=3, layout=layout) as recorder:
    ...     for epoch in range(2):
    ...         _ = recorder.record(test=np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
    >>> recorder.complete
    True
    """
    path = Path(path)
    if layout is not None:
        if not path.exists():
            layout.create(path)
        layout.require_matches(path)
    elif not path.exists():
        raise StoreError(f"{path} does not exist; give a layout to create it")
    start, stop = (network, network + 1) if isinstance(network, int | np.integer) else network
    writer = open_writer(path, (int(start), int(stop)))
    writer.claim()  # a second live run of these networks is refused here, before training
    done = writer.checkpoints_completed()
    finished = done.min() >= writer.num_checkpoints
    if (overwrite and finished) or (not finished and not resume and done.max() > 0):
        # A crashed run's checkpoints came from a process that is gone: a rerun records them
        # again, and until it has, readers must not mix the two.
        writer.reset((int(start), int(stop)))
    if outputs not in ("logits", "probabilities"):
        raise WriterError(f"outputs must be 'logits' or 'probabilities', got {outputs!r}")
    return Recorder(writer, outputs=outputs, overwrite=overwrite)


def _labels(split: str, labels: Any) -> np.ndarray:
    array = _numpy(labels)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise WriterError(f"labels of split {split!r} must be a 1-D integer array")
    return array.astype(np.int64)


def _numpy(value: Any) -> np.ndarray:
    """A torch tensor (any device; bf16 and fp16 as float32) or an array-like as an ndarray,
    without importing torch."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        tensor = value.detach()
        if tensor.is_floating_point():
            tensor = tensor.float()
        return tensor.cpu().numpy()
    return np.asarray(value)

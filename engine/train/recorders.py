"""Where the trainer's verdicts go: a population store, memory (benchmarks, tests) or nowhere.

Every recorder takes a block's networks as an id range ``(start, stop)`` and, per checkpoint,
each split's predictions, the training loss, and finally a mark that the checkpoint is complete.
Where the study records soft verdicts, ``record`` also gets their codes (``probability`` uint8,
``margin`` int8, :mod:`engine.store.format`) as keywords; without them it is called with the
predictions alone. The store writes the codes, :class:`MemoryRecorder` keeps them,
:class:`NullRecorder` drops them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from engine.store.format import MARGIN_MISSING, PROBABILITY_MISSING
from engine.train.data import Dataset

if TYPE_CHECKING:
    from engine.store import PopulationWriter


class Recorder(Protocol):
    """What the trainer writes to (see :class:`StoreRecorder` for each method's arrays)."""

    def record(
        self,
        split: str,
        checkpoint: int,
        networks: tuple[int, int],
        predictions: np.ndarray,
        *,
        probability: np.ndarray | None = None,
        margin: np.ndarray | None = None,
    ) -> None: ...

    def record_loss(self, checkpoint: int, networks: tuple[int, int], loss: np.ndarray) -> None: ...

    def record_membership(self, networks: tuple[int, int], membership: np.ndarray) -> None: ...

    def mark(self, checkpoint: int, networks: tuple[int, int]) -> None: ...


class StoreRecorder:
    """Writes verdicts to a population store through a writer that owns the networks.

    Parameters
    ----------
    writer : PopulationWriter
    """

    def __init__(self, writer: PopulationWriter):
        self.writer = writer

    def record(
        self,
        split: str,
        checkpoint: int,
        networks: tuple[int, int],
        predictions: np.ndarray,
        *,
        probability: np.ndarray | None = None,
        margin: np.ndarray | None = None,
    ) -> None:
        """Predictions of networks ``[start, stop)``: int16, dims (networks, examples); the
        codes of their soft verdicts (uint8 and int8, same dims) where the study records them."""
        self.writer.record(
            split,
            checkpoint,
            networks,
            predictions=predictions,
            probability=probability,
            margin=margin,
        )

    def record_loss(self, checkpoint: int, networks: tuple[int, int], loss: np.ndarray) -> None:
        """Mean training loss: float32, dims (networks,)."""
        self.writer.record_loss(checkpoint, networks, loss)

    def record_membership(self, networks: tuple[int, int], membership: np.ndarray) -> None:
        """Training examples each network trains on: bool, dims (networks, examples)."""
        self.writer.record_membership(networks, membership)

    def mark(self, checkpoint: int, networks: tuple[int, int]) -> None:
        """The checkpoint is complete for these networks (written last)."""
        self.writer.mark_checkpoint(checkpoint, networks)


class MemoryRecorder:
    """Keeps verdicts in memory: for benchmarks and tests.

    Attributes
    ----------
    predictions : dict of str to ndarray of int16, dims (networks, checkpoints, examples)
        Per split; -1 where not recorded.
    loss : ndarray of float32, dims (networks, checkpoints)
        NaN where not recorded.
    completed : ndarray of int32, dims (networks,)
        Checkpoints marked complete.
    membership : ndarray of bool, dims (networks, examples), or None
        Training subsets, where the study has them.
    probability, margin : dict of str to ndarray, dims (networks, checkpoints, examples)
        Per split, the codes of the soft verdicts (uint8 and int8, as the store keeps them),
        where the study records them (else empty); the missing codes where not recorded.
    """

    def __init__(self, num_networks: int, num_checkpoints: int, dataset: Dataset):
        self.predictions = {
            name: np.full((num_networks, num_checkpoints, len(split)), -1, np.int16)
            for name, split in dataset.splits.items()
        }
        self.loss = np.full((num_networks, num_checkpoints), np.nan, np.float32)
        self.completed = np.zeros(num_networks, np.int32)
        self.membership: np.ndarray | None = None
        self.probability: dict[str, np.ndarray] = {}
        self.margin: dict[str, np.ndarray] = {}

    def record(
        self,
        split: str,
        checkpoint: int,
        networks: tuple[int, int],
        predictions: np.ndarray,
        *,
        probability: np.ndarray | None = None,
        margin: np.ndarray | None = None,
    ) -> None:
        self.predictions[split][networks[0] : networks[1], checkpoint] = predictions
        if probability is None or margin is None:
            return
        if split not in self.probability:  # allocated on the first soft record only
            shape = self.predictions[split].shape
            self.probability[split] = np.full(shape, PROBABILITY_MISSING, np.uint8)
            self.margin[split] = np.full(shape, MARGIN_MISSING, np.int8)
        self.probability[split][networks[0] : networks[1], checkpoint] = probability
        self.margin[split][networks[0] : networks[1], checkpoint] = margin

    def record_loss(self, checkpoint: int, networks: tuple[int, int], loss: np.ndarray) -> None:
        self.loss[networks[0] : networks[1], checkpoint] = loss

    def record_membership(self, networks: tuple[int, int], membership: np.ndarray) -> None:
        if self.membership is None:
            self.membership = np.ones((self.loss.shape[0], membership.shape[1]), bool)
        self.membership[networks[0] : networks[1]] = membership

    def mark(self, checkpoint: int, networks: tuple[int, int]) -> None:
        done = self.completed[networks[0] : networks[1]]
        self.completed[networks[0] : networks[1]] = np.maximum(done, checkpoint + 1)


class NullRecorder:
    """Records nothing (to time training alone)."""

    def record(
        self,
        split: str,
        checkpoint: int,
        networks: tuple[int, int],
        predictions: np.ndarray,
        *,
        probability: np.ndarray | None = None,
        margin: np.ndarray | None = None,
    ) -> None:
        pass

    def record_loss(self, checkpoint: int, networks: tuple[int, int], loss: np.ndarray) -> None:
        pass

    def record_membership(self, networks: tuple[int, int], membership: np.ndarray) -> None:
        pass

    def mark(self, checkpoint: int, networks: tuple[int, int]) -> None:
        pass


class BackgroundRecorder:
    """Writes through another recorder from one background thread, so that training goes on
    while the store compresses and writes.

    Calls run on the thread in the order they were made; the queue is bounded (``depth``
    calls): a trainer that gets ``depth`` calls ahead waits, so memory stays bounded. Arrays are
    copied when queued (the caller may reuse its own). :meth:`defer` queues any other work that
    must follow the writes queued before it (the trainer saves its resumable state so: a state
    file never claims a checkpoint the store has not marked). A failed call's error is raised in
    the caller at its next call, :meth:`flush` or :meth:`close`, and nothing queued after it
    runs: no checkpoint is marked after a write that failed.

    Parameters
    ----------
    recorder : Recorder
        Where the verdicts go (a :class:`StoreRecorder`, say).
    depth : int
        Calls queued at most.
    """

    def __init__(self, recorder: Recorder, depth: int = 8):
        import queue
        import threading

        if depth < 1:
            raise ValueError(f"a background writer needs a queue depth >= 1, not {depth}")
        self.recorder = recorder
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._failed = False
        self._thread = threading.Thread(target=self._work, name="train-writer", daemon=True)
        self._closed = False
        self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:  # after a failure, the rest is dropped
                    job()
            except BaseException as error:  # raised in the trainer's thread instead
                self._error, self._failed = error, True
            finally:
                self._queue.task_done()

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def defer(self, job) -> None:
        """Run ``job()`` on the writer's thread once everything queued before it has run."""
        if self._closed:
            raise RuntimeError("the background writer is closed")
        self._raise_pending()
        if self._failed:
            raise RuntimeError("an earlier write of this background writer failed")
        self._queue.put(job)

    def record(
        self,
        split: str,
        checkpoint: int,
        networks: tuple[int, int],
        predictions: np.ndarray,
        *,
        probability: np.ndarray | None = None,
        margin: np.ndarray | None = None,
    ) -> None:
        predictions = np.array(predictions, copy=True)
        codes = {}
        if probability is not None and margin is not None:
            codes = {"probability": np.array(probability), "margin": np.array(margin)}
        self.defer(lambda: self.recorder.record(split, checkpoint, networks, predictions, **codes))

    def record_loss(self, checkpoint: int, networks: tuple[int, int], loss: np.ndarray) -> None:
        loss = np.array(loss, copy=True)
        self.defer(lambda: self.recorder.record_loss(checkpoint, networks, loss))

    def record_membership(self, networks: tuple[int, int], membership: np.ndarray) -> None:
        membership = np.array(membership, copy=True)
        self.defer(lambda: self.recorder.record_membership(networks, membership))

    def mark(self, checkpoint: int, networks: tuple[int, int]) -> None:
        self.defer(lambda: self.recorder.mark(checkpoint, networks))

    def flush(self) -> None:
        """Wait until every queued call has run; raise the first error of one that failed."""
        self._queue.join()
        self._raise_pending()

    def close(self) -> None:
        """Run what is queued, stop the thread, and raise a failed call's error."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        self._raise_pending()

    def __enter__(self) -> BackgroundRecorder:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
            return
        try:  # the error already on its way wins over one the writer still holds
            self.close()
        except BaseException:
            pass

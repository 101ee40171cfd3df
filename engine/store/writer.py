"""Writing verdicts into a population store: one writer per owned range of networks.

Concurrency contract: a writer owns whole blocks of ``network_block`` networks. Every array with a
``networks`` dimension that writers fill is chunked by exactly that block, so two writers that own
different blocks never touch the same stored object and need no lock. ``checkpoints_completed`` is
written last for a checkpoint; readers trust a network's entries only below it.

The writer refuses what it would store wrong (docs/store-format.md, "Writing"): a class id outside
``-1`` (no prediction) to the class count (or int16 where the store names no classes), verdicts
that are not booleans, a loss beyond float32, and a checkpoint marked complete before every split
was recorded for it by this writer.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from engine.errors import StoreError, WriterError
from engine.store.claims import DEFAULT_LEASE_SECONDS, Claims
from engine.store.format import (
    BIT_ORDER,
    MARGIN_MISSING,
    NO_LABEL,
    NO_PREDICTION,
    PROBABILITY_MISSING,
    encode_margin,
    encode_probability,
    get_array,
    is_url,
    open_root,
    recorded_writes,
)
from engine.store.soft import SoftVerdicts, soft_verdicts

#: A range of network ids ``[start, stop)``, as a pair, a ``range`` or a ``slice``.
NetworkRange = tuple[int, int] | range | slice


class PopulationWriter:
    """Records verdicts for a range of networks that this process owns.

    Parameters
    ----------
    path : str or path
        An existing population store.
    networks : (int, int)
        The half-open range ``[start, stop)`` of network ids this writer owns. It must cover whole
        network blocks (``start`` a multiple of the block, ``stop`` a multiple of it or the end),
        so that no other writer shares a stored object with it.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        networks: tuple[int, int] | None = None,
        lease: float = DEFAULT_LEASE_SECONDS,
    ):
        self.path = Path(path)
        self._lease = lease
        self._claims: Claims | None = None
        self._root, self._meta = open_root(self.path, mode="r+")
        self._labels: dict[str, np.ndarray] = {}
        self._arrays: dict[str, zarr.Array] = {}
        total = self._meta["num_networks"]
        start, stop = networks if networks is not None else (0, total)
        block = self._meta["network_block"]
        if not 0 <= start < stop <= total:
            raise WriterError(f"network range {start}:{stop} is outside 0:{total}")
        if stop % block and stop != total:
            raise WriterError(
                f"network range {start}:{stop} does not end on a block of {block} networks; "
                "writers must own whole blocks"
            )
        if start % block:
            # Allowed only where the rest of the block is finished (networks appended to a store
            # whose last block was partly filled): no other writer can be active there.
            first = start - start % block
            done = self.array("checkpoints_completed")[first:start]
            if (done < self._meta["num_checkpoints"]).any():
                raise WriterError(
                    f"network range {start}:{stop} does not start on a block of {block} networks"
                    " and shares it with unfinished networks; writers must own whole blocks"
                )
        self.networks = (start, stop)
        #: Per split, which (owned network, checkpoint) this writer has recorded, dims
        #: (networks, checkpoints): a checkpoint is marked complete only once every split holds it.
        self._recorded = {
            split: np.zeros((stop - start, self._meta["num_checkpoints"]), bool)
            for split in self._meta["splits"]
        }

    # -- ownership ---------------------------------------------------------------------------

    def blocks(self) -> list[tuple[int, int]]:
        """The stored blocks ``[first, stop)`` along networks that this writer's range touches."""
        start, stop = self.networks
        block, total = self._meta["network_block"], self._meta["num_networks"]
        firsts = range(start - start % block, stop, block)
        return [(first, min(first + block, total)) for first in firsts]

    def claim(self) -> None:
        """Claim the writer's blocks (engine.store.claims), once; every recording method does
        so on first use. Raises WriterError where another live writer holds one of them."""
        if self._claims is not None or is_url(self.path):
            return  # object stores have no atomic folder creation: no claims there
        claims = Claims(self.path, self.blocks(), self._lease)
        claims.acquire()
        self._claims = claims
        weakref.finalize(self, claims.release)

    def close(self) -> None:
        """Give up the writer's claims; the writer can claim them again if used after."""
        if self._claims is not None:
            self._claims.release()
            self._claims = None

    def __enter__(self) -> PopulationWriter:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()

    def array(self, name: str) -> zarr.Array:
        """An array of the store, opened once: opening reads its metadata from the store.

        From format 2 on, every chunk written is stored even where it equals the fill value, so
        that readers can tell a chunk never written from one lost (docs/store-format.md).
        """
        if name not in self._arrays:
            array = get_array(self._root, name)
            config = recorded_writes(self._meta["format_version"])
            self._arrays[name] = array.with_config(config) if any(config.values()) else array
        return self._arrays[name]

    def _put(self, name: str, region: Any, values: np.ndarray) -> None:
        """Write ``values`` into ``region`` of an array; a failed write (a full disk) names the
        array and the store, where zarr's own error names neither."""
        try:
            self.array(name)[region] = values
        except OSError as error:
            reason = error.strerror or str(error)
            raise StoreError(f"cannot write {name} of {self.path}: {reason}") from error

    # -- properties -------------------------------------------------------------------------

    @property
    def num_checkpoints(self) -> int:
        return self._meta["num_checkpoints"]

    @property
    def splits(self) -> list[str]:
        return list(self._meta["splits"])

    def labels(self, split: str) -> np.ndarray:
        """True class per example of ``split``, -1 where there is none, dims (examples,)."""
        if split not in self._labels:
            self.require_split(split)
            self._labels[split] = np.asarray(self.array(f"splits/{split}/labels")[:])
        return self._labels[split]

    def checkpoints_completed(self) -> np.ndarray:
        """Completed checkpoints of each owned network, dims (networks,)."""
        start, stop = self.networks
        return np.asarray(self.array("checkpoints_completed")[start:stop])

    # -- checks -----------------------------------------------------------------------------

    def require_split(self, split: str) -> None:
        """Raise WriterError if the store has no split ``split``."""
        if split not in self._meta["splits"]:
            raise WriterError(f"unknown split {split!r}; the store has {self.splits}")

    def _check_networks(self, networks: NetworkRange) -> tuple[int, int]:
        if isinstance(networks, range | slice):
            start, stop = networks.start, networks.stop
        else:
            start, stop = networks
        own_start, own_stop = self.networks
        if not own_start <= start < stop <= own_stop:
            raise WriterError(
                f"networks {start}:{stop} are outside this writer's range {own_start}:{own_stop}"
            )
        return int(start), int(stop)

    def _check_checkpoint(self, checkpoint: int) -> int:
        if not 0 <= checkpoint < self.num_checkpoints:
            raise WriterError(
                f"checkpoint {checkpoint} is outside 0:{self.num_checkpoints} of this store"
            )
        return int(checkpoint)

    # -- recording --------------------------------------------------------------------------

    def record(
        self,
        split: str,
        checkpoint: int,
        networks: NetworkRange,
        *,
        predictions: np.ndarray | None = None,
        correct: np.ndarray | None = None,
        logits: np.ndarray | None = None,
        probabilities: np.ndarray | None = None,
        probability: np.ndarray | None = None,
        margin: np.ndarray | None = None,
    ) -> None:
        """Record one checkpoint of one split for a block of networks.

        Give exactly one of ``logits``, ``probabilities``, ``predictions`` or ``correct``
        (``correct`` may come with ``predictions`` as a check). Logits or probabilities give
        predictions (their argmax), correctness and, where the split stores them, the soft
        verdicts, in one pass; every check runs before anything is written.

        Parameters
        ----------
        split : str
        checkpoint : int
        networks : (int, int)
            Range ``[start, stop)`` inside the writer's own range.
        predictions : ndarray of int, dims (networks, examples), optional
            Predicted classes; correctness is derived from the split's labels (examples without
            a label count as not correct).
        correct : ndarray of bool, dims (networks, examples), optional
            Correctness alone, for splits recorded without predictions.
        logits : ndarray of float, dims (networks, examples, classes), optional
            Finite logits over every class of the store.
        probabilities : ndarray of float, dims (networks, examples, classes), optional
            Class probabilities, each row in [0, 1] summing to 1 (within 1e-3).
        probability, margin : ndarray, dims (networks, examples), optional
            Soft verdicts already derived (by a trainer, on its device), given with
            ``predictions``: floats (NaN for none; probability in [0, 1]) are encoded here;
            uint8 (probability) and int8 (margin) arrays are taken as the stored codes of
            :func:`engine.store.format.encode_probability` and ``encode_margin``.
        """
        self.require_split(split)
        start, stop = self._check_networks(networks)
        checkpoint = self._check_checkpoint(checkpoint)
        labels = self.labels(split)
        expected = (stop - start, labels.size)
        stores_predictions = self._meta["splits"][split]["predictions"]
        codes = None
        soft = self._soft_from(split, expected, logits, probabilities, predictions, correct)
        if soft is not None:
            if probability is not None or margin is not None:
                raise WriterError(
                    "give logits or probabilities alone: the soft verdicts derive from them"
                )
            predictions = soft.predictions
            codes = encode_probability(soft.probability), encode_margin(soft.margin)
        elif probability is not None or margin is not None:
            codes = self._given_codes(split, expected, predictions, probability, margin)
        if codes is None and self._meta["splits"][split].get("soft", False):
            raise WriterError(
                f"split {split!r} stores soft verdicts: record logits, probabilities, or "
                "predictions with probability and margin"
            )
        if predictions is None and correct is None:
            raise WriterError("record needs logits, probabilities, predictions or correct")
        if predictions is not None:
            predictions = self._checked_predictions(split, predictions, expected)
            correct = self._correct_from_predictions(split, predictions, correct, expected)
        elif stores_predictions:
            raise WriterError(
                f"split {split!r} stores predictions: record predictions, not correct alone"
            )
        assert correct is not None  # given, or derived from the predictions above
        correct = _booleans(f"correct for split {split!r}", correct, expected)
        # An example without a label is never correct (docs/store-format.md), however recorded.
        correct = correct & (labels[None, :] != NO_LABEL)
        self.claim()  # every check has passed: the writing starts
        if predictions is not None and stores_predictions:
            self._put(
                f"splits/{split}/predictions",
                np.s_[start:stop, checkpoint, :],
                predictions.astype(np.int16),
            )
        if codes is not None and self._meta["splits"][split].get("soft", False):
            region = (slice(start, stop), checkpoint, slice(None))
            self._put(f"splits/{split}/probability", region, codes[0])
            self._put(f"splits/{split}/margin", region, codes[1])
        self._put(
            f"splits/{split}/correct_packed",
            np.s_[start:stop, checkpoint, :],
            np.packbits(correct, axis=1, bitorder=BIT_ORDER),
        )
        if checkpoint == self.num_checkpoints - 1:
            labeled = labels != NO_LABEL
            accuracy = (
                correct[:, labeled].mean(axis=1) if labeled.any() else np.full(stop - start, np.nan)
            )
            self._put(
                f"splits/{split}/final_accuracy", np.s_[start:stop], accuracy.astype(np.float32)
            )
        own_start = self.networks[0]
        self._recorded[split][start - own_start : stop - own_start, checkpoint] = True

    def record_every_checkpoint(
        self, split: str, networks: NetworkRange, correct: np.ndarray
    ) -> None:
        """Record every checkpoint of a split that stores correctness alone, in one write.

        Writing whole stored objects at once (a simulator, an import of finished runs) avoids
        rewriting each chunk once per checkpoint as :meth:`record` must.

        Parameters
        ----------
        correct : ndarray of bool, dims (networks, checkpoints, examples)
        """
        self.require_split(split)
        start, stop = self._check_networks(networks)
        meta = self._meta["splits"][split]
        if meta["predictions"] or meta.get("soft", False):
            raise WriterError(f"split {split!r} stores predictions: record them checkpoint by one")
        labels = self.labels(split)
        expected = (stop - start, self.num_checkpoints, labels.size)
        correct = np.asarray(correct)
        if correct.shape != expected or correct.dtype != bool:
            raise WriterError(
                f"correct for split {split!r} must be booleans of shape {expected}, "
                f"got {correct.dtype} {correct.shape}"
            )
        correct = correct & (labels[None, None, :] != NO_LABEL)
        self.claim()
        self._put(
            f"splits/{split}/correct_packed",
            np.s_[start:stop],
            np.packbits(correct, axis=2, bitorder=BIT_ORDER),
        )
        labeled = labels != NO_LABEL
        last = correct[:, -1, :]
        accuracy = last[:, labeled].mean(axis=1) if labeled.any() else np.full(stop - start, np.nan)
        self._put(f"splits/{split}/final_accuracy", np.s_[start:stop], accuracy.astype(np.float32))
        own_start = self.networks[0]
        self._recorded[split][start - own_start : stop - own_start] = True

    def _soft_from(
        self,
        split: str,
        expected: tuple[int, int],
        logits: np.ndarray | None,
        probabilities: np.ndarray | None,
        predictions: np.ndarray | None,
        correct: np.ndarray | None,
    ) -> SoftVerdicts | None:
        """The verdicts derived from logits or probabilities, checked; None without either."""
        if logits is None and probabilities is None:
            return None
        if sum(value is not None for value in (logits, probabilities, predictions, correct)) > 1:
            raise WriterError(
                "give logits or probabilities alone: predictions and correctness derive from them"
            )
        values = logits if logits is not None else probabilities
        assert values is not None  # one of the two, checked above
        return soft_verdicts(
            values,
            self.labels(split),
            self.num_classes,
            expected,
            kind="logits" if logits is not None else "probabilities",
        )

    def _given_codes(
        self,
        split: str,
        expected: tuple[int, int],
        predictions: np.ndarray | None,
        probability: np.ndarray | None,
        margin: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The stored codes of soft verdicts given already derived, checked."""
        if predictions is None or probability is None or margin is None:
            raise WriterError("probability and margin come together, with predictions")
        unlabelled = (self.labels(split) == NO_LABEL)[None, :]
        probability_code = _code("probability", probability, expected, np.uint8, encode_probability)
        margin_code = _code("margin", margin, expected, np.int8, encode_margin)
        return (
            np.where(unlabelled, PROBABILITY_MISSING, probability_code).astype(np.uint8),
            np.where(unlabelled, MARGIN_MISSING, margin_code).astype(np.int8),
        )

    @property
    def num_classes(self) -> int | None:
        """Classes of the store (its class names), None where it names none."""
        names = self._meta.get("class_names")
        return len(names) if names else None

    def _checked_predictions(
        self, split: str, predictions: np.ndarray, expected: tuple[int, int]
    ) -> np.ndarray:
        """Predictions as given, refused where the store would keep another value."""
        predictions = np.asarray(predictions)
        if predictions.shape != expected:
            raise WriterError(
                f"predictions for split {split!r} have shape {predictions.shape}, "
                f"expected (networks, examples) = {expected}"
            )
        if not np.issubdtype(predictions.dtype, np.integer):
            raise WriterError("predictions must be integer class indices")
        if predictions.size == 0:
            return predictions
        # Predictions are stored as int16; with class names, a class id must name one of them.
        limit = self.num_classes if self.num_classes is not None else int(np.iinfo(np.int16).max)
        low, high = int(predictions.min()), int(predictions.max())
        if low < NO_PREDICTION:
            raise WriterError(
                f"predictions for split {split!r} hold {low}: class ids are 0 or more, "
                f"{NO_PREDICTION} meaning no prediction"
            )
        if high >= limit:
            what = f"the {limit} classes of the store" if self.num_classes else "int16 storage"
            raise WriterError(
                f"predictions for split {split!r} hold class id {high}, beyond {what}"
            )
        return predictions

    def _correct_from_predictions(
        self,
        split: str,
        predictions: np.ndarray,
        correct: np.ndarray | None,
        expected: tuple[int, int],
    ) -> np.ndarray:
        """Correctness derived from predictions and labels, checked against ``correct``."""
        labels = self.labels(split)
        derived = (predictions == labels[None, :]) & (labels[None, :] != NO_LABEL)
        if correct is not None and not np.array_equal(
            _booleans("correct", correct, expected), derived
        ):
            raise WriterError("correct disagrees with predictions and labels")
        return derived

    def record_loss(self, checkpoint: int, networks: NetworkRange, loss: np.ndarray) -> None:
        """Record each network's training loss at a checkpoint, dims (networks,)."""
        start, stop = self._check_networks(networks)
        checkpoint = self._check_checkpoint(checkpoint)
        given = np.asarray(loss)
        if given.shape != (stop - start,):
            raise WriterError(f"loss has shape {given.shape}, expected ({stop - start},)")
        if not (np.issubdtype(given.dtype, np.floating) or np.issubdtype(given.dtype, np.integer)):
            raise WriterError(f"loss must be numbers, got {given.dtype}")
        stored = given.astype(np.float32)
        # float32 rounds, but a finite loss must not become infinite.
        if (np.isinf(stored) & np.isfinite(given)).any():
            raise WriterError("loss holds values beyond float32 (about 3.4e38)")
        self.claim()
        self._put("train_loss", np.s_[start:stop, checkpoint], stored)

    def record_membership(self, networks: NetworkRange, membership: np.ndarray) -> None:
        """Record which examples of the membership split each network trains on.

        Parameters
        ----------
        membership : ndarray of bool, dims (networks, examples)
        """
        split = self._meta.get("membership_split")
        if split is None:
            raise WriterError("this store was created without membership_split")
        start, stop = self._check_networks(networks)
        expected = (stop - start, self._meta["splits"][split]["examples"])
        membership = _booleans("membership", membership, expected)
        self.claim()
        self._put(f"splits/{split}/membership", np.s_[start:stop], membership)

    def mark_checkpoint(self, checkpoint: int, networks: NetworkRange) -> None:
        """Declare checkpoints up to ``checkpoint`` recorded for every split: written last,
        trusted by readers.

        Raises
        ------
        WriterError
            If a checkpoint between a network's last completed one and ``checkpoint`` lacks a
            split that this writer has not recorded for it (it would read as all wrong).
        """
        start, stop = self._check_networks(networks)
        checkpoint = self._check_checkpoint(checkpoint)
        completed = self.array("checkpoints_completed")
        done = np.asarray(completed[start:stop])
        self._require_recorded(start, stop, done, checkpoint)
        self.claim()
        self._put(
            "checkpoints_completed",
            np.s_[start:stop],
            np.maximum(done, checkpoint + 1).astype(np.int32),
        )
        if checkpoint == self.num_checkpoints - 1:
            self._release_finished()

    def _release_finished(self) -> None:
        """Give up the claims of blocks whose every network is now complete."""
        if self._claims is None:
            return
        own_start, own_stop = self.networks
        done = np.asarray(self.array("checkpoints_completed")[own_start:own_stop])
        finished = [
            (first, stop)
            for first, stop in self.blocks()
            if first >= own_start
            and stop <= own_stop
            and (done[first - own_start : stop - own_start] >= self.num_checkpoints).all()
        ]
        if finished:
            self._claims.release(finished)
            if not self._claims.held():
                self._claims = None

    def _require_recorded(self, start: int, stop: int, done: np.ndarray, checkpoint: int) -> None:
        """Raise unless every split holds every checkpoint from ``done`` to ``checkpoint``."""
        rows = slice(start - self.networks[0], stop - self.networks[0])
        wanted = np.arange(self.num_checkpoints)[None, :] <= checkpoint
        needed = wanted & (np.arange(self.num_checkpoints)[None, :] >= done[:, None])
        for split, recorded in self._recorded.items():
            missing = needed & ~recorded[rows]
            if missing.any():
                network, at = np.argwhere(missing)[0]
                raise WriterError(
                    f"checkpoint {at} of network {start + network} is not recorded for split "
                    f"{split!r}: record every split before marking the checkpoint complete"
                )

    def recorded_through(self, networks: NetworkRange) -> int:
        """Checkpoints from the first that every split holds for all ``networks``, counting those
        already marked complete: the checkpoint count that :meth:`mark_checkpoint` may declare."""
        start, stop = self._check_networks(networks)
        rows = slice(start - self.networks[0], stop - self.networks[0])
        done = np.asarray(self.array("checkpoints_completed")[start:stop])
        held = np.arange(self.num_checkpoints)[None, :] < done[:, None]
        every = np.ones_like(held)
        for recorded in self._recorded.values():
            every &= recorded[rows] | held
        # The count of leading checkpoints held by every network.
        leading = np.cumprod(every.all(axis=0))
        return int(leading.sum())

    def recorded_splits(self, networks: NetworkRange, checkpoint: int) -> dict[str, bool]:
        """Per split, whether this writer has recorded ``checkpoint`` for all ``networks``."""
        start, stop = self._check_networks(networks)
        if not 0 <= checkpoint < self.num_checkpoints:
            return {split: False for split in self._recorded}
        rows = slice(start - self.networks[0], stop - self.networks[0])
        return {
            split: bool(recorded[rows, checkpoint].all())
            for split, recorded in self._recorded.items()
        }

    def reset(self, networks: NetworkRange) -> None:
        """Declare the networks not recorded at all (their completed checkpoints back to 0), so
        that a rerun records them again from the start; readers stop trusting their entries."""
        self.claim()
        start, stop = self._check_networks(networks)
        # Incomplete networks have no final accuracy (readers take one as a sign of damage):
        # cleared first, so that no reader sees a reset network with one.
        for split in self._meta["splits"]:
            self._put(
                f"splits/{split}/final_accuracy",
                np.s_[start:stop],
                np.full(stop - start, np.nan, np.float32),
            )
        self._put("checkpoints_completed", np.s_[start:stop], np.zeros(stop - start, np.int32))
        for recorded in self._recorded.values():
            recorded[start - self.networks[0] : stop - self.networks[0]] = False

    def mark_complete(self, networks: NetworkRange) -> None:
        """Declare the networks fully recorded (every checkpoint of every split)."""
        self.mark_checkpoint(self.num_checkpoints - 1, networks)


def _booleans(name: str, values: np.ndarray, expected: tuple[int, int]) -> np.ndarray:
    """Values as booleans, refused unless they are booleans or the integers 0 and 1."""
    values = np.asarray(values)
    if values.shape != expected:
        raise WriterError(
            f"{name} has shape {values.shape}, expected (networks, examples) = {expected}"
        )
    if values.dtype == bool:
        return values
    if not np.issubdtype(values.dtype, np.integer) or (values.size and values.max() > 1):
        raise WriterError(f"{name} must be booleans (or 0 and 1), got {values.dtype}")
    if values.size and values.min() < 0:
        raise WriterError(f"{name} must be booleans (or 0 and 1), got {values.dtype}")
    return values.astype(bool)


def _code(
    name: str, values: np.ndarray, expected: tuple[int, int], code_dtype: type, encode: Any
) -> np.ndarray:
    """Stored codes of one soft-verdict array given as values (float) or as codes."""
    values = np.asarray(values)
    if values.shape != expected:
        raise WriterError(
            f"{name} has shape {values.shape}, expected (networks, examples) = {expected}"
        )
    if values.dtype == code_dtype:
        return values
    if not np.issubdtype(values.dtype, np.floating):
        raise WriterError(f"{name} must be float values or {np.dtype(code_dtype)} codes")
    if np.isinf(values).any() and name == "probability":
        raise WriterError("probability holds infinite values")
    if name == "probability" and ((values < 0) | (values > 1)).any():
        raise WriterError("probability must lie in [0, 1] (NaN where not known)")
    return encode(values)


def open_writer(
    path: str | os.PathLike,
    networks: tuple[int, int] | None = None,
    lease: float = DEFAULT_LEASE_SECONDS,
) -> PopulationWriter:
    """Open a writer on an existing store for the networks ``[start, stop)`` it will own; it
    claims them (:meth:`PopulationWriter.claim`) before it first writes."""
    return PopulationWriter(path, networks, lease)

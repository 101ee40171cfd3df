"""The streaming core of every import: a source read a block of networks at a time, written
through the store's writer, each checkpoint of a block marked complete as it is written.

Layout letters: n networks, t checkpoints, x examples, c classes. A :class:`Source` (one module
per file format) says what it holds and gives one block of networks at one checkpoint, as
logits or probabilities (n, x, c), predictions (n, x), correctness (n, x) or margins (n, x).

Resuming: the store records what was imported (the source's identity, its kind and shape, the
examples' fingerprint). Rerunning the same import on the store checks that it matches, then
writes only what ``checkpoints_completed`` says is missing, block by block; a block is written
whole or again, so a killed import resumes to the same store. Several importers may fill one
store at once when each owns whole blocks (``networks``): the first creates the store and the
others open it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError, StoreError

#: What a source may hold, per network, checkpoint and example.
KINDS = ("logits", "probabilities", "predictions", "correct", "margins")
#: Kinds with a class axis, recorded with soft verdicts.
SOFT_KINDS = ("logits", "probabilities")
#: How far a row may sum from 1 for a float array to be taken for probabilities.
PROBABILITY_ROW_TOLERANCE = 1e-3
#: The store's network block is the unit an import reads, writes and resumes. Where none is
#: given, it is the largest power of two up to MAX_IMPORT_BLOCK whose block of source values in
#: memory stays within IMPORT_BLOCK_BYTES: 128 networks for CIFAR-10 test logits in float16
#: (26 MB; 1.1-1.2x as fast as 32, the writer's per-call costs shared by more networks, at a
#: third of a GB peak; 256 was no faster: benchmarks/RESULTS.md), fewer where a network is
#: larger (ImageNet logits: one).
MAX_IMPORT_BLOCK = 128
IMPORT_BLOCK_BYTES = 32 * 2**20
#: The name of the checkpoint of a source that holds one checkpoint of unknown epoch.
FINAL_CHECKPOINT = "final"


@dataclass(frozen=True)
class Examples:
    """The examples a source's verdicts are about, as the store will record them.

    Parameters
    ----------
    labels : ndarray of int, dims (examples,)
        True class of each example, -1 where there is none.
    example_ids : ndarray of int, dims (examples,), optional
        Index of each example in the source data set; ``0..x-1`` where None.
    fingerprint : str
        :func:`engine.store.split_fingerprint` of the inputs (or, without them, of the example
        ids) and the labels: two imports of the same examples have the same one.
    class_names : list of str, optional
    metadata : mapping of str to array, dims (examples,)
        Per-example columns (condition, corruption, ...), kept in the store.
    dataset_name : str
    split : str
        The name of the store's one split.
    """

    labels: np.ndarray
    example_ids: np.ndarray | None = None
    fingerprint: str = ""
    class_names: list[str] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    dataset_name: str = "imported"
    split: str = "test"

    @property
    def num_examples(self) -> int:
        return int(np.asarray(self.labels).size)


@dataclass(frozen=True)
class SourceShape:
    """What a source holds: its kind and sizes (``classes`` None without a class axis)."""

    kind: str
    networks: int
    checkpoints: int
    examples: int
    classes: int | None = None


class Source:
    """A population's verdicts on disk, read one block of networks at one checkpoint at a time.

    Subclasses set :attr:`shape` and implement :meth:`read` and :meth:`identity`.

    Attributes
    ----------
    shape : SourceShape
    network_names : list of str, optional
        A name per network (the file names of a folder of runs), kept in the store.
    examples : Examples, optional
        Sources that carry their own labels (trial tables) give them here.
    checkpoint_epochs : ndarray of float, dims (checkpoints,), optional
    checkpoint_labels : list of str, optional
        Sources that know their checkpoints (a table's checkpoint column) give them here.
    item_bytes : int
        Bytes per stored value of the source, for the rate the progress bar shows.
    reads_whole : bool
        Whether a block is read with all its checkpoints at once (compressed members, files
        of runs), which :func:`default_block` counts.
    """

    shape: SourceShape
    network_names: list[str] | None = None
    examples: Examples | None = None
    checkpoint_epochs: np.ndarray | None = None
    checkpoint_labels: list[str] | None = None
    item_bytes: int = 4
    reads_whole: bool = False

    def read(self, start: int, stop: int, checkpoint: int) -> np.ndarray:
        """Networks ``[start, stop)`` at ``checkpoint``: dims (networks, examples, classes) for
        logits and probabilities, (networks, examples) otherwise."""
        raise NotImplementedError

    def membership(self, start: int, stop: int) -> np.ndarray | None:
        """Which examples networks ``[start, stop)`` trained on, bool (networks, examples);
        None where the source does not say."""
        return None

    @property
    def has_membership(self) -> bool:
        return False

    def identity(self) -> dict[str, Any]:
        """A JSON description that names the source's contents (files, shapes, digests)."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the source's files."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def block_bytes(self) -> int:
        """Bytes of one network at one checkpoint, as the source stores them."""
        classes = self.shape.classes or 1
        return self.shape.examples * classes * self.item_bytes


def infer_kind(dtype: np.dtype, sample: np.ndarray | None, name: str) -> str:
    """The kind of an array of ``dtype`` whose first network at the first checkpoint is
    ``sample`` (examples[, classes]): bool is correctness, integers are predictions; floats with
    a class axis are probabilities when every row lies in [0, 1] and sums to 1, else logits.

    >>> infer_kind(np.dtype(bool), None, "x")
    'correct'
    >>> infer_kind(np.dtype("float16"), np.array([[0.25, 0.75]]), "x")
    'probabilities'
    >>> infer_kind(np.dtype("float32"), np.array([[2.0, -1.0]]), "x")
    'logits'
    """
    if dtype.kind == "b":
        return "correct"
    if dtype.kind in "iu":
        return "predictions"
    if dtype.kind != "f" or sample is None or sample.ndim != 2:
        raise ConfigError(
            f"cannot tell what {name} holds ({dtype} of this shape); declare it with "
            f"--kind ({'|'.join(KINDS)})"
        )
    values = sample.astype(np.float64)
    if not np.isfinite(values).all():
        return "logits"  # the writer refuses it with its own message
    in_range = values.size and values.min() >= 0 and values.max() <= 1
    sums = values.sum(axis=1)
    if in_range and np.abs(sums - 1).max() <= PROBABILITY_ROW_TOLERANCE:
        return "probabilities"
    return "logits"


def check_kind(kind: str, dtype: np.dtype, name: str) -> None:
    """Refuse an array whose dtype cannot hold the declared kind."""
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    wanted = {"correct": "b", "predictions": "iu"}.get(kind, "f")
    if dtype.kind not in wanted and not (kind == "correct" and dtype.kind in "iu"):
        raise ConfigError(f"{name} holds {dtype}, which cannot hold {kind}")


# ----------------------------------------------------------------------------------------------
# The import


@dataclass(frozen=True)
class ImportReport:
    """What an import did.

    Attributes
    ----------
    path : Path
        The store.
    shape : SourceShape
    networks : (int, int)
        The range this import owned.
    imported_networks, skipped_networks : int
        Networks written now, and those already complete in the store (a resumed import).
    seconds, cpu_seconds : float
        Wall and CPU time of reading, converting and writing.
    bytes_read : int
        Bytes of the source's values converted.
    """

    path: Path
    shape: SourceShape
    networks: tuple[int, int]
    imported_networks: int
    skipped_networks: int
    seconds: float
    cpu_seconds: float
    bytes_read: int

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes_read / 1e6 / max(self.seconds, 1e-9)


def import_population(
    source: Source,
    out: str | os.PathLike,
    *,
    examples: Examples | None = None,
    epochs: Sequence[float] | None = None,
    networks: tuple[int, int] | None = None,
    network_block: int | None = None,
    group: str = "imported",
    architecture: str = "unknown",
    progress: bool = False,
    command: str | None = None,
) -> ImportReport:
    """Import a source into a population store, or resume an import into it.

    Parameters
    ----------
    source : Source
        From :func:`engine.importers.open_source` (or any :class:`Source`).
    out : str or path
        The store: created where it does not exist; otherwise it must hold this import.
    examples : Examples, optional
        Labels and ids of the examples; sources that carry their own (trial tables) need none.
    epochs : sequence of float, dims (checkpoints,), optional
        Epoch of each checkpoint. A source of one checkpoint needs none: it is the final one,
        of unknown epoch (NaN; 0 means before training), labelled ``"final"`` in the store's
        ``extra["checkpoint_labels"]``.
    networks : (int, int), optional
        The range ``[start, stop)`` of networks this import writes, on whole blocks of
        ``network_block`` (the last may end at the population's end); all where None. Imports
        of disjoint ranges may run at once.
    network_block : int, optional
        Networks per stored block where the store is created (:func:`default_block` where
        None); an existing store keeps its own.
    group, architecture : str
        The store's one group of networks.
    progress : bool
        Show a progress bar.
    command : str, optional
        The command line, kept in the store.

    Returns
    -------
    ImportReport

    Raises
    ------
    ConfigError
        If the source and the examples disagree (counts, classes, epochs), the range is not on
        whole blocks, or the store holds something else.
    WriterError
        If a block's values are refused (NaN logits, probabilities that do not sum to 1).
    """
    from engine.store import open_population, open_writer

    plan = _plan(source, examples, epochs)
    path = Path(out)
    if network_block is None:
        network_block = default_block(source)
    if network_block < 1:
        raise ConfigError("network_block must be at least 1")
    # An existing store keeps its block; the range is checked before a new one is made.
    block = int(open_population(path).attrs["network_block"]) if path.exists() else network_block
    start, stop = _owned_range(networks, source.shape.networks, block)
    _create_or_open(path, source, plan, network_block, group, architecture, command)
    writer = open_writer(path, (start, stop))
    writer.claim()  # before reading the source, so that a second import stops at once
    started, cpu_started = time.perf_counter(), time.process_time()
    imported = skipped = bytes_read = 0
    completed = writer.checkpoints_completed()
    checkpoints = source.shape.checkpoints
    with _progress(progress, stop - start, path) as bar:
        for first in range(start, stop, block):
            last = min(first + block, stop)
            done = int(completed[first - start : last - start].min())
            if done >= checkpoints:
                skipped += last - first
                bar.advance(last - first, bytes_read)
                continue
            membership = source.membership(first, last) if done == 0 else None
            if membership is not None:
                writer.record_membership((first, last), membership)
            for checkpoint in range(done, checkpoints):
                values = source.read(first, last, checkpoint)
                _record(writer, plan, (first, last), checkpoint, values)
                writer.mark_checkpoint(checkpoint, (first, last))
                bytes_read += (last - first) * source.block_bytes
            imported += last - first
            bar.advance(last - first, bytes_read)
    return ImportReport(
        path=path,
        shape=source.shape,
        networks=(start, stop),
        imported_networks=imported,
        skipped_networks=skipped,
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu_started,
        bytes_read=bytes_read,
    )


@dataclass(frozen=True)
class _Plan:
    """The import's inputs, checked against each other."""

    kind: str
    examples: Examples
    fingerprint: str
    epochs: np.ndarray  # float64 (checkpoints,)
    checkpoint_labels: list[str] | None
    class_names: list[str] | None


def default_block(source: Source) -> int:
    """Networks per block where none is given: the largest power of two up to
    :data:`MAX_IMPORT_BLOCK` whose values in memory (a checkpoint's, or every checkpoint's for
    sources that read a block whole) fit in :data:`IMPORT_BLOCK_BYTES`; at least one."""
    per_network = source.block_bytes * (source.shape.checkpoints if source.reads_whole else 1)
    block = MAX_IMPORT_BLOCK
    while block > 1 and block * per_network > IMPORT_BLOCK_BYTES:
        block //= 2
    return block


def _plan(source: Source, examples: Examples | None, epochs: Sequence[float] | None) -> _Plan:
    from engine.store import split_fingerprint

    shape = source.shape
    if examples is None:
        examples = source.examples
    if examples is None:
        raise ConfigError(
            "the examples' labels are needed: give --labels FILE or --labels-from-dataset NAME"
        )
    labels = np.asarray(examples.labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ConfigError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size != shape.examples:
        raise ConfigError(
            f"the source holds {shape.examples} examples per network but there are "
            f"{labels.size} labels"
        )
    class_names = list(examples.class_names) if examples.class_names is not None else None
    if shape.classes is not None:
        if class_names is None:
            class_names = [str(k) for k in range(shape.classes)]
        elif len(class_names) != shape.classes:
            raise ConfigError(
                f"the source has {shape.classes} classes but {len(class_names)} class names"
            )
    classes = shape.classes if shape.classes is not None else len(class_names or [])
    if classes and labels.size and int(labels.max()) >= classes:
        raise ConfigError(
            f"labels go up to {int(labels.max())} but the source has {classes} classes"
        )
    if labels.size and int(labels.min()) < -1:
        raise ConfigError("labels must be class indices, or -1 for an example without one")
    fingerprint = examples.fingerprint or split_fingerprint(
        np.asarray(
            examples.example_ids if examples.example_ids is not None else np.arange(labels.size)
        ),
        labels,
    )
    checkpoint_epochs, checkpoint_labels = _checkpoints(source, epochs)
    return _Plan(
        shape.kind, examples, fingerprint, checkpoint_epochs, checkpoint_labels, class_names
    )


def _checkpoints(
    source: Source, epochs: Sequence[float] | None
) -> tuple[np.ndarray, list[str] | None]:
    count = source.shape.checkpoints
    if epochs is not None:
        values = np.asarray(epochs, np.float64)
        if values.shape != (count,):
            raise ConfigError(
                f"the source holds {count} checkpoint{'s' * (count != 1)} but "
                f"{values.size} epochs were given"
            )
        if source.checkpoint_labels is None and count == 1 and np.isnan(values[0]):
            return values, [FINAL_CHECKPOINT]
        return values, source.checkpoint_labels
    if source.checkpoint_epochs is not None:
        return np.asarray(source.checkpoint_epochs, np.float64), source.checkpoint_labels
    if count == 1:
        return np.array([np.nan]), [FINAL_CHECKPOINT]
    raise ConfigError(f"the source holds {count} checkpoints: give their epochs (--epochs 0,1,...)")


def _owned_range(networks: tuple[int, int] | None, total: int, block: int) -> tuple[int, int]:
    start, stop = networks if networks is not None else (0, total)
    if not 0 <= start < stop <= total:
        raise ConfigError(f"networks {start}:{stop} are outside the source's 0:{total}")
    if start % block or (stop % block and stop != total):
        raise ConfigError(
            f"networks {start}:{stop} must start and end on blocks of {block} networks "
            f"(or end at {total}), so that importers at once never share a block"
        )
    return start, stop


def _record(
    writer: Any, plan: _Plan, networks: tuple[int, int], checkpoint: int, values: np.ndarray
) -> None:
    """One block at one checkpoint through the writer, by kind."""
    split, kind = plan.examples.split, plan.kind
    first, last = networks
    if kind == "logits":
        writer.record(split, checkpoint, networks, logits=values)
    elif kind == "probabilities":
        writer.record(split, checkpoint, networks, probabilities=values)
    elif kind == "predictions":
        classes = len(plan.class_names) if plan.class_names else None
        if values.size and (values.min() < -1 or (classes and values.max() >= classes)):
            raise ConfigError(
                f"predictions of networks {first}:{last} hold class {int(values.max())} or "
                f"{int(values.min())}, outside -1..{(classes or 0) - 1}"
            )
        writer.record(split, checkpoint, networks, predictions=values)
    elif kind == "margins":
        if not np.isfinite(values).all():
            raise ConfigError(f"margins of networks {first}:{last} hold NaN or infinite values")
        writer.record(split, checkpoint, networks, correct=values > 0)
    else:
        writer.record(split, checkpoint, networks, correct=values.astype(bool))


# ----------------------------------------------------------------------------------------------
# The store: created once, checked on reopening


def import_identity(source: Source, plan: _Plan) -> dict[str, Any]:
    """What the store records about an import, and checks when the import resumes."""
    shape = source.shape
    return {
        "source": source.identity(),
        "kind": shape.kind,
        "networks": shape.networks,
        "checkpoints": shape.checkpoints,
        "examples": shape.examples,
        "classes": shape.classes,
        "fingerprint": plan.fingerprint,
    }


def _create_or_open(
    path: Path,
    source: Source,
    plan: _Plan,
    network_block: int,
    group: str,
    architecture: str,
    command: str | None,
) -> None:
    """Create the store once; where several importers start together, the losers open it."""
    from engine.store import GroupSpec, SplitSpec, create_population

    identity = import_identity(source, plan)
    examples = plan.examples
    if not path.exists():
        extra: dict[str, Any] = {"import": identity}
        if source.network_names is not None:
            extra["network_names"] = list(source.network_names)
        if plan.checkpoint_labels is not None:
            extra["checkpoint_labels"] = list(plan.checkpoint_labels)
        kind = source.shape.kind
        split = SplitSpec(
            labels=np.asarray(examples.labels),
            example_ids=examples.example_ids,
            predictions=kind in (*SOFT_KINDS, "predictions"),
            fingerprint=plan.fingerprint,
            soft=kind in SOFT_KINDS,
            metadata=dict(examples.metadata),
        )
        try:
            create_population(
                path,
                dataset_name=examples.dataset_name,
                splits={examples.split: split},
                groups=[GroupSpec(group, architecture, source.shape.networks)],
                checkpoint_epochs=plan.epochs,
                class_names=plan.class_names,
                membership_split=examples.split if source.has_membership else None,
                network_block=network_block,
                command=command if command is not None else " ".join(["engine", *sys.argv[1:]]),
                extra_attrs=extra,
            )
        except (StoreError, OSError):
            # Another importer made it first (create_population removed its staging folder).
            if not path.exists():
                raise
    _check_existing(path, identity, plan)


def _check_existing(path: Path, identity: dict[str, Any], plan: _Plan) -> None:
    """Refuse a store made by something else, from another source or of other examples."""
    from engine.store import dataset_fingerprint, open_population

    population = open_population(path)
    saved = population.attrs.get("extra", {}).get("import")
    if saved is None:
        raise ConfigError(f"{path} exists but was not made by engine import; choose another --out")
    differences = _differences(saved, identity)
    if differences:
        raise ConfigError(
            f"{path} holds another import: "
            + "; ".join(differences[:3])
            + (f" (and {len(differences) - 3} more)" if len(differences) > 3 else "")
            + "; choose another --out"
        )
    split = plan.examples.split
    epochs = population.checkpoints["epoch"].to_numpy()
    if (
        population.splits != [split]
        or population.dataset_fingerprint != dataset_fingerprint({split: plan.fingerprint})
        or not np.array_equal(population.labels(split), np.asarray(plan.examples.labels))
    ):
        raise ConfigError(
            f"{path} holds an import of other examples (split {population.splits}, fingerprint "
            f"{population.dataset_fingerprint[:12]}); same source, other labels?"
        )
    if not np.array_equal(epochs, plan.epochs, equal_nan=True):
        raise ConfigError(
            f"{path} holds checkpoints of epochs {_epochs(epochs)}, not {_epochs(plan.epochs)}"
        )


def _differences(saved: Any, now: Any, where: str = "") -> list[str]:
    """Where two JSON values differ, as ``key (saved in the store, now)``."""
    if isinstance(saved, dict) and isinstance(now, dict):
        found = []
        for key in sorted(set(saved) | set(now), key=str):
            found += _differences(saved.get(key), now.get(key), f"{where}{'.' * bool(where)}{key}")
        return found
    normalised = _json(now)
    if saved == normalised:
        return []
    return [f"{where or 'value'} ({_short(saved)} in the store, {_short(normalised)} now)"]


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _epochs(values: np.ndarray) -> str:
    shown = ",".join(f"{v:g}" for v in values[:6])
    return shown + (",..." if len(values) > 6 else "")


# ----------------------------------------------------------------------------------------------
# Progress


class _NoProgress:
    def advance(self, networks: int, bytes_read: int) -> None:
        pass

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _progress(show: bool, networks: int, path: Path) -> Any:
    if not show:
        return _NoProgress()
    from engine.importers.progress import ImportProgress

    return ImportProgress(networks, path.name)

"""Many independent runs into one store: twenty recorder processes, kills, reruns; the rerun
semantics of a recorder; every value the writer refuses.

The process test starts twenty runs of ``tests/record_run.py`` together into a store that does
not exist yet (they race to create it), kills several with SIGKILL at random moments, checks
that readers see the finished networks and none of the crashed ones, reruns the crashed ones
(some starting over, some with ``resume=True``) and checks that the store then equals one
written sequentially in one process, array by array and in what ``analyze`` says of it.
``CREATED_EQUAL_RUNS_FULL=1`` runs it bigger (more kills, more checkpoints).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

import engine
from engine.errors import WriterError
from engine.record import open_recorder
from engine.report import analyze_store
from engine.store import ATTRS_KEY
from tests import record_run

SCRIPT = Path(record_run.__file__)
ROOT = SCRIPT.parents[1]
FULL = os.environ.get("CREATED_EQUAL_RUNS_FULL", "") not in ("", "0")
RUNS = 20
CHECKPOINTS = 12 if FULL else 6
#: Kills that land once a run has completed some checkpoints, and kills at start-up (during the
#: imports or the creation of the store).
KILLS_MIDWAY = 8 if FULL else 4
KILLS_AT_START = 2 if FULL else 1
SLEEP = 0.25
#: Root attributes that say how and by what a store was made, not what it holds.
PROVENANCE = ("command",)


# ----------------------------------------------------------------------------------------------
# Comparing stores


def store_contents(path: Path) -> dict[str, tuple]:
    """Every array and group of a store: metadata, attributes and values, by path."""
    root = zarr.open_group(str(path), mode="r")
    contents: dict[str, tuple] = {"/": ("group", _attrs(dict(root.attrs)))}
    for name, member in root.members(max_depth=None):
        if isinstance(member, zarr.Array):
            contents[name] = (
                "array",
                str(member.dtype),
                member.shape,
                member.metadata.dimension_names,
                _attrs(dict(member.attrs)),
                np.asarray(member[...]),
            )
        else:
            contents[name] = ("group", _attrs(dict(member.attrs)))
    return contents


def _attrs(attrs: dict) -> dict:
    if ATTRS_KEY in attrs:
        meta = dict(attrs[ATTRS_KEY])
        for key in PROVENANCE:
            meta.pop(key, None)
        attrs = {**attrs, ATTRS_KEY: meta}
    return attrs


def assert_same_contents(first: dict, second: dict, networks: np.ndarray | None = None) -> None:
    """Equal arrays (NaN equal to NaN), groups and attributes; with ``networks``, only those
    networks' entries of arrays along ``networks``."""
    assert first.keys() == second.keys()
    for name, a in first.items():
        b = second[name]
        assert a[:-1] == b[:-1] if a[0] == "array" else a == b, name
        if a[0] != "array":
            continue
        values, other = a[-1], b[-1]
        if networks is not None and a[3] and a[3][0] == "networks":
            values, other = values[networks], other[networks]
        np.testing.assert_array_equal(values, other, err_msg=name, strict=True)


def summary_numbers(store: Path, out: Path) -> dict:
    """What ``analyze`` says of a store, without its timings and paths."""
    analyze_store(str(store), out, pairwise_checkpoints="last", progress=False)
    summary = json.loads((out / "summary.json").read_text())
    summary.pop("execution")
    assert summary.pop("store") == summary["pairwise"].pop("store") == str(store)
    return summary


def write_sequentially(path: Path, networks: int, checkpoints: int) -> None:
    """The reference: one recorder of every network in one process, checkpoint by checkpoint."""
    spec = record_run.layout(networks, checkpoints)
    labels = dict(spec.labels)
    with open_recorder(path, (0, networks), layout=spec) as recorder:
        for checkpoint in range(checkpoints):
            outputs = {
                split: np.stack(
                    [
                        record_run.logits(n, checkpoint, split, labels[split])
                        for n in range(networks)
                    ]
                )
                for split in labels
            }
            losses = [record_run.loss(n, checkpoint) for n in range(networks)]
            assert recorder.record(outputs, loss=losses) == checkpoint


# ----------------------------------------------------------------------------------------------
# Twenty processes


def _start(store: Path, network: int, start_at: float, resume: bool = False) -> subprocess.Popen:
    command = [
        sys.executable,
        str(SCRIPT),
        str(store),
        str(network),
        "--networks",
        str(RUNS),
        "--checkpoints",
        str(CHECKPOINTS),
        "--sleep",
        str(SLEEP),
        "--start-at",
        str(start_at),
    ]
    if resume:
        command.append("--resume")
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _completed(store: Path) -> np.ndarray | None:
    """checkpoints_completed as a reader sees it now, None before the store exists."""
    if not store.exists():
        return None
    return np.asarray(zarr.open_array(str(store / "checkpoints_completed"), mode="r")[:])


def _run_and_kill(store: Path, rng: np.random.Generator) -> tuple[dict, set[int], set[int]]:
    """Start every run at one moment, kill some; return the processes, the killed ids and the
    ids chosen for a midway kill."""
    start_at = time.time() + 2.0
    processes = {n: _start(store, n, start_at) for n in range(RUNS)}
    chosen = rng.choice(RUNS, KILLS_MIDWAY + KILLS_AT_START, replace=False)
    # A midway kill waits for its run to complete some checkpoints (at most CHECKPOINTS - 3, so
    # that two more sleeps separate it from the end), then a random part of one sleep.
    after = {int(n): int(rng.integers(1, CHECKPOINTS - 2)) for n in chosen[:KILLS_MIDWAY]}
    at_start = {int(n): start_at + rng.uniform(-0.3, 0.3) for n in chosen[KILLS_MIDWAY:]}
    due: dict[int, float] = {}
    killed: set[int] = set()
    deadline = time.time() + 120
    while (after or at_start or due) and time.time() < deadline:
        completed = _completed(store)
        now = time.time()
        for network, moment in list(at_start.items()):
            if now >= moment:
                due[network] = now
                del at_start[network]
        for network, count in list(after.items()):
            if completed is not None and completed[network] >= count:
                if completed[network] <= CHECKPOINTS - 2:
                    due[network] = now + rng.uniform(0, 0.5 * SLEEP)
                del after[network]  # else the poll came too late: the run is left to finish
        for network, moment in list(due.items()):
            if time.time() >= moment:
                if processes[network].poll() is None:
                    os.kill(processes[network].pid, signal.SIGKILL)
                    killed.add(network)
                del due[network]
        time.sleep(0.01)
    for process in processes.values():
        process.wait(timeout=120)
    return processes, killed, set(int(n) for n in chosen[:KILLS_MIDWAY])


@pytest.mark.slow
def test_twenty_runs_killed_and_rerun_equal_one_sequential_store(tmp_path):
    rng = np.random.default_rng(int(os.environ.get("CREATED_EQUAL_RUNS_SEED", "11")))
    store = tmp_path / "runs.zarr"
    processes, killed, midway = _run_and_kill(store, rng)
    for network, process in processes.items():
        stdout, stderr = process.communicate()
        if network in killed:
            assert process.returncode == -signal.SIGKILL
        else:
            assert process.returncode == 0, (network, stderr[-2000:])
            assert stderr == ""
    # A midway kill is left out where the poll came too late (a loaded machine): most land.
    assert len(killed & midway) >= KILLS_MIDWAY // 2
    reference = tmp_path / "sequential.zarr"
    write_sequentially(reference, RUNS, CHECKPOINTS)
    expected = store_contents(reference)

    # Before the reruns: the finished networks are visible and equal the reference; the
    # crashed ones are not visible.
    population = engine.open_population(store)
    finished = sorted(set(range(RUNS)) - killed)
    np.testing.assert_array_equal(population.complete_networks(), finished)
    assert (population.checkpoints_completed()[sorted(killed)] < CHECKPOINTS).all()
    # The midway kills left completed checkpoints behind, which the reruns must deal with.
    assert (population.checkpoints_completed()[sorted(killed & midway)] >= 1).all()
    assert_same_contents(store_contents(store), expected, networks=np.asarray(finished))

    # The reruns: half start over (the default), half go on from their last checkpoint.
    order = sorted(killed)
    start_at = time.time() + 1.0
    reruns = {n: _start(store, n, start_at, resume=i % 2 == 1) for i, n in enumerate(order)}
    for network, process in reruns.items():
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, (network, stderr[-2000:])
    np.testing.assert_array_equal(engine.open_population(store).complete_networks(), range(RUNS))
    assert_same_contents(store_contents(store), expected)
    assert summary_numbers(store, tmp_path / "after") == summary_numbers(
        reference, tmp_path / "reference"
    )


# ----------------------------------------------------------------------------------------------
# Rerun semantics, in one process


def _crash_after(path: Path, network: int, spec, checkpoints: int, half: bool = True) -> None:
    """Record ``checkpoints`` whole checkpoints and the test split of the next, then stop
    without closing, as a killed run would."""
    recorder = open_recorder(path, network, layout=spec)
    labels = dict(spec.labels)
    for checkpoint in range(checkpoints):
        recorder.record(test=record_run.logits(network, checkpoint, "test", labels["test"]))
        recorder.record(
            train=record_run.logits(network, checkpoint, "train", labels["train"]),
            loss=record_run.loss(network, checkpoint),
        )
    if half:
        recorder.record(test=record_run.logits(network, checkpoints, "test", labels["test"]))


def test_a_rerun_starts_over_and_resume_goes_on(tmp_path):
    spec = record_run.layout(4, 5)
    path = tmp_path / "runs.zarr"
    _crash_after(path, 1, spec, 3)
    _crash_after(path, 2, spec, 2)
    population = engine.open_population(path)
    np.testing.assert_array_equal(population.checkpoints_completed(), [0, 3, 2, 0])
    assert population.complete_networks().size == 0

    # A rerun (the default) starts over: its old checkpoints are no longer trusted.
    rerun = open_recorder(path, 1, layout=spec)
    assert (rerun.completed, rerun.next_checkpoint) == (0, 0)
    assert engine.open_population(path).checkpoints_completed()[1] == 0
    record_run.record_network(rerun, 1, dict(spec.labels))
    rerun.close()
    # resume=True keeps the completed checkpoints and records the rest, the half-recorded one
    # again from its first split.
    resumed = open_recorder(path, 2, layout=spec, resume=True)
    assert (resumed.completed, resumed.next_checkpoint) == (2, 2)
    record_run.record_network(resumed, 2, dict(spec.labels))
    resumed.close()
    for network in (0, 3):
        with open_recorder(path, network, layout=spec) as recorder:
            record_run.record_network(recorder, network, dict(spec.labels))

    reference = tmp_path / "sequential.zarr"
    write_sequentially(reference, 4, 5)
    assert_same_contents(store_contents(path), store_contents(reference))

    # A complete network is not recorded again by accident; overwrite=True starts it over.
    again = open_recorder(path, 1, layout=spec)
    with pytest.raises(WriterError, match="already complete; open the recorder with overwrite"):
        again.record(test=record_run.logits(1, 0, "test", spec.labels["test"]))
    over = open_recorder(path, 1, layout=spec, overwrite=True)
    assert engine.open_population(path).checkpoints_completed()[1] == 0
    record_run.record_network(over, 1, dict(spec.labels))
    over.close()
    assert_same_contents(store_contents(path), store_contents(reference))


def test_closing_with_a_checkpoint_held_by_one_split_is_refused(tmp_path):
    spec = record_run.layout(2, 3)
    recorder = open_recorder(tmp_path / "runs.zarr", 0, layout=spec)
    recorder.record(test=record_run.logits(0, 0, "test", spec.labels["test"]))
    with pytest.raises(WriterError, match=r"checkpoint 0 was recorded for some splits but not"):
        recorder.close()
    assert engine.open_population(tmp_path / "runs.zarr").checkpoints_completed()[0] == 0


def test_runs_of_another_layout_are_refused(tmp_path):
    path = tmp_path / "runs.zarr"
    open_recorder(path, 0, layout=record_run.layout(4, 5)).close()
    with pytest.raises(engine.StoreError, match="holds 4 networks, not 5"):
        open_recorder(path, 0, layout=record_run.layout(5, 5))
    with pytest.raises(engine.StoreError, match="checkpoints at epochs"):
        open_recorder(path, 0, layout=record_run.layout(4, 6))


# ----------------------------------------------------------------------------------------------
# Refused values: one line naming the problem, and nothing written


def _snapshot(path: Path) -> dict[str, np.ndarray]:
    root = zarr.open_group(str(path), mode="r")
    return {
        name: np.asarray(member[...])
        for name, member in root.members(max_depth=None)
        if isinstance(member, zarr.Array)
    }


def _refused(path: Path, call, pattern: str) -> None:
    """``call()`` raises a one-line WriterError matching ``pattern`` and leaves the store as
    it was."""
    before = _snapshot(path)
    with pytest.raises(WriterError, match=pattern) as raised:
        call()
    assert "\n" not in str(raised.value)
    after = _snapshot(path)
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)


@pytest.fixture
def stores(tmp_path):
    """A store with 10 class names that stores predictions, and one without class names whose
    test split stores correctness alone."""
    named = tmp_path / "named.zarr"
    open_recorder(named, 0, layout=dataclasses.replace(record_run.layout(2, 3), soft=False)).close()
    unnamed = tmp_path / "unnamed.zarr"
    labels = np.arange(16) % 4
    engine.create_population(
        unnamed,
        dataset_name="toy",
        splits={
            "train": engine.SplitSpec(labels=labels),
            "test": engine.SplitSpec(labels=labels, predictions=False),
        },
        groups=[engine.GroupSpec("g", "mlp", 2)],
        checkpoint_epochs=[0, 1],
    )
    return named, unnamed


def test_class_ids_beyond_the_classes_or_int16_are_refused(stores):
    named, unnamed = stores
    recorder = open_recorder(named, 0)
    predictions = np.zeros(300, np.int64)
    predictions[5] = 10
    _refused(
        named,
        lambda: recorder.record(test=predictions),
        r"predictions for split 'test' hold class id 10, beyond the 10 classes of the store",
    )
    writer = engine.open_writer(unnamed, (0, 2))
    big = np.zeros((2, 16), np.int64)
    big[1, 3] = 40001  # stored as int16 it would read back as -25,535
    _refused(
        unnamed,
        lambda: writer.record("train", 0, (0, 2), predictions=big),
        r"predictions for split 'train' hold class id 40001, beyond int16 storage",
    )


def test_negative_predictions_other_than_minus_one_are_refused(stores):
    _, unnamed = stores
    writer = engine.open_writer(unnamed, (0, 2))
    predictions = np.zeros((2, 16), np.int64)
    predictions[0, 0] = -2
    _refused(
        unnamed,
        lambda: writer.record("train", 0, (0, 2), predictions=predictions),
        r"predictions for split 'train' hold -2: class ids are 0 or more, -1 meaning no "
        r"prediction",
    )
    predictions[0, 0] = -1  # the sentinel is taken: no prediction, not correct
    writer.record("train", 0, (0, 2), predictions=predictions)
    stored = engine.open_population(unnamed).predictions("train")[:, 0].compute()
    assert stored[0, 0] == -1


def test_a_checkpoint_marked_before_every_split_is_refused(stores):
    _, unnamed = stores
    writer = engine.open_writer(unnamed, (0, 2))
    writer.record("train", 0, (0, 2), predictions=np.zeros((2, 16), np.int64))
    _refused(
        unnamed,
        lambda: writer.mark_checkpoint(0, (0, 2)),
        r"checkpoint 0 of network 0 is not recorded for split 'test': record every split "
        r"before marking the checkpoint complete",
    )


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (np.full((2, 16), 2), "int64"),
        (np.full((2, 16), 0.5), "float64"),
        (-np.ones((2, 16), np.int8), "int8"),
    ],
)
def test_correct_values_other_than_booleans_are_refused(stores, values, dtype):
    _, unnamed = stores
    writer = engine.open_writer(unnamed, (0, 2))
    _refused(
        unnamed,
        lambda: writer.record("test", 0, (0, 2), correct=values),
        rf"correct for split 'test' must be booleans \(or 0 and 1\), got {dtype}",
    )
    writer.record("test", 0, (0, 2), correct=np.ones((2, 16), np.int64))  # 0 and 1 are taken


def test_loss_beyond_float32_is_refused(stores):
    named, _ = stores
    recorder = open_recorder(named, 0)
    labels = recorder.writer.labels("test")
    _refused(
        named,
        lambda: recorder.record(test=record_run.logits(0, 0, "test", labels), loss=1e39),
        r"loss holds values beyond float32 \(about 3.4e38\)",
    )


# ----------------------------------------------------------------------------------------------
# The example of docs/recording.md


def test_the_plain_loop_example_of_the_docs_runs(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "recording.md").read_text()
    assert text.startswith("# Recording from your own training code\n")
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "docs/recording.md", "exec"), {})
    population = engine.open_population(tmp_path / "runs.zarr")
    np.testing.assert_array_equal(population.complete_networks(), [3])
    assert population.num_networks == 8 and population.splits == ["train", "test"]
    loss = population.train_loss().compute()[3]
    assert np.isnan(loss[0]) and np.isfinite(loss[1:]).all()
    # The recorded predictions are the model's: the accuracy of a trained network changed.
    accuracy = population.correct("train").compute()[3].mean(axis=1)
    assert accuracy[-1] != accuracy[0]

"""Faults tried on purpose (docs/reliability.md): kill -9 of training, import and analysis at
random moments, a Dask worker killed mid-analysis, a full disk while training saves its state,
every kind of damage on every array of a small store, and reads while a writer is at work.

The quick version runs by default (about a minute on a shared 2-core machine): a few random
moments and one damage per array. ``CREATED_EQUAL_FAULTS=full`` runs the full one (many more
moments, every damage on several chunks of every array). With ``CREATED_EQUAL_FAULT_LOG=FILE``
every trial appends its fault, target and outcome as one JSON line to FILE, which
``benchmarks/fault_table.py`` turns into the table of docs/reliability.md.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import engine
from engine.errors import EngineError, StoreError
from engine.store import verify_population

FULL = os.environ.get("CREATED_EQUAL_FAULTS", "") == "full"
#: Random moments per kill scenario: quick, full.
KILLS = {"train": (2, 12), "import": (1, 8), "analyze": (1, 6), "dask": (1, 4)}
#: Seeded, so that a failure can be rerun; the full suite draws other moments than the quick.
RNG = random.Random(1414 if FULL else 14)


def record(fault: str, target: str, outcome: str) -> None:
    """Append one trial to the fault log (``CREATED_EQUAL_FAULT_LOG``), if there is one."""
    log = os.environ.get("CREATED_EQUAL_FAULT_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(json.dumps({"fault": fault, "target": target, "outcome": outcome}) + "\n")


def kills(kind: str) -> int:
    return KILLS[kind][1 if FULL else 0]


# ----------------------------------------------------------------------------------------------
# A small store holding every kind of array


def make_store(path: Path, *, networks: int = 4, checkpoints: int = 3) -> Path:
    """A store of format 2 with every array the format has: predictions, soft verdicts,
    membership, example metadata (text and numbers), a probe split; several chunks each."""
    rng = np.random.default_rng(3)
    classes = 3
    labels = {"train": rng.integers(0, classes, 20), "test": rng.integers(0, classes, 12)}
    splits = {
        name: engine.SplitSpec(
            labels=values,
            soft=True,
            fingerprint=engine.split_fingerprint(np.arange(values.size), values),
            metadata={"condition": np.where(np.arange(values.size) % 2, "a", "b")}
            | ({"severity": np.arange(values.size) % 3} if name == "train" else {}),
        )
        for name, values in labels.items()
    }
    probe = np.full(9, -1)
    splits["probe"] = engine.SplitSpec(
        labels=probe, fingerprint=engine.split_fingerprint(probe, probe)
    )
    writer = engine.create_population(
        path,
        dataset_name="faults",
        splits=splits,
        groups=[
            engine.GroupSpec("a", "mlp", networks // 2, {"width": 8}),
            engine.GroupSpec("b", "cnn", networks - networks // 2),
        ],
        checkpoint_epochs=np.arange(checkpoints, dtype=float),
        checkpoint_steps=np.arange(checkpoints) * 5,
        class_names=[str(c) for c in range(classes)],
        init_seeds=np.arange(networks),
        order_seeds=np.arange(networks) + 50,
        membership_split="train",
        network_block=2,
        checkpoint_block=2,
        example_block=8,
        command="tests/test_faults.py",
    )
    for start in range(0, networks, 2):
        block = (start, min(start + 2, networks))
        size = block[1] - block[0]
        writer.record_membership(block, rng.random((size, labels["train"].size)) < 0.6)
        for checkpoint in range(checkpoints):
            for name, values in labels.items():
                logits = rng.normal(size=(size, values.size, classes)) + 2.0 * (
                    np.arange(classes) == values[:, None]
                ) * (checkpoint / max(checkpoints - 1, 1))
                writer.record(name, checkpoint, block, logits=logits.astype(np.float32))
            writer.record(
                "probe", checkpoint, block, predictions=rng.integers(0, classes, (size, 9))
            )
            writer.record_loss(checkpoint, block, rng.random(size))
            writer.mark_checkpoint(checkpoint, block)
    return path


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("small") / "pop.zarr")


# ----------------------------------------------------------------------------------------------
# Results: what analyze and pairwise give of a store, without the figures


def _without_paths(value):
    """``value`` (JSON) without what differs between two runs on equal data: paths, seconds."""
    if isinstance(value, dict):
        return {
            k: _without_paths(v)
            for k, v in value.items()
            if k not in ("store", "execution", "figures", "zarr")
        }
    if isinstance(value, list):
        return [_without_paths(v) for v in value]
    return value


def results(store: Path, out: Path, monkeypatch) -> dict:
    """summary.json, pairwise.json and the tables of ``engine analyze`` (figures left out: they
    draw what the tables hold), as comparable values."""
    from engine import pairwise as pairwise_room
    from engine.report import figures
    from engine.report.run import analyze_store

    original = pairwise_room.pairwise_report
    monkeypatch.setattr(figures, "analysis_figures", lambda *a, **k: [])
    monkeypatch.setattr(figures, "soft_figures", lambda *a, **k: [])
    monkeypatch.setattr(
        pairwise_room, "pairwise_report", lambda *a, **k: original(*a, **{**k, "figures": False})
    )
    analyze_store(str(store), out, progress=False)
    return {
        "summary": _without_paths(json.loads((out / "summary.json").read_text())),
        "pairwise": _without_paths(json.loads((out / "pairwise.json").read_text())),
        "examples": pd.read_parquet(out / "examples.parquet").to_dict("list"),
        "networks": pd.read_parquet(out / "networks.parquet").to_dict("list"),
    }


def same(left, right) -> bool:
    """Equal, NaN equal to NaN, at any depth."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, float) and isinstance(right, float):
        return left == right or (np.isnan(left) and np.isnan(right))
    if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
        return np.array_equal(np.asarray(left), np.asarray(right), equal_nan=True)
    return bool(left == right)


@pytest.fixture(scope="module")
def intact(small_store, tmp_path_factory) -> dict:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return results(small_store, tmp_path_factory.mktemp("intact"), monkeypatch)


# ----------------------------------------------------------------------------------------------
# Every kind of damage on every array

DAMAGES = ("flip", "truncate", "delete", "truncate-metadata", "delete-metadata")

#: Damage whose outcome the format cannot tell from an honest store, as docs/reliability.md
#: lists it, with the outcome seen: the only trials allowed to give results that differ from
#: the intact store's. A deleted chunk of these arrays reads as its fill value, which the format
#: (docs/store-format.md) lets a writer leave unwritten.
KNOWN_GAPS = {
    ("delete", "splits/train/membership"): "reads as trained on every example",
    ("delete", "network_init_seed"): "reads as an unknown seed (-1)",
    ("delete", "network_order_seed"): "reads as an unknown seed (-1)",
    ("delete", "checkpoint_epoch"): "reads as an unknown epoch (NaN)",
    ("delete", "checkpoint_step"): "reads as an unknown step (-1)",
}


def array_names(store: Path) -> list[str]:
    return engine.open_population(store).array_names()


def chunk_files(store: Path, name: str) -> list[Path]:
    folder = store / name / "c"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def damage(store: Path, name: str, kind: str, chunk: int) -> str:
    """Damage the array ``name`` of ``store``; returns what was damaged, for the log."""
    if kind.endswith("metadata"):
        target = store / name / "zarr.json"
    else:
        chunks = chunk_files(store, name)
        target = chunks[chunk % len(chunks)]
    data = target.read_bytes()
    if kind in ("delete", "delete-metadata"):
        target.unlink()
    elif kind in ("truncate", "truncate-metadata"):
        target.write_bytes(data[: len(data) // 2])
    else:
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0x5A
        target.write_bytes(bytes(flipped))
    return str(target.relative_to(store))


def damage_plan(names: list[str]) -> list[tuple[str, str, int]]:
    """(array, damage, chunk) trials: every damage on every array, on up to three chunks in
    the full suite; quick, one damage per array, the kinds taken in turn, and the metadata
    damages on a few arrays more."""
    if FULL:
        return [
            (n, k, c)
            for n in names
            for k in DAMAGES
            for c in range(3 if "metadata" not in k else 1)
        ]
    plan = [(name, DAMAGES[i % len(DAMAGES)], 0) for i, name in enumerate(names)]
    return plan


def outcome_of(store: Path, name: str, kind: str, out: Path, intact: dict, monkeypatch) -> str:
    """Run verify, analyze and pairwise on a damaged store; return the outcome:

    ``error``: each that read the damage stopped with a one-line error naming the array;
    ``identical``: results equal to the intact store's (and verify agrees it is sound or
    names the array); anything else fails the test.
    """
    short = name.rsplit("/", 1)[-1]
    errors = []
    try:
        verify_population(engine.open_population(store, check=False))
    except EngineError as error:
        errors.append(("verify", str(error)))
    try:
        got = results(store, out, monkeypatch)
    except EngineError as error:
        errors.append(("analyze", str(error)))
        got = None
    for who, message in errors:
        assert "\n" not in message, (who, message)
        assert name in message or short in message, (who, name, kind, message)
    if got is None:
        return "error"
    if same(got, intact):
        return "identical" if not errors else "identical (verify names it)"
    gap = KNOWN_GAPS.get((kind, name))
    assert gap is not None, f"{kind} of {name}: analysis gave other numbers without an error"
    return f"known gap: {gap}"


def test_every_damage_on_every_array_is_named_or_harmless(
    small_store, intact, tmp_path, monkeypatch
):
    names = array_names(small_store)
    plan = damage_plan(names)
    for index, (name, kind, chunk) in enumerate(plan):
        store = tmp_path / f"d{index}" / "pop.zarr"
        shutil.copytree(small_store, store)
        if not kind.endswith("metadata") and not chunk_files(store, name):
            record(f"store damage: {kind}", name, "no chunk stored (nothing to damage)")
            continue
        damage(store, name, kind, chunk)
        outcome = outcome_of(store, name, kind, tmp_path / f"o{index}", intact, monkeypatch)
        record(f"store damage: {kind}", name, outcome)
        shutil.rmtree(store.parent)


# ----------------------------------------------------------------------------------------------
# kill -9 of training at random moments, with reads while it trains

TRAIN = [
    "train-population",
    "--dataset",
    "digits",
    "--arch",
    "mlp",
    "--networks",
    "4",
    "--width",
    "16",
    "--epochs",
    "2",
    "--record-every",
    "7",
    "--network-block",
    "2",
    "--subset-fraction",
    "0.8",
    "--threads",
    "1",
    "--quiet",
]


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        [sys.executable, "-m", "cli.app", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out


def store_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array a study records, as a reader sees it."""
    population = engine.open_population(path)
    arrays = {
        "completed": population.checkpoints_completed(),
        "loss": population.train_loss().compute(),
        "networks": population.networks.drop(columns=[]).to_numpy(dtype=str),
    }
    membership = population.membership()
    if membership is not None:
        arrays["membership"] = membership.compute()
    for split in population.splits:
        arrays[f"{split}/correct"] = population.correct(split).compute()
        predictions = population.predictions(split)
        if predictions is not None:
            arrays[f"{split}/predictions"] = predictions.compute()
        for name in population.soft_arrays(split):
            arrays[f"{split}/{name}"] = population.lazy_array(f"splits/{split}/{name}").compute()
    return arrays


def assert_same_store(left: Path, right: Path) -> None:
    a, b = store_arrays(left), store_arrays(right)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def leftovers(folder: Path) -> list[Path]:
    """What an interrupted run may leave beside a store: staging folders, temporary files."""
    return [
        p
        for p in folder.rglob("*")
        if ".creating-" in p.name or ".merging-" in p.name or p.name.endswith(".tmp")
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, float]:
    """The study trained without interruption, and how long that took."""
    path = tmp_path_factory.mktemp("trained") / "pop.zarr"
    began = time.monotonic()
    finish(start([*TRAIN, "--out", str(path)]))
    return path, time.monotonic() - began


def check_read_during_write(path: Path, reference: dict[str, np.ndarray]) -> bool:
    """Read a store a trainer is writing: what is marked equals the finished store, the rest
    reads as not recorded. False where there was no store yet to read."""
    try:
        population = engine.open_population(path)
    except StoreError as error:
        assert "no population store" in str(error), error
        return False
    # The lazy arrays take their own snapshot of the marks, between these two reads: entries
    # marked before it are final, entries unmarked after it must read as not recorded.
    checkpoints = np.arange(population.num_checkpoints)[None, :]
    before = population.checkpoints_completed()
    arrays = {split: population.correct(split) for split in population.splits}
    predictions = {split: population.predictions(split) for split in population.splits}
    after = population.checkpoints_completed()
    recorded, unrecorded = checkpoints < before[:, None], checkpoints >= after[:, None]
    for split in population.splits:
        correct = arrays[split].compute()
        np.testing.assert_array_equal(correct[recorded], reference[f"{split}/correct"][recorded])
        assert not correct[unrecorded].any()
        if predictions[split] is not None:
            assert (predictions[split].compute()[unrecorded] == -1).all()
    return True


def _marked_count(store: Path) -> int:
    """Checkpoints marked in a store being written, read cheaply (0 where there is none yet)."""
    try:
        import zarr

        return int(zarr.open_array(str(store / "checkpoints_completed"), mode="r")[:].sum())
    except Exception:  # not created yet, or being renamed into place
        return 0


def _marked(store: Path) -> str:
    try:
        population = engine.open_population(store)
    except StoreError:
        return "no store yet"
    done = int(population.checkpoints_completed().sum())
    return f"{done} of {population.num_networks * population.num_checkpoints} checkpoints marked"


def _finish_and_compare(store: Path, reference: Path, folder: Path) -> None:
    """Rerun the study on ``store`` to the end, check it equals ``reference`` with nothing left
    over beside it, and remove it."""
    finish(start([*TRAIN, "--out", str(store)]))
    assert_same_store(store, reference)
    assert not leftovers(folder), leftovers(folder)
    assert not (folder / ".pop.zarr.train-state").exists()
    shutil.rmtree(store)


def test_training_killed_at_random_moments_resumes_to_the_same_store(trained, tmp_path):
    reference, seconds = trained
    expected = store_arrays(reference)
    store = tmp_path / "pop.zarr"
    reads = 0
    total = int(expected["completed"].size * expected["completed"].max())
    for trial in range(kills("train")):
        before = _marked_count(store)
        process = start([*TRAIN, "--out", str(store)])
        began = time.monotonic()
        mode = ("after the store appears", "after a mark", "any moment")[trial % 3]
        if mode == "any moment":
            # Any moment of the run: starting up, creating the store, training, saving, ending.
            deadline = began + RNG.uniform(0.2, seconds)
            while time.monotonic() < deadline and process.poll() is None:
                reads += check_read_during_write(store, expected)
        elif mode == "after a mark":
            # As soon as a given number of checkpoints is marked: inside training proper, just
            # after a mark (recording the next checkpoint, saving the state).
            target = RNG.randrange(before, total)
            while process.poll() is None and _marked_count(store) <= target:
                time.sleep(0.005)
        else:
            # A moment after the store appears, reading it meanwhile.
            while not store.exists() and process.poll() is None:
                time.sleep(0.01)
            deadline = time.monotonic() + RNG.uniform(0.0, 1.5)
            while time.monotonic() < deadline and process.poll() is None:
                reads += check_read_during_write(store, expected)
        moment = time.monotonic() - began
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        progress = _marked(store)
        outcome = "resumed" if _marked_count(store) < total else "finished before the kill"
        record("kill -9 of train-population", f"{mode}: {moment:.1f} s, {progress}", outcome)
        if _marked_count(store) == total:
            # Nothing left to interrupt: check this store, then start the next trials afresh.
            _finish_and_compare(store, reference, tmp_path)
    _finish_and_compare(store, reference, tmp_path)
    record("read during training", f"{reads} reads", "marked entries as finished, rest masked")


# ----------------------------------------------------------------------------------------------
# kill -9 of import


@pytest.fixture(scope="module")
def import_source(tmp_path_factory) -> tuple[list[str], Path]:
    """Logits of 8 networks at 3 checkpoints, their labels, and the store imported whole."""
    folder = tmp_path_factory.mktemp("import")
    rng = np.random.default_rng(5)
    np.save(folder / "logits.npy", rng.normal(size=(8, 3, 40, 4)).astype(np.float32))
    np.save(folder / "labels.npy", rng.integers(0, 4, 40))
    args = [
        "import",
        str(folder / "logits.npy"),
        "--labels",
        str(folder / "labels.npy"),
        "--epochs",
        "0,1,2",
        "--network-block",
        "2",
        "--no-progress",
    ]
    reference = folder / "reference.zarr"
    finish(start([*args, "--out", str(reference)]))
    return args, reference


def test_import_killed_at_random_moments_resumes_to_the_same_store(import_source, tmp_path):
    args, reference = import_source
    store = tmp_path / "pop.zarr"
    for _ in range(kills("import")):
        delay = RNG.uniform(0.5, 4.0)
        process = start([*args, "--out", str(store)])
        time.sleep(delay)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        record("kill -9 of import", f"after {delay:.1f} s", "resumed")
    finish(start([*args, "--out", str(store)]))
    assert_same_store(store, reference)
    assert not leftovers(tmp_path), leftovers(tmp_path)


# ----------------------------------------------------------------------------------------------
# kill -9 of analysis: the output folder is complete or has no report.html


def read_results(out: Path) -> dict:
    """The results of an analysis folder as :func:`results` gives them."""
    return {
        "summary": _without_paths(json.loads((out / "summary.json").read_text())),
        "pairwise": _without_paths(json.loads((out / "pairwise.json").read_text())),
        "examples": pd.read_parquet(out / "examples.parquet").to_dict("list"),
        "networks": pd.read_parquet(out / "networks.parquet").to_dict("list"),
    }


def test_analysis_killed_at_random_moments_is_complete_or_unmarked(
    small_store, intact, tmp_path, monkeypatch
):
    for trial in range(kills("analyze")):
        out = tmp_path / f"out{trial}"
        delay = RNG.uniform(1.0, 9.0)
        process = start(["analyze", str(small_store), "--out", str(out), "--no-progress"])
        time.sleep(delay)
        killed = process.poll() is None
        if killed:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        report = out / "report.html"
        if report.exists():
            # A report.html is the mark of a complete analysis: all of it must be there.
            assert report.read_text().rstrip().endswith("</html>")
            assert same(read_results(out), intact)
            outcome = "complete (finished before the kill)" if not killed else "complete"
        else:
            outcome = "no report.html (incomplete, not presented as complete)"
        # Rerunning into the same folder gives the whole analysis.
        assert same(results(small_store, out, monkeypatch), intact)
        record("kill -9 of analyze", f"after {delay:.1f} s", outcome + "; rerun identical")


# ----------------------------------------------------------------------------------------------
# A Dask worker killed mid-analysis


@pytest.mark.distributed
@pytest.mark.parametrize("trial", range(kills("dask")))
def test_a_worker_killed_mid_analysis_gives_identical_results_or_a_clean_error(
    small_store, intact, tmp_path, trial
):
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        pids = list(client.run(os.getpid).values())
        got: dict = {}

        def analyse() -> None:
            from engine.report.run import analyze_store

            try:
                analyze_store(
                    str(small_store),
                    tmp_path / "out",
                    cluster=cluster.scheduler_address,
                    progress=False,
                )
                got["results"] = read_results(tmp_path / "out")
            except Exception as error:  # recorded: a clean failure is allowed, wrong numbers not
                got["error"] = error

        thread = threading.Thread(target=analyse)
        thread.start()
        delay = RNG.uniform(0.5, 2.0 + trial)
        time.sleep(delay)
        os.kill(pids[trial % 2], signal.SIGKILL)
        thread.join(timeout=240)
        assert not thread.is_alive()
    if "error" in got:
        message = str(got["error"])
        assert "\n" not in message
        outcome = f"clean failure: {type(got['error']).__name__}"
    else:
        assert same(got["results"], intact)
        outcome = "identical results"
    record("Dask worker killed mid-analysis", f"LocalCluster of 2, after {delay:.1f} s", outcome)


# ----------------------------------------------------------------------------------------------
# A full disk while training saves its state


def test_a_full_disk_while_saving_state_is_one_line_and_leaves_no_temporary(
    trained, tmp_path, monkeypatch, capsys
):
    from cli.app import main
    from engine.train import state

    reference, _ = trained
    store = tmp_path / "pop.zarr"
    folder = tmp_path / ".pop.zarr.train-state"
    real_write = state.write_file
    saves = {"count": 0}

    def full_disk(path: Path, data) -> None:
        saves["count"] += 1
        if saves["count"] >= 2:  # the first state saved, then the disk fills
            with open(path, "wb") as file:  # part of it written, as a real full disk does
                file.write(bytes(data[: len(data) // 3]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, data)

    monkeypatch.setattr(state, "write_file", full_disk)
    assert main([*TRAIN, "--out", str(store)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot save training state ") and err.count("\n") == 1
    assert "No space left on device" in err and "MiB free" in err and str(folder) in err
    assert not list(folder.glob("*.tmp")) and not list(folder.glob(".*.tmp"))
    record(
        "full disk (faked ENOSPC) while saving state",
        "train-population",
        "one-line error, no temporary file",
    )
    # A crash mid-save leaves a temporary file of a process that is gone: the next run
    # removes it.
    host = socket.gethostname().replace(".", "_")
    stale = folder / f".mlp-0-2.pt.{host}.999999999.tmp"
    stale.write_bytes(b"partial")
    monkeypatch.setattr(state, "write_file", real_write)
    assert main([*TRAIN, "--out", str(store)]) == 0
    assert not stale.exists() and not folder.exists()
    assert_same_store(store, reference)
    record("temporary state file left by a crash", "next run", "removed; store identical")


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
    )
    return done.returncode == 0


def fill_disk(args: list[str], reference: Path, mount: Path, size: str, what: str) -> None:
    """Run ``args`` (writing under ``mount``) on a tmpfs of ``size``: it must end in one line
    and exit 1, or succeed; then, on a larger disk, the same command must give ``reference``."""
    if not _mount_tmpfs(mount, size):
        record(f"full disk (tmpfs) during {what}", size, "not run: mount not permitted")
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        store = mount / "pop.zarr"
        process = start([*args, "--out", str(store)])
        _, err = process.communicate(timeout=300)
        if process.returncode == 0:
            outcome = "fitted: no error"
        else:
            assert process.returncode == 1, err
            assert err.startswith("error: ") and err.count("\n") == 1, err
            assert "No space left on device" in err, err
            reason = err.strip().split(":", 1)[1].strip().replace(str(store), "<store>")
            outcome = (
                "exit 1, one line naming the state file and the space left"
                if reason.startswith("cannot save training state")
                else f"exit 1, one line: {reason[:80]}"
            )
        # A failure while creating the store removes its staging folder too.
        assert leftovers(mount) == []
        subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
        finish(start([*args, "--out", str(store)]))
        assert_same_store(store, reference)
        outcome += "; nothing left behind; rerun identical"
        record(f"full disk (tmpfs) during {what}", size, outcome)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.skipif(not FULL, reason="full fault suite only (CREATED_EQUAL_FAULTS=full)")
@pytest.mark.skipif(shutil.which("mount") is None, reason="no mount command")
@pytest.mark.parametrize("size", ["64k", "128k", "192k", "224k", "256k"])
def test_a_small_file_system_filling_during_training(trained, tmp_path, size):
    """A real full disk: a tmpfs smaller than the study needs (about 290 KiB with its state),
    where this machine lets tests mount one; it fills at a moment that depends on its size."""
    fill_disk(TRAIN, trained[0], tmp_path / "small", size, "train-population")


@pytest.mark.skipif(not FULL, reason="full fault suite only (CREATED_EQUAL_FAULTS=full)")
@pytest.mark.skipif(shutil.which("mount") is None, reason="no mount command")
@pytest.mark.parametrize("size", ["64k", "128k", "192k"])
def test_a_small_file_system_filling_during_import(import_source, tmp_path, size):
    args, reference = import_source
    fill_disk(args, reference, tmp_path / "small", size, "import")


def test_states_of_blocks_finished_before_a_kill_are_removed_by_the_next_run(trained, tmp_path):
    """A kill after a block's last mark and before its state file is removed leaves a state
    that no later run trains again; the next run that finishes removes it."""
    from cli.app import main

    reference, _ = trained
    store = tmp_path / "pop.zarr"
    folder = tmp_path / ".pop.zarr.train-state"
    shutil.copytree(reference, store)
    folder.mkdir()
    (folder / "mlp-0-4.pt").write_bytes(b"a state of a finished block")
    (folder / "other-100-104.pt").write_bytes(b"not this store's networks: kept")
    assert main([*TRAIN, "--out", str(store)]) == 0
    assert not (folder / "mlp-0-4.pt").exists()
    assert [p.name for p in folder.iterdir()] == ["other-100-104.pt"]
    (folder / "other-100-104.pt").unlink()
    record(
        "kill -9 after a block's last mark, before its state is removed",
        "next run",
        "state removed",
    )


def test_only_temporary_states_of_dead_processes_or_old_ones_are_removed(tmp_path):
    """Shards on other machines may share the state folder: their young temporary files stay,
    as do those of live processes here; a dead process's here, or any hour-old one, go."""
    from engine.train import state

    host = socket.gethostname().replace(".", "_")
    live = tmp_path / f".g-0-2.pt.{host}.{os.getpid()}.tmp"
    dead = tmp_path / f".g-0-2.pt.{host}.999999999.tmp"
    legacy = tmp_path / ".g-0-2.pt.999999999.tmp"
    elsewhere = tmp_path / ".g-0-2.pt.otherhost.1.tmp"
    old = tmp_path / ".g-2-4.pt.otherhost.1.tmp"
    other_block = tmp_path / f".g-2-4.pt.{host}.999999999.tmp"
    for path in (live, dead, legacy, elsewhere, old, other_block):
        path.write_bytes(b"partial")
    hour_ago = time.time() - state.STALE_TEMPORARY_SECONDS - 60
    os.utime(old, (hour_ago, hour_ago))
    state.remove_stale_temporaries(tmp_path, "g-0-2.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live, elsewhere, old, other_block)
    )
    state.remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (live, elsewhere))

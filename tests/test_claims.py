"""Ownership claims (engine.store.claims): one live writer per block of networks, taken over
when its owner is gone (issue: two trainers on one store both trained everything)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import engine
from engine.errors import StoreError, WriterError
from engine.store.claims import CLAIMS_GROUP

ROOT = Path(__file__).resolve().parents[1]


def _store(path: Path, networks: int = 8, block: int = 4) -> Path:
    engine.create_population(
        path,
        dataset_name="toy",
        splits={"test": engine.SplitSpec(labels=np.arange(10) % 3)},
        groups=[engine.GroupSpec("g", "mlp", networks)],
        checkpoint_epochs=[0, 1],
        class_names=["a", "b", "c"],
        network_block=block,
    )
    return path


def _claims(path: Path) -> list[str]:
    folder = path / CLAIMS_GROUP
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


def _holder(path: Path, networks: tuple[int, int], lease: float = 300.0) -> subprocess.Popen:
    """A process that claims networks and holds them until killed."""
    code = (
        "import sys, time, engine\n"
        f"w = engine.open_writer({str(path)!r}, {networks!r}, lease={lease})\n"
        "w.claim(); print('claimed', flush=True); time.sleep(120)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "claimed"
    return process


def test_a_second_writer_of_a_claimed_block_is_refused_with_the_owner_named(tmp_path):
    path = _store(tmp_path / "p.zarr")
    holder = _holder(path, (0, 4))
    try:
        assert _claims(path) == ["0-4"]
        with pytest.raises(WriterError, match=f"networks 0:4 .* written by process {holder.pid}"):
            engine.open_writer(path, (0, 8)).claim()
        # The refused writer holds nothing, and the other block stays free.
        assert _claims(path) == ["0-4"]
        other = engine.open_writer(path, (4, 8))
        other.claim()
        assert _claims(path) == ["0-4", "4-8"]
        other.close()
        assert _claims(path) == ["0-4"]
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_owners_claim_is_taken_over_at_once_on_its_host(tmp_path):
    path = _store(tmp_path / "p.zarr")
    holder = _holder(path, (0, 8))
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert _claims(path) == ["0-4", "4-8"]  # left by the killed process
    writer = engine.open_writer(path, (0, 8))
    writer.claim()
    owner = json.loads((path / CLAIMS_GROUP / "0-4" / "zarr.json").read_text())
    assert owner["attributes"]["created_equal_claim"]["pid"] == os.getpid()
    writer.close()
    assert _claims(path) == []


def _foreign_claim(path: Path, expires: float) -> None:
    folder = path / CLAIMS_GROUP / "0-4"
    folder.mkdir(parents=True)
    owner = {"host": "another-machine", "pid": 1, "started": "1", "token": "t", "expires": expires}
    metadata = {"zarr_format": 3, "node_type": "group", "attributes": {}}
    metadata["attributes"] = {"created_equal_claim": owner}
    (folder / "zarr.json").write_text(json.dumps(metadata))


def test_a_claim_from_another_host_holds_until_its_lease_ends(tmp_path):
    path = _store(tmp_path / "p.zarr")
    _foreign_claim(path, time.time() + 60)
    with pytest.raises(WriterError, match="process 1 on another-machine"):
        engine.open_writer(path, (0, 4)).claim()
    path2 = _store(tmp_path / "q.zarr")
    _foreign_claim(path2, time.time() - 1)  # lease over: the owner stopped renewing
    writer = engine.open_writer(path2, (0, 4))
    writer.claim()
    writer.close()
    assert _claims(path2) == []


def test_the_owner_renews_its_lease(tmp_path):
    path = _store(tmp_path / "p.zarr")
    writer = engine.open_writer(path, (0, 4), lease=0.6)
    writer.claim()
    claim = path / CLAIMS_GROUP / "0-4" / "zarr.json"
    first = json.loads(claim.read_text())["attributes"]["created_equal_claim"]["expires"]
    time.sleep(0.9)  # longer than the lease: still held, by renewal
    later = json.loads(claim.read_text())["attributes"]["created_equal_claim"]["expires"]
    assert later > first and later > time.time()
    writer.close()


def test_writers_of_one_process_share_a_claim_until_the_last_closes(tmp_path):
    path = _store(tmp_path / "p.zarr")
    first, second = engine.open_writer(path, (0, 4)), engine.open_writer(path, (0, 4))
    first.claim()
    second.claim()
    first.close()
    assert _claims(path) == ["0-4"]
    second.close()
    assert _claims(path) == []


def test_a_block_is_released_once_all_its_networks_are_complete(tmp_path):
    path = _store(tmp_path / "p.zarr")
    writer = engine.open_writer(path)
    for checkpoint in range(2):
        writer.record("test", checkpoint, (0, 4), predictions=np.zeros((4, 10), int))
        writer.mark_checkpoint(checkpoint, (0, 4))
    assert _claims(path) == ["4-8"]  # 0:4 is complete, 4:8 not yet
    # The store is still a valid Zarr hierarchy with the claims in it.
    population = engine.open_population(path)
    assert list(population.complete_networks()) == [0, 1, 2, 3]


def test_a_writer_checks_its_input_before_it_claims(tmp_path):
    path = _store(tmp_path / "p.zarr")
    writer = engine.open_writer(path)
    with pytest.raises(WriterError, match="class id 5, beyond the 3 classes"):
        writer.record("test", 0, (0, 8), predictions=np.full((8, 10), 5))
    assert not (path / CLAIMS_GROUP).exists()


def test_merging_a_store_with_itself_is_refused(tmp_path):
    path = _store(tmp_path / "p.zarr")
    with pytest.raises(StoreError, match="the same store twice"):
        engine.merge_populations([path, tmp_path / "." / "p.zarr"], tmp_path / "m.zarr")
    assert not (tmp_path / "m.zarr").exists()


def _train_command(store: Path) -> list[str]:
    return [
        sys.executable, "-m", "cli.app", "train-population", "--dataset", "digits", "--arch",
        "mlp", "--networks", "4", "--epochs", "100", "--width", "16", "--out", str(store),
        "--network-block", "4", "--threads", "1", "--quiet",
    ]  # fmt: skip


@pytest.mark.slow
def test_a_second_identical_training_command_is_refused_then_resumes_the_first(tmp_path):
    store = tmp_path / "pop.zarr"
    first = subprocess.Popen(
        _train_command(store), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.time() + 120
        while not _claims(store) and time.time() < deadline:
            time.sleep(0.2)
        assert _claims(store) == ["0-4"], "the first trainer never claimed its networks"
        assert first.poll() is None, "the first trainer finished too soon for this test"
        second = subprocess.run(
            _train_command(store), cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert second.returncode == 1
        assert f"being written by process {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    rerun = subprocess.run(
        _train_command(store), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr
    assert list(engine.open_population(store).complete_networks()) == [0, 1, 2, 3]
    assert _claims(store) == []


def test_a_claim_whose_owner_record_cannot_be_written_is_given_up(tmp_path, monkeypatch):
    """A full disk between the claim's mkdir and its owner record: found by the full fault
    suite (tmpfs of 192k), where the ownerless claim refused every rerun for a whole lease."""
    from engine.store import claims

    path = _store(tmp_path / "p.zarr")
    real_write = claims._write_owner

    def full_disk(folder, owner):
        (folder / f".zarr.json.{owner.token}").write_text("{")  # a partial temporary file
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(claims, "_write_owner", full_disk)
    with pytest.raises(OSError, match="No space left"):
        engine.open_writer(path, (0, 4)).claim()
    assert _claims(path) == []
    monkeypatch.setattr(claims, "_write_owner", real_write)
    writer = engine.open_writer(path, (0, 4))
    writer.claim()
    assert _claims(path) == ["0-4"]
    writer.close()


def test_the_owner_record_leaves_no_temporary_file_when_its_write_fails(tmp_path, monkeypatch):
    from engine.store import claims

    folder = tmp_path / "claim"
    folder.mkdir()

    def failing_replace(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(claims.os, "replace", failing_replace)
    with pytest.raises(OSError):
        claims._write_owner(folder, claims.Owner.this_process("tok", 300.0))
    assert list(folder.iterdir()) == []


def test_a_full_disk_while_recording_names_the_array_and_the_store(tmp_path, monkeypatch):
    import zarr

    path = _store(tmp_path / "p.zarr")
    writer = engine.open_writer(path, (0, 4))

    def full_disk(self, key, value):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zarr.Array, "__setitem__", full_disk)
    with pytest.raises(StoreError, match=r"cannot write splits/test/\w+ of .*p\.zarr: No space"):
        writer.record("test", 0, (0, 4), predictions=np.zeros((4, 10), np.int64))
    writer.close()

"""Verification and what readers trust: ``engine info --verify`` reads every array, analyze and
pairwise name a damaged array they rely on, and readers mask what a writer still at work has
not marked (issue 14, points 2 and 13)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import engine
from cli.app import app
from engine.errors import StoreError
from engine.store import verify_population
from engine.store.format import MARGIN_MISSING, PROBABILITY_MISSING
from tests.test_faults import chunk_files, damage, make_store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("verify") / "pop.zarr")


def _copy(store: Path, tmp_path: Path) -> Path:
    target = tmp_path / "pop.zarr"
    shutil.copytree(store, target)
    return target


def test_verify_reads_every_array_of_the_store(store):
    population = engine.open_population(store)
    arrays = verify_population(population).arrays
    on_disk = sorted(
        str(p.parent.relative_to(store))
        for p in store.rglob("zarr.json")
        # The root's node is a group whose consolidated metadata lists the arrays.
        if json.loads(p.read_text())["node_type"] == "array"
    )
    assert sorted(arrays) == on_disk
    assert {"train_loss", "splits/train/final_accuracy", "splits/test/labels"} <= set(arrays)
    assert "splits/train/example_metadata/severity" in arrays


@pytest.mark.parametrize(
    "name",
    [
        "train_loss",
        "checkpoints_completed",
        "splits/train/final_accuracy",
        "splits/test/labels",
        "splits/train/example_ids",
        "splits/train/predictions",
        "splits/test/probability",
        "splits/train/margin",
        "splits/train/membership",
        "splits/train/example_metadata/condition",
        "network_group",
        "checkpoint_epoch",
    ],
)
def test_verify_names_a_flipped_byte_in_any_array(store, tmp_path, name):
    path = _copy(store, tmp_path)
    damage(path, name, "flip", chunk=len(chunk_files(path, name)) - 1)
    with pytest.raises(StoreError, match=f"corrupt or unreadable chunk in .*{name}") as error:
        verify_population(engine.open_population(path, check=False))
    assert "\n" not in str(error.value)


def test_info_verify_says_how_many_arrays_and_names_damage(store, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["info", str(store), "--verify"])
    assert result.exit_code == 0, result.output
    count = len(engine.open_population(store).array_names())
    assert f"every chunk of the {count} arrays read back" in result.output
    path = _copy(store, tmp_path)
    damage(path, "train_loss", "flip", chunk=0)
    from cli.app import main

    # info still describes the damaged store, then --verify names the array.
    assert main(["info", str(path)]) == 0
    assert main(["info", str(path), "--verify"]) == 1


def test_analyze_and_pairwise_name_a_corrupt_train_loss(store, tmp_path, capsys):
    from cli.app import main

    path = _copy(store, tmp_path)
    damage(path, "train_loss", "flip", chunk=1)
    assert main(["analyze", str(path), "--out", str(tmp_path / "a"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train_loss" in err and err.startswith("error: ")
    assert not (tmp_path / "a").exists()
    assert main(["pairwise", str(path), "--out", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train_loss" in err


def test_a_lost_checkpoints_completed_chunk_is_named_not_read_as_not_started(store, tmp_path):
    path = _copy(store, tmp_path)
    damage(path, "checkpoints_completed", "delete", chunk=0)
    with pytest.raises(StoreError, match="checkpoints_completed"):
        engine.open_population(path)


def test_a_lost_final_accuracy_chunk_of_complete_networks_is_named(store, tmp_path):
    path = _copy(store, tmp_path)
    damage(path, "splits/test/final_accuracy", "delete", chunk=1)
    with pytest.raises(StoreError, match="missing chunk c/1 of .*splits/test/final_accuracy"):
        engine.open_population(path)


def test_a_truncated_array_metadata_is_named(store, tmp_path):
    path = _copy(store, tmp_path)
    damage(path, "splits/test/labels", "truncate-metadata", chunk=0)
    with pytest.raises(StoreError, match=r"splits/test/labels/zarr\.json"):
        engine.open_population(path)
    damage(path, ".", "truncate-metadata", chunk=0)
    with pytest.raises(StoreError, match=r"root metadata .*zarr\.json"):
        engine.open_population(path)


# ----------------------------------------------------------------------------------------------
# Point 13: entries at or after checkpoints_completed read as not recorded, during a write


def _mid_way(path: Path, completed: list[int]):
    """Set the marks of the store at ``path`` to ``completed`` and its final accuracies to
    not recorded, as a writer part of the way through would have them; return the writer."""
    writer = engine.open_writer(path)
    for split in writer.splits:
        writer.array(f"splits/{split}/final_accuracy")[:] = np.nan
    writer.array("checkpoints_completed")[:] = np.asarray(completed, np.int32)
    return writer


def test_reads_during_a_write_see_only_marked_checkpoints(store, tmp_path):
    """Marks rolled back under recorded chunks, as a writer mid-way has them (recorded, not
    yet marked; final accuracies not yet recorded): readers see only what is marked."""
    reference = engine.open_population(store)
    path = tmp_path / "pop.zarr"
    shutil.copytree(store, path)
    _mid_way(path, [1, 1, 0, 0])
    population = engine.open_population(path)
    completed = population.checkpoints_completed()
    checkpoints = np.arange(population.num_checkpoints)
    unrecorded = checkpoints[None, :] >= completed[:, None]  # (networks, checkpoints)
    assert unrecorded.any() and not unrecorded.all()
    for split in population.splits:
        correct = population.correct(split).compute()
        assert not correct[unrecorded].any()
        expected = reference.correct(split).compute()
        np.testing.assert_array_equal(correct[~unrecorded], expected[~unrecorded])
        packed = population.correct_packed(split).compute()
        assert not packed[unrecorded].any()
        predictions = population.predictions(split).compute()
        assert (predictions[unrecorded] == -1).all()
        np.testing.assert_array_equal(
            predictions[~unrecorded], reference.predictions(split).compute()[~unrecorded]
        )
        for name in population.soft_arrays(split):
            codes = population.lazy_array(f"splits/{split}/{name}").compute()
            missing = PROBABILITY_MISSING if name == "probability" else MARGIN_MISSING
            assert (codes[unrecorded] == missing).all()
            values = getattr(population, name)(split).compute()
            assert np.isnan(values[unrecorded]).all()
    loss = population.train_loss().compute()
    assert np.isnan(loss[unrecorded]).all()
    assert np.isfinite(loss[~unrecorded]).all()


def test_a_lazy_read_keeps_the_marks_it_was_made_with(store, tmp_path):
    """Marks published after a lazy array is made do not show through it: one snapshot, so a
    read during training is consistent; a new call sees the new marks."""
    path = tmp_path / "pop.zarr"
    shutil.copytree(store, path)
    writer = _mid_way(path, [0, 0, 0, 0])
    population = engine.open_population(path)
    lazy = population.predictions("test")
    # The marks a writer publishes once its chunks are in (written as a mark would write them:
    # this writer recorded nothing itself, so mark_complete refuses).
    writer.array("checkpoints_completed")[:] = np.full(4, population.num_checkpoints, np.int32)
    assert (lazy.compute() == -1).all()
    fresh = population.predictions("test").compute()
    np.testing.assert_array_equal(
        fresh, engine.open_population(store).predictions("test").compute()
    )
    # Chunk by chunk: a region of one chunk reads as the whole does.
    np.testing.assert_array_equal(
        population.predictions("test")[1:3, 1:2, 2:9].compute(), fresh[1:3, 1:2, 2:9]
    )

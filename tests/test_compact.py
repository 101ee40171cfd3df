"""Compaction: a store of one network per stored object rewritten into blocks, equal to its
source in every array, attribute and analysis; bad input refused in one line."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.storage import LocalStore

import engine
from cli.app import main
from engine.errors import StoreError, WriterError
from engine.store import ATTRS_KEY, compact_population, verify_population
from engine.testing import simulate_population
from tests.test_record_processes import assert_same_contents, store_contents, summary_numbers
from tests.test_store import corrupt_one_chunk

#: Root attributes compaction changes on purpose.
LAYOUT_KEYS = ("network_block", "checkpoint_block", "extra")


def _without_layout(contents: dict) -> dict:
    root = contents["/"]
    meta = {k: v for k, v in root[1][ATTRS_KEY].items() if k not in LAYOUT_KEYS}
    return {**contents, "/": ("group", {**root[1], ATTRS_KEY: meta})}


@pytest.fixture(scope="module")
def runs_store(tmp_path_factory):
    """20 networks of one network per object (5 incomplete), in 2 groups, 5 checkpoints in
    chunks of 2, examples in chunks of 64: predictions, soft verdicts, membership and a probe
    split."""
    path = tmp_path_factory.mktemp("compact") / "runs.zarr"
    simulate_population(
        path,
        networks=20,
        checkpoints=5,
        splits={"train": 130, "test": 40},
        probe_examples=24,
        groups=2,
        membership=True,
        soft=True,
        seed=4,
        network_block=1,
        checkpoint_block=2,
        example_block=64,
        complete=15,
    )
    return path


def test_compacted_store_equals_its_source(runs_store, tmp_path, monkeypatch):
    written: Counter[str] = Counter()
    set_chunk = LocalStore.set

    async def counting(self, key, value):
        written[key] += 1
        await set_chunk(self, key, value)

    monkeypatch.setattr(LocalStore, "set", counting)
    output = tmp_path / "compact.zarr"
    compacted = compact_population(runs_store, output, 8, checkpoint_block=4)
    monkeypatch.undo()
    # Streaming by the least common multiple of the blocks writes no chunk twice.
    chunks = {key: count for key, count in written.items() if "/c/" in key}
    assert chunks and max(chunks.values()) == 1
    assert not list(tmp_path.glob(".*"))  # no staging folder left
    # A destination chunk is stored where a source chunk it covers is (none of the train_loss
    # that simulate_population never records).
    assert not (output / "train_loss" / "c").exists()
    assert (output / "splits/train/correct_packed/c/2/1/1").is_file()

    source, target = store_contents(runs_store), store_contents(output)
    assert_same_contents(_without_layout(target), _without_layout(source))
    meta = compacted.attrs
    assert (meta["network_block"], meta["checkpoint_block"]) == (8, 4)
    assert meta["extra"]["compacted_from"]["network_block"] == 1
    packed = zarr.open_array(str(output / "splits/train/correct_packed"), mode="r")
    assert packed.chunks == (8, 4, 8)
    assert zarr.open_array(str(output / "splits/train/membership"), mode="r").chunks == (8, 64)
    assert zarr.open_array(str(output / "network_init_seed"), mode="r").chunks == (20,)
    assert verify_population(compacted).arrays  # every chunk there and checksummed
    # A writer of the new store owns whole blocks of 8.
    engine.open_writer(output, (16, 20))
    with pytest.raises(WriterError, match="does not end on a block of 8"):
        engine.open_writer(output, (0, 1))


def test_compacted_store_analyses_identically(runs_store, tmp_path):
    output = tmp_path / "compact.zarr"
    compact_population(runs_store, output)
    assert summary_numbers(output, tmp_path / "compact") == summary_numbers(
        runs_store, tmp_path / "runs"
    )


def test_seeds_example_metadata_and_groups_are_kept(tmp_path):
    source = tmp_path / "meta.zarr"
    labels = np.arange(40) % 3
    writer = engine.create_population(
        source,
        dataset_name="toy",
        splits={
            "test": engine.SplitSpec(
                labels=labels,
                example_ids=np.arange(40) * 7,
                metadata={
                    "condition": np.array(["clean", "noisy"] * 20, dtype=object),
                    "severity": np.linspace(0, 1, 40),
                },
            )
        },
        groups=[engine.GroupSpec("a", "mlp", 3, {"width": 8}), engine.GroupSpec("b", "cnn", 2)],
        checkpoint_epochs=[0, 0.5, 1],
        checkpoint_steps=[0, 10, 20],
        class_names=["x", "y", "z"],
        init_seeds=[5, 6, 7, 8, 9],
        order_seeds=[15, 16, 17, 18, 19],
        network_block=1,
        extra_attrs={"trainer": {"lr": 0.1}},
    )
    rng = np.random.default_rng(0)
    for network in range(5):
        for checkpoint in range(3):
            writer.record(
                "test", checkpoint, (network, network + 1), predictions=rng.integers(0, 3, (1, 40))
            )
        writer.mark_complete((network, network + 1))
    output = tmp_path / "compact.zarr"
    compact_population(source, output, 4)
    assert_same_contents(
        _without_layout(store_contents(output)), _without_layout(store_contents(source))
    )
    population = engine.open_population(output)
    assert population.attrs["extra"]["trainer"] == {"lr": 0.1}
    table = population.example_metadata("test")
    assert list(table["condition"][:2]) == ["clean", "noisy"]
    np.testing.assert_array_equal(population.networks["init_seed"], [5, 6, 7, 8, 9])


def test_bad_input_is_refused_in_one_line(runs_store, tmp_path):
    def refused(pattern, *args, **kwargs):
        with pytest.raises(StoreError, match=pattern) as raised:
            compact_population(*args, **kwargs)
        assert "\n" not in str(raised.value)

    refused("no population store at", tmp_path / "missing.zarr", tmp_path / "out.zarr")
    (tmp_path / "taken.zarr").mkdir()
    refused("already exists; compact writes a new store", runs_store, tmp_path / "taken.zarr")
    refused("network_block must be a positive integer, got 0", runs_store, tmp_path / "o", 0)
    refused(
        "checkpoint_block must be a positive integer, got -1",
        runs_store,
        tmp_path / "o",
        checkpoint_block=-1,
    )
    refused(
        "has 5 incomplete networks of 20: rerun them before compacting",
        runs_store,
        tmp_path / "o",
        require_complete=True,
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("damage", "block"), [("corrupt", 32), ("missing", 32), ("missing", 1)])
def test_a_damaged_source_chunk_is_refused_and_nothing_published(
    runs_store, tmp_path, damage, block
):
    source = tmp_path / "damaged.zarr"
    shutil.copytree(runs_store, source)
    if damage == "corrupt":
        corrupt_one_chunk(source, "splits/test/probability")
        pattern = "corrupt or unreadable chunk in .*splits/test/probability"
    else:
        chunk = source / "splits/test/margin/c/3/0/0"
        chunk.unlink()
        pattern = "missing chunk c/3/0/0 of .*margin: its networks are recorded there"
    with pytest.raises(StoreError, match=pattern):
        compact_population(source, tmp_path / "out.zarr", block)
    assert not [p for p in tmp_path.iterdir() if p.name != "damaged.zarr"]


def test_cli_compact(runs_store, tmp_path, capsys):
    output = tmp_path / "out.zarr"
    code = main(["compact", str(runs_store), "-o", str(output), "--network-block", "16"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"wrote {output}: 20 networks (15 complete) in blocks of 16" in captured.out
    assert "5 incomplete networks were copied as they are" in captured.out
    assert engine.open_population(output).attrs["network_block"] == 16

    code = main(["compact", str(runs_store), "-o", str(output)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.startswith("error: ") and "already exists" in captured.err
    assert captured.err.count("\n") == 1
    code = main(["compact", str(runs_store), "-o", str(tmp_path / "x"), "--network-block", "0"])
    assert code == 2
    assert "--network-block" in capsys.readouterr().err


def test_staging_is_removed_when_the_copy_fails(runs_store, tmp_path, monkeypatch):
    from engine.store import compact

    def failing(*args, **kwargs):
        raise asyncio.CancelledError

    monkeypatch.setattr(compact, "_copy_array", failing)
    with pytest.raises(asyncio.CancelledError):
        compact_population(runs_store, tmp_path / "out.zarr")
    assert list(tmp_path.iterdir()) == []
    assert Path(runs_store).exists()

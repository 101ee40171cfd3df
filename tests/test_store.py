"""The population store: round trips, concurrent writers, growing, merging, xarray, bad input,
info and verification, stored-order decoding."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.errors import StoreError, WriterError
from engine.store import (
    ATTRS_KEY,
    StoreHandle,
    read_stored_order,
    summarize_population,
    verify_population,
)
from engine.store import format as store_format


def make_store(
    path,
    *,
    networks=5,
    checkpoints=3,
    examples=(13, 7),
    classes=4,
    seed=0,
    predictions=True,
    network_block=2,
    checkpoint_block=2,
    probe=True,
    membership=False,
    dataset="toy",
    data_seed=0,
    example_block=65536,
):
    """A store filled with random predictions; returns (store path, labels, predictions)."""
    rng = np.random.default_rng(data_seed)
    labels = {
        "train": rng.integers(0, classes, examples[0]),
        "test": rng.integers(0, classes, examples[1]),
    }
    if probe:
        labels["probe"] = np.full(5, -1)
    splits = {
        name: engine.SplitSpec(
            labels=lab,
            predictions=predictions,
            fingerprint=hashlib.sha256(lab.tobytes()).hexdigest(),
        )
        for name, lab in labels.items()
    }
    groups = [engine.GroupSpec("a", "mlp", networks - networks // 2, {"width": 8})]
    if networks // 2:
        groups.append(engine.GroupSpec("b", "cnn", networks // 2))
    writer = engine.create_population(
        path,
        dataset_name=dataset,
        splits=splits,
        groups=groups,
        checkpoint_epochs=np.arange(checkpoints),
        checkpoint_steps=np.arange(checkpoints) * 10,
        network_block=network_block,
        checkpoint_block=checkpoint_block,
        example_block=example_block,
        init_seeds=np.arange(networks),
        order_seeds=np.arange(networks) + 100,
        membership_split="train" if membership else None,
    )
    rng = np.random.default_rng(seed)
    recorded = {}
    for name, lab in labels.items():
        recorded[name] = rng.integers(0, classes, (networks, checkpoints, lab.size))
    for t in range(checkpoints):
        for name, lab in labels.items():
            block = recorded[name][:, t]
            if predictions:
                writer.record(name, t, (0, networks), predictions=block)
            else:
                writer.record(name, t, (0, networks), correct=block == lab)
        writer.record_loss(t, (0, networks), rng.random(networks))
        writer.mark_checkpoint(t, (0, networks))
    return Path(path), labels, recorded


def tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


@settings(max_examples=15)
@given(
    networks=st.integers(1, 9),
    checkpoints=st.integers(1, 4),
    train=st.sampled_from([1, 7, 8, 63, 64, 65, 130]),
    block=st.integers(1, 4),
    example_block=st.sampled_from([8, 16, 64, 65536]),
    predictions=st.booleans(),
)
def test_round_trip_awkward_shapes(
    tmp_path_factory, networks, checkpoints, train, block, example_block, predictions
):
    path = tmp_path_factory.mktemp("store") / "pop.zarr"
    path, labels, recorded = make_store(
        path,
        networks=networks,
        checkpoints=checkpoints,
        examples=(train, 3),
        network_block=block,
        checkpoint_block=block,
        example_block=example_block,
        predictions=predictions,
    )
    population = engine.open_population(path)
    assert population.num_networks == networks
    assert population.num_checkpoints == checkpoints
    for split, lab in labels.items():
        expected = (recorded[split] == lab) & (lab != -1)
        np.testing.assert_array_equal(population.correct(split).compute(), expected)
        np.testing.assert_array_equal(population.labels(split), lab)
        stored = population.predictions(split)
        if predictions:
            np.testing.assert_array_equal(stored.compute(), recorded[split])
        else:
            assert stored is None
        packed = population.correct_packed(split).compute()
        np.testing.assert_array_equal(packed, np.packbits(expected, axis=2, bitorder="little"))
    table = population.networks
    assert table["complete"].all()
    np.testing.assert_allclose(
        table["final_accuracy_train"],
        (recorded["train"][:, -1] == labels["train"]).mean(axis=1),
        rtol=1e-6,
    )
    assert table["final_accuracy_probe"].isna().all()
    assert list(population.checkpoints["step"]) == list(np.arange(checkpoints) * 10)


def test_empty_split_round_trips(tmp_path):
    writer = engine.create_population(
        tmp_path / "p.zarr",
        dataset_name="toy",
        splits={
            "train": engine.SplitSpec(labels=np.array([0, 1, 1])),
            "empty": engine.SplitSpec(labels=np.zeros(0, int)),
        },
        groups=[engine.GroupSpec("a", "mlp", 2)],
        checkpoint_epochs=[0, 1],
    )
    for t in range(2):
        writer.record("train", t, (0, 2), predictions=np.ones((2, 3), int))
        writer.record("empty", t, (0, 2), predictions=np.zeros((2, 0), int))
        writer.mark_checkpoint(t, (0, 2))
    population = engine.open_population(tmp_path / "p.zarr")
    assert population.correct("empty").compute().shape == (2, 2, 0)
    assert population.correct("train").compute()[:, 1].tolist() == [[False, True, True]] * 2


def test_examples_without_labels_are_never_correct(tmp_path):
    labels = np.array([0, -1, 2, -1])
    writer = engine.create_population(
        tmp_path / "p.zarr",
        dataset_name="toy",
        splits={"mixed": engine.SplitSpec(labels=labels, predictions=False)},
        groups=[engine.GroupSpec("a", "mlp", 2)],
        checkpoint_epochs=[0],
    )
    writer.record("mixed", 0, (0, 2), correct=np.ones((2, 4), bool))
    writer.mark_checkpoint(0, (0, 2))
    population = engine.open_population(tmp_path / "p.zarr")
    assert population.correct("mixed").compute()[:, 0].tolist() == [[True, False, True, False]] * 2
    assert population.networks["final_accuracy_mixed"].tolist() == [1.0, 1.0]


def test_incomplete_networks_are_visible_as_such(tmp_path):
    writer = engine.create_population(
        tmp_path / "p.zarr",
        dataset_name="toy",
        splits={"train": engine.SplitSpec(labels=np.arange(4))},
        groups=[engine.GroupSpec("a", "mlp", 4)],
        checkpoint_epochs=[0, 1],
        network_block=2,
    )
    for t in range(2):
        writer.record("train", t, (0, 2), predictions=np.tile(np.arange(4), (2, 1)))
        writer.mark_checkpoint(t, (0, 2))
    writer.record("train", 0, (2, 4), predictions=np.zeros((2, 4), int))
    writer.mark_checkpoint(0, (2, 4))
    population = engine.open_population(tmp_path / "p.zarr")
    assert population.checkpoints_completed().tolist() == [2, 2, 1, 1]
    assert population.complete_networks().tolist() == [0, 1]


def _write_block(path: str, start: int, stop: int, seed: int) -> None:
    writer = engine.open_writer(path, networks=(start, stop))
    labels = writer.labels("train")
    rng = np.random.default_rng(seed)
    for t in range(writer.num_checkpoints):
        for split in writer.splits:
            size = writer.labels(split).size
            writer.record(
                split, t, (start, stop), predictions=rng.integers(0, 3, (stop - start, size))
            )
        writer.mark_checkpoint(t, (start, stop))
    assert labels.size


def test_concurrent_writers_fill_disjoint_blocks(tmp_path):
    path = tmp_path / "p.zarr"
    make_store(path, networks=12, checkpoints=4, examples=(101, 9), network_block=4)
    # Reset the verdicts through fresh writers in three processes at once.
    ranges = [(0, 4, 1), (4, 8, 2), (8, 12, 3)]
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_write_block, args=(str(path), a, b, s)) for a, b, s in ranges
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    population = engine.open_population(path)
    predictions = population.predictions("train").compute()
    for start, stop, seed in ranges:
        rng = np.random.default_rng(seed)
        for t in range(4):
            for split in ("train", "test", "probe"):
                size = population.num_examples(split)
                expected = rng.integers(0, 3, (stop - start, size))
                if split == "train":
                    np.testing.assert_array_equal(predictions[start:stop, t], expected)
    assert population.complete_networks().size == 12


def test_writer_rejects_ranges_it_cannot_own(tmp_path):
    path, _, _ = make_store(tmp_path / "p.zarr", networks=6, network_block=4)
    with pytest.raises(WriterError, match="outside"):
        engine.open_writer(path, networks=(4, 9))
    with pytest.raises(WriterError, match="block"):
        engine.open_writer(path, networks=(0, 3))
    writer = engine.open_writer(path, networks=(4, 6))
    with pytest.raises(WriterError, match="outside this writer's range"):
        writer.record("train", 0, (0, 2), predictions=np.zeros((2, 13), int))


def test_writer_rejects_bad_shapes_and_leaves_store_unchanged(tmp_path):
    path, _, _ = make_store(tmp_path / "p.zarr", networks=4)
    before = tree_digest(path)
    writer = engine.open_writer(path)
    with pytest.raises(WriterError, match=r"expected \(networks, examples\) = \(4, 13\)"):
        writer.record("train", 0, (0, 4), predictions=np.zeros((4, 12), int))
    with pytest.raises(WriterError, match="checkpoint 7 is outside"):
        writer.record("train", 7, (0, 4), predictions=np.zeros((4, 13), int))
    with pytest.raises(WriterError, match="unknown split"):
        writer.record("valid", 0, (0, 4), predictions=np.zeros((4, 13), int))
    with pytest.raises(WriterError, match="record predictions, not correct alone"):
        writer.record("train", 0, (0, 4), correct=np.zeros((4, 13), bool))
    with pytest.raises(WriterError, match="loss has shape"):
        writer.record_loss(0, (0, 4), np.zeros(3))
    assert tree_digest(path) == before


def test_grow_networks_and_checkpoints(tmp_path):
    path, labels, recorded = make_store(
        tmp_path / "p.zarr", networks=3, checkpoints=2, network_block=2
    )
    start, stop = engine.add_networks(path, [engine.GroupSpec("c", "vgg", 3)], init_seeds=[7, 8, 9])
    assert (start, stop) == (3, 6)
    population = engine.open_population(path)
    assert population.num_networks == 6
    assert population.complete_networks().tolist() == [0, 1, 2]
    assert population.networks["group"].tolist() == ["a", "a", "b", "c", "c", "c"]
    # The new range shares block 2:4 with network 2, which is complete, so it may be written.
    writer = engine.open_writer(path, networks=(3, 6))
    for t in range(2):
        for split, lab in labels.items():
            writer.record(split, t, (3, 6), predictions=np.zeros((3, lab.size), int))
        writer.mark_checkpoint(t, (3, 6))
    population = engine.open_population(path)
    correct = population.correct("train").compute()
    np.testing.assert_array_equal(correct[:3], recorded["train"] == labels["train"])
    np.testing.assert_array_equal(correct[3:], np.zeros((3, 2, 13), bool) | (labels["train"] == 0))

    old, new = engine.add_checkpoints(path, [2.0, 3.0], [20, 30])
    assert (old, new) == (2, 4)
    population = engine.open_population(path)
    assert population.num_checkpoints == 4
    assert population.correct("test").shape == (6, 4, 7)
    assert population.complete_networks().size == 0
    np.testing.assert_array_equal(
        population.correct("train")[:3, :2].compute(), recorded["train"] == labels["train"]
    )


def test_add_networks_refuses_conflicting_group(tmp_path):
    path, _, _ = make_store(tmp_path / "p.zarr")
    before = tree_digest(path)
    with pytest.raises(WriterError, match="exists with another architecture"):
        engine.add_networks(path, [engine.GroupSpec("a", "resnet", 2)])
    assert tree_digest(path) == before


def test_merge_concatenates_networks_and_unifies_groups(tmp_path):
    a, labels, rec_a = make_store(tmp_path / "a.zarr", networks=5, seed=1)
    b, _, rec_b = make_store(tmp_path / "b.zarr", networks=3, seed=2, network_block=3)
    merged = engine.merge_populations([a, b], tmp_path / "m.zarr")
    assert merged.num_networks == 8
    assert merged.networks["group"].tolist() == ["a"] * 3 + ["b"] * 2 + ["a"] * 2 + ["b"]
    assert [g["name"] for g in merged.attrs["groups"]] == ["a", "b"]
    for split, lab in labels.items():
        both = np.concatenate([rec_a[split], rec_b[split]])
        np.testing.assert_array_equal(merged.predictions(split).compute(), both)
        np.testing.assert_array_equal(merged.correct(split).compute(), (both == lab) & (lab != -1))
    assert merged.dataset_fingerprint == engine.open_population(a).dataset_fingerprint
    assert merged.networks["init_seed"].tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    assert not list(tmp_path.glob(".m.zarr*"))


def test_merge_refuses_different_data_sets_and_checkpoints(tmp_path):
    a, _, _ = make_store(tmp_path / "a.zarr", seed=1)
    b, _, _ = make_store(tmp_path / "b.zarr", seed=2, examples=(14, 7))
    c, _, _ = make_store(tmp_path / "c.zarr", seed=1, checkpoints=4)
    with pytest.raises(StoreError, match="different data sets"):
        engine.merge_populations([a, b], tmp_path / "m.zarr")
    with pytest.raises(StoreError, match="checkpoints"):
        engine.merge_populations([a, c], tmp_path / "m.zarr")
    assert not (tmp_path / "m.zarr").exists()


def test_xarray_sees_named_dimensions(tmp_path):
    xarray = pytest.importorskip("xarray")
    path, labels, recorded = make_store(tmp_path / "p.zarr")
    train = xarray.open_zarr(path, group="splits/train", consolidated=False)
    assert train["correct_packed"].dims == ("networks", "checkpoints", "example_bytes")
    assert train["predictions"].dims == ("networks", "checkpoints", "examples")
    assert train["labels"].dims == ("examples",)
    unpacked = np.unpackbits(train["correct_packed"].values, axis=2, count=13, bitorder="little")
    np.testing.assert_array_equal(unpacked.astype(bool), recorded["train"] == labels["train"])
    np.testing.assert_array_equal(train["predictions"].values, recorded["train"])
    root = xarray.open_zarr(path, consolidated=False)
    assert root["train_loss"].dims == ("networks", "checkpoints")
    assert root["checkpoint_epoch"].values.tolist() == [0.0, 1.0, 2.0]


def test_xarray_opens_the_consolidated_tree_with_coordinates_and_attributes(tmp_path):
    """Consolidated metadata: open_datatree reads the whole store without a warning (pytest
    makes warnings errors); epochs, steps, groups and seeds are coordinates; every array says
    what it holds; consolidation follows a grown store."""
    xarray = pytest.importorskip("xarray")
    path, _, _ = make_store(tmp_path / "p.zarr")
    tree = xarray.open_datatree(path, engine="zarr")
    root = tree.to_dataset()
    for name in ("checkpoint_epoch", "checkpoint_step", "network_group", "network_init_seed"):
        assert name in root.coords, name
    assert root["train_loss"].coords["checkpoint_epoch"].values.tolist() == [0.0, 1.0, 2.0]
    assert root["network_group"].attrs["flag_meanings"] == "a b"
    train = tree["splits/train"].to_dataset()
    for dataset in (root, train):
        for name, variable in {**dataset.data_vars, **dataset.coords}.items():
            if name in ("networks", "checkpoints", "examples") and not variable.attrs:
                continue  # dimension coordinates xarray rebuilt from their index
            assert {"long_name", "units", "description"} <= set(variable.attrs), name
    start, stop = engine.add_networks(path, [engine.GroupSpec("cnn", "cnn", 2)])
    grown = xarray.open_datatree(path, engine="zarr").to_dataset()
    assert grown.sizes["networks"] == stop
    assert grown["network_group"].attrs["flag_meanings"] == "a b cnn"


def test_missing_and_foreign_paths(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        engine.open_population(tmp_path / "nothing.zarr")
    (tmp_path / "folder").mkdir()
    with pytest.raises(StoreError, match="not a population store"):
        engine.open_population(tmp_path / "folder")
    import zarr

    zarr.open_group(tmp_path / "plain.zarr", mode="w").attrs["title"] = "someone else's"
    with pytest.raises(StoreError, match="not a population store"):
        engine.open_population(tmp_path / "plain.zarr")


def test_open_by_url(tmp_path):
    path, labels, recorded = make_store(tmp_path / "p.zarr")
    population = engine.open_population(path.resolve().as_uri())
    np.testing.assert_array_equal(
        population.correct("test").compute(), recorded["test"] == labels["test"]
    )
    with pytest.raises(StoreError, match="no Zarr group there"):
        engine.open_population((tmp_path / "none.zarr").resolve().as_uri())


def test_newer_format_version_is_refused(tmp_path):
    path, _, _ = make_store(tmp_path / "p.zarr")
    meta_file = path / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["attributes"][ATTRS_KEY]["format_version"] = 99
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="format version 99"):
        engine.open_population(path)


def corrupt_one_chunk(path: Path, array: str = "splits/train/correct_packed") -> Path:
    chunk = sorted((path / array / "c").rglob("*"))[-1]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    return chunk


def test_corrupt_chunk_is_detected_never_silently_read(tmp_path):
    path, _, _ = make_store(tmp_path / "p.zarr", networks=4, network_block=2)
    corrupt_one_chunk(path)
    population = engine.open_population(path)
    with pytest.raises(StoreError, match="corrupt or unreadable chunk in .*train/correct_packed"):
        population.correct("train").compute()
    # Other arrays stay readable.
    assert population.correct("test").compute().shape == (4, 3, 7)


def test_info_summary_and_verification(tmp_path):
    path, _, _ = make_store(tmp_path / "p.zarr", networks=5)
    population = engine.open_population(path)
    summary = summarize_population(population)
    assert (summary.num_networks, summary.complete_networks, summary.num_checkpoints) == (5, 5, 3)
    assert summary.groups == (("a", "mlp"), ("b", "cnn"))
    assert [s.name for s in summary.splits] == ["train", "test", "probe"]
    train, _, probe = summary.splits
    assert train.correct_bytes == population.stored_bytes("splits/train/correct_packed")
    assert train.bits_per_entry == pytest.approx(8 * train.correct_bytes / (5 * 3 * 13))
    assert (train.has_labels, probe.has_labels, probe.predictions) == (True, False, True)
    assert summary.stored_bytes == population.stored_bytes()
    arrays = verify_population(population).arrays
    assert arrays == tuple(population.array_names())
    for split in ("train", "test", "probe"):
        for name in ("correct_packed", "predictions", "labels", "final_accuracy"):
            assert f"splits/{split}/{name}" in arrays
    assert {"train_loss", "checkpoints_completed", "networks"} <= set(arrays)
    corrupt_one_chunk(path)
    with pytest.raises(StoreError, match="corrupt or unreadable chunk in .*train/correct_packed"):
        verify_population(engine.open_population(path))


def test_verify_accepts_an_empty_split(tmp_path):
    writer = engine.create_population(
        tmp_path / "p.zarr",
        dataset_name="toy",
        splits={"empty": engine.SplitSpec(labels=np.zeros(0, int))},
        groups=[engine.GroupSpec("a", "mlp", 2)],
        checkpoint_epochs=[0],
    )
    writer.record("empty", 0, (0, 2), predictions=np.zeros((2, 0), int))
    writer.mark_checkpoint(0, (0, 2))
    population = engine.open_population(tmp_path / "p.zarr")
    assert summarize_population(population).splits[0].bits_per_entry is None
    arrays = verify_population(population).arrays
    assert "splits/empty/correct_packed" in arrays and "splits/empty/predictions" in arrays


def test_every_name_engine_store_exported_stays_importable():
    import engine.store

    for name in (
        "ATTRS_KEY",
        "BIT_ORDER",
        "DEFAULT_CHECKPOINT_BLOCK",
        "DEFAULT_EXAMPLE_BLOCK",
        "DEFAULT_NETWORK_BLOCK",
        "FORMAT_NAME",
        "FORMAT_VERSION",
        "GroupSpec",
        "NETWORK_METADATA_BLOCK",
        "NO_LABEL",
        "NO_PREDICTION",
        "Population",
        "PopulationWriter",
        "SplitSpec",
        "StoreHandle",
        "VERDICT_ZSTD_LEVEL",
        "add_checkpoints",
        "add_networks",
        "create_population",
        "dataset_fingerprint",
        "merge_populations",
        "open_population",
        "open_writer",
        "read_stored_order",
        "require_same_dataset",
        "split_fingerprint",
    ):
        assert name in engine.store.__all__ and hasattr(engine.store, name), name


# ----------------------------------------------------------------------------------------------
# Stored-order decoding: it reads chunks without zarr, so these fail loudly if zarr (its codec
# metadata, chunk keys or store API) changes under it.


def _chunk_regions(array):
    """Every stored chunk of a (networks, checkpoints, examples) array as a region, plus a region
    smaller than a chunk at a chunk's corner."""
    (n, t, x), (cn, ct, cx) = array.shape, array.chunks
    regions = [
        ((a, min(a + cn, n)), (b, min(b + ct, t)), (c, min(c + cx, x)))
        for a in range(0, n, cn)
        for b in range(0, t, ct)
        for c in range(0, x, cx)
    ]
    return regions + [((cn, cn + 1), (0, 1), (0, 1))]


def test_stored_order_codecs_are_the_writers(tmp_path):
    from zarr.codecs import BytesCodec

    path, _, _ = make_store(tmp_path / "p.zarr", example_block=8)
    handle = StoreHandle(str(path))
    definitions = {
        "correct_packed": store_format.verdict_codecs(),
        "predictions": store_format.prediction_codecs(),
        "probability": store_format.soft_codecs(),
        "margin": store_format.soft_codecs(),
    }
    assert store_format.stored_order_definitions() == tuple(definitions.values())
    # The soft arrays are checked the same way in tests/test_store_soft.py.
    for name, codecs in list(definitions.items())[:2]:
        array = handle.open_array(f"splits/train/{name}")
        # The chain zarr reports for a freshly written array is exactly the writer's.
        assert array.filters == codecs.filters
        assert isinstance(array.serializer, BytesCodec)
        assert array.compressors == codecs.compressors
        assert array.shards is None
        assert store_format.stored_order_decoders(array) is not None, name
    assert store_format.stored_order_decoders(handle.open_array("splits/train/labels")) is None


def _refuse_zarr_reads(self, key):
    raise AssertionError("read through zarr")


def test_stored_order_direct_path_is_taken_and_equals_zarr(tmp_path, monkeypatch):
    import zarr

    path, _, _ = make_store(
        tmp_path / "p.zarr",
        networks=5,
        checkpoints=3,
        network_block=2,
        checkpoint_block=2,
        example_block=8,
    )
    # Networks 5 and 6 are never recorded: chunk row 3 does not exist on disk (read as fill).
    engine.add_networks(path, [engine.GroupSpec("c", "vgg", 2)])
    handle = StoreHandle(str(path))
    for name in ("correct_packed", "predictions"):
        array = handle.open_array(f"splits/train/{name}")
        regions = _chunk_regions(array)
        expected = [read_stored_order(array, *region, direct=False) for region in regions]
        with monkeypatch.context() as patch:
            patch.setattr(zarr.Array, "__getitem__", _refuse_zarr_reads)
            with pytest.raises(StoreError, match="read through zarr"):
                read_stored_order(array, *regions[0], direct=False)
            direct = [read_stored_order(array, *region) for region in regions]
        for region, want, got in zip(regions, expected, direct, strict=True):
            assert got.dtype == want.dtype and got.shape == want.shape, (name, region)
            np.testing.assert_array_equal(got, want, err_msg=f"{name} at {region}")
        assert any((want == array.fill_value).all() for want in expected)


def test_stored_order_crc_mismatch_is_a_store_error(tmp_path):
    path, _, _ = make_store(tmp_path / "p.zarr", networks=4, network_block=2)
    array_path = path / "splits" / "train" / "correct_packed"
    chunk = corrupt_one_chunk(path)
    coords = [int(part) for part in chunk.relative_to(array_path / "c").parts]
    array = StoreHandle(str(path)).open_array("splits/train/correct_packed")
    region = [
        (i * c, min((i + 1) * c, size))
        for i, c, size in zip(coords, array.chunks, array.shape, strict=True)
    ]
    with pytest.raises(StoreError, match="corrupt or unreadable chunk .*crc32c checksum mismatch"):
        read_stored_order(array, *region)
    with pytest.raises(StoreError, match="corrupt or unreadable chunk"):
        read_stored_order(array, *region, direct=False)


def test_import_kernels_is_ours():
    import kernels

    assert kernels.PROJECT == "created-equal"
    ours = Path(__file__).resolve().parents[1] / "kernels"
    assert Path(kernels.__file__).resolve().parent == ours

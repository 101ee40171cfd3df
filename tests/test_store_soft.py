"""Store format 2: soft verdicts recorded from logits or probabilities, chunks that must exist,
and stores of format 1 read and analysed as before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.errors import StoreError, WriterError
from engine.store import format as store_format
from engine.store import verify_population

DATA = Path(__file__).parent / "data"
CLASSES = 5
#: The stated quantisation errors (half a code step) and the margin's clipping range.
PROBABILITY_ERROR = 1 / (2 * store_format.PROBABILITY_SCALE)
MARGIN_ERROR = 1 / (2 * store_format.MARGIN_SCALE)
MARGIN_RANGE = store_format.MARGIN_LIMIT / store_format.MARGIN_SCALE


def _softmax(logits):
    shifted = logits - logits.max(axis=2, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=2, keepdims=True)


def make_soft_store(path, *, networks=6, checkpoints=3, examples=(21, 9), seed=0, soft=True):
    """A store whose train and probe splits record logits; returns (path, labels, logits)."""
    rng = np.random.default_rng(seed)
    labels = {
        "train": rng.integers(0, CLASSES, examples[0]),
        "probe": np.full(examples[1], -1),
    }
    writer = engine.create_population(
        path,
        dataset_name="soft",
        splits={
            name: engine.SplitSpec(labels=value, fingerprint=name, soft=soft)
            for name, value in labels.items()
        },
        groups=[engine.GroupSpec("a", "mlp", networks)],
        checkpoint_epochs=np.arange(checkpoints),
        class_names=[str(c) for c in range(CLASSES)],
        network_block=4,
        checkpoint_block=2,
        example_block=8,
    )
    logits = {
        name: (3 * rng.standard_normal((networks, checkpoints, value.size, CLASSES))).astype(
            np.float32
        )
        for name, value in labels.items()
    }
    for t in range(checkpoints):
        for name in labels:
            writer.record(name, t, (0, networks), logits=logits[name][:, t])
        writer.mark_checkpoint(t, (0, networks))
    return Path(path), labels, logits


@pytest.fixture(scope="module")
def soft_store(tmp_path_factory):
    return make_soft_store(tmp_path_factory.mktemp("soft") / "p.zarr")


def test_logits_give_predictions_correctness_probability_and_margin(soft_store):
    path, labels, logits = soft_store
    population = engine.open_population(path)
    assert population.format_version == store_format.FORMAT_VERSION == 2
    assert population.soft_arrays("train") == ["probability", "margin"]
    values = logits["train"]
    predictions = values.argmax(axis=3)
    np.testing.assert_array_equal(population.predictions("train").compute(), predictions)
    np.testing.assert_array_equal(
        population.correct("train").compute(), predictions == labels["train"]
    )
    index = labels["train"][None, None, :, None]
    expected_probability = np.take_along_axis(
        _softmax(values.reshape(-1, *values.shape[2:])).reshape(values.shape), index, axis=3
    )[..., 0]
    probability = population.probability("train").compute()
    assert probability.dtype == np.float32
    # The stated quantisation error: half a code step.
    assert np.abs(probability - expected_probability).max() <= PROBABILITY_ERROR + 1e-6
    true_logit = np.take_along_axis(values, index, axis=3)[..., 0]
    others = values.copy()
    np.put_along_axis(others, index, -np.inf, axis=3)
    expected_margin = true_logit - others.max(axis=3)
    margin = population.margin("train").compute()
    inside = np.abs(expected_margin) <= MARGIN_RANGE
    assert np.abs(margin - expected_margin)[inside].max() <= MARGIN_ERROR + 1e-6
    assert (np.abs(margin[~inside]) == MARGIN_RANGE).all()
    assert (np.sign(margin[~inside]) == np.sign(expected_margin[~inside])).all()


def test_xarray_decodes_the_soft_verdicts(soft_store):
    """The codes carry CF attributes: xarray shows probabilities and margins, NaN where none."""
    import xarray as xr

    path, _, _ = soft_store
    population = engine.open_population(path)
    split = xr.open_zarr(path, group="splits/train", consolidated=False)
    for name in ("probability", "margin"):
        assert split[name].dims == ("networks", "checkpoints", "examples")
        np.testing.assert_allclose(
            split[name].values, getattr(population, name)("train").compute(), rtol=1e-6
        )
    probe = xr.open_zarr(path, group="splits/probe", consolidated=False)
    assert np.isnan(probe["probability"].values).all()


def test_examples_without_a_label_have_no_soft_verdict(soft_store):
    path, _, logits = soft_store
    population = engine.open_population(path)
    assert np.isnan(population.probability("probe").compute()).all()
    assert np.isnan(population.margin("probe").compute()).all()
    np.testing.assert_array_equal(
        population.predictions("probe").compute(), logits["probe"].argmax(axis=3)
    )
    assert not population.correct("probe").compute().any()


def test_probabilities_record_the_same_verdicts_as_their_logits(tmp_path, soft_store):
    path, labels, logits = soft_store
    other = tmp_path / "q.zarr"
    writer = engine.create_population(
        other,
        dataset_name="soft",
        splits={"train": engine.SplitSpec(labels=labels["train"], soft=True)},
        groups=[engine.GroupSpec("a", "mlp", 6)],
        checkpoint_epochs=[0],
        class_names=[str(c) for c in range(CLASSES)],
    )
    values = logits["train"][:, 0]
    writer.record("train", 0, (0, 6), probabilities=_softmax(values))
    writer.mark_checkpoint(0, (0, 6))
    copy = engine.open_population(other)
    reference = engine.open_population(path)
    for read in ("predictions", "probability", "margin"):
        got = getattr(copy, read)("train")[:, 0].compute()
        expected = getattr(reference, read)("train")[:, 0].compute()
        # Probabilities carry the margin in log space: the same up to float32 rounding, which
        # may land across a code step.
        np.testing.assert_allclose(got, expected, atol=MARGIN_ERROR * 2 if read == "margin" else 0)


@pytest.mark.parametrize("as_codes", [False, True])
def test_derived_soft_verdicts_record_as_their_logits_do(tmp_path, soft_store, as_codes):
    """A trainer derives probability and margin on its device and sends them (or their codes)
    with the predictions: the store holds what recording the logits holds."""
    path, labels, logits = soft_store
    reference = engine.open_population(path)
    writer = engine.create_population(
        tmp_path / "derived.zarr",
        dataset_name="soft",
        splits={"train": engine.SplitSpec(labels=labels["train"], soft=True)},
        groups=[engine.GroupSpec("a", "mlp", 6)],
        checkpoint_epochs=[0],
        class_names=[str(c) for c in range(CLASSES)],
    )
    probability = reference.probability("train")[:, 0].compute()
    margin = reference.margin("train")[:, 0].compute()
    if as_codes:
        probability = store_format.encode_probability(probability)
        margin = store_format.encode_margin(margin)
    writer.record(
        "train",
        0,
        (0, 6),
        predictions=logits["train"][:, 0].argmax(axis=2),
        probability=probability,
        margin=margin,
    )
    writer.mark_checkpoint(0, (0, 6))
    derived = engine.open_population(tmp_path / "derived.zarr")
    for name in ("probability", "margin"):
        np.testing.assert_array_equal(
            derived.lazy_array(f"splits/train/{name}")[:, 0].compute(),
            reference.lazy_array(f"splits/train/{name}")[:, 0].compute(),
        )
    with pytest.raises(WriterError, match="together"):
        writer.record("train", 0, (0, 6), predictions=np.zeros((6, 21), int), margin=margin)


def _writer(tmp_path, soft=True):
    return engine.create_population(
        tmp_path / "w.zarr",
        dataset_name="w",
        splits={"train": engine.SplitSpec(labels=np.array([0, 1, 2, -1]), soft=soft)},
        groups=[engine.GroupSpec("a", "mlp", 2)],
        checkpoint_epochs=[0, 1],
        class_names=["a", "b", "c"],
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"logits": np.full((2, 4, 3), np.nan, np.float32)}, "NaN or infinite"),
        ({"logits": np.full((2, 4, 3), np.inf, np.float32)}, "NaN or infinite"),
        ({"logits": np.zeros((2, 4, 4), np.float32)}, "4 classes; the store has 3"),
        ({"logits": np.zeros((2, 3, 3), np.float32)}, "shape"),
        ({"logits": np.zeros((2, 4, 3), np.int64)}, "floating point"),
        ({"probabilities": np.full((2, 4, 3), 0.5, np.float32)}, "sum to 1"),
        ({"probabilities": np.full((2, 4, 3), -0.1, np.float32)}, r"\[0, 1\]"),
        (
            {
                "logits": np.zeros((2, 4, 3), np.float32),
                "predictions": np.zeros((2, 4), np.int64),
            },
            "alone",
        ),
        ({"predictions": np.zeros((2, 4), np.int64)}, "stores soft verdicts"),
    ],
)
def test_bad_logits_are_one_line_errors_and_write_nothing(tmp_path, arguments, message):
    writer = _writer(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "w.zarr").rglob("*"))
    with pytest.raises(WriterError, match=message) as error:
        writer.record("train", 0, (0, 2), **arguments)
    assert "\n" not in str(error.value)
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "w.zarr").rglob("*")) == before


def test_a_split_without_soft_verdicts_takes_logits_for_its_verdicts(tmp_path):
    writer = _writer(tmp_path, soft=False)
    logits = np.array([[[3, 0, 0], [0, 0, 3], [0, 0, 3], [1, 0, 0]]] * 2, np.float32)
    writer.record("train", 0, (0, 2), logits=logits)
    writer.mark_checkpoint(0, (0, 2))
    population = engine.open_population(tmp_path / "w.zarr")
    assert population.soft_arrays("train") == []
    assert population.probability("train") is None and population.margin("train") is None
    np.testing.assert_array_equal(
        population.correct("train")[:, 0].compute(), [[True, False, True, False]] * 2
    )


@settings(deadline=None, max_examples=200)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=50))
def test_probability_codes_are_within_half_a_step(values):
    probability = np.array(values)
    decoded = store_format.decode_probability(store_format.encode_probability(probability))
    assert np.abs(decoded - probability).max() <= PROBABILITY_ERROR + 1e-7


@settings(deadline=None, max_examples=200)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50))
def test_margin_codes_are_within_half_a_step_inside_the_range_and_clip_outside(values):
    margin = np.array(values)
    decoded = store_format.decode_margin(store_format.encode_margin(margin))
    inside = np.abs(margin) <= MARGIN_RANGE
    assert (np.abs(decoded - margin)[inside] <= MARGIN_ERROR + 1e-6).all()
    assert (decoded[~inside] == np.sign(margin[~inside]) * MARGIN_RANGE).all()


# ----------------------------------------------------------------------------------------------
# A deleted chunk is damage, not data


def _delete_one_chunk(path: Path, name: str) -> Path:
    chunk = sorted((path / name / "c").rglob("*"))
    chunk = [c for c in chunk if c.is_file()][0]
    chunk.unlink()
    return chunk


@pytest.mark.parametrize("name", ["correct_packed", "predictions", "probability", "margin"])
def test_a_deleted_chunk_is_named_by_every_reader(tmp_path, soft_store, name):
    path = tmp_path / "damaged.zarr"
    shutil.copytree(soft_store[0], path)
    _delete_one_chunk(path, f"splits/train/{name}")
    population = engine.open_population(path)
    read = {
        "correct_packed": population.correct_packed,
        "predictions": population.predictions,
        "probability": population.probability,
        "margin": population.margin,
    }[name]
    with pytest.raises(StoreError, match="missing chunk"):
        read("train").compute()
    with pytest.raises(StoreError, match="missing chunk"):
        verify_population(population)


def test_analyze_refuses_a_deleted_verdict_chunk(tmp_path, soft_store):
    from engine.report import analyze_store

    path = tmp_path / "damaged.zarr"
    shutil.copytree(soft_store[0], path)
    _delete_one_chunk(path, "splits/train/correct_packed")
    with pytest.raises(StoreError, match="missing chunk"):
        analyze_store(str(path), tmp_path / "out", pairwise_checkpoints="none", progress=False)


def test_chunks_equal_to_their_fill_are_written_and_read_back(tmp_path):
    """An all-wrong block writes an all-zero chunk: it must exist, or it would read as lost."""
    writer = _writer(tmp_path)
    logits = np.zeros((2, 4, 3), np.float32)
    logits[:, :, 2] = 5.0  # every network predicts class 2: wrong on examples 0 and 1
    writer.record("train", 0, (0, 2), logits=logits)
    writer.mark_checkpoint(0, (0, 2))
    population = engine.open_population(tmp_path / "w.zarr")
    verify_population(population)
    np.testing.assert_array_equal(
        population.correct("train")[:, 0].compute(), [[False, False, True, False]] * 2
    )


# ----------------------------------------------------------------------------------------------
# Format 1


def test_a_format_1_store_opens_and_analyses_exactly_as_before(tmp_path):
    """tests/data/v1_population was written by the engine before format 2 (commit 894444b),
    with its analysis summary and examples table beside it."""
    from engine.report import analyze_store

    store = tmp_path / "v1.zarr"
    shutil.copytree(DATA / "v1_population", store)
    population = engine.open_population(store)
    assert population.format_version == 1
    assert population.soft_arrays("train") == []
    assert population.probability("train") is None
    verify_population(population)
    # Accessibility over every checkpoint, as it was computed then (the default now leaves an
    # initialisation checkpoint out).
    analyze_store(
        str(store),
        tmp_path / "out",
        pairwise_checkpoints="none",
        progress=False,
        accessibility_from="initialisation",
    )
    got = json.loads((tmp_path / "out" / "summary.json").read_text())
    expected = json.loads((DATA / "v1_population.summary.json").read_text())
    for key in ("store", "execution"):
        got.pop(key), expected.pop(key)
    # The additions since: each split says its soft measures are skipped, and why.
    for split in got["splits"].values():
        assert split.pop("soft") == {"skipped": "the store records no soft verdicts"}
        for group in split.get("groups", {}).values():
            assert group.pop("soft") == {"skipped": "the store records no soft verdicts"}
        # Since issue 13: which checkpoints accessibility averages, and what a split without
        # labels has.
        for section in [split, *split.get("groups", {}).values()]:
            if split["has_labels"]:
                assert section.pop("accessibility_from")["first_checkpoint"] == 0
            else:
                assert "consensus" in section.pop("without_labels")["defined"]
    # And the histograms over k = 0..N networks moved to histograms.parquet (issue 12): the
    # same numbers, there.
    assert got.pop("histograms") == "histograms.parquet"
    table = pd.read_parquet(tmp_path / "out" / "histograms.parquet")
    moved = 0
    for name, split in expected["splits"].items():
        sections = [("all", split)] + list(split.get("groups", {}).items())
        for group, section in sections:
            rows = table[(table.split == name) & (table.group == group)]
            tpa = rows[rows.measure == "tpa"].sort_values(["checkpoint", "k"])
            for key, column in (
                ("tpa_histogram", "examples"),
                ("null_histogram", "null"),
                ("binomial_histogram", "binomial"),
            ):
                if section.get(key) is not None:
                    values = np.asarray(section.pop(key), float).ravel()
                    np.testing.assert_allclose(tpa[column].to_numpy(), values, rtol=1e-12)
                    moved += 1
                else:
                    section.pop(key, None)
            for key in ("consensus", "consensus_last"):
                if isinstance(section.get(key), dict):
                    consensus = rows[rows.measure == "consensus"].sort_values(["checkpoint", "k"])
                    for field, column in (("histogram", "examples"), ("null_histogram", "null")):
                        values = np.asarray(section[key].pop(field), float).ravel()
                        np.testing.assert_allclose(consensus[column], values, rtol=1e-12)
                        moved += 1
    assert moved >= 8
    assert got == expected
    examples = pd.read_parquet(tmp_path / "out" / "examples.parquet")
    # The first-learned epochs are columns added since (issue 13); here epoch == checkpoint.
    for name in ("mean", "median"):
        pd.testing.assert_series_equal(
            examples.pop(f"first_learned_epoch_{name}"),
            examples[f"first_learned_{name}"],
            check_names=False,
        )
    pd.testing.assert_frame_equal(
        examples, pd.read_parquet(DATA / "v1_population.examples.parquet")
    )


# ----------------------------------------------------------------------------------------------
# Example metadata


def test_example_metadata_round_trips_and_survives_a_merge(tmp_path):
    condition = np.array(["clean", "blur", None, "blur"], dtype=object)
    severity = np.array([0, 3, 1, 5])
    splits = {
        "test": engine.SplitSpec(
            labels=np.array([0, 1, 1, 0]),
            fingerprint="t",
            metadata={"condition": condition, "severity": severity},
        )
    }
    for name in ("a", "b"):
        writer = engine.create_population(
            tmp_path / f"{name}.zarr",
            dataset_name="m",
            splits=splits,
            groups=[engine.GroupSpec(name, "mlp", 2)],
            checkpoint_epochs=[0],
        )
        writer.record("test", 0, (0, 2), predictions=np.zeros((2, 4), int))
        writer.mark_checkpoint(0, (0, 2))
    engine.merge_populations([tmp_path / "a.zarr", tmp_path / "b.zarr"], tmp_path / "ab.zarr")
    for store in ("a.zarr", "ab.zarr"):
        table = engine.open_population(tmp_path / store).example_metadata("test")
        assert list(table.columns) == ["condition", "severity"]
        assert table["condition"].tolist()[:2] == ["clean", "blur"]
        assert pd.isna(table["condition"].tolist()[2])
        assert sorted(table["condition"].cat.categories) == ["blur", "clean"]
        np.testing.assert_array_equal(table["severity"].to_numpy(), severity)
    assert engine.open_population(tmp_path / "a.zarr").attrs["splits"]["test"][
        "example_metadata"
    ] == ["condition", "severity"]


@pytest.mark.parametrize(
    ("metadata", "message"),
    [({"bad/name": np.zeros(4)}, "letters, digits"), ({"x": np.zeros(3)}, r"expected \(4,\)")],
)
def test_bad_example_metadata_is_refused_before_the_store_exists(tmp_path, metadata, message):
    with pytest.raises(WriterError, match=message):
        engine.create_population(
            tmp_path / "m.zarr",
            dataset_name="m",
            splits={"test": engine.SplitSpec(labels=np.zeros(4, int), metadata=metadata)},
            groups=[engine.GroupSpec("a", "mlp", 1)],
            checkpoint_epochs=[0],
        )
    assert not list(tmp_path.iterdir())


def test_a_store_without_metadata_gives_an_empty_table(soft_store):
    table = engine.open_population(soft_store[0]).example_metadata("train")
    assert table.shape == (21, 0)

"""The engine side of soft verdicts: data maps and the area under the margin out of core.

The engine's per-example numbers against a direct NumPy computation on the whole decoded arrays
of small stores, under other task sizes, store chunkings, decodings and schedulers (a real
LocalCluster included); stores and splits without soft verdicts skipped with a note; what
``engine analyze`` writes (columns, the per-network table, figures, the page); ``engine select``
on a store built so that the answer is known; the CLI's errors.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy.stats import spearmanr

import engine
from cli.app import main
from engine import measures
from engine.errors import ConfigError, StoreError
from engine.measures import accessibility_window
from engine.measures import soft as soft_measures
from engine.report import analyze_store, select_examples
from tests.test_store_soft import make_soft_store

CLASSES = 5
#: Planted kinds of the train split, by example.
EASY, MISLABELLED, FLIPPING, NOISE, UNLABELLED = range(5)
STATISTICS = ("confidence", "variability", "correctness", "aum", "loss")
#: Half the probability code's step: below it the loss is the margin's bound (kernels/soft.py).
P_MIN = 1.0 / 64.0


def _planted_kinds(examples: int) -> np.ndarray:
    """12 easy, 7 mislabelled, 9 flipping, 2 unlabelled and the rest noise, interleaved so that
    every chunk holds some of each."""
    kinds = np.full(examples, NOISE)
    order = np.random.default_rng(7).permutation(examples)
    kinds[order[:12]] = EASY
    kinds[order[12:19]] = MISLABELLED
    kinds[order[19:28]] = FLIPPING
    kinds[order[28:30]] = UNLABELLED
    return kinds


def make_planted_store(
    path,
    *,
    networks=5,
    checkpoints=6,
    examples=45,
    network_block=2,
    checkpoint_block=4,
    example_block=16,
    seed=0,
    test_soft=False,
):
    """A store whose train split records logits with planted structure: some examples always
    confidently right (easy), some always confidently given another class (mislabelled: AUM
    negative), some flipping between the two from checkpoint to checkpoint (ambiguous), the
    rest noise; and a test split of noise logits (soft verdicts only with ``test_soft``)."""
    rng = np.random.default_rng(seed)
    kinds = _planted_kinds(examples)
    labels = rng.integers(0, CLASSES, examples)
    labels[kinds == UNLABELLED] = -1
    test_labels = rng.integers(0, CLASSES, 13)
    writer = engine.create_population(
        path,
        dataset_name="planted",
        splits={
            "train": engine.SplitSpec(
                labels=labels,
                example_ids=1000 + 3 * np.arange(examples),
                fingerprint="train",
                soft=True,
            ),
            "test": engine.SplitSpec(labels=test_labels, fingerprint="test", soft=test_soft),
        },
        groups=[engine.GroupSpec("a", "mlp", networks - networks // 2)]
        + ([engine.GroupSpec("b", "cnn", networks // 2)] if networks > 1 else []),
        checkpoint_epochs=np.arange(checkpoints),
        class_names=[str(c) for c in range(CLASSES)],
        network_block=network_block,
        checkpoint_block=checkpoint_block,
        example_block=example_block,
    )
    true = np.where(labels >= 0, labels, 0)
    other = (true + 1 + rng.integers(0, CLASSES - 1, examples)) % CLASSES
    for t in range(checkpoints):
        logits = rng.normal(0.0, 0.6, (networks, examples, CLASSES)).astype(np.float32)
        right = (kinds == EASY) | ((kinds == FLIPPING) & (t % 2 == 0))
        wrong = (kinds == MISLABELLED) | ((kinds == FLIPPING) & (t % 2 == 1))
        logits[:, right, :] += 7.0 * np.eye(CLASSES, dtype=np.float32)[true[right]]
        logits[:, wrong, :] += 7.0 * np.eye(CLASSES, dtype=np.float32)[other[wrong]]
        writer.record("train", t, (0, networks), logits=logits)
        test_logits = rng.normal(0.0, 1.0, (networks, 13, CLASSES)).astype(np.float32)
        if test_soft:
            writer.record("test", t, (0, networks), logits=test_logits)
        else:
            writer.record("test", t, (0, networks), predictions=test_logits.argmax(axis=2))
        writer.mark_checkpoint(t, (0, networks))
    return Path(path), kinds


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    path, kinds = make_planted_store(tmp_path_factory.mktemp("soft") / "planted.zarr")
    return engine.open_population(path), kinds


def _numpy_network_statistics(population, split):
    """Per (statistic, network, example), from the whole decoded arrays: the definitions of
    kernels/soft.py, written the plainest way; NaN where a network recorded nothing."""
    # The data maps leave out the initialisation checkpoint (epoch 0; soft_first_checkpoint).
    first = 1 if population.checkpoints["epoch"].to_numpy()[0] == 0 else 0
    p = population.probability(split)[:, first:].compute().astype(np.float64)  # (n, t, x)
    m = population.margin(split)[:, first:].compute().astype(np.float64)
    c = population.correct(split)[:, first:].compute().astype(np.float64)
    recorded = ~np.isnan(p) & ~np.isnan(m)
    count = recorded.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):

        def mean(values):
            return np.where(recorded, values, 0).sum(axis=1) / count

        confidence = mean(p)
        variability = np.sqrt(mean((p - confidence[:, None, :]) ** 2))
        known = np.nan_to_num(p)
        bound = np.maximum(np.log(64.0), np.logaddexp(0.0, -np.nan_to_num(m)))
        loss = mean(np.where(known >= P_MIN, -np.log(known), bound))
        values = np.stack([confidence, variability, mean(c), mean(m), loss])
    return np.where(count > 0, values, np.nan)  # (k, n, x)


def _numpy_example_measures(population, split, networks):
    """Per example over ``networks``: the mean and the std across networks of each statistic,
    the region shares and the population region."""
    values = _numpy_network_statistics(population, split)[:, networks]  # (k, n, x)
    thresholds = soft_measures.REGION_THRESHOLDS
    confidence, variability = values[0], values[1]
    ambiguous = variability >= thresholds.ambiguous_variability
    easy = ~ambiguous & (confidence >= thresholds.easy_confidence)
    hard = ~ambiguous & ~easy & (confidence < thresholds.hard_confidence)
    other = ~ambiguous & ~easy & ~hard
    recorded = ~np.isnan(confidence)
    result = {}
    # nanmean of an all-NaN column (an unlabelled example) warns; NaN is what is wanted.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k, name in enumerate(STATISTICS):
            result[f"{name}_mean"] = np.nanmean(values[k], axis=0)
            result[f"{name}_std"] = np.nanstd(values[k], axis=0)
        for name, member in (("easy", easy), ("ambiguous", ambiguous), ("hard", hard)):
            result[f"{name}_share"] = (member & recorded).sum(axis=0) / recorded.sum(axis=0)
        result["other_share"] = (other & recorded).sum(axis=0) / recorded.sum(axis=0)
    region = np.full(confidence.shape[1], "other", dtype=object)
    mean_confidence, mean_variability = result["confidence_mean"], result["variability_mean"]
    region[mean_confidence < thresholds.hard_confidence] = "hard"
    region[mean_confidence >= thresholds.easy_confidence] = "easy"
    region[mean_variability >= thresholds.ambiguous_variability] = "ambiguous"
    region[np.isnan(mean_confidence)] = None
    result["population_region"] = region
    return result


def _engine_example_measures(population, split, selection, groups, scheduler="sync", **options):
    counts = dask.compute(
        measures.soft_statistics(population, split, selection, **options), scheduler=scheduler
    )[0]
    examples = population.num_examples(split)
    _, per_example = soft_measures.soft_measures(
        counts, groups, np.full(examples, np.nan), np.full(examples, np.nan)
    )
    names = np.array([*soft_measures.POPULATION_REGIONS, None], dtype=object)
    region = per_example["population_region"]
    per_example["population_region"] = names[np.where(region >= 0, region, -1)]
    return per_example, counts


def _assert_close(got, expected):
    for name, value in expected.items():
        if name == "population_region":
            assert list(got[name]) == list(value), name
            continue
        # Sums in another order, and variability from one-pass sums (kernels/soft.py).
        np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-6, err_msg=name)


# ----------------------------------------------------------------------------------------------
# The engine against NumPy


@pytest.mark.parametrize("groups", [[0, 1], [0], [1]])
def test_per_example_numbers_equal_numpy(planted, groups):
    population, _ = planted
    selection = measures.select_networks(population)
    got, _ = _engine_example_measures(population, "train", selection, groups)
    networks = np.flatnonzero(np.isin(selection.network_group, groups))
    _assert_close(got, _numpy_example_measures(population, "train", networks))


@pytest.mark.parametrize(
    "options",
    [
        {"networks_per_task": 4, "examples_per_task": 32},
        {"networks_per_task": 100, "examples_per_task": 1000},
        {"direct": False},
    ],
)
def test_same_numbers_under_other_task_sizes_and_decoding(planted, options):
    population, _ = planted
    selection = measures.select_networks(population)
    got, _ = _engine_example_measures(population, "train", selection, [0, 1], **options)
    expected, _ = _engine_example_measures(population, "train", selection, [0, 1])
    _assert_close(got, expected)


@pytest.mark.parametrize(
    "blocks",
    [
        {"network_block": 1, "checkpoint_block": 1, "example_block": 8},
        {"network_block": 5, "checkpoint_block": 6, "example_block": 64},
        {"network_block": 3, "checkpoint_block": 5, "example_block": 24},
    ],
)
def test_same_numbers_under_another_store_chunking(planted, tmp_path, blocks):
    population, _ = planted
    other = engine.open_population(make_planted_store(tmp_path / "other.zarr", **blocks)[0])
    np.testing.assert_array_equal(
        other.probability("train").compute(), population.probability("train").compute()
    )
    selection = measures.select_networks(other)
    got, _ = _engine_example_measures(other, "train", selection, [0, 1], scheduler="threads")
    expected, _ = _engine_example_measures(
        population, "train", measures.select_networks(population), [0, 1]
    )
    _assert_close(got, expected)


def test_one_network(tmp_path):
    path, _ = make_planted_store(tmp_path / "one.zarr", networks=1, examples=37)
    population = engine.open_population(path)
    selection = measures.select_networks(population)
    got, counts = _engine_example_measures(
        population, "train", selection, [0], table_networks=np.array([0])
    )
    expected = _numpy_example_measures(population, "train", np.array([0]))
    _assert_close(got, expected)
    recorded = np.isfinite(expected["confidence_mean"])
    assert (got["confidence_std"][recorded] == 0).all()
    table = counts["network_statistics"]
    np.testing.assert_allclose(
        table[:, :, 0],
        _numpy_network_statistics(population, "train")[:, 0],
        rtol=1e-6,
        atol=1e-6,
    )


def test_network_statistics_of_chosen_networks_equal_numpy(planted):
    population, _ = planted
    selection = measures.select_networks(population)
    chosen = np.array([4, 0, 3])
    lazy = measures.soft_statistics(
        population, "train", selection, table_networks=chosen, networks_per_task=2
    )
    table = dask.compute(lazy["network_statistics"], scheduler="sync")[0]
    expected = _numpy_network_statistics(population, "train")[:, np.sort(chosen)]  # (k, m, x)
    assert table.shape == (5, population.num_examples("train"), 3)
    np.testing.assert_allclose(table, expected.transpose(0, 2, 1), rtol=1e-6, atol=1e-6)


def test_planted_structure_is_found(planted):
    population, kinds = planted
    selection = measures.select_networks(population)
    got, _ = _engine_example_measures(population, "train", selection, [0, 1])
    region = got["population_region"]
    assert (region[kinds == EASY] == "easy").all()
    assert (region[kinds == FLIPPING] == "ambiguous").all()
    assert (region[kinds == MISLABELLED] == "hard").all()
    assert (got["aum_mean"][kinds == MISLABELLED] < -5).all()
    assert (got["aum_mean"][kinds == EASY] > 5).all()
    assert np.isnan(got["confidence_mean"][kinds == UNLABELLED]).all()
    assert (region[kinds == UNLABELLED] == None).all()  # noqa: E711 (object array)
    # Flipping examples are right at even checkpoints; the initialisation (0) is left out.
    summed = np.arange(measures.soft_first_checkpoint(population), population.num_checkpoints)
    np.testing.assert_allclose(got["correctness_mean"][kinds == FLIPPING], (summed % 2 == 0).mean())
    np.testing.assert_allclose(got["easy_share"][kinds == EASY], 1.0)


def test_summary_numbers_equal_numpy(planted):
    population, kinds = planted
    selection = measures.select_networks(population)
    counts = dask.compute(measures.soft_statistics(population, "train", selection))[0]
    labelled = population.labels("train") >= 0
    correct = population.correct("train").compute()
    accessibility = np.where(labelled, correct.mean(axis=(0, 1)), np.nan)
    tpa_last = np.where(labelled, correct[:, -1].mean(axis=0), np.nan)
    summary, per_example = soft_measures.soft_measures(counts, [0, 1], accessibility, tpa_last)
    expected = _numpy_example_measures(population, "train", np.arange(5))
    recorded = np.isfinite(expected["confidence_mean"])
    assert summary["examples"] == recorded.sum() == (kinds != UNLABELLED).sum()
    assert summary["networks"] == 5
    assert summary["means"]["aum"] == pytest.approx(expected["aum_mean"][recorded].mean())
    assert summary["spreads"]["confidence"] == pytest.approx(
        expected["confidence_std"][recorded].mean()
    )
    shares = np.stack([expected[f"{r}_share"] for r in soft_measures.POPULATION_REGIONS])
    assert summary["region_agreement_mean"] == pytest.approx(shares[:, recorded].max(0).mean())
    region = expected["population_region"][recorded]
    for name in soft_measures.POPULATION_REGIONS:
        assert summary["population_region_share"][name] == pytest.approx((region == name).mean())
    assert summary["aum_negative_share"] == pytest.approx(
        (expected["aum_mean"][recorded] < 0).mean()
    )
    # The per-example confidences equal NumPy's within float rounding (the test above); with
    # probability codes of step 1/32 many are tied, and a rounding difference in the last bit
    # would break a tie, so the rank correlation is checked on the engine's own values.
    np.testing.assert_allclose(
        per_example["confidence_mean"][recorded], expected["confidence_mean"][recorded], atol=1e-9
    )
    assert summary["confidence_accessibility_spearman"] == pytest.approx(
        spearmanr(per_example["confidence_mean"][recorded], accessibility[recorded]).statistic
    )
    histogram = summary["aum_histogram"]
    assert len(histogram["edges"]) == len(histogram["counts"]) + 1 == 129
    assert sum(histogram["counts"]) == recorded.sum()
    assert summary["tpa_last_by_region"]["easy"] == pytest.approx(1.0)
    assert summary["tpa_last_by_region"]["hard"] < 0.5
    assert json.dumps(summary, allow_nan=False)


# ----------------------------------------------------------------------------------------------
# analyze


def _summary_without_timing(out):
    summary = json.loads((out / "summary.json").read_text())
    summary.pop("execution")
    return summary


def test_analyze_writes_the_soft_columns_figures_and_page(planted, tmp_path):
    population, kinds = planted
    report = analyze_store(population.path, tmp_path, pairwise_checkpoints="none", progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    soft = summary["splits"]["train"]["soft"]
    assert soft["networks"] == 5 and soft["examples"] == (kinds != UNLABELLED).sum()
    assert summary["splits"]["test"]["soft"] == {"skipped": "the split records no soft verdicts"}
    assert set(summary["splits"]["train"]["groups"]["a"]["soft"]["means"]) == set(STATISTICS)
    assert "network_table" not in summary
    examples = pd.read_parquet(tmp_path / "examples.parquet")
    train = examples[examples.split == "train"].reset_index(drop=True)
    expected = _numpy_example_measures(population, "train", np.arange(5))
    for column, values in expected.items():
        if column == "population_region":
            got = train[column].astype(object).where(train[column].notna(), None)
            assert list(got) == list(values)
        else:
            np.testing.assert_allclose(train[column], values, rtol=1e-9, atol=1e-6)
    assert str(examples["population_region"].dtype) == "string"
    assert examples.loc[examples.split == "test", "confidence_mean"].isna().all()
    assert examples.loc[examples.split == "test", "population_region"].isna().all()
    for name in ("data_map_train.png", "data_map_networks_train.png", "aum_train.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert not (tmp_path / "data_map_test.png").exists()
    assert not (tmp_path / "network_examples.parquet").exists()
    page = report.read_text()
    assert page.count("data:image/png;base64,") == len(list(tmp_path.glob("*.png")))
    assert "<p class='caption'>train: each example&#39;s mean confidence" in page
    assert "stacked by population region" in page
    assert "test: soft measures skipped, the split records no soft verdicts." in page
    assert "train: easy / ambiguous / hard (population regions)" in page


def test_network_table_rows_equal_numpy_in_row_groups(planted, tmp_path, monkeypatch):
    from engine.report import run

    population, _ = planted
    # 45 examples a row group of 90 rows: two networks per pass, three row groups.
    monkeypatch.setattr(run, "NETWORK_TABLE_ROWS", 90)
    analyze_store(
        population.path,
        tmp_path,
        pairwise_checkpoints="none",
        progress=False,
        network_table=True,
    )
    path = tmp_path / "network_examples.parquet"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["network_table"] == {
        "path": "network_examples.parquet",
        "rows": 5 * 45,
        "splits": ["train"],
    }
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    table = pd.read_parquet(path)
    assert list(table.columns) == [
        "split",
        "network",
        "group",
        "example",
        "example_id",
        *STATISTICS,
        "region",
    ]
    assert len(table) == 5 * 45
    np.testing.assert_array_equal(table["network"], np.repeat(np.arange(5), 45))
    np.testing.assert_array_equal(table["example"], np.tile(np.arange(45), 5))
    np.testing.assert_array_equal(table["example_id"], np.tile(1000 + 3 * np.arange(45), 5))
    assert list(table["group"].astype(str)[::45]) == ["a", "a", "a", "b", "b"]
    assert set(table["split"].astype(str)) == {"train"}
    expected = _numpy_network_statistics(population, "train")  # (k, n, x)
    for k, name in enumerate(STATISTICS):
        np.testing.assert_allclose(table[name], expected[k].ravel(), rtol=1e-6, atol=1e-6)
    confidence, variability = expected[0].ravel(), expected[1].ravel()
    thresholds = soft_measures.REGION_THRESHOLDS
    region = table["region"].astype(object)
    ambiguous = variability >= thresholds.ambiguous_variability
    assert (region[ambiguous] == "ambiguous").all()
    assert (region[~ambiguous & (confidence >= thresholds.easy_confidence)] == "easy").all()
    assert region[np.isnan(confidence)].isna().all()


def test_threads_and_processes_give_identical_outputs(planted, tmp_path):
    population, _ = planted
    first, second = tmp_path / "threads", tmp_path / "processes"
    analyze_store(population.path, first, pairwise_checkpoints="none", progress=False)
    analyze_store(
        population.path, second, scheduler="processes", pairwise_checkpoints="none", progress=False
    )
    assert _summary_without_timing(first) == _summary_without_timing(second)
    pd.testing.assert_frame_equal(
        pd.read_parquet(first / "examples.parquet"), pd.read_parquet(second / "examples.parquet")
    )


@pytest.mark.distributed
def test_local_cluster_gives_identical_outputs(planted, tmp_path):
    population, _ = planted
    first, second = tmp_path / "threads", tmp_path / "cluster"
    analyze_store(
        population.path, first, pairwise_checkpoints="none", progress=False, network_table=True
    )
    analyze_store(
        population.path,
        second,
        workers=2,
        pairwise_checkpoints="none",
        progress=False,
        network_table=True,
    )
    assert _summary_without_timing(first) == _summary_without_timing(second)
    for name in ("examples.parquet", "network_examples.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(first / name), pd.read_parquet(second / name), obj=name
        )


def test_store_without_soft_verdicts_skips_them(tmp_path):
    path, _, _ = make_soft_store(tmp_path / "hard.zarr", soft=False)
    out = tmp_path / "out"
    report = analyze_store(
        str(path), out, pairwise_checkpoints="none", progress=False, network_table=True
    )
    summary = json.loads((out / "summary.json").read_text())
    for split in ("train", "probe"):
        assert summary["splits"][split]["soft"] == {"skipped": "the store records no soft verdicts"}
    assert summary["network_table"] == {"skipped": "the store records no soft verdicts"}
    examples = pd.read_parquet(out / "examples.parquet")
    assert not {"confidence_mean", "aum_mean", "population_region"} & set(examples.columns)
    assert not list(out.glob("data_map*")) and not list(out.glob("aum_*"))
    assert not (out / "network_examples.parquet").exists()
    assert (
        "Soft verdicts (data maps, area under the margin): skipped, the store records no soft "
        "verdicts." in report.read_text()
    )


def test_probe_split_with_soft_arrays_skips_for_want_of_labels(tmp_path):
    path, _, _ = make_soft_store(tmp_path / "p.zarr")
    out = tmp_path / "out"
    analyze_store(str(path), out, pairwise_checkpoints="none", progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["splits"]["probe"]["soft"] == {"skipped": "the split has no labels"}
    assert summary["splits"]["train"]["soft"]["examples"] == 21
    assert (out / "data_map_train.png").exists() and not (out / "data_map_probe.png").exists()


# ----------------------------------------------------------------------------------------------
# select


@pytest.mark.parametrize(
    ("flags", "kind"),
    [
        ({"region": "ambiguous"}, FLIPPING),
        ({"region": "easy"}, EASY),
        ({"region": "hard"}, MISLABELLED),
        ({"by": "aum"}, MISLABELLED),
        ({"by": "confidence", "ascending": True}, MISLABELLED),
        ({"by": "variability"}, FLIPPING),
        ({"by": "aum", "ascending": False}, EASY),
    ],
)
def test_select_takes_the_planted_examples(planted, tmp_path, flags, kind):
    population, kinds = planted
    labelled = (kinds != UNLABELLED).sum()
    wanted = (kinds == kind).sum()
    out = tmp_path / "ids.npy"
    result = select_examples(population.path, out, fraction=wanted / labelled, **flags)
    ids = np.load(out)
    assert ids.dtype == np.int64
    assert result.chosen == wanted and result.scored == labelled and result.networks == 5
    assert set(ids) == set(1000 + 3 * np.flatnonzero(kinds == kind))


def test_select_ranks_best_first(planted, tmp_path):
    population, kinds = planted
    out = tmp_path / "ids.npy"
    select_examples(population.path, out, fraction=1.0, by="aum")
    ids = np.load(out)
    assert ids.size == (kinds != UNLABELLED).sum()
    expected = _numpy_example_measures(population, "train", np.arange(5))["aum_mean"]
    aum = expected[(ids - 1000) // 3]
    # Margins are stored in whole logits, so many means tie; ties may differ in the last bit.
    assert (np.diff(aum) >= -1e-9).all()


def test_select_by_accessibility_needs_only_verdicts(tmp_path):
    path, labels, logits = make_soft_store(tmp_path / "hard.zarr", soft=False)
    out = tmp_path / "ids.npy"
    select_examples(str(path), out, fraction=0.25, by="accessibility")
    population = engine.open_population(path)
    # An initialisation checkpoint is left out of accessibility by default.
    table = population.checkpoints
    start = accessibility_window(table["epoch"].to_numpy(), table["step"].to_numpy()).start
    accessibility = population.correct("train").compute()[:, start:].mean(axis=(0, 1))
    ids = np.load(out)
    assert ids.size == round(0.25 * 21)
    order = np.argsort(-accessibility, kind="stable")
    np.testing.assert_array_equal(ids, population.example_ids("train")[order[: ids.size]])
    with pytest.raises(StoreError, match="records no soft verdicts"):
        select_examples(str(path), out, fraction=0.25, region="ambiguous")


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"fraction": 0.0, "region": "easy"}, ConfigError, r"\(0, 1\]"),
        ({"fraction": 1.5, "region": "easy"}, ConfigError, r"\(0, 1\]"),
        ({"fraction": 0.5}, ConfigError, "exactly one"),
        ({"fraction": 0.5, "region": "easy", "by": "aum"}, ConfigError, "exactly one"),
        ({"fraction": 0.5, "region": "middling"}, ConfigError, "region must be one of"),
        ({"fraction": 0.5, "by": "loss"}, ConfigError, "--by must be one of"),
        ({"fraction": 0.5, "region": "easy", "split": "val"}, StoreError, "does not exist"),
        ({"fraction": 0.5, "region": "easy", "split": "test"}, StoreError, "no soft verdicts"),
    ],
)
def test_select_refuses_bad_input_and_writes_nothing(planted, tmp_path, options, error, message):
    population, _ = planted
    out = tmp_path / "ids.npy"
    with pytest.raises(error, match=message):
        select_examples(population.path, out, **options)
    assert not out.exists()


def _run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_select_writes_ids(planted, tmp_path, capsys):
    population, kinds = planted
    out = tmp_path / "ids.npy"
    fraction = (kinds == FLIPPING).sum() / (kinds != UNLABELLED).sum()
    code, stdout, err = _run(
        ["select", population.path, "--region", "ambiguous", "--fraction", str(fraction), "-o"]
        + [str(out)],
        capsys,
    )
    assert code == 0, err
    assert "9 of 43 examples of train (highest variability first, over 5 networks)" in stdout
    assert set(np.load(out)) == set(1000 + 3 * np.flatnonzero(kinds == FLIPPING))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--region", "easy", "--fraction", "0"], "--fraction must lie in (0, 1]"),
        (["--region", "easy", "--fraction", "1.01"], "--fraction must lie in (0, 1]"),
        (["--fraction", "0.5"], "give exactly one of --region and --by"),
        (["--region", "easy", "--by", "aum", "--fraction", "0.5"], "exactly one"),
        (["--region", "easy", "--fraction", "0.5", "--split", "test"], "no soft verdicts"),
        (["--region", "easy", "--fraction", "0.5", "--split", "nope"], "does not exist"),
    ],
)
def test_cli_select_errors_are_one_line(planted, tmp_path, capsys, flags, message):
    population, _ = planted
    out = tmp_path / "ids.npy"
    code, _, err = _run(["select", population.path, *flags, "-o", str(out)], capsys)
    assert code == 1
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_cli_select_store_without_soft_verdicts_is_one_line(tmp_path, capsys):
    path, _, _ = make_soft_store(tmp_path / "hard.zarr", soft=False)
    out = tmp_path / "ids.npy"
    code, _, err = _run(
        ["select", str(path), "--by", "aum", "--fraction", "0.5", "-o", str(out)], capsys
    )
    assert code == 1 and "records no soft verdicts" in err and err.count("\n") == 1
    code, _, err = _run(
        ["select", str(path), "--by", "accessibility", "--fraction", "0.5", "-o", str(out)],
        capsys,
    )
    assert code == 0, err
    assert out.exists()


@pytest.mark.parametrize(
    "flags",
    [
        ["--region", "middling", "--fraction", "0.5"],
        ["--by", "loss", "--fraction", "0.5"],
        ["--region", "easy", "--fraction", "half"],
        ["--region", "easy"],
    ],
)
def test_cli_select_usage_errors_exit_2(planted, tmp_path, capsys, flags):
    population, _ = planted
    out = tmp_path / "ids.npy"
    code, _, err = _run(["select", population.path, *flags, "-o", str(out)], capsys)
    assert code == 2
    assert "Error" in err and "Traceback" not in err
    assert not out.exists()


def test_cli_analyze_network_table_flag(planted, tmp_path, capsys):
    population, _ = planted
    code, _, err = _run(
        [
            "analyze",
            population.path,
            "-o",
            str(tmp_path),
            "--pairwise-checkpoints",
            "none",
            "--no-progress",
            "--network-table",
        ],
        capsys,
    )
    assert code == 0, err
    assert len(pd.read_parquet(tmp_path / "network_examples.parquet")) == 5 * 45


def test_cli_help_lists_select_and_its_flags(capsys):
    code, out, _ = _run(["--help"], capsys)
    assert code == 0 and "select" in out
    code, out, _ = _run(["select", "--help"], capsys)
    assert code == 0
    for flag in ("--region", "--by", "--fraction", "--split", "--ascending", "--workers"):
        assert flag in out, flag

"""`engine analyze` against a plain NumPy computation of every measure on small stores, under
different chunkings and schedulers, its output schemas, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import engine
from engine import measures
from engine.report import analyze_store
from engine.testing import simulate_population
from tests import reference_agreement as reference


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """37 networks (7 incomplete) in 2 groups, 7 checkpoints, awkward chunks, membership,
    a test split and a probe split."""
    path = tmp_path_factory.mktemp("stores") / "small.zarr"
    simulate_population(
        path,
        networks=37,
        checkpoints=7,
        splits={"train": 203, "test": 61},
        probe_examples=45,
        groups=2,
        membership=True,
        predictions=True,
        seed=3,
        network_block=8,
        checkpoint_block=3,
        example_block=64,
        complete=30,
    )
    return engine.open_population(path)


def _numpy_measures(population, split, selection, groups):
    """The measures of science.md computed the most direct way, on the whole array."""
    keep = selection.networks_in(groups)
    correct = population.correct(split).compute()[keep]  # (n, t, x)
    size, total, _ = correct.shape
    labelled = population.labels(split) >= 0
    correct = correct[:, :, labelled]
    accuracy = correct.mean(axis=2)  # (n, t)
    tpa = correct.mean(axis=0)  # (t, x)
    counts = correct.sum(axis=0)
    histogram = np.stack([np.bincount(c, minlength=size + 1) for c in counts])
    null = (
        np.stack([reference.poisson_binomial(accuracy[:, t]) for t in range(total)])
        * counts.shape[1]
    )
    p = accuracy.mean(axis=0)
    excess = (tpa.var(axis=1) / (p * (1 - p)) - 1 / size) / (1 - 1 / size)
    first = np.full(correct.shape[::2], total)  # (n, x)
    for t in range(total - 1, -1, -1):
        stays = correct[:, t:, :].all(axis=1)
        first = np.where(stays, t, first)
    forgetting = (correct[:, :-1, :] & ~correct[:, 1:, :]).sum(axis=1)  # (n, x)
    learned = first < total
    first_mean = np.array(
        [
            first[learned[:, x], x].mean() if learned[:, x].any() else np.nan
            for x in range(first.shape[1])
        ]
    )
    first_median = np.array(
        [
            np.median(first[learned[:, x], x]) if learned[:, x].any() else np.nan
            for x in range(first.shape[1])
        ]
    )
    row = correct.sum(axis=1)  # (n, x)
    halves = selection.network_half[:, keep].astype(bool)
    reliabilities = []
    from scipy.stats import spearmanr

    for half in halves:
        rho = spearmanr(row[half].mean(axis=0), row[~half].mean(axis=0)).statistic
        reliabilities.append(2 * rho / (1 + rho))
    return {
        "accuracy_mean": p,
        "tpa_histogram": histogram,
        "null_histogram": null,
        "extreme_fraction": (histogram[:, 0] + histogram[:, -1]) / counts.shape[1],
        "extreme_fraction_null": (null[:, 0] + null[:, -1]) / counts.shape[1],
        "agreement_excess": excess,
        "accessibility": tpa.mean(axis=0),
        "tpa_last": tpa[-1],
        "first_learned_mean": first_mean,
        "first_learned_median": first_median,
        "never_learned_share": (~learned).mean(axis=0),
        "forgetting_mean": forgetting.mean(axis=0),
        "split_half_spearman": np.mean(reliabilities),
        "correct": correct,
        "keep": keep,
    }


def _computed(population, selection, **options):
    import dask

    graphs = {}
    for split in ("train", "test"):
        graphs[split] = measures.verdict_statistics(population, split, selection, **options)
    graphs["probe"] = measures.class_statistics(population, "probe", selection, 10, **options)
    return dask.compute(graphs, scheduler="sync")[0]


@pytest.mark.parametrize("groups", [[0, 1], [0], [1]])
def test_every_measure_equals_numpy(small_store, groups):
    selection = measures.select_networks(small_store)
    assert (selection.network_group >= 0).sum() == 30
    computed = _computed(small_store, selection)
    for split in ("train", "test"):
        expected = _numpy_measures(small_store, split, selection, groups)
        got = measures.split_measures(
            computed[split],
            selection,
            groups,
            small_store.labels(split),
            membership=split == "train",
        )
        summary, examples = got["summary"], got["examples"]
        for key in (
            "accuracy_mean",
            "extreme_fraction",
            "extreme_fraction_null",
            "agreement_excess",
        ):
            np.testing.assert_allclose(summary[key], expected[key], rtol=1e-9, err_msg=key)
        np.testing.assert_array_equal(summary["tpa_histogram"], expected["tpa_histogram"])
        np.testing.assert_allclose(summary["null_histogram"], expected["null_histogram"], atol=1e-9)
        assert summary["split_half_spearman"] == pytest.approx(expected["split_half_spearman"])
        for key in (
            "accessibility",
            "tpa_last",
            "first_learned_mean",
            "first_learned_median",
            "never_learned_share",
            "forgetting_mean",
        ):
            np.testing.assert_allclose(
                examples[key], expected[key], rtol=1e-12, equal_nan=True, err_msg=key
            )
        if split == "train":
            member = small_store.membership().compute()[expected["keep"]]  # (n, x)
            correct_last = expected["correct"][:, -1, :]
            held = (~member).sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                consistency = np.where(
                    held > 0, (correct_last & ~member).sum(axis=0) / held, np.nan
                )
            np.testing.assert_allclose(examples["holdout_consistency"], consistency, equal_nan=True)
    probe = measures.split_measures(
        None, selection, groups, small_store.labels("probe"), classes=computed["probe"]
    )
    predictions = small_store.predictions("probe").compute()[selection.networks_in(groups)]
    counts = np.stack(
        [
            [np.bincount(predictions[:, t, x], minlength=10) for x in range(predictions.shape[2])]
            for t in range(predictions.shape[1])
        ]
    )  # (t, x, k)
    share = counts.max(axis=2) / predictions.shape[0]
    np.testing.assert_allclose(probe["summary"]["consensus"]["mean"], share.mean(axis=1))
    np.testing.assert_allclose(probe["examples"]["consensus_last"], share[-1])
    null_mean = probe["summary"]["consensus"]["null_mean"]
    assert all(1 / 10 <= m <= 1 for m in null_mean)


def test_same_counts_under_any_task_size_and_decoding(small_store):
    selection = measures.select_networks(small_store)
    base = _computed(small_store, selection)
    for options in (
        {"networks_per_task": 20, "examples_per_task": 100, "direct": False},
        {"networks_per_task": 64, "examples_per_task": 10**6},
    ):
        other = _computed(small_store, selection, **options)
        for split in base:
            for name in base[split]:
                np.testing.assert_array_equal(other[split][name], base[split][name])


def test_same_results_under_another_store_chunking(small_store, tmp_path):
    """The same verdicts written with other chunk shapes give the same summary."""
    copy = tmp_path / "rechunked.zarr"
    splits = {
        s: engine.SplitSpec(
            labels=small_store.labels(s),
            predictions=small_store.predictions(s) is not None,
            fingerprint=small_store.attrs["splits"][s]["fingerprint"],
        )
        for s in small_store.splits
    }
    groups = [
        engine.GroupSpec(g["name"], g["architecture"], int(c), g["hyperparameters"])
        for g, c in zip(
            small_store.attrs["groups"], np.bincount(small_store.network_groups()), strict=True
        )
    ]
    writer = engine.create_population(
        copy,
        dataset_name="copy",
        splits=splits,
        groups=groups,
        checkpoint_epochs=small_store.checkpoints["epoch"],
        class_names=list("0123456789"),
        membership_split="train",
        network_block=16,
        checkpoint_block=5,
        example_block=128,
    )
    writer.record_membership((0, 37), small_store.membership().compute())
    for split in small_store.splits:
        predictions = small_store.predictions(split).compute()
        for t in range(small_store.num_checkpoints):
            writer.record(split, t, (0, 37), predictions=predictions[:, t])
    completed = small_store.checkpoints_completed()
    for t in range(small_store.num_checkpoints):
        done = np.flatnonzero(completed > t)
        for a in range(0, 37, 16):
            block = done[(done >= a) & (done < a + 16)]
            if block.size == min(16, 37 - a):
                writer.mark_checkpoint(t, (a, min(a + 16, 37)))
    # Networks 30..36 are incomplete in both (the last block marks only what it completed).
    rechunked = engine.open_population(copy)
    assert rechunked.complete_networks().size <= 30
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    networks = small_store.complete_networks()
    selection_a = measures.select_networks(small_store, networks=networks)
    selection_b = measures.select_networks(rechunked, networks=networks)
    a = _computed(small_store, selection_a)
    b = _computed(rechunked, selection_b)
    for split in a:
        for name in a[split]:
            np.testing.assert_array_equal(a[split][name], b[split][name], err_msg=name)
    del out_a, out_b


def _summary_without_timing(out):
    summary = json.loads((out / "summary.json").read_text())
    summary.pop("execution")
    return summary


def test_threads_and_processes_give_identical_outputs(small_store, tmp_path):
    first = tmp_path / "threads"
    analyze_store(small_store.path, first, pairwise_checkpoints="none", progress=False)
    second = tmp_path / "processes"
    analyze_store(
        small_store.path, second, scheduler="processes", pairwise_checkpoints="none", progress=False
    )
    assert _summary_without_timing(first) == _summary_without_timing(second)
    pd.testing.assert_frame_equal(
        pd.read_parquet(first / "examples.parquet"), pd.read_parquet(second / "examples.parquet")
    )


@pytest.mark.distributed
def test_local_cluster_over_tcp_gives_identical_outputs(small_store, tmp_path):
    first = tmp_path / "threads"
    analyze_store(small_store.path, first, pairwise_checkpoints="none", progress=False)
    second = tmp_path / "cluster"
    analyze_store(small_store.path, second, workers=2, pairwise_checkpoints="none", progress=True)
    assert _summary_without_timing(first) == _summary_without_timing(second)
    pd.testing.assert_frame_equal(
        pd.read_parquet(first / "examples.parquet"), pd.read_parquet(second / "examples.parquet")
    )


def test_output_schemas(small_store, tmp_path):
    report = analyze_store(small_store.path, tmp_path, pairwise_checkpoints="none", progress=False)
    assert report == tmp_path / "report.html"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["networks"] == {
        "total": 37,
        "analysed": 30,
        "incomplete_left_out": 7,
        "note": summary["networks"]["note"],
    }
    assert "7 incomplete networks left out" in summary["networks"]["note"]
    assert set(summary["splits"]) == {"train", "test", "probe"}
    assert summary["histograms"] == "histograms.parquet"
    histograms = pd.read_parquet(tmp_path / "histograms.parquet")
    for split in ("train", "test"):
        s = summary["splits"][split]
        for key in (
            "checkpoints",
            "accuracy_mean",
            "extreme_fraction",
            "extreme_fraction_null",
            "agreement_excess",
            "split_half_spearman",
        ):
            assert key in s, key
        assert len(s["accuracy_mean"]) == len(s["checkpoints"]) == 7
        # The N + 1 bin histograms are in histograms.parquet, not in summary.json.
        assert "tpa_histogram" not in s and "null_histogram" not in s
        tpa = histograms[
            (histograms.split == split)
            & (histograms.group == "all")
            & (histograms.measure == "tpa")
        ]
        assert len(tpa) == 7 * 31
        assert tpa.groupby("checkpoint").examples.sum().tolist() == [s["labelled_examples"]] * 7
        assert set(s["groups"]) == {"group0", "group1"}
        assert s["group_comparison"][0]["populations"] == ["group0", "group1"]
        assert -1 <= s["group_comparison"][0]["spearman"] <= 1
    assert "holdout_consistency_mean" in summary["splits"]["train"]
    assert len(summary["splits"]["probe"]["consensus"]["mean"]) == 7
    assert summary["splits"]["probe"]["accuracy_mean"] is None
    examples = pd.read_parquet(tmp_path / "examples.parquet")
    for column in (
        "split",
        "example",
        "label",
        "accessibility",
        "tpa_last",
        "first_learned_mean",
        "forgetting_mean",
        "consensus_last",
    ):
        assert column in examples.columns, column
    assert len(examples) == 203 + 61 + 45
    assert examples.groupby("split").size().to_dict() == {"train": 203, "test": 61, "probe": 45}
    assert examples.loc[examples.split == "probe", "accessibility"].isna().all()
    assert examples.loc[examples.split == "test", "consensus_last"].between(0, 1).all()
    networks = pd.read_parquet(tmp_path / "networks.parquet")
    assert len(networks) == 37
    assert {
        "network",
        "group",
        "architecture",
        "analysed",
        "accuracy_train",
        "accuracy_test",
    } <= set(networks.columns)
    assert networks["accuracy_train"].isna().sum() == 7
    for name in (
        "accuracy.png",
        "tpa_histogram_train.png",
        "learning_curves_train.png",
        "consensus_probe.png",
    ):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    page = report.read_text()
    assert page.count("data:image/png;base64,") >= 6
    assert "src='http" not in page and 'src="http' not in page


def test_pairwise_measures_go_into_the_summary(small_store, tmp_path):
    report = analyze_store(small_store.path, tmp_path, splits=["test"], progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    last = str(small_store.num_checkpoints - 1)
    kappa = summary["pairwise"]["splits"]["test"]["checkpoints"][last]["kappa"]["all"]
    # Direct definition (science.md) over the complete networks at the last checkpoint.
    complete = small_store.complete_networks()
    correct = small_store.correct("test").compute()[complete, -1].astype(float)
    accuracy = correct.mean(axis=1)
    observed = 1 - np.abs(correct[:, None, :] - correct[None, :, :]).mean(axis=2)
    expected = np.outer(accuracy, accuracy) + np.outer(1 - accuracy, 1 - accuracy)
    pair_kappa = (observed - expected) / (1 - expected)
    upper = np.triu_indices(len(complete), 1)
    assert kappa["pairs"] == len(upper[0])
    assert kappa["mean"] == pytest.approx(np.nanmean(pair_kappa[upper]), rel=1e-5)
    assert f"test: mean pairwise kappa (checkpoint {last})" in report.read_text()


def test_report_embeds_every_figure_with_a_relative_out_dir(small_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = analyze_store(
        small_store.path, Path("results"), pairwise_checkpoints="none", progress=False
    )
    page = report.read_text()
    figures = sorted(Path("results").glob("*.png"))
    assert {
        "accuracy.png",
        "tpa_histogram_train.png",
        "learning_curves_test.png",
        "consensus_probe.png",
    } <= {f.name for f in figures}
    assert page.count("data:image/png;base64,") == len(figures)


def test_split_without_examples_has_empty_counts_of_the_same_kind(tmp_path):
    splits = {
        "train": engine.SplitSpec(
            labels=np.array([0, 1, 1], np.int32), predictions=True, fingerprint="a"
        ),
        "empty": engine.SplitSpec(labels=np.zeros(0, np.int32), predictions=True, fingerprint="b"),
    }
    writer = engine.create_population(
        tmp_path / "e.zarr",
        dataset_name="e",
        splits=splits,
        groups=[engine.GroupSpec("g", "mlp", 4, {})],
        checkpoint_epochs=[0, 1],
        class_names=["a", "b"],
    )
    for t in range(2):
        writer.record("train", t, (0, 4), predictions=np.ones((4, 3), int))
        writer.record("empty", t, (0, 4), predictions=np.zeros((4, 0), int))
        writer.mark_checkpoint(t, (0, 4))
    population = engine.open_population(tmp_path / "e.zarr")
    selection = measures.select_networks(population)
    for build in (
        measures.verdict_statistics,
        lambda p, s, sel: measures.class_statistics(p, s, sel, 2),
    ):
        full, empty = build(population, "train", selection), build(population, "empty", selection)
        assert set(full) == set(empty)
        for name in full:
            assert empty[name].dtype == full[name].dtype, name
            assert empty[name].ndim == full[name].ndim, name
            if name.startswith("network"):
                assert empty[name].shape == full[name].shape, name
            else:
                assert 0 in empty[name].shape, name
    analyze_store(population.path, tmp_path / "out", pairwise_checkpoints="none", progress=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["splits"]["empty"]["examples"] == 0
    assert summary["splits"]["train"]["accuracy_mean"] == pytest.approx([2 / 3, 2 / 3])

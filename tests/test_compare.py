"""`engine compare` and every bad input of `analyze` and `compare`, through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from cli.app import main
from engine.measures import learning_order_correlation, superset_fraction
from engine.testing import simulate_population


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    base = tmp_path_factory.mktemp("compare")
    a = simulate_population(
        base / "weak.zarr",
        networks=12,
        checkpoints=5,
        splits={"train": 150, "test": 40},
        seed=1,
        network_block=8,
        example_block=64,
    )
    # Same data set (seed 1 fixes labels and fingerprints), other networks: a second population.
    b = simulate_population(
        base / "strong.zarr",
        networks=20,
        checkpoints=5,
        splits={"train": 150, "test": 40},
        seed=1,
        network_block=8,
        example_block=64,
    )
    other = simulate_population(
        base / "other.zarr", networks=8, checkpoints=5, splits={"train": 150}, seed=2
    )
    incomplete = simulate_population(
        base / "incomplete.zarr",
        networks=10,
        checkpoints=3,
        splits={"train": 30},
        seed=4,
        complete=5,
        network_block=8,
    )
    return {
        "a": a.path,
        "b": b.path,
        "other": other.path,
        "incomplete": incomplete.path,
        "base": base,
    }


def test_compare_writes_pairs_and_generalisation(stores, tmp_path, capsys):
    assert main(["compare", stores["a"], stores["b"], "--out", str(tmp_path), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["names"] == ["weak", "strong"]
    for split in ("train", "test"):
        (pair,) = summary["pairs"][split]
        for key in ("spearman", "pearson", "kendall"):
            assert -1 <= pair[key] <= 1
        assert len(pair["spearman_per_checkpoint"]) == 5
        assert 0 <= pair["superset_fraction"] <= 1
        assert pair["ceiling"] is not None
    assert summary["generalisation"]["split"] == "test"
    assert [r["population"] for r in summary["generalisation"]["rows"]] == ["weak", "strong"]
    assert (tmp_path / "accessibility_test_weak_strong.png").exists()
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()
    assert "wrote" in capsys.readouterr().out


def test_correlations_and_superset_against_definitions():
    from scipy.stats import kendalltau, pearsonr, spearmanr

    rng = np.random.default_rng(0)
    a, b = rng.random(50), rng.random(50)
    got = learning_order_correlation(a, b)
    assert got["spearman"] == pytest.approx(spearmanr(a, b).statistic)
    assert got["pearson"] == pytest.approx(pearsonr(a, b).statistic)
    assert got["kendall"] == pytest.approx(kendalltau(a, b).statistic)
    weak = np.array([0.9, 0.8, 0.2, 0.6, 0.1])
    strong = np.array([1.0, 0.4, 0.9, 0.7, 0.0])
    assert superset_fraction(weak, strong) == pytest.approx(2 / 3)
    assert superset_fraction(np.zeros(3), strong[:3]) is None


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_bad_inputs_are_one_line_errors(stores, tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["analyze", str(tmp_path / "missing.zarr"), "--out", out]) == 1
    assert "does not exist" in _error(capsys)
    foreign = tmp_path / "foreign.zarr"
    zarr.open_group(str(foreign), mode="w")
    assert main(["analyze", str(foreign), "--out", out]) == 1
    assert "not a population store" in _error(capsys)
    assert main(["analyze", stores["a"], "--out", out, "--split", "nope"]) == 1
    assert "split 'nope' does not exist" in _error(capsys)
    assert main(["analyze", stores["incomplete"], "--out", out, "--require-complete"]) == 1
    assert "incomplete" in _error(capsys)
    assert main(["compare", stores["a"], stores["other"], "--out", out]) == 1
    assert "different data sets" in _error(capsys)
    # Unknown choices are usage errors now (exit 2, tests/test_cli_validation.py).
    assert main(["compare", stores["a"], "--out", out]) == 1
    assert "at least two" in _error(capsys)
    assert not (tmp_path / "out").exists()  # bad input writes nothing, not even the folder


def test_unreachable_cluster_is_a_quick_one_line_error(stores, tmp_path, capsys):
    import time

    started = time.perf_counter()
    assert (
        main(
            [
                "analyze",
                stores["a"],
                "--out",
                str(tmp_path / "out"),
                "--cluster",
                "tcp://127.0.0.1:9",
            ]
        )
        == 1
    )
    assert "cannot reach the Dask scheduler" in _error(capsys)
    assert not (tmp_path / "out").exists()
    assert time.perf_counter() - started < 30


def test_incomplete_networks_are_left_out_and_said(stores, tmp_path):
    assert (
        main(
            [
                "analyze",
                stores["incomplete"],
                "--out",
                str(tmp_path),
                "--no-progress",
                "--pairwise-checkpoints",
                "none",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["networks"]["analysed"] == 5
    assert summary["networks"]["incomplete_left_out"] == 5
    assert "5 incomplete networks left out" in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize("array", ["correct_packed", "predictions", "membership"])
def test_corrupt_chunk_fails_analyze_in_one_line(tmp_path, capsys, array):
    from tests.test_store import corrupt_one_chunk, tree_digest

    path = tmp_path / "pop.zarr"
    simulate_population(
        path,
        networks=8,
        checkpoints=3,
        splits={"train": 40, "test": 16},
        seed=2,
        predictions=True,
        membership=True,
    )
    corrupt_one_chunk(path, f"splits/train/{array}")
    before = tree_digest(path)
    assert main(["analyze", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 1
    error = _error(capsys)
    assert "corrupt or unreadable" in error and array in error
    assert tree_digest(path) == before


def test_store_lacking_its_verdicts_fails_analyze_in_one_line(tmp_path, capsys):
    import shutil

    path = tmp_path / "pop.zarr"
    simulate_population(path, networks=8, checkpoints=3, splits={"train": 40}, seed=2)
    shutil.rmtree(path / "splits" / "train" / "correct_packed")
    assert (
        main(
            [
                "analyze",
                str(path),
                "--out",
                str(tmp_path / "out"),
                "--no-progress",
                "--pairwise-checkpoints",
                "none",
            ]
        )
        == 1
    )
    error = _error(capsys)
    assert "lacks the array 'splits/train/correct_packed'" in error

"""The pairwise summaries streamed over strips, with nothing N x N held or written (issue 12):
exact histograms, per-network statistics, the default above a size and --matrices."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from typer.testing import CliRunner

from engine.pairwise import inputs as pairwise_inputs
from engine.pairwise import pairwise_report, tiles
from engine.pairwise.tiles import KAPPA_BINS, NEIGHBOURS, histogram_median
from engine.testing import simulate_population
from tests.reference_pairwise import pairwise_matrices


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    path = tmp_path_factory.mktemp("streamed") / "population.zarr"
    return simulate_population(
        path,
        networks=41,
        checkpoints=2,
        splits={"test": 150},
        groups=[18, 23],
        predictions=True,
        classes=4,
        seed=7,
    )


@pytest.fixture(scope="module")
def direct(population):
    correct = population.correct("test").compute()[:, -1]
    predictions = population.predictions("test").compute()[:, -1]
    return pairwise_matrices(correct, predictions)


def _report(population, out, **options):
    return pairwise_report(population, out, bootstrap=10, block=8, **options)


def test_streamed_equals_the_matrices_and_writes_none(population, direct, tmp_path):
    streamed = _report(population, tmp_path / "s", matrices=False)
    written = _report(population, tmp_path / "m", matrices=True)
    assert not (tmp_path / "s" / "pairwise.zarr").exists()
    assert streamed["zarr"] is None and written["zarr"] == "pairwise.zarr"
    a = streamed["splits"]["test"]["checkpoints"]["1"]
    b = written["splits"]["test"]["checkpoints"]["1"]
    assert a.pop("matrices") is False and b.pop("matrices") is True
    assert a == b  # same seed, same tiles: the same summary to the bit
    kappa = direct["kappa"].astype(np.float64)
    upper = np.triu(np.ones(kappa.shape, bool), 1)
    assert a["kappa"]["all"]["mean"] == pytest.approx(np.nanmean(kappa[upper]), rel=1e-6)
    for name in ("pairwise_networks.parquet", "pairwise_histograms.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "s" / name), pd.read_parquet(tmp_path / "m" / name)
        )


def test_histograms_are_exact(population, direct, tmp_path):
    _report(population, tmp_path, matrices=False)
    table = pd.read_parquet(tmp_path / "pairwise_histograms.parquet")
    groups = population.network_groups()
    upper = np.triu(np.ones((41, 41), bool), 1)
    within = upper & (groups[:, None] == groups[None, :])
    between = upper & ~within
    for statistic, matrix in (("agreement", "agree"), ("prediction_agreement", "prediction_agree")):
        for kind, mask in (("within", within), ("between", between)):
            rows = table[(table.statistic == statistic) & (table.pairs == kind)]
            values, counts = np.unique(direct[matrix][mask], return_counts=True)
            np.testing.assert_allclose(rows.low.to_numpy(), values / 150)
            np.testing.assert_array_equal(rows["count"].to_numpy(), counts)
    kappa = direct["kappa"].astype(np.float32).astype(np.float64)
    for kind, mask in (("within", within), ("between", between)):
        rows = table[(table.statistic == "kappa") & (table.pairs == kind)]
        values = kappa[mask]
        values = values[np.isfinite(values)]
        index = np.clip(((values + 1) * KAPPA_BINS / 2).astype(int), 0, KAPPA_BINS - 1)
        bins, counts = np.unique(index, return_counts=True)
        np.testing.assert_allclose(rows.low.to_numpy(), -1 + 2 * bins / KAPPA_BINS, atol=1e-12)
        np.testing.assert_array_equal(rows["count"].to_numpy(), counts)
        assert (rows.low <= rows.high).all()


@pytest.mark.parametrize("gathered", [4096, 12, 1])
def test_network_statistics(population, direct, tmp_path, monkeypatch, gathered):
    # A strip adds its kappa to its rows' statistics every ``gathered`` columns: all at once
    # (4096), every two tiles of 8 (12; the diagonal tile mid-buffer), every tile (1).
    monkeypatch.setattr(tiles, "STATISTICS_COLUMNS", gathered)
    report = _report(population, tmp_path, matrices=False)
    table = pd.read_parquet(tmp_path / "pairwise_networks.parquet").set_index("network")
    assert list(table.index) == list(range(41))
    kappa = direct["kappa"].astype(np.float32).astype(np.float64)
    np.fill_diagonal(kappa, np.nan)  # a network is not compared with itself
    for i in range(41):
        row = kappa[i]
        finite = np.flatnonzero(np.isfinite(row))
        assert table.kappa_pairs[i] == finite.size
        assert table.kappa_mean[i] == pytest.approx(row[finite].mean(), rel=1e-9)
        # The median read from bins 1e-4 wide: within half a bin of the exact one.
        assert abs(table.kappa_median[i] - np.median(row[finite])) <= 1 / KAPPA_BINS + 1e-12
        order = finite[np.argsort(-row[finite], kind="stable")][:NEIGHBOURS]
        np.testing.assert_allclose(table.most_similar_kappa[i], row[order], rtol=1e-6)
        # Ties aside, the ids are those of the largest kappa.
        np.testing.assert_allclose(row[list(table.most_similar[i])], row[order], rtol=1e-6)
        lowest = finite[np.argsort(row[finite], kind="stable")][:NEIGHBOURS]
        np.testing.assert_allclose(table.least_similar_kappa[i], row[lowest], rtol=1e-6)
        assert i not in set(table.most_similar[i]) | set(table.least_similar[i])
    summary = report["splits"]["test"]["checkpoints"]["1"]["network_kappa"]
    assert summary["kappa_mean"][3] == pytest.approx(np.median(table.kappa_mean))
    assert set(table.group) == {"group0", "group1"}


def test_histogram_median_of_even_and_odd_counts():
    histogram = np.zeros((3, 10), np.int64)
    histogram[0, [2, 7]] = 1  # two values: the mean of their bins' centres
    histogram[1, [1, 1, 4]] = [2, 2, 1]
    histogram[1, 1] = 2
    median = histogram_median(histogram, 0.0, 10.0)
    assert median[0] == pytest.approx((2.5 + 7.5) / 2)
    assert median[1] == pytest.approx(1.5)  # values 1.5, 1.5, 4.5
    assert np.isnan(median[2])


def test_default_writes_the_matrices_only_up_to_the_threshold(population, tmp_path, monkeypatch):
    small = _report(population, tmp_path / "small")
    assert small["zarr"] == "pairwise.zarr"
    monkeypatch.setattr(pairwise_inputs, "MATRIX_NETWORKS", 40)  # 41 networks: above it
    large = _report(population, tmp_path / "large")
    assert large["zarr"] is None and not (tmp_path / "large" / "pairwise.zarr").exists()
    asked = _report(population, tmp_path / "large", matrices=True)
    assert asked["zarr"] == "pairwise.zarr"
    # A later streamed run into the same folder leaves no stale matrices behind.
    _report(population, tmp_path / "large")
    assert not (tmp_path / "large" / "pairwise.zarr").exists()


def test_figures_at_any_size(population, tmp_path):
    report = _report(population, tmp_path, matrices=False)
    for name in report["figures"]:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert {f.split("_")[1] for f in report["figures"]} == {"heatmap", "distribution", "networks"}


def test_cli_matrices_flag(population, tmp_path):
    from cli.app import app

    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        ["pairwise", population.path, "--out", str(out), "--no-matrices", "--bootstrap", "0"],
    )
    assert result.exit_code == 0, result.output
    assert not (out / "pairwise.zarr").exists()
    assert json.loads((out / "pairwise.json").read_text())["tables"]["networks"]
    result = CliRunner().invoke(
        app,
        ["pairwise", population.path, "--out", str(out), "--matrices", "--no-figures"]
        + ["--overwrite"],  # the first run's output is replaced, not written over
    )
    assert result.exit_code == 0, result.output
    assert (out / "pairwise.zarr").is_dir()


def test_linearised_network_bootstrap_is_close_to_the_exact_one(population, tmp_path, monkeypatch):
    exact = pairwise_report(population, tmp_path / "e", bootstrap=60, block=8, matrices=False)
    monkeypatch.setattr(pairwise_inputs, "EXACT_BOOTSTRAP_NETWORKS", 10)
    linear = pairwise_report(population, tmp_path / "l", bootstrap=60, block=8, matrices=False)
    a = exact["splits"]["test"]["checkpoints"]["1"]
    b = linear["splits"]["test"]["checkpoints"]["1"]
    assert a["networks_ci_method"] == "exact" and b["networks_ci_method"] == "linearised"
    for statistic in ("agreement", "kappa", "prediction_agreement"):
        for kind in ("all", "within", "between"):
            x, y = a[statistic][kind], b[statistic][kind]
            assert x["mean"] == pytest.approx(y["mean"], rel=1e-9)
            low, high = x["networks_ci"]
            # The same replicates' weights, to first order: the intervals nearly agree (the
            # dropped term is of order 1 / N of the spread).
            width = high - low
            assert abs(y["networks_ci"][0] - low) < 0.1 * width, (statistic, kind)
            assert abs(y["networks_ci"][1] - high) < 0.1 * width, (statistic, kind)


@given(st.integers(1, 7), st.integers(1, 9), st.integers(-3, 3), st.data())
def test_network_kappa_statistics_kernel(n0, n1, offset, data):
    from kernels.pairwise import network_kappa_statistics

    kappa = data.draw(
        hnp.arrays(
            np.float32,
            (n0, n1),
            elements=st.one_of(st.just(np.nan), st.floats(-1, 1, width=32)),
        )
    )
    ids = np.arange(n1, dtype=np.int64) + 100
    k, bins = 3, 40
    sums, pairs = np.zeros(n0), np.zeros(n0, np.int64)
    histogram = np.zeros((n0, bins), np.int32)
    most = np.full((n0, k), -np.inf, np.float32)
    least = np.full((n0, k), np.inf, np.float32)
    most_ids = np.full((n0, k), -1, np.int64)
    least_ids = np.full((n0, k), -1, np.int64)
    network_kappa_statistics(
        kappa, offset, ids, sums, pairs, histogram, most, most_ids, least, least_ids
    )
    for i in range(n0):
        keep = [j for j in range(n1) if j != i + offset and not np.isnan(kappa[i, j])]
        values = kappa[i, keep].astype(np.float64)
        assert pairs[i] == len(keep) == histogram[i].sum()
        assert sums[i] == pytest.approx(values.sum(), abs=1e-9)
        top = np.sort(values)[::-1][:k]
        np.testing.assert_array_equal(most[i, : top.size], top.astype(np.float32))
        np.testing.assert_array_equal(least[i, : top.size], np.sort(values)[:k].astype(np.float32))
        assert set(most_ids[i, : top.size]) <= {100 + j for j in keep}
        assert (most_ids[i, top.size :] == -1).all()

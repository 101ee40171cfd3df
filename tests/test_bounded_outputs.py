"""Outputs sized by what a reader can use, not by the number of networks (issue 12): the exact
histograms over k = 0..N networks in ``histograms.parquet``, ``summary.json`` bounded, the
figures binned."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import engine
from engine.report import analyze_store
from engine.report.figures import count_bins
from engine.testing import simulate_population


@pytest.fixture(scope="module")
def grouped_store(tmp_path_factory):
    """20 networks in 2 groups, 4 checkpoints, a test split with predictions and a probe."""
    path = tmp_path_factory.mktemp("stores") / "grouped.zarr"
    simulate_population(
        path,
        networks=20,
        checkpoints=4,
        splits={"test": 90},
        probe_examples=30,
        groups=2,
        predictions=True,
        seed=5,
        network_block=8,
    )
    return engine.open_population(path)


def _rows(histograms, split, group, measure):
    chosen = histograms[
        (histograms.split == split) & (histograms.group == group) & (histograms.measure == measure)
    ]
    return chosen.sort_values(["checkpoint", "k"])


def test_histogram_table_holds_the_exact_histograms(grouped_store, tmp_path):
    analyze_store(grouped_store.path, tmp_path, pairwise_checkpoints="none", progress=False)
    histograms = pd.read_parquet(tmp_path / "histograms.parquet")
    correct = grouped_store.correct("test").compute()  # (n, t, x)
    groups = grouped_store.network_groups()
    for group, members in (("all", groups >= 0), ("group0", groups == 0), ("group1", groups == 1)):
        rows = _rows(histograms, "test", group, "tpa")
        size = int(members.sum())
        expected = np.stack(
            [np.bincount(c, minlength=size + 1) for c in correct[members].sum(axis=0)]
        )
        np.testing.assert_array_equal(rows.examples.to_numpy().reshape(4, size + 1), expected)
        assert (rows.networks == size).all()
        # The Poisson-binomial null has the examples' total at each checkpoint.
        np.testing.assert_allclose(rows.groupby("checkpoint").null.sum(), [90] * 4)
    # Consensus of the probe split at every checkpoint: examples whose plurality has k votes.
    predictions = grouped_store.predictions("probe").compute()  # (n, t, x)
    rows = _rows(histograms, "probe", "all", "consensus")
    for t in range(4):
        votes = np.stack([(predictions[:, t] == k).sum(axis=0) for k in range(10)])
        expected = np.bincount(votes.max(axis=0), minlength=21)
        np.testing.assert_array_equal(rows[rows.checkpoint == t].examples, expected)
    assert rows.binomial.isna().all()
    # The test split's consensus covers its last checkpoint only.
    assert set(_rows(histograms, "test", "all", "consensus").checkpoint) == {3}


def _walk_lists(value, found):
    if isinstance(value, dict):
        for item in value.values():
            _walk_lists(item, found)
    elif isinstance(value, list):
        found.append(len(value))
        for item in value:
            _walk_lists(item, found)


@pytest.mark.parametrize("networks", [12, 300])
def test_summary_holds_no_list_as_long_as_the_networks(tmp_path, networks):
    store = simulate_population(
        tmp_path / "s.zarr",
        networks=networks,
        checkpoints=3,
        splits={"test": 80},
        probe_examples=20,
        groups=2,
        predictions=True,
        seed=1,
    )
    # The pairwise summaries included, streamed (no matrices) as above 4,096 networks.
    analyze_store(store.path, tmp_path / "out", matrices=False, progress=False)
    text = (tmp_path / "out" / "summary.json").read_text()
    assert json.loads(text)["pairwise"]["zarr"] is None
    lengths: list[int] = []
    _walk_lists(json.loads(text), lengths)
    # The longest lists are the fixed AUM bins (129) and per-checkpoint series (3): none grows
    # with the networks (a histogram over k = 0..N would be N + 1 long).
    assert max(lengths) <= 129
    assert len(text) < 60_000


def test_count_bins_are_exact_for_few_networks_and_bounded_for_many():
    np.testing.assert_array_equal(count_bins(10), np.arange(12))
    edges = count_bins(100_000)
    assert edges[0] == 0 and edges[1] == 1  # k = 0 alone
    assert edges[-2] == 100_000 and edges[-1] == 100_001  # k = N alone
    assert edges.size - 1 <= 52
    assert (np.diff(edges) > 0).all()
    # Every k falls in exactly one bin.
    counts = np.add.reduceat(np.ones(100_001), edges[:-1])
    assert counts.sum() == 100_001 and counts[0] == counts[-1] == 1

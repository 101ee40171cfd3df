"""Pairwise summaries with several groups of networks: the network bootstrap of pooled means
(issue 12: the interval of pooled kappa could miss its mean) and the summaries per example
group."""

import numpy as np
import pytest

import engine
from engine.pairwise import pairwise_report
from engine.pairwise.inputs import network_weights
from tests.reference_pairwise import pairwise_matrices

GROUPS = 4
PER_GROUP = 6
EXAMPLES = 400


def _grouped_store(path, seed=3):
    """Networks of a group right on the same examples up to 8% noise, groups independent of
    each other: kappa about 0.7 within groups and 0 between them, little spread among the
    networks of a group (the network interval is narrow)."""
    rng = np.random.default_rng(seed)
    networks = GROUPS * PER_GROUP
    labels = rng.integers(0, 2, EXAMPLES).astype(np.int32)
    writer = engine.create_population(
        path,
        dataset_name="grouped",
        splits={"test": engine.SplitSpec(labels=labels, predictions=False, fingerprint="grouped")},
        groups=[engine.GroupSpec(f"g{g}", "synthetic", PER_GROUP, {}) for g in range(GROUPS)],
        checkpoint_epochs=np.array([1.0]),
        network_block=PER_GROUP,
    )
    patterns = rng.random((GROUPS, EXAMPLES)) < 0.6
    for g in range(GROUPS):
        noise = rng.random((PER_GROUP, EXAMPLES)) < 0.08
        correct = patterns[g][None, :] ^ noise
        span = (g * PER_GROUP, (g + 1) * PER_GROUP)
        writer.record("test", 0, span, correct=correct)
        writer.mark_checkpoint(0, span)
    return engine.open_population(path)


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    return _grouped_store(tmp_path_factory.mktemp("grouped") / "grouped.zarr")


def test_pooled_network_interval_holds_its_mean(grouped, tmp_path):
    """Before the fix each replicate pooled its own weighted pairs, which lose within-group
    pairs only (a network drawn twice is not paired with its copy): here the replicates of the
    pooled mean sat about 0.02 below it, past the whole interval."""
    report = pairwise_report(grouped, tmp_path, bootstrap=200, figures=False, seed=1)
    summary = report["splits"]["test"]["checkpoints"]["0"]
    within, between = summary["kappa"]["within"]["mean"], summary["kappa"]["between"]["mean"]
    assert within > 0.6 and abs(between) < 0.05  # the structure planted
    for statistic in ("kappa", "agreement"):
        for kind in ("all", "within", "between"):
            entry = summary[statistic][kind]
            low, high = entry["networks_ci"]
            assert low <= entry["mean"] <= high, (statistic, kind, entry)
            # Centred: the mean is not at an end of its interval.
            assert low + 0.1 * (high - low) < entry["mean"] < high - 0.1 * (high - low)


def test_pooled_replicate_weighs_group_pairs_as_the_estimate(grouped, tmp_path):
    """One replicate: its pooled mean is the estimate's pair-weighted mean of its group pairs'
    means, each the weighted mean over that group pair's distinct-network pairs."""
    report = pairwise_report(grouped, tmp_path, bootstrap=1, seed=5, figures=False)
    groups = grouped.network_groups()
    weights = network_weights(groups, 1, np.random.default_rng(5))[:, 0].astype(np.float64)
    correct = grouped.correct("test").compute()[:, 0]
    kappa = pairwise_matrices(correct)["kappa"].astype(np.float64)
    upper = np.triu(np.ones(kappa.shape, bool), 1) & np.isfinite(kappa)
    numerator, denominator = 0.0, 0.0
    for g in range(GROUPS):
        for h in range(g, GROUPS):
            pairs = upper & (
                ((groups[:, None] == g) & (groups[None, :] == h))
                | ((groups[:, None] == h) & (groups[None, :] == g))
            )
            w = np.outer(weights, weights) * pairs
            mean = (w * np.nan_to_num(kappa)).sum() / w.sum()
            numerator += pairs.sum() * mean
            denominator += pairs.sum()
    low, high = report["splits"]["test"]["checkpoints"]["0"]["kappa"]["all"]["networks_ci"]
    assert low == pytest.approx(numerator / denominator, rel=1e-5)
    assert high == pytest.approx(numerator / denominator, rel=1e-5)

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


def _metadata_store(path, networks=22, examples=300, classes=4, seed=8, one_value=False):
    """Two groups of networks with predictions; examples in three conditions (and some with
    none), the ``hard`` ones mostly wrong; or (``one_value``) every example of one condition,
    ``mixed``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, examples).astype(np.int32)
    condition = np.array(["easy", "hard", "mixed"], dtype=object)[rng.integers(0, 3, examples)]
    condition[:7] = None
    if one_value:
        condition[:] = "mixed"
    writer = engine.create_population(
        path,
        dataset_name="conditions",
        splits={
            "test": engine.SplitSpec(
                labels=labels, fingerprint="conditions", metadata={"condition": condition}
            )
        },
        groups=[engine.GroupSpec("a", "x", 10, {}), engine.GroupSpec("b", "y", networks - 10, {})],
        checkpoint_epochs=np.array([1.0]),
        class_names=[str(c) for c in range(classes)],
        network_block=8,
    )
    accuracy = np.where(condition == "hard", 0.3, np.where(condition == "easy", 0.9, 0.6))
    shared = rng.random(examples)
    for start in range(0, networks, 8):
        stop = min(start + 8, networks)
        # Half of each verdict shared by every network, half its own: kappa above 0.
        own = rng.random((stop - start, examples))
        draw = np.where(rng.random((stop - start, examples)) < 0.5, shared, own)
        right = draw < accuracy
        wrong = (labels + rng.integers(1, classes, (stop - start, examples))) % classes
        writer.record("test", 0, (start, stop), predictions=np.where(right, labels, wrong))
        writer.mark_checkpoint(0, (start, stop))
    return engine.open_population(path), condition


def _mean_over_pairs(matrix, mask):
    values = matrix[mask].astype(np.float64)
    return np.nanmean(values)


def test_summaries_per_example_group(tmp_path):
    population, condition = _metadata_store(tmp_path / "conditions.zarr")
    report = pairwise_report(
        population, tmp_path / "out", bootstrap=30, figures=False, by="condition", block=8
    )
    summary = report["splits"]["test"]["checkpoints"]["0"]["by"]
    assert summary["column"] == "condition"
    assert list(summary["values"]) == ["easy", "hard", "mixed"]
    correct = population.correct("test").compute()[:, 0]
    predictions = population.predictions("test").compute()[:, 0]
    groups = population.network_groups()
    upper = np.triu(np.ones((22, 22), bool), 1)
    for value, entry in summary["values"].items():
        chosen = np.flatnonzero(condition == value)
        assert entry["examples"] == chosen.size
        direct = pairwise_matrices(correct[:, chosen], predictions[:, chosen])
        kappa = direct["kappa"].astype(np.float64)
        assert entry["kappa"]["mean"] == pytest.approx(_mean_over_pairs(kappa, upper), rel=1e-5)
        assert entry["kappa"]["pairs"] == int(np.isfinite(kappa[upper]).sum())
        for g in range(2):
            for h in range(2):
                mask = upper | upper.T
                mask &= (groups[:, None] == g) & (groups[None, :] == h)
                assert entry["kappa"]["group_means"][g][h] == pytest.approx(
                    _mean_over_pairs(kappa, mask), rel=1e-5
                ), (value, g, h)
        for name, matrix in (("agreement", "agree"), ("prediction_agreement", "prediction_agree")):
            expected = _mean_over_pairs(direct[matrix] / chosen.size, upper)
            assert entry[name]["mean"] == pytest.approx(expected, rel=1e-9), (value, name)
            low, high = entry[name]["examples_ci"]
            assert low < high
    values = summary["values"]
    # The planted conditions: the networks agree more on the easy examples than on the hard.
    assert values["easy"]["agreement"]["mean"] > values["hard"]["agreement"]["mean"]


def test_summaries_per_example_group_need_the_column(tmp_path):
    from engine.errors import ConfigError

    population, _ = _metadata_store(tmp_path / "conditions.zarr", networks=12)
    with pytest.raises(ConfigError, match="no such metadata column; it has condition"):
        pairwise_report(population, tmp_path / "out", by="severity", figures=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("method", ["exact", "linearised"])
def test_network_intervals_per_example_group(tmp_path, monkeypatch, method):
    # One value holding every example: its network intervals are the whole matrix's, by the
    # same method (exact up to EXACT_BOOTSTRAP_NETWORKS, else linearised; the same network
    # weights; sums taken in another order).
    from engine.pairwise import inputs

    if method == "linearised":
        monkeypatch.setattr(inputs, "EXACT_BOOTSTRAP_NETWORKS", 0)
    population, _ = _metadata_store(tmp_path / "one.zarr", one_value=True)
    report = pairwise_report(
        population, tmp_path / "out", bootstrap=40, figures=False, by="condition", block=8
    )
    summary = report["splits"]["test"]["checkpoints"]["0"]
    assert summary["networks_ci_method"] == method
    assert summary["by"]["networks_ci_method"] == method
    entry = summary["by"]["values"]["mixed"]
    for name in ("kappa", "agreement"):
        whole = summary[name]["all"]
        assert entry[name]["mean"] == pytest.approx(whole["mean"], rel=1e-9)
        assert entry[name]["networks_ci"] == pytest.approx(whole["networks_ci"], rel=1e-6)
        low, high = entry[name]["networks_ci"]
        assert low < high
    assert entry["prediction_agreement"]["networks_ci"] is None
    # Three values: each has an interval of its own, about its own mean.
    population, _ = _metadata_store(tmp_path / "three.zarr")
    report = pairwise_report(
        population, tmp_path / "out3", bootstrap=40, figures=False, by="condition", block=8
    )
    values = report["splits"]["test"]["checkpoints"]["0"]["by"]["values"]
    for value, entry in values.items():
        for name in ("kappa", "agreement"):
            low, high = entry[name]["networks_ci"]
            assert low < high, (value, name)
            assert low - 0.05 < entry[name]["mean"] < high + 0.05, (value, name)
    assert (
        values["easy"]["agreement"]["networks_ci"][0]
        > values["hard"]["agreement"]["networks_ci"][1]
    )

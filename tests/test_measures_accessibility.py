"""Accessibility's checkpoints: an initialisation checkpoint is left out by default, kept on
request, and the split-half reliability follows the same window; both equal NumPy on the
verdicts of a simulated store, under other chunkings, and `summary.json` records the choice."""

from __future__ import annotations

import json

import dask
import numpy as np
import pytest

from engine.errors import ConfigError
from engine.measures import (
    accessibility_window,
    select_networks,
    spearman,
    spearman_brown,
    split_measures,
    verdict_statistics,
)
from engine.testing import simulate_population


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    path = tmp_path_factory.mktemp("acc") / "pop.zarr"
    # Blocks of 4 checkpoints and 16 networks: checkpoint 0 lies in the first block only, and
    # a group straddles blocks of networks.
    return simulate_population(
        path,
        networks=40,
        checkpoints=6,
        splits={"test": 300},
        groups=2,
        checkpoint_block=4,
        network_block=16,
    )


def _window(population, rule):
    table = population.checkpoints
    return accessibility_window(table["epoch"].to_numpy(), table["step"].to_numpy(), rule)


def _reference(population, selection, start):
    """Accessibility and the mean split-half reliability from the verdicts, in NumPy."""
    correct = np.asarray(population.correct("test")).astype(np.int64)[:, start:]  # (n, t, x)
    accessibility = correct.mean(axis=(0, 1))
    reliabilities = []
    for half in selection.network_half.astype(bool):
        first = correct[half].mean(axis=(0, 1))
        second = correct[~half].mean(axis=(0, 1))
        reliabilities.append(spearman_brown(spearman(first, second)))
    return accessibility, float(np.mean(reliabilities))


@pytest.mark.parametrize(
    "epochs,steps,rule,start",
    [
        ([0.0, 1.0, 2.0], [0, 10, 20], "first-trained", 1),
        ([0.0, 1.0, 2.0], [-1, -1, -1], "first-trained", 1),  # steps unknown (imports)
        ([0.0, 1.0, 2.0], [0, 10, 20], "initialisation", 0),
        ([1.0, 2.0, 3.0], [10, 20, 30], "first-trained", 0),  # no initialisation checkpoint
        ([0.0, 0.5, 1.0], [5, 10, 20], "first-trained", 0),  # epoch 0 but a trained step
        ([0.0], [0], "first-trained", 0),  # one checkpoint: nothing else to average
        ([np.nan, np.nan], [-1, -1], "first-trained", 0),  # epochs unknown ('final')
    ],
)
def test_the_window_leaves_out_only_an_initialisation_checkpoint(epochs, steps, rule, start):
    window = accessibility_window(np.array(epochs), np.array(steps), rule)
    assert window.start == start
    assert window.checkpoints == len(epochs) - start
    assert window.summary()["initialisation_left_out"] is (start == 1)


def test_an_unknown_rule_is_refused():
    with pytest.raises(ConfigError, match="first-trained, initialisation"):
        accessibility_window(np.zeros(2), np.zeros(2, np.int64), "first")


@pytest.mark.parametrize("rule,start", [("first-trained", 1), ("initialisation", 0)])
@pytest.mark.parametrize("per_task", [None, (8, 64)])
def test_accessibility_and_split_half_equal_numpy(population, rule, start, per_task):
    selection = select_networks(population)
    options = {}
    if per_task is not None:
        options = {"networks_per_task": per_task[0], "examples_per_task": per_task[1]}
    (counts,) = dask.compute(verdict_statistics(population, "test", selection, **options))
    window = _window(population, rule)
    assert window.start == start
    measures = split_measures(
        counts, selection, [0, 1], population.labels("test"), accessibility=window
    )
    accessibility, reliability = _reference(population, selection, start)
    np.testing.assert_allclose(measures["examples"]["accessibility"], accessibility)
    assert measures["summary"]["split_half_spearman"] == pytest.approx(reliability)
    assert measures["summary"]["accessibility_from"] == {
        "rule": rule,
        "first_checkpoint": start,
        "checkpoints": 6 - start,
        "initialisation_checkpoint": True,
        "initialisation_left_out": start == 1,
    }
    # The two readings differ on this store: the test can tell them apart.
    other, _ = _reference(population, selection, 1 - start)
    assert not np.allclose(accessibility, other)


def test_without_a_window_every_checkpoint_counts(population):
    selection = select_networks(population)
    (counts,) = dask.compute(verdict_statistics(population, "test", selection))
    measures = split_measures(counts, selection, [0, 1], population.labels("test"))
    accessibility, _ = _reference(population, selection, 0)
    np.testing.assert_allclose(measures["examples"]["accessibility"], accessibility)
    assert measures["summary"]["accessibility_from"]["first_checkpoint"] == 0


@pytest.mark.parametrize("flag,start", [([], 1), (["--accessibility-from", "initialisation"], 0)])
def test_analyze_records_the_choice(population, tmp_path, capsys, flag, start):
    from cli.app import main

    out = tmp_path / "out"
    code = main(
        ["analyze", str(population.path), "-o", str(out), "--no-progress", *flag]
        + ["--pairwise-checkpoints", "none"]
    )
    assert code == 0, capsys.readouterr().err
    split = json.loads((out / "summary.json").read_text())["splits"]["test"]
    assert split["accessibility_from"]["first_checkpoint"] == start
    accessibility, _ = _reference(population, select_networks(population), start)
    assert split["accessibility_mean"] == pytest.approx(accessibility.mean())
    # The report says which checkpoints were averaged, as summary.json does.
    page = (out / "report.html").read_text()
    said = "after the initialisation" if start else "the initialisation included"
    assert "test: accessibility averages TP-agreement over" in page and said in page


def test_a_misspelt_rule_is_a_usage_error(population, tmp_path, capsys):
    from cli.app import main

    out = tmp_path / "out"
    code = main(["analyze", str(population.path), "-o", str(out), "--accessibility-from", "init"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--accessibility-from" in err and "first-trained" in err and "initialisation" in err
    assert not out.exists()


# ----------------------------------------------------------------------------------------------
# compare: checkpoint grids that differ are said, with how accessibility was made comparable


def test_checkpoint_grids_warn_of_other_epochs_and_initialisations():
    from engine.measures import checkpoint_grids

    def window(epochs):
        return accessibility_window(np.array(epochs), np.full(len(epochs), -1))

    same = checkpoint_grids(["a", "b"], [np.arange(3.0)] * 2, [window([0, 1, 2])] * 2)
    assert same["warnings"] == [] and same["same_checkpoints"] is True
    shifted = [np.array([0.0, 1, 2]), np.array([0.0, 2, 4])]
    other = checkpoint_grids(["a", "b"], shifted, [window(e) for e in shifted])
    assert len(other["warnings"]) == 1 and "different epochs" in other["warnings"][0]
    no_init = [np.array([0.0, 1, 2]), np.array([1.0, 2, 3])]
    mixed = checkpoint_grids(["a", "b"], no_init, [window(e) for e in no_init])
    assert any("a: left out, b: none" in w for w in mixed["warnings"])
    assert "first trained" in mixed["how"]


@pytest.mark.parametrize("checkpoints", [4, 7])
def test_compare_warns_when_checkpoint_counts_differ(tmp_path, capsys, checkpoints):
    from cli.app import main

    def store(name, t):
        return simulate_population(
            tmp_path / name, networks=8, checkpoints=t, splits={"test": 60}, seed=1
        ).path

    out = tmp_path / "out"
    args = ["compare", store("a.zarr", 4), store("b.zarr", checkpoints), "-o", str(out)]
    code = main([*args, "--no-progress", "--no-pairwise"])
    err = capsys.readouterr().err
    assert code == 0, err
    grids = json.loads((out / "summary.json").read_text())["checkpoint_grids"]
    assert grids["checkpoints"] == {"a": 4, "b": checkpoints}
    assert grids["accessibility"]["b"]["first_checkpoint"] == 1
    if checkpoints == 4:
        assert grids["warnings"] == [] and "warning" not in err
    else:
        assert "warning: the populations have different checkpoint counts (a: 4, b: 7)" in err
        assert "note: accessibility is each population's mean" in err
        assert grids["warnings"] and grids["how"]
        # The page says it too, not only the terminal.
        page = (out / "report.html").read_text()
        assert "Warning: the populations have different checkpoint counts (a: 4, b: 7)" in page
        assert "Accessibility is each population&#39;s mean" in page
    assert "measures computed in" in (out / "report.html").read_text()


@pytest.mark.parametrize("flag,start", [([], 1), (["--accessibility-from", "initialisation"], 0)])
def test_select_by_accessibility_follows_the_choice(population, tmp_path, capsys, flag, start):
    from cli.app import main

    out = tmp_path / "ids.npy"
    args = ["select", str(population.path), "-o", str(out), "--split", "test", "--by"]
    code = main([*args, "accessibility", "--fraction", "1", "--no-progress", *flag])
    assert code == 0, capsys.readouterr().err
    accessibility, _ = _reference(population, select_networks(population), start)
    order = np.argsort(-accessibility, kind="stable")
    np.testing.assert_array_equal(np.load(out), population.example_ids("test")[order])

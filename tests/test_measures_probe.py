"""A split without true labels (a probe set): its verdicts are wrong by construction, so no
measure of correctness is reported there (no "mean pairwise agreement 1.000"), and what is
defined (prediction agreement, consensus) is, with the reason written beside it."""

from __future__ import annotations

import json

import pytest

from cli.app import main
from engine.testing import simulate_population


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe")
    population = simulate_population(
        folder / "pop.zarr",
        networks=8,
        checkpoints=3,
        splits={"test": 64},
        probe_examples=40,
        predictions=True,
    )
    out = folder / "out"
    args = ["analyze", str(population.path), "-o", str(out), "--no-progress"]
    assert main([*args, "--pairwise-checkpoints", "all"]) == 0
    return population, out


def test_the_store_has_a_probe_split(analysed):
    population, _ = analysed
    assert "probe" in population.splits and not population.has_labels("probe")


def test_summary_says_what_is_defined_on_a_probe_split(analysed):
    _, out = analysed
    summary = json.loads((out / "summary.json").read_text())
    probe, test = summary["splits"]["probe"], summary["splits"]["test"]
    assert probe["without_labels"]["defined"] == ["consensus", "prediction_agreement"]
    assert "accessibility" in probe["without_labels"]["undefined"]
    assert probe["accuracy_mean"] is None and "accessibility_mean" not in probe
    assert probe["consensus"]["mean"][-1] is not None
    assert "without_labels" not in test


def test_pairwise_agreement_is_not_reported_on_a_probe_split(analysed):
    _, out = analysed
    pairwise = json.loads((out / "summary.json").read_text())["pairwise"]["splits"]
    probe = pairwise["probe"]
    assert probe["has_labels"] is False and "no true labels" in probe["undefined"]["why"]
    for t, entry in probe["checkpoints"].items():
        for key in ("agreement", "kappa"):
            assert entry[key]["all"]["mean"] is None, (t, key)
            assert entry[key]["group_means"] == [[None]]
        assert 0 <= entry["prediction_agreement"]["all"]["mean"] < 1
    # The labelled split keeps its numbers: the rule is not "drop everything".
    test = pairwise["test"]["checkpoints"]
    assert all(entry["agreement"]["all"]["mean"] is not None for entry in test.values())
    page = (out / "report.html").read_text()
    assert "probe: mean pairwise agreement" not in page
    assert "probe: mean prediction agreement" in page


def test_the_pairwise_command_prints_no_agreement_on_a_probe_split(analysed, tmp_path, capsys):
    population, _ = analysed
    out = tmp_path / "pw"
    args = ["pairwise", str(population.path), "-o", str(out), "--no-figures", "--bootstrap", "0"]
    assert main(args) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "probe: the split has no true labels" in printed
    report = json.loads((out / "pairwise.json").read_text())
    last = max(report["splits"]["probe"]["checkpoints"], key=int)
    assert report["splits"]["probe"]["checkpoints"][last]["agreement"]["all"]["mean"] is None

"""examples/: a tiny version of study 1 end to end (train from the study file, analyse, check the
report and that its numbers make sense), the study files, and the script that builds the findings.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli.app import main
from engine.train import load_study

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _findings():
    spec = importlib.util.spec_from_file_location("findings", EXAMPLES / "findings.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["findings"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _tiny_study1(tmp_path: Path) -> Path:
    """examples/study1_digits.toml with 4 networks a group (MLPs of width 16, CNNs of 4) and
    3 epochs."""
    study = tomllib.loads((EXAMPLES / "study1_digits.toml").read_text())
    lines = [f"epochs = 3\nseed = {study['seed']}\nvary = {json.dumps(study['vary'])}"]
    lines.append(f'soft = {str(study["soft"]).lower()}\n\n[data]\nname = "digits"\n')
    lines.append("[defaults]\n" + "".join(f"{k} = {v}\n" for k, v in study["defaults"].items()))
    for group in study["groups"]:
        lines.append(
            f'[[groups]]\nname = "{group["name"]}"\narch = "{group["arch"]}"\n'
            f"width = {16 if group['arch'] == 'mlp' else 4}\nnetworks = 4\n"
        )
    path = tmp_path / "tiny.toml"
    path.write_text("\n".join(lines))
    return path


def test_every_study_file_loads():
    for path in sorted(EXAMPLES.glob("study*.toml")):
        if path.name == "study6_noise.toml":
            continue  # an npz study: it needs --data-dir, checked below
        study = load_study(path)
        assert all(group.networks >= 32 for group in study.groups), path.name


def test_run_all_has_every_study_and_findings_quotes_it():
    findings = _findings()
    subprocess.run(["bash", "-n", str(EXAMPLES / "run_all.sh")], check=True)
    for n in range(1, 7):
        text = findings.command(n)
        assert text.startswith("```bash\n") and "engine " in text
        assert "$ENGINE" not in text and "$RUNS" not in text
    assert "study6_noise.toml --data-dir" in findings.command(6)


def test_noisy_labels_flip_the_share_asked_for():
    spec = importlib.util.spec_from_file_location("noisy", EXAMPLES / "make_noisy_mnist1d.py")
    assert spec is not None and spec.loader is not None
    noisy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(noisy)
    labels = np.arange(1000) % 10
    flipped = noisy.noisy_labels(labels, 0.2, 10, seed=0)
    assert (flipped != labels).sum() == 200
    assert flipped.min() >= 0 and flipped.max() <= 9


def test_expected_agreement_of_independent_networks():
    findings = _findings()
    accuracy = np.array([0.9, 0.8, 0.7])
    pairs = [(0.9, 0.8), (0.9, 0.7), (0.8, 0.7)]
    want = np.mean([a * b + (1 - a) * (1 - b) for a, b in pairs])
    assert findings.expected_agreement(accuracy, accuracy, same=True) == pytest.approx(want)


def test_tiny_study1_end_to_end(tmp_path: Path):
    store, out = tmp_path / "study1.zarr", tmp_path / "results"
    study = _tiny_study1(tmp_path)
    command = ["train-population", "--study", str(study), "--threads", "1", "--quiet"]
    assert main([*command, "--out", str(store)]) == 0
    assert main(["analyze", str(store), "--out", str(out), "--no-progress"]) == 0
    assert (out / "report.html").stat().st_size > 10_000
    summary = json.loads((out / "summary.json").read_text())
    test = summary["splits"]["test"]
    groups = test["groups"]
    histograms = pd.read_parquet(out / "histograms.parquet")
    assert set(groups) == {"mlp_a", "mlp_b", "cnn_a", "cnn_b"}
    for name, g in groups.items():
        accuracy = g["accuracy_mean"]
        # Near chance (0.1) at initialisation, five times chance or more after 3 epochs.
        assert accuracy[0] < 0.35 and accuracy[-1] > 0.5, name
        rows = histograms[(histograms.split == "test") & (histograms.group == name)]
        rows = rows[rows.measure == "tpa"]
        counts = rows.pivot(index="checkpoint", columns="k", values="examples").to_numpy()
        assert counts.shape == (4, 5) and (counts.sum(axis=1) == test["examples"]).all()
        excess = [e for e in g["agreement_excess"] if e is not None]
        assert all(-1 <= e <= 1 for e in excess)
    pair = _findings().comparison(test, "mlp_a", "mlp_b")
    assert -1 <= pair["spearman"] <= 1 and pair["ceiling"] is not None
    assert 0 <= pair["superset_fraction"] <= 1
    examples = pd.read_parquet(out / "examples.parquet")
    assert {"tpa_last", "population_region"} <= set(examples.columns)
    assert examples.loc[examples["split"] == "test", "tpa_last"].between(0, 1).all()
    assert (out / "tpa_histogram_test.png").exists() and (out / "data_map_test.png").exists()

"""`engine analyze --by COLUMN`: the measures of each value of an example-metadata column are
those of a store that holds only that value's examples."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import engine
from engine.errors import ConfigError
from engine.report import analyze_store
from engine.report.tables import bounded_summary

NETWORKS, CHECKPOINTS, EXAMPLES, CLASSES = 6, 3, 40, 4
CONDITIONS = np.array(["clean", "blur", "noise", "blur"] * 10, dtype=object)
CONDITIONS[7] = None


def _store(path, examples=None, metadata=True):
    """A store of random logits (soft verdicts, predictions) whose test split has a
    ``condition`` column; only ``examples`` of it (every one by default)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, CLASSES, EXAMPLES)
    labels[3] = -1
    logits = rng.normal(0, 1, (CHECKPOINTS, NETWORKS, EXAMPLES, CLASSES)).astype(np.float32)
    logits += (
        2.0
        * np.eye(CLASSES, dtype=np.float32)[np.maximum(labels, 0)]
        * (rng.random(EXAMPLES)[:, None] < 0.6)
    )
    keep = np.arange(EXAMPLES) if examples is None else examples
    spec = engine.SplitSpec(
        labels=labels[keep],
        example_ids=keep,
        fingerprint="t",
        soft=True,
        metadata={"condition": CONDITIONS[keep], "severity": keep % 2} if metadata else {},
    )
    writer = engine.create_population(
        path,
        dataset_name="d",
        splits={"test": spec},
        groups=[engine.GroupSpec("a", "mlp", 3), engine.GroupSpec("b", "cnn", 3)],
        checkpoint_epochs=np.arange(CHECKPOINTS),
        class_names=[str(c) for c in range(CLASSES)],
    )
    for t in range(CHECKPOINTS):
        writer.record("test", t, (0, NETWORKS), logits=logits[t][:, keep])
        writer.mark_checkpoint(t, (0, NETWORKS))
    return path


def _assert_close(got, expected, where):
    if isinstance(got, dict):
        assert set(got) == set(expected), where
        for key in got:
            _assert_close(got[key], expected[key], f"{where}.{key}")
    elif isinstance(got, float):
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), where
    else:
        assert got == expected, where


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("by")
    store = _store(folder / "all.zarr")
    analyze_store(
        str(store), folder / "out", by="condition", progress=False, pairwise_checkpoints="none"
    )
    return folder, json.loads((folder / "out" / "summary.json").read_text())


def test_each_value_measures_as_a_store_of_only_its_examples(analysed):
    folder, summary = analysed
    by = summary["splits"]["test"]["by"]
    assert by["column"] == "condition"
    assert list(by["values"]) == ["blur", "clean", "noise"]
    for value, section in by["values"].items():
        keep = np.flatnonzero(CONDITIONS == value)
        store = _store(folder / f"{value}.zarr", keep)
        analyze_store(
            str(store), folder / f"out-{value}", progress=False, pairwise_checkpoints="none"
        )
        alone = json.loads((folder / f"out-{value}" / "summary.json").read_text())
        expected = bounded_summary(alone["splits"]["test"], CHECKPOINTS)
        assert section["examples"] == keep.size == expected["examples"]
        assert "accuracy_mean" in section and "soft" in section and "consensus_last" in section
        for key, number in section.items():
            _assert_close(number, expected[key], key)
        assert not any(isinstance(v, list) for v in section.values())


def test_examples_table_and_page_carry_the_column(analysed):
    folder, _ = analysed
    table = pd.read_parquet(folder / "out" / "examples.parquet")
    assert table["condition"].tolist()[:3] == ["clean", "blur", "noise"]
    assert pd.isna(table["condition"][7])
    page = (folder / "out" / "report.html").read_text()
    assert "condition = blur" in page


def test_bad_columns_are_refused_before_anything_is_written(tmp_path):
    store = _store(tmp_path / "s.zarr")
    with pytest.raises(
        ConfigError, match="has no such metadata column; it has condition, severity"
    ):
        analyze_store(str(store), tmp_path / "out", by="corruption", progress=False)
    assert not (tmp_path / "out").exists()
    bare = _store(tmp_path / "bare.zarr", metadata=False)
    with pytest.raises(ConfigError, match="split 'test' has no example metadata"):
        analyze_store(str(bare), tmp_path / "out", by="condition", progress=False)


def test_too_many_values_are_refused(tmp_path, monkeypatch):
    from engine.report import run

    monkeypatch.setattr(run, "MAX_BY_VALUES", 2)
    store = _store(tmp_path / "s.zarr")
    with pytest.raises(ConfigError, match="has 3 values, at most 2 are reported"):
        analyze_store(str(store), tmp_path / "out", by="condition", progress=False)


def test_the_cli_takes_by(tmp_path):
    from cli.app import app

    store = _store(tmp_path / "s.zarr")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "analyze",
            str(store),
            "--out",
            str(out),
            "--by",
            "severity",
            "--pairwise-checkpoints",
            "none",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    by = json.loads((out / "summary.json").read_text())["splits"]["test"]["by"]
    assert list(by["values"]) == ["0", "1"]


def test_page_shows_pairwise_kappa_per_value(tmp_path):
    # With the pairwise measures, each value's row carries its mean pairwise kappa and the
    # network interval from the pairwise summary.
    from engine.report.sections import number

    store = _store(tmp_path / "s.zarr")
    analyze_store(str(store), tmp_path / "out", by="condition", progress=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    checkpoints = summary["pairwise"]["splits"]["test"]["checkpoints"]
    kappa = checkpoints[max(checkpoints, key=int)]["by"]["values"]["blur"]["kappa"]
    low, high = kappa["networks_ci"]
    page = (tmp_path / "out" / "report.html").read_text()
    assert "pairwise kappa [networks 95%]" in page
    assert f"{number(kappa['mean'])} [{number(low)}, {number(high)}]" in page

"""The report package: the page rendered from its template, its numbers, and what analyze hands
down to the pairwise measures."""

from __future__ import annotations

import importlib.resources
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.report import analyze_store
from engine.report import html as page_html
from engine.report.figures import embedded
from engine.report.sections import pairwise_rows
from engine.testing import simulate_population


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "pop.zarr"
    return simulate_population(
        path,
        networks=10,
        checkpoints=3,
        splits={"train": 60, "test": 20},
        seed=5,
        network_block=8,
        complete=8,
    )


def test_only_png_files_are_embedded():
    assert embedded(["x.png", "pairwise.zarr", Path("y.json"), Path("z.png")]) == [
        Path("x.png"),
        Path("z.png"),
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "-"),
        (float("nan"), "-"),
        (float("inf"), "-"),
        (0.0, "0.000"),
        (0.5, "0.500"),
        (0.0001234, "0.000123"),
        (-2.5, "-2.500"),
        (np.float64(0.25), "0.250"),
        (7, "7"),
    ],
)
def test_numbers_on_the_page(value, shown):
    assert page_html.number(value) == shown


def test_pairwise_rows_show_the_last_checkpoint_with_intervals():
    summary = {
        "splits": {},
        "pairwise": {
            "splits": {
                "test": {
                    "checkpoints": {
                        "2": {"kappa": {"all": {"mean": 0.1, "networks_ci": [0.05, 0.2]}}},
                        "10": {
                            "kappa": {"all": {"mean": 0.3, "networks_ci": None}},
                            "agreement": {"all": {"mean": None}},
                        },
                    }
                }
            }
        },
    }
    assert pairwise_rows(summary) == [("test: mean pairwise kappa (checkpoint 10)", "0.300")]


def test_template_ships_in_the_package():
    template = importlib.resources.files("engine.report") / "templates" / page_html.TEMPLATE
    assert template.is_file()
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "templates/*" in pyproject["tool"]["setuptools"]["package-data"]["engine.report"]
    assert any(d.startswith("jinja2") for d in pyproject["project"]["dependencies"])


def test_bad_pairwise_checkpoints_write_nothing(store, tmp_path):
    with pytest.raises(ConfigError, match="checkpoint"):
        analyze_store(store.path, tmp_path / "out", pairwise_checkpoints="later", progress=False)
    with pytest.raises(ConfigError, match="outside"):
        analyze_store(store.path, tmp_path / "out", pairwise_checkpoints="7", progress=False)
    assert not (tmp_path / "out").exists()


def test_pairwise_gets_the_selection_resolved_once(store, tmp_path, monkeypatch):
    import engine.pairwise

    calls = []

    def pairwise_report(population, out_dir, **options):
        calls.append((population, options))
        return {"splits": {}, "figures": []}

    monkeypatch.setattr(engine.pairwise, "pairwise_report", pairwise_report)
    analyze_store(store.path, tmp_path, splits="test", pairwise_checkpoints="0,-1", progress=False)
    ((population, options),) = calls
    assert population.path == store.path
    assert options["splits"] == ["test"]
    assert options["checkpoints"] == [0, store.num_checkpoints - 1]
    np.testing.assert_array_equal(options["networks"], store.complete_networks())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["pairwise"] == {"splits": {}, "figures": []}
    assert summary["networks"]["analysed"] == 8

"""The report package: the page rendered from its template, its numbers, and what analyze hands
down to the pairwise measures."""

from __future__ import annotations

import base64
import html
import importlib.resources
import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.report import analyze_store
from engine.report import html as page_html
from engine.report.figures import embedded
from engine.testing import simulate_population

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
HOSTILE = "a<b>&'c\" <script>alert(1)</script>"
HOSTILE_FILE = "a<b>&'c\" <script>"  # a file name cannot hold the slash


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


def _concatenated_page(
    title: str, reading: list[str], rows: list[tuple[str, str]], figures: list[Path]
) -> str:
    """The page as engine/report.py built it by string concatenation before the template (its
    values were numbers, so escaping them here changes nothing)."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
        "img{max-width:100%;display:block;margin:1em 0}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Reading</h2><ul>"
        + "".join(f"<li>{html.escape(line)}</li>" for line in reading)
        + "</ul>",
        "<h2>Key numbers</h2><table>"
        + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
        + "</table>",
        "",
        "<h2>Figures</h2>",
    ]
    for path in figures:
        if path.exists():
            encoded = base64.b64encode(path.read_bytes()).decode("ascii")
            parts.append(
                f"<h3>{html.escape(path.stem)}</h3>"
                f"<img alt='{html.escape(path.stem)}' "
                f"src='data:image/png;base64,{encoded}'>"
            )
    parts.append(
        "<p>Full numbers: summary.json; per example: examples.parquet; per network: "
        "networks.parquet (docs/outputs.md).</p></body></html>"
    )
    return "\n".join(parts)


def _normalised(page: str) -> str:
    """Whitespace between lines dropped; jinja2 and html.escape spell two entities apart."""
    page = re.sub(r"\s*\n\s*", "", page.strip())
    return page.replace("&#39;", "&#x27;").replace("&#34;", "&quot;")


def test_template_renders_what_string_concatenation_did(tmp_path):
    figures = [
        tmp_path / "accuracy.png",
        tmp_path / f"{HOSTILE_FILE}.png",
        tmp_path / "missing.png",
    ]
    for figure in figures[:2]:
        figure.write_bytes(PNG)
    page = page_html.Page(
        f"Analysis of {HOSTILE}",
        ["one line.", f"groups {HOSTILE}"],
        [("train: accuracy (last)", "0.912"), (HOSTILE, "1 / 2")],
        figures,
    )
    rendered = page_html.render_page(page)
    expected = _concatenated_page(page.title, page.reading, page.rows, figures)
    assert _normalised(rendered) == _normalised(expected)
    assert "<script>" not in rendered
    assert rendered.count("data:image/png;base64,") == 2


def test_page_sections_are_in_order_and_figures_embedded(tmp_path):
    (tmp_path / "b.png").write_bytes(PNG)
    (tmp_path / "a.png").write_bytes(PNG + b"a")
    target = page_html.write_page(
        tmp_path, page_html.Page("T", ["r"], [("k", "v")], [tmp_path / "b.png", tmp_path / "a.png"])
    )
    assert target == tmp_path / "report.html"
    text = target.read_text(encoding="utf-8")
    marks = [
        "<title>T</title>",
        "<h1>T</h1>",
        "<h2>Reading</h2>",
        "<li>r</li>",
        "<h2>Key numbers</h2>",
        "<tr><th>k</th><td>v</td></tr>",
        "<h2>Figures</h2>",
        "<h3>b</h3>",
        "<h3>a</h3>",
        "Full numbers: summary.json",
    ]
    positions = [text.index(mark) for mark in marks]
    assert positions == sorted(positions)
    encoded = base64.b64encode(PNG + b"a").decode("ascii")
    assert f"<img alt='a' src='data:image/png;base64,{encoded}'>" in text


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
    assert page_html.key_rows(summary) == [("test: mean pairwise kappa (checkpoint 10)", "0.300")]


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

"""The self-contained ``report.html``: sections of sentences, key numbers, figures with a caption
each (interactive ones drawn by the page's own script, PNGs embedded as data URLs), the example
browser and the run's details, rendered from ``templates/report.html.j2`` with jinja2
(autoescaped: store paths, group and class names are text, never markup). Nothing is fetched:
the style and script are inlined once, so the file opens offline.

One number, one format: a share of examples or of networks (accuracy, extreme fraction, regions,
consensus, agreement between networks, superset) is a percentage in sentences and tables alike
(:func:`percent`); a score (accessibility, TP-agreement, correlations, kappa, agreement excess,
reliability) is a decimal everywhere (:func:`number`).
"""

from __future__ import annotations

import base64
import functools
import importlib.metadata
import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine._version import __version__
from engine.report.results import Comparison

if TYPE_CHECKING:
    from engine.report.results import StoreResult

TEMPLATE = "report.html.j2"
#: Packages whose versions the run's details list (those installed).
VERSIONED = (
    "numpy",
    "dask",
    "distributed",
    "zarr",
    "numba",
    "pandas",
    "scipy",
    "matplotlib",
    "jinja2",
    "torch",
    "scikit-learn",
    "mnist1d",
)


# ----------------------------------------------------------------------------------------------
# What the page is made of


@dataclass(frozen=True)
class Figure:
    """One figure of the page and the sentence under it.

    Attributes
    ----------
    name : str
        Its file stem (PNG) or an id (interactive), unique on the page.
    caption : str
        What it shows and how to read it.
    png_base64 : str
        A PNG figure, embedded.
    chart : dict, optional
        An interactive figure (:mod:`engine.report.interactive`); ``png_base64`` is then its
        static twin (the PNG file of the same figure), shown folded under it.
    """

    name: str
    caption: str
    png_base64: str = ""
    chart: dict[str, Any] | None = None

    @property
    def chart_json(self) -> str:
        """The chart as JSON safe inside ``<script>`` (no ``<``, ``>`` or ``&`` left)."""
        text = json.dumps(self.chart, separators=(",", ":"), allow_nan=False)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@dataclass(frozen=True)
class Table:
    """A table: a caption, a header and rows of text."""

    caption: str
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Section:
    """One section of the page, shown in this order: sentences, key numbers (label and
    value), tables, figures, the browser's splits."""

    id: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    rows: list[tuple[str, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    browser: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    title: str
    sections: list[Section]


# ----------------------------------------------------------------------------------------------
# Numbers


def number(value: Any, digits: int = 3) -> str:
    """A score for the page: ``digits`` decimals, or significant digits when tiny; ``-`` for
    None, NaN and infinities."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value)


def percent(value: Any) -> str:
    """A share as a percentage: one decimal, two significant digits below 0.1 %, and
    ``< 0.001%`` below that (a null's extreme fraction can be 1e-12, which no reader needs in
    full); ``-`` for None, NaN and infinities."""
    if value is None or not math.isfinite(float(value)):
        return "-"
    shown = 100 * float(value)
    if 0 < shown < 0.001:
        return "< 0.001%"
    if shown != 0 and abs(shown) < 0.1:
        return f"{shown:.2g}%"
    return f"{shown:.1f}%"


# ----------------------------------------------------------------------------------------------
# Rendering


@functools.cache
def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("engine.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@functools.cache
def _asset(name: str):
    """A file of ``templates/`` as markup to inline as it is (our own style and script, read as
    text rather than parsed as a template: the script's braces are not jinja's)."""
    import importlib.resources

    import markupsafe

    text = (importlib.resources.files("engine.report") / "templates" / name).read_text("utf-8")
    return markupsafe.Markup(text)


def render_page(page: Page) -> str:
    """The HTML of ``page``."""
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            page=page,
            style=_asset("report.css"),
            script=_asset("charts.js"),
            percent=percent,
            number=number,
        )
    )


def write_page(out_dir: Path, page: Page) -> Path:
    """Write ``out_dir/report.html`` and return its path.

    Written beside and renamed into place: a ``report.html`` marks a complete analysis
    (docs/reliability.md), so a kill during the write must not leave a truncated one.
    """
    target = Path(out_dir) / "report.html"
    partial = target.with_name(".report.html.partial")
    partial.write_text(render_page(page), encoding="utf-8")
    os.replace(partial, target)
    return target


def png_figure(path: Path, caption: str) -> Figure | None:
    """A PNG file as a figure of the page, or None where it does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    return Figure(path.stem, caption, base64.b64encode(path.read_bytes()).decode("ascii"))


# ----------------------------------------------------------------------------------------------
# analyze


def analysis_page(
    summary: dict[str, Any],
    figures: list[Path],
    captions: Mapping[str, str] | None = None,
    result: StoreResult | None = None,
    data_dir: str | None = None,
) -> Page:
    """The page of ``engine analyze`` from its ``summary.json`` and PNG figures (``captions``
    by figure stem, the rest from :func:`caption_of`); with ``result``, also the interactive
    figures and the example browser (its pictures of a data set read from files need the
    files' folder, ``data_dir``)."""
    from engine.report import sections

    started = time.perf_counter()
    pngs = sections.Figures(figures, dict(captions or {}))
    built = sections.analysis_sections(summary, pngs, result, data_dir)
    command = result.population.attrs.get("command") if result is not None else None
    details = run_details(summary, time.perf_counter() - started, command)
    return Page(f"Analysis of {summary['store']}", [*built, details])


def run_details(
    summary: dict[str, Any], page_seconds: float, population_command: str | None = None
) -> Section:
    """The run's command lines (this process's and the one that made the store), timings and
    versions."""
    execution = summary.get("execution") or {}
    rows = [
        ("store", str(summary.get("store", "-"))),
        ("data set", _dataset_text(summary.get("dataset"))),
        ("this report's command line", command_line()),
    ]
    if population_command:
        rows.append(("the store's command line", str(population_command)))
    rows += [
        ("scheduler", str(execution.get("scheduler", "-"))),
        ("measures computed in", _seconds(execution.get("measures_seconds"))),
        ("measures and pairwise measures in", _seconds(execution.get("total_seconds"))),
        ("interactive figures and browser built in", _seconds(page_seconds)),
    ]
    return Section(
        "run",
        "Run details",
        paragraphs=[
            "Full numbers: summary.json; per example: examples.parquet; per network: "
            "networks.parquet; exact histograms: histograms.parquet (docs/outputs.md)."
        ],
        rows=rows,
        tables=[versions_table()],
    )


def command_line() -> str:
    """This process's command line as a shell would take it (``python`` before a script or
    ``-c``, which Python leaves out of ``sys.argv``)."""
    argv = list(sys.argv) or ["-"]
    if argv[0] in ("", "-c", "-m") or argv[0].endswith(".py"):
        argv.insert(0, Path(sys.executable).name)
    return shlex.join(argv)


def _dataset_text(dataset: Any) -> str:
    if not isinstance(dataset, dict):
        return "-"
    return f"{dataset.get('name', '-')} (fingerprint {str(dataset.get('fingerprint', ''))[:12]})"


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f} s"


def versions_table() -> Table:
    """This engine's, Python's and the installed packages' versions."""
    rows = [["engine", __version__], ["python", platform.python_version()]]
    for name in VERSIONED:
        try:
            rows.append([name, importlib.metadata.version(name)])
        except importlib.metadata.PackageNotFoundError:
            continue
    return Table("Versions", ["package", "version"], rows)


# ----------------------------------------------------------------------------------------------
# compare


def comparison_page(
    comparison: Comparison, figures: list[Path], summary: Mapping[str, Any] | None = None
) -> Page:
    """The page of ``engine compare``; from its ``summary`` (summary.json), how accessibility
    was made comparable, the warnings the command printed, and the timings."""
    from engine.report import sections

    summary = summary or {}
    paragraphs = comparison_reading(comparison)
    grids = summary.get("checkpoint_grids")
    if grids is not None:
        how = grids["how"]
        paragraphs += [
            how[:1].upper() + how[1:] + ".",
            *(f"Warning: {w}." for w in grids["warnings"]),
        ]
    overview = Section(
        "overview",
        "Overview",
        paragraphs=paragraphs,
        rows=comparison_rows(comparison),
    )
    pngs = sections.Figures(figures, comparison_captions(comparison, figures))
    shown = [f for f in (pngs.take(path.stem) for path in map(Path, figures)) if f is not None]
    parts = [overview, Section("figures", "Figures", figures=shown)]
    details = Section(
        "run",
        "Run details",
        rows=[
            ("this report's command line", command_line()),
            (
                "measures computed in",
                _seconds((summary.get("execution") or {}).get("measures_seconds")),
            ),
        ],
        tables=[versions_table()],
    )
    return Page("Comparison of " + ", ".join(comparison.names), [*parts, details])


def comparison_captions(comparison: Comparison, figures: list[Path]) -> dict[str, str]:
    """Captions of the figures of ``engine compare`` that name the stores they compare."""
    import re

    names = comparison.names
    captions = {}
    for split in comparison.labelled:
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                captions[f"accessibility_{split}_{a}_{b}"] = (
                    f"{split}: each example's accessibility in {a} (across) against {b} (up); "
                    f"points on the diagonal are learned alike, points below it are more "
                    f"accessible to {a}."
                )
    for path in map(Path, figures):
        found = re.fullmatch(r"kappa_distribution_stores_(\d+)_(\d+)_(.+)", path.stem)
        if found and max(int(found[1]), int(found[2])) < len(names):
            a, b = names[int(found[1])], names[int(found[2])]
            captions[path.stem] = (
                f"{found[3]}: kappa of each network of {a} with each network of {b}, "
                "distributed over those pairs: how far the two populations make the same errors "
                "beyond what their accuracies imply (0: independent, 1: identical)."
            )
    return captions


def comparison_reading(comparison: Comparison) -> list[str]:
    """Each pair's learning-order agreement, then agreement excess by accuracy, in sentences."""
    lines = []
    for split, pairs in comparison.pairs.items():
        for p in pairs:
            if p.get("spearman") is None:
                continue
            lines.append(
                f"{split}: {p['populations'][0]} and {p['populations'][1]} order the examples "
                f"alike (Spearman {number(p['spearman'])} against a split-half ceiling of "
                f"{number(p['ceiling'])}); of the examples the weaker ({p['weaker']}) learns, "
                f"{percent(p['superset_fraction'])} are learned by the stronger "
                f"({p['stronger']})."
            )
    if len(comparison.generalisation) > 1:
        ordered = sorted(comparison.generalisation, key=lambda r: r["accuracy"])
        lines.append(
            "From the least to the most accurate population, agreement excess goes "
            + " -> ".join(number(r["agreement_excess"]) for r in ordered)
            + "."
        )
    return lines


def comparison_rows(comparison: Comparison) -> list[tuple[str, str]]:
    """The correlations of every pair per split, then each store's generalisation row."""
    rows = [
        (
            f"{split}: {p['populations'][0]} vs {p['populations'][1]}",
            f"Spearman {number(p.get('spearman'))}, Pearson {number(p.get('pearson'))}, "
            f"Kendall {number(p.get('kendall'))}, ceiling {number(p.get('ceiling'))}, "
            f"superset {percent(p.get('superset_fraction'))}",
        )
        for split, pairs in comparison.pairs.items()
        for p in pairs
    ]
    rows += [
        (
            f"{r['population']} ({comparison.generalisation_split})",
            f"accuracy {percent(r['accuracy'])}, agreement excess "
            f"{number(r['agreement_excess'])}, reliability "
            f"{number(r['split_half_spearman'])}",
        )
        for r in comparison.generalisation
    ]
    return rows


__all__ = [
    "Figure",
    "Page",
    "Section",
    "Table",
    "analysis_page",
    "comparison_page",
    "number",
    "percent",
    "png_figure",
    "render_page",
    "write_page",
]

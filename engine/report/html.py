"""The self-contained ``report.html``: a reading in sentences, the key numbers and every figure
embedded as a data URL, rendered from ``templates/report.html.j2`` with jinja2 (autoescaped:
store paths and group names are text, never markup).
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.report.results import Comparison

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class Page:
    """What ``report.html`` shows, as plain text (the template escapes it).

    Attributes
    ----------
    title : str
    reading : list of str
        Sentences, one item each.
    rows : list of (str, str)
        Key numbers: a label and its value.
    figures : list of Path
        PNG files to embed, in order; those that do not exist are left out.
    captions : dict of str to str
        A sentence under a figure, by the figure's file stem (figures without one have none).
    """

    title: str
    reading: list[str]
    rows: list[tuple[str, str]]
    figures: list[Path]
    captions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Figure:
    name: str
    png_base64: str
    caption: str = ""


def number(value: Any, digits: int = 3) -> str:
    """A number for the page: ``digits`` decimals, or significant digits when tiny; ``-`` for
    None, NaN and infinities."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value)


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


def render_page(page: Page) -> str:
    """The HTML of ``page``, every existing figure embedded as a base64 PNG."""
    figures = [
        _Figure(
            path.stem,
            base64.b64encode(path.read_bytes()).decode("ascii"),
            page.captions.get(path.stem, ""),
        )
        for path in map(Path, page.figures)
        if path.exists()
    ]
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(title=page.title, reading=page.reading, rows=page.rows, figures=figures)
    )


def write_page(out_dir: Path, page: Page) -> Path:
    """Write ``out_dir/report.html`` and return its path."""
    target = Path(out_dir) / "report.html"
    target.write_text(render_page(page), encoding="utf-8")
    return target


# ----------------------------------------------------------------------------------------------
# analyze


def analysis_page(
    summary: dict[str, Any], figures: list[Path], captions: Mapping[str, str] | None = None
) -> Page:
    """The page of ``engine analyze`` from its ``summary.json``; ``captions`` by figure stem."""
    return Page(
        f"Analysis of {summary['store']}",
        analysis_reading(summary),
        key_rows(summary),
        figures,
        dict(captions or {}),
    )


def analysis_reading(summary: dict[str, Any]) -> list[str]:
    """A short reading of the key numbers, in sentences."""
    networks = summary["networks"]
    lines = [f"{networks['analysed']} networks analysed ({networks['note']})."]
    for split, s in summary["splits"].items():
        if s.get("accuracy_mean"):
            lines.append(_accuracy_sentence(split, s))
        consensus = s.get("consensus")
        if consensus and consensus["mean"]:
            lines.append(
                f"{split}: without true labels, on average {100 * consensus['mean'][-1]:.1f}% "
                f"of networks give the plurality class, against "
                f"{100 * consensus['null_mean'][-1]:.1f}% for networks that draw independently "
                f"from their own class frequencies."
            )
        for pair in s.get("group_comparison", []):
            if pair.get("spearman") is not None:
                lines.append(
                    f"{split}: groups {pair['populations'][0]} and {pair['populations'][1]} "
                    f"share their learning order (Spearman {number(pair['spearman'])}, ceiling "
                    f"{number(pair['ceiling'])}); of the examples {pair['weaker']} learns, "
                    f"{number(pair['superset_fraction'])} are learned by {pair['stronger']}."
                )
        soft = s.get("soft") or {}
        if soft.get("population_region_share"):
            lines.append(_soft_sentence(split, soft))
    lines += _soft_skipped_sentences(summary)
    return lines


def _soft_sentence(split: str, soft: dict[str, Any]) -> str:
    shares = soft["population_region_share"]
    return (
        f"{split}: by the networks' soft verdicts (mean over networks), "
        f"{100 * shares['easy']:.1f}% of examples are easy to learn, "
        f"{100 * shares['ambiguous']:.1f}% ambiguous and {100 * shares['hard']:.1f}% hard; "
        f"a network puts an example in the region most networks choose for it "
        f"{100 * (soft['region_agreement_mean'] or 0):.1f}% of the time on average, "
        f"and {100 * (soft['aum_negative_share'] or 0):.1f}% of examples have a negative area "
        f"under the margin (likely mislabelled). Confidence and accessibility rank the "
        f"examples alike (Spearman {number(soft['confidence_accessibility_spearman'])})."
    )


def _soft_skipped_sentences(summary: dict[str, Any]) -> list[str]:
    """One sentence for splits whose soft measures were skipped (one for all if the reason is
    the store's)."""
    reasons = {
        split: (s.get("soft") or {}).get("skipped") for split, s in summary["splits"].items()
    }
    skipped = {split: reason for split, reason in reasons.items() if reason}
    if not skipped:
        return []
    if len(skipped) == len(reasons) and len(set(skipped.values())) == 1:
        reason = next(iter(skipped.values()))
        return [f"Soft verdicts (data maps, area under the margin): skipped, {reason}."]
    return [f"{split}: soft measures skipped, {reason}." for split, reason in skipped.items()]


def _accuracy_sentence(split: str, s: dict[str, Any]) -> str:
    extreme, null = s["extreme_fraction"][-1], s["extreme_fraction_null"][-1]
    excess = s["agreement_excess"][-1]
    return (
        f"{split}: at the last checkpoint the networks are right on "
        f"{100 * s['accuracy_mean'][-1]:.1f}% of examples on average; "
        f"{100 * extreme:.1f}% of examples are classified correctly by all networks or "
        f"by none, against {100 * null:.3g}% expected of independent networks of the "
        f"same accuracies; agreement excess {number(excess)} (0: independent, "
        f"1: identical networks). Split-half reliability of the learning order "
        f"(Spearman-Brown): {number(s['split_half_spearman'])}."
    )


def by_rows(split: str, by: dict[str, Any]) -> list[tuple[str, str]]:
    """One row per value of a split's ``by`` section: examples, accuracy, extreme fraction,
    agreement excess and split-half reliability at the last checkpoint."""
    rows = [
        (
            f"{split} by {by['column']}",
            "examples / accuracy / extreme fraction / agreement excess / split-half reliability",
        )
    ]
    for value, v in by["values"].items():
        numbers = [
            number(v.get(key)) for key in ("accuracy_mean", "extreme_fraction", "agreement_excess")
        ]
        rows.append(
            (
                f"{split}: {by['column']} = {value}",
                " / ".join([str(v["examples"]), *numbers, number(v.get("split_half_spearman"))]),
            )
        )
    return rows


def key_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The key numbers of each split at the last checkpoint, the per-value ones of a ``by``
    column, then the pairwise ones."""
    rows = []
    for split, s in summary.get("splits", {}).items():
        if s.get("by"):
            rows += by_rows(split, s["by"])
        if s.get("accuracy_mean"):
            rows += [
                (f"{split}: accuracy (last)", number(s["accuracy_mean"][-1])),
                (
                    f"{split}: extreme fraction (last) / null",
                    f"{number(s['extreme_fraction'][-1])} / "
                    f"{number(s['extreme_fraction_null'][-1])}",
                ),
                (f"{split}: agreement excess (last)", number(s["agreement_excess"][-1])),
                (f"{split}: split-half reliability", number(s["split_half_spearman"])),
            ]
            if s.get("holdout_consistency_mean"):
                rows.append(
                    (
                        f"{split}: hold-out consistency (last)",
                        number(s["holdout_consistency_mean"][-1]),
                    )
                )
        soft = s.get("soft") or {}
        if soft.get("population_region_share"):
            shares = soft["population_region_share"]
            rows += [
                (
                    f"{split}: easy / ambiguous / hard (population regions)",
                    " / ".join(number(shares[name]) for name in ("easy", "ambiguous", "hard")),
                ),
                (f"{split}: region agreement of networks", number(soft["region_agreement_mean"])),
                (f"{split}: share with negative AUM", number(soft["aum_negative_share"])),
                (
                    f"{split}: Spearman of confidence with accessibility",
                    number(soft["confidence_accessibility_spearman"]),
                ),
            ]
        if s.get("consensus") and s["consensus"]["mean"]:
            rows.append(
                (
                    f"{split}: consensus (last) / null",
                    f"{number(s['consensus']['mean'][-1])} / "
                    f"{number(s['consensus']['null_mean'][-1])}",
                )
            )
    return rows + _pairwise_rows(summary.get("pairwise"))


def _pairwise_rows(pairwise: dict | None) -> list[tuple[str, str]]:
    """Mean pairwise measures at the last checkpoint computed, with their network intervals."""
    rows = []
    labels = (
        ("kappa", "mean pairwise kappa"),
        ("agreement", "mean pairwise agreement"),
        ("prediction_agreement", "mean prediction agreement"),
    )
    for split, result in ((pairwise or {}).get("splits") or {}).items():
        checkpoints = result.get("checkpoints") or {}
        if not checkpoints:
            continue
        last = max(checkpoints, key=int)
        for key, label in labels:
            value = (checkpoints[last].get(key) or {}).get("all") or {}
            if value.get("mean") is None:
                continue
            interval = value.get("networks_ci")
            shown = number(value["mean"])
            if interval:
                shown += f" [{number(interval[0])}, {number(interval[1])}]"
            rows.append((f"{split}: {label} (checkpoint {last})", shown))
    return rows


# ----------------------------------------------------------------------------------------------
# compare


def comparison_page(comparison: Comparison, figures: list[Path]) -> Page:
    """The page of ``engine compare``."""
    return Page(
        "Comparison of " + ", ".join(comparison.names),
        comparison_reading(comparison),
        comparison_rows(comparison),
        figures,
    )


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
                f"{number(p['superset_fraction'])} are learned by the stronger "
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
            f"superset {number(p.get('superset_fraction'))}",
        )
        for split, pairs in comparison.pairs.items()
        for p in pairs
    ]
    rows += [
        (
            f"{r['population']} ({comparison.generalisation_split})",
            f"accuracy {number(r['accuracy'])}, agreement excess "
            f"{number(r['agreement_excess'])}, reliability "
            f"{number(r['split_half_spearman'])}",
        )
        for r in comparison.generalisation
    ]
    return rows


__all__ = ["Page", "analysis_page", "comparison_page", "number", "render_page", "write_page"]

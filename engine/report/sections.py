"""The sections of the analysis page: overview, agreement against independence, learning order,
data maps and soft verdicts, pairwise, groups, examples, each with its sentences, numbers and
figures (every figure with a caption saying what it shows and how to read it).

Sentences and tables share one format per number (:func:`engine.report.html.percent` for
shares, :func:`engine.report.html.number` for scores).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.report import browser, interactive
from engine.report.figures import labelled_tpa
from engine.report.html import Figure, Section, Table, number, percent, png_figure

if TYPE_CHECKING:
    from engine.report.results import StoreResult


# ----------------------------------------------------------------------------------------------
# The PNG figures and their captions


def caption_of(stem: str) -> str:
    """The caption of a PNG figure of the engine by its file stem ("" for an unknown one)."""
    for prefix, template in PNG_CAPTIONS:
        if stem == prefix or stem.startswith(prefix + "_"):
            name = stem[len(prefix) + 1 :].replace("_checkpoint", ", checkpoint ")
            return template.format(name=name or "all splits")
    return ""


#: Captions by file-stem prefix, longest prefixes first (``{name}``: the rest of the stem).
PNG_CAPTIONS = (
    (
        "data_map_networks",
        "{name}: the data map of single networks; one run's map is noisier than the "
        "population's, and comparing them shows which examples move between regions.",
    ),
    (
        "accuracy",
        "Mean accuracy of the networks over training on each labelled split (band: one "
        "standard deviation across networks; dashed: each group's mean). Read off how fast "
        "and how far the population learns, and how far its members spread.",
    ),
    (
        "tpa_histogram",
        "{name}: the same histograms as a static figure (first, middle and last checkpoints).",
    ),
    (
        "learning_curves",
        "{name}: the same learning curves as a static figure.",
    ),
    (
        "consensus",
        "{name}: how many examples get each share of networks agreeing on one class (the "
        "plurality), against independent networks drawing from their own class frequencies "
        "(red). Bars right of the red line: the networks agree on these inputs more than "
        "chance, with no true label needed.",
    ),
    (
        "kappa_heatmap",
        "{name}: Cohen's kappa of every two networks (a sample beyond a few hundred), ordered "
        "by clustering: agreement on which examples they get right beyond what their "
        "accuracies imply (0 as independent, 1 identical). Bright blocks are networks that "
        "make the same errors.",
    ),
    (
        "kappa_distribution",
        "{name}: how kappa is distributed over pairs of networks (within and between groups "
        "where there are several); a between-groups curve left of the within one means the "
        "groups make different errors.",
    ),
    (
        "kappa_networks",
        "{name}: per network, its mean kappa to the others (left) and, against it, its kappa "
        "to its most similar network (right): points far above the dotted line have a close "
        "twin the rest of the population does not share.",
    ),
    (
        "accessibility",
        "{name}: each example's accessibility in one store against the other; points on the "
        "diagonal are learned alike by both populations.",
    ),
    (
        "generalisation",
        "Each store's accuracy against its agreement excess at the last checkpoint.",
    ),
)


class Figures:
    """The PNG files of a run, taken by stem into the sections that show them; captions given
    by the step that drew a figure win over :func:`caption_of`."""

    def __init__(self, paths: Iterable[Path], captions: Mapping[str, str]):
        self.paths = {Path(p).stem: Path(p) for p in paths}
        self.captions = dict(captions)
        self.taken: set[str] = set()

    def take(self, stem: str) -> Figure | None:
        """The figure of ``stem`` if it was drawn and not yet shown."""
        if stem not in self.paths or stem in self.taken:
            return None
        self.taken.add(stem)
        caption = self.captions.get(stem) or caption_of(stem) or stem.replace("_", " ")
        return png_figure(self.paths[stem], caption)

    def take_prefixed(self, prefix: str) -> list[Figure]:
        found = [self.take(s) for s in sorted(self.paths) if s.startswith(prefix)]
        return [f for f in found if f is not None]

    def rest(self) -> list[Figure]:
        found = [self.take(s) for s in list(self.paths)]
        return [f for f in found if f is not None]


def _with_twin(chart: dict[str, Any], name: str, caption: str, twin: Figure | None) -> Figure:
    """An interactive figure with its static PNG, shown folded under it."""
    return Figure(name, caption, twin.png_base64 if twin else "", chart)


# ----------------------------------------------------------------------------------------------
# The page


def analysis_sections(
    summary: dict[str, Any],
    pngs: Figures,
    result: StoreResult | None,
    data_dir: str | None = None,
) -> list[Section]:
    """Every section of the analysis page but the run's details, in order; ``data_dir`` is the
    folder of a data set read from files, for the browser's pictures."""
    splits = summary.get("splits", {})
    labelled = [s for s, v in splits.items() if v.get("accuracy_mean")]
    browsed, note = _browsed(result, labelled, data_dir)
    parts = [
        overview(summary, pngs),
        agreement(summary, pngs, result, labelled),
        learning(summary, pngs, result, labelled, browsed),
        soft_section(summary, pngs, result, browsed),
        pairwise_section(summary, pngs),
        groups_section(summary),
        examples_section(browsed, note),
    ]
    leftover = pngs.rest()
    if leftover:
        parts.append(Section("more", "More figures", figures=leftover))
    return parts


def _plural(count: Any, noun: str) -> str:
    if not isinstance(count, int):
        return f"- {noun}s"
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def overview(summary: dict[str, Any], pngs: Figures) -> Section:
    networks = summary["networks"]
    splits = summary.get("splits", {})
    paragraphs = [
        f"{networks['analysed']:,} networks analysed ({networks['note']}), "
        f"{_plural(summary.get('checkpoints'), 'checkpoint')}, splits "
        + ", ".join(f"{name} ({s.get('examples', 0):,} examples)" for name, s in splits.items())
        + "."
    ]
    rows = []
    for split, s in splits.items():
        if s.get("accuracy_mean"):
            paragraphs.append(
                f"{split}: at the last checkpoint the networks are right on "
                f"{percent(s['accuracy_mean'][-1])} of examples on average."
            )
            rows.append((f"{split}: accuracy (last)", percent(s["accuracy_mean"][-1])))
    if summary.get("checkpoints") == 1:
        paragraphs.append(
            "The store holds one checkpoint: there is no curve over training to draw, and the "
            "measures are those of the final networks."
        )
    figures = [f for f in [pngs.take("accuracy")] if f is not None]
    return Section("overview", "Overview", paragraphs, rows, figures=figures)


# ----------------------------------------------------------------------------------------------
# Agreement against independence


def agreement(
    summary: dict[str, Any], pngs: Figures, result: StoreResult | None, labelled: list[str]
) -> Section:
    """TP-agreement against its null per labelled split; consensus on the others."""
    paragraphs, rows, figures = [], [], []
    splits = summary.get("splits", {})
    for split in labelled:
        s = splits[split]
        extreme, null = s["extreme_fraction"][-1], s["extreme_fraction_null"][-1]
        paragraphs.append(
            f"{split}: {percent(extreme)} of examples are classified correctly by all networks "
            f"or by none, against {percent(null)} expected of independent networks of the same "
            f"accuracies; agreement excess {number(s['agreement_excess'][-1])} (0: independent, "
            "1: identical networks)."
        )
        rows += [
            (f"{split}: extreme fraction (last) / null", f"{percent(extreme)} / {percent(null)}"),
            (f"{split}: agreement excess (last)", number(s["agreement_excess"][-1])),
        ]
        twin = pngs.take(f"tpa_histogram_{split}")
        if result is not None:
            chart = interactive.tpa_histogram_spec(
                split, result.measures[split].overall["summary"], result.selection.epochs
            )
            caption = _tpa_caption(split, len(chart["frames"]) > 1)
            figures.append(_with_twin(chart, f"tpa_{split}", caption, twin))
        elif twin is not None:
            figures.append(twin)
    for split, s in splits.items():
        # Splits with labels have accuracies to compare; consensus is their last checkpoint's
        # only (``consensus_last``), and left to summary.json.
        consensus = s.get("consensus")
        if not consensus or not consensus.get("mean"):
            continue
        paragraphs.append(
            f"{split}: without true labels, on average {percent(consensus['mean'][-1])} of "
            f"networks give the plurality class, against {percent(consensus['null_mean'][-1])} "
            "for networks that draw independently from their own class frequencies."
        )
        rows.append(
            (
                f"{split}: consensus (last) / null",
                f"{percent(consensus['mean'][-1])} / {percent(consensus['null_mean'][-1])}",
            )
        )
        figures += [f for f in [pngs.take(f"consensus_{split}")] if f is not None]
    return Section(
        "agreement", "Agreement against independent networks", paragraphs, rows, figures=figures
    )


def _tpa_caption(split: str, slider: bool) -> str:
    return (
        f"{split}: how many examples (bars, log scale) are classified correctly by each share "
        "of the networks, against what networks of the same accuracies would give if they "
        "erred independently (red). Mass piled at both ends beyond the red line is agreement "
        "the networks' accuracies do not explain. Hover a bar for its counts, drag to zoom "
        "(double-click resets)"
        + (", and move the slider through the checkpoints." if slider else ".")
    )


# ----------------------------------------------------------------------------------------------
# Learning order


def learning(
    summary: dict[str, Any],
    pngs: Figures,
    result: StoreResult | None,
    labelled: list[str],
    browsed: Mapping[str, Mapping[str, list[browser.BrowsedExample]]],
) -> Section:
    paragraphs, rows, figures = [], [], []
    splits = summary.get("splits", {})
    for split in labelled:
        s = splits[split]
        paragraphs.append(
            f"{split}: split-half reliability of the learning order (Spearman-Brown) "
            f"{number(s.get('split_half_spearman'))}: how alike two random halves of the "
            "networks rank the examples by accessibility (1: the same order)."
        )
        rows.append((f"{split}: split-half reliability", number(s.get("split_half_spearman"))))
        if s.get("accessibility_from") is not None:
            paragraphs.append(f"{split}: {accessibility_sentence(s['accessibility_from'])}")
        if s.get("never_learned_share") is not None:
            rows.append((f"{split}: never learned (share)", percent(s["never_learned_share"])))
        if s.get("holdout_consistency_mean"):
            rows.append(
                (
                    f"{split}: hold-out consistency (last)",
                    number(s["holdout_consistency_mean"][-1]),
                )
            )
        twin = pngs.take(f"learning_curves_{split}")
        if result is not None and result.selection.epochs.size > 1:
            tpa, accessibility = labelled_tpa(result.measures[split].overall["examples"])
            chosen = [e for kind in browsed.get(split, {}).values() for e in kind[:2]]
            chart = interactive.learning_curves_spec(
                split, tpa, accessibility, result.selection.epochs, chosen
            )
            figures.append(_with_twin(chart, f"curves_{split}", _curves_caption(split), twin))
        elif twin is not None:
            figures.append(twin)
    if summary.get("checkpoints") == 1 and labelled:
        paragraphs.append("One checkpoint: no learning curves (they need two checkpoints).")
    return Section("learning", "Learning order", paragraphs, rows, figures=figures)


def accessibility_sentence(window: Mapping[str, Any]) -> str:
    """Which checkpoints accessibility averages over, from summary.json's
    ``accessibility_from`` entry of a split."""
    count = _plural(window["checkpoints"], "checkpoint")
    if window["initialisation_left_out"]:
        return (
            f"accessibility averages TP-agreement over the {count} after the initialisation "
            "(checkpoint 0 adds the same chance-level term to every example; "
            "--accessibility-from initialisation counts it)."
        )
    if window["initialisation_checkpoint"]:
        return (
            f"accessibility averages TP-agreement over all {count}, the initialisation "
            "included (--accessibility-from initialisation)."
        )
    return f"accessibility averages TP-agreement over all {count} (none is an initialisation)."


def _curves_caption(split: str) -> str:
    return (
        f"{split}: mean TP-agreement over training of each fifth of the examples ranked by "
        "accessibility (thick lines, least accessible fifth darkest), and the curves of two "
        "examples of each kind in the browser below (thin dashed). A population that learns "
        "in a shared order draws fans: the easy fifth rises first. Hover for values, drag to "
        "zoom, double-click to reset."
    )


# ----------------------------------------------------------------------------------------------
# Data maps and soft verdicts


def soft_section(
    summary: dict[str, Any],
    pngs: Figures,
    result: StoreResult | None,
    browsed: Mapping[str, Mapping[str, list[browser.BrowsedExample]]],
) -> Section:
    paragraphs, rows, figures = [], [], []
    skipped: dict[str, str] = {}
    for split, s in summary.get("splits", {}).items():
        soft = s.get("soft") or {}
        if not soft.get("population_region_share"):
            if soft.get("skipped"):
                skipped[split] = soft["skipped"]
            continue
        paragraphs.append(_soft_sentence(split, soft))
        rows += _soft_rows(split, soft)
        if result is not None:
            examples = result.measures[split].overall["examples"]
            chosen = [e for kind in browsed.get(split, {}).values() for e in kind]
            chart = interactive.data_map_spec(
                split, examples, soft["thresholds"], chosen, soft["population_region_share"]
            )
            figures.append(Figure(f"map_{split}", _map_caption(split), chart=chart))
        for stem in (f"data_map_{split}", f"data_map_networks_{split}", f"aum_{split}"):
            figures += [f for f in [pngs.take(stem)] if f is not None]
    paragraphs += _skipped_sentences(skipped, len(summary.get("splits", {})))
    return Section("soft", "Data maps and soft verdicts", paragraphs, rows, figures=figures)


def _soft_sentence(split: str, soft: dict[str, Any]) -> str:
    shares = soft["population_region_share"]
    return (
        f"{split}: by the networks' soft verdicts (mean over networks), "
        f"{percent(shares['easy'])} of examples are easy to learn, "
        f"{percent(shares['ambiguous'])} ambiguous and {percent(shares['hard'])} hard; "
        f"a network puts an example in the region most networks choose for it "
        f"{percent(soft['region_agreement_mean'] or 0)} of the time on average, "
        f"and {percent(soft['aum_negative_share'] or 0)} of examples have a negative area "
        f"under the margin (likely mislabelled). Confidence and accessibility rank the "
        f"examples alike (Spearman {number(soft['confidence_accessibility_spearman'])})."
    )


def _soft_rows(split: str, soft: dict[str, Any]) -> list[tuple[str, str]]:
    shares = soft["population_region_share"]
    return [
        (
            f"{split}: easy / ambiguous / hard (population regions)",
            " / ".join(percent(shares[name]) for name in ("easy", "ambiguous", "hard")),
        ),
        (f"{split}: region agreement of networks", percent(soft["region_agreement_mean"])),
        (f"{split}: share with negative AUM", percent(soft["aum_negative_share"])),
        (
            f"{split}: Spearman of confidence with accessibility",
            number(soft["confidence_accessibility_spearman"]),
        ),
    ]


def _skipped_sentences(skipped: dict[str, str], splits: int) -> list[str]:
    """One sentence for splits whose soft measures were skipped (one for all if the reason is
    the store's)."""
    if not skipped:
        return []
    if len(skipped) == splits and len(set(skipped.values())) == 1:
        reason = next(iter(skipped.values()))
        return [f"Soft verdicts (data maps, area under the margin): skipped, {reason}."]
    return [f"{split}: soft measures skipped, {reason}." for split, reason in skipped.items()]


def _map_caption(split: str) -> str:
    return (
        f"{split}: the population's data map as cells: each example's mean confidence in its "
        "true class (up) against the variability of that confidence over training (across), "
        "both averaged over the networks; a cell's colour is the mean share of right verdicts "
        "of its examples (red 0, green 1). Dashed lines bound cartography's regions: easy at "
        "the top left, hard at the bottom left, ambiguous to the right. Dots are the browser's "
        "examples. Hover a cell or dot, drag to zoom, double-click to reset."
    )


# ----------------------------------------------------------------------------------------------
# Pairwise and groups


def pairwise_section(summary: dict[str, Any], pngs: Figures) -> Section:
    pairwise = summary.get("pairwise")
    if not pairwise:
        return Section(
            "pairwise",
            "Pairwise agreement",
            ["Pairwise measures were not computed (--pairwise-checkpoints none)."],
        )
    figures = [
        figure
        for split in summary.get("splits", {})
        for kind in ("heatmap", "distribution", "networks")
        for figure in pngs.take_prefixed(f"kappa_{kind}_{split}_checkpoint")
    ]
    paragraphs = [
        "Kappa: agreement of two networks on which examples they get right, beyond what "
        "their accuracies imply; prediction agreement: the share of examples on which they "
        "predict the same class (defined without labels too). Intervals resample networks."
    ]
    splits = summary.get("splits", {})
    unlabelled = [
        split
        for split in (pairwise.get("splits") or {})
        if not splits.get(split, {}).get("has_labels", True)
    ]
    if unlabelled:
        paragraphs.append(
            ", ".join(unlabelled) + ": no true labels, so which examples a network gets right is "
            "not defined there; only prediction agreement is shown."
        )
    return Section(
        "pairwise", "Pairwise agreement", paragraphs, pairwise_rows(summary), figures=figures
    )


def pairwise_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Mean pairwise measures at the last checkpoint computed, with their network intervals;
    on a split without labels, correctness is not defined and only prediction agreement is
    shown."""
    rows = []
    labels = (
        ("kappa", "mean pairwise kappa", number),
        ("agreement", "mean pairwise agreement", percent),
        ("prediction_agreement", "mean prediction agreement", percent),
    )
    splits = summary.get("splits", {})
    for split, result in ((summary.get("pairwise") or {}).get("splits") or {}).items():
        checkpoints = result.get("checkpoints") or {}
        if not checkpoints:
            continue
        last = max(checkpoints, key=int)
        has_labels = splits.get(split, {}).get("has_labels", True)
        for key, label, shown_as in labels:
            if not has_labels and key != "prediction_agreement":
                continue
            value = (checkpoints[last].get(key) or {}).get("all") or {}
            if value.get("mean") is None:
                continue
            interval = value.get("networks_ci")
            shown = shown_as(value["mean"])
            if interval:
                shown += f" [{shown_as(interval[0])}, {shown_as(interval[1])}]"
            rows.append((f"{split}: {label} (checkpoint {last})", shown))
    return rows


def groups_section(summary: dict[str, Any]) -> Section:
    """Each group's networks and accuracy per labelled split, the learning-order comparison of
    every two groups, and the measures per value of a ``--by`` column."""
    splits = summary.get("splits", {})
    labelled = [s for s, v in splits.items() if v.get("accuracy_mean")]
    groups = summary.get("groups", [])
    rows = []
    for g in groups:
        accuracies = []
        for split in labelled:
            group = (splits[split].get("groups") or {}).get(g["name"]) or {}
            values = group.get("accuracy_mean") or splits[split]["accuracy_mean"]
            accuracies.append(percent(values[-1]) if len(groups) > 1 or values else "-")
        rows.append(
            [str(g["name"]), str(g.get("architecture", "-")), f"{g['networks']:,}", *accuracies]
        )
    tables = [
        Table(
            "Groups of networks",
            ["group", "architecture", "networks", *[f"accuracy on {s} (last)" for s in labelled]],
            rows,
        )
    ]
    paragraphs = [] if len(groups) > 1 else ["The store has one group of networks."]
    for split in labelled:
        for pair in splits[split].get("group_comparison", []):
            if pair.get("spearman") is not None:
                paragraphs.append(
                    f"{split}: groups {pair['populations'][0]} and {pair['populations'][1]} "
                    f"share their learning order (Spearman {number(pair['spearman'])}, ceiling "
                    f"{number(pair['ceiling'])}); of the examples {pair['weaker']} learns, "
                    f"{percent(pair['superset_fraction'])} are learned by {pair['stronger']}."
                )
    for split, s in splits.items():
        if s.get("by"):
            tables.append(by_table(split, s["by"], _pairwise_by(summary, split)))
    return Section("groups", "Groups", paragraphs, tables=tables)


def _pairwise_by(summary: dict[str, Any], split: str) -> dict[str, Any]:
    """The pairwise summaries per value of a split's ``--by`` column at the last checkpoint
    computed (value -> entry), or {} where pairwise measures were not computed."""
    result = ((summary.get("pairwise") or {}).get("splits") or {}).get(split) or {}
    checkpoints = result.get("checkpoints") or {}
    if not checkpoints:
        return {}
    return ((checkpoints[max(checkpoints, key=int)].get("by") or {}).get("values")) or {}


def _with_interval(entry: dict[str, Any] | None, shown_as: Any) -> str:
    """A mean with its network interval, as pairwise_rows shows them; "-" without a mean."""
    if not entry or entry.get("mean") is None:
        return "-"
    shown = shown_as(entry["mean"])
    interval = entry.get("networks_ci")
    if interval:
        shown += f" [{shown_as(interval[0])}, {shown_as(interval[1])}]"
    return shown


def by_table(split: str, by: dict[str, Any], pairwise: dict[str, Any] | None = None) -> Table:
    """One row per value of a split's ``by`` section at the last checkpoint, with the mean
    pairwise kappa on the value's examples and its network interval where ``pairwise`` (value
    -> the pairwise summary's entry) has them."""
    pairwise = pairwise or {}
    rows = [
        [
            f"{split}: {by['column']} = {value}",
            f"{v['examples']:,}",
            percent(v.get("accuracy_mean")),
            percent(v.get("extreme_fraction")),
            number(v.get("agreement_excess")),
            number(v.get("split_half_spearman")),
        ]
        + ([_with_interval(pairwise.get(value, {}).get("kappa"), number)] if pairwise else [])
        for value, v in by["values"].items()
    ]
    return Table(
        f"{split} by {by['column']}",
        [
            "value",
            "examples",
            "accuracy",
            "extreme fraction",
            "agreement excess",
            "split-half reliability",
        ]
        + (["pairwise kappa [networks 95%]"] if pairwise else []),
        rows,
    )


# ----------------------------------------------------------------------------------------------
# The example browser


def _browsed(
    result: StoreResult | None, labelled: list[str], data_dir: str | None = None
) -> tuple[dict[str, dict[str, list[browser.BrowsedExample]]], str]:
    """The browser's examples of every labelled split, with pictures where available, and why
    pictures are missing ("" where they are not)."""
    if result is None or not labelled:
        return {}, ""
    population = result.population
    inputs, note = browser.split_inputs(population, labelled, data_dir)
    class_names = [str(c) for c in population.attrs.get("class_names") or []]
    browsed = {
        split: browser.browse_split(
            result.measures[split].overall["examples"],
            result.selection.labels[split],
            population.example_ids(split),
            class_names,
            inputs.get(split),
        )
        for split in labelled
    }
    return browsed, note


def examples_section(
    browsed: Mapping[str, Mapping[str, list[browser.BrowsedExample]]], note: str
) -> Section:
    paragraphs = [
        "Per labelled split: the hardest examples (lowest accessibility, the mean share of "
        "networks right over checkpoints), the easiest (highest) and the most disputed (the "
        "share of networks right at the last checkpoint closest to one half). Ids are the "
        "source data set's; positions are rows of the split in examples.parquet."
    ]
    if note:
        paragraphs.append(f"No pictures: {note}.")
    if not browsed:
        paragraphs.append("No split has labels: there is no accessibility to rank examples by.")
    views = [{"split": split, "kinds": kinds} for split, kinds in browsed.items()]
    return Section("examples", "Examples", paragraphs, browser=views)


__all__ = ["Figures", "analysis_sections", "caption_of", "pairwise_rows"]

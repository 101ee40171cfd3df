"""The interactive figures of ``report.html``: plain JSON specifications that the page's own small
script (``templates/charts.js``, inlined once) draws as SVG, with hover and drag-to-zoom.

Why not plotly: its script is 4.8 MB (plotly 7.1's ``plotly.min.js``), and the page would embed
it to open offline; these figures need bars, cells, lines, points, rules and a slider, which
take a few hundred lines. Every specification is bounded whatever the number of networks or
examples: histograms over k = 0..N networks are binned (:func:`engine.report.figures.count_bins`),
a data map is a grid of cells, and curves are drawn for quintiles and a few chosen examples.

A specification is a dict: ``title``, ``xlabel``, ``ylabel``, ``x`` and ``y`` (the ranges
shown), ``ylog`` (a symmetric log axis, for counts), ``zoom`` (``"x"`` or ``"xy"``), ``legend``
(name and colour pairs) and ``frames`` (a list of ``{"label", "marks"}``; several frames get a
slider). A mark is one of ``rects`` (``data`` rows x0, x1, y0, y1; ``colors`` or one ``color``),
``line`` (``points`` rows x, y), ``points`` (``data`` rows x, y; ``colors`` or ``color``) and
``rule`` (``x`` or ``y``, or ``points`` of a segment) and ``text`` (``data`` rows x, y with
``labels``), each with the text shown on hover of each row where it has any: ``tips`` (one text
per row) or ``tip`` (a template, ``{0}`` the first of the row's ``values``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.report.figures import binned_counts, epoch_label, rank_quintiles

#: Histograms drawn for at most this many checkpoints (evenly spaced, the first and last kept).
MAX_FRAMES = 40
#: Cells of a data map along variability (0..0.5) and confidence (0..1).
MAP_CELLS = (40, 40)
#: Colours of the quintile curves, least accessible first (matplotlib's viridis, dark to light).
QUINTILE_COLOURS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#c8a600")
#: Colours of the chosen examples by the browser's kind.
KIND_COLOURS = {"hardest": "#d62728", "easiest": "#2ca02c", "disputed": "#ff7f0e"}


def _round(values: Any, digits: int = 5) -> Any:
    """Floats rounded for the page (the exact numbers are in the tables), NaN as None."""
    array = np.round(np.asarray(values, np.float64), digits)
    return [None if not np.isfinite(v) else float(v) for v in array.ravel()]


def chosen_frames(count: int, limit: int = MAX_FRAMES) -> list[int]:
    """Checkpoints drawn of ``count``: all up to ``limit``, else evenly spaced with both ends."""
    if count <= limit:
        return list(range(count))
    return sorted(set(np.round(np.linspace(0, count - 1, limit)).astype(int).tolist()))


# ----------------------------------------------------------------------------------------------
# TP-agreement against its null


def tpa_histogram_spec(split: str, summary: dict[str, Any], epochs: np.ndarray) -> dict[str, Any]:
    """The TP-agreement histogram of every drawn checkpoint against the Poisson-binomial null.

    ``summary`` is a split's summary (``tpa_histogram`` and ``null_histogram``, (t, N + 1));
    ``epochs`` float64 (t,). The slider starts at the last checkpoint.
    """
    observed_all = summary["tpa_histogram"]
    null_all = summary["null_histogram"]
    size = len(observed_all[0]) - 1
    frames, top = [], 1.0
    for t in chosen_frames(len(observed_all)):
        bins = binned_counts(np.asarray(observed_all[t], float), np.asarray(null_all[t], float))
        rows = np.column_stack([bins.x[:-1], bins.x[1:], np.zeros(bins.counts.size), bins.counts])
        # Tips as a template and a row of values each: 40 frames of 52 bars would otherwise
        # repeat the same sentence 2,000 times.
        values = [
            [f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}", int(c), round(float(e), 1)]
            for lo, hi, c, e in zip(
                bins.edges[:-1], bins.edges[1:] - 1, bins.counts, bins.expected, strict=True
            )
        ]
        middle = (bins.x[:-1] + bins.x[1:]) / 2
        null_points = np.column_stack([middle, bins.expected])
        frames.append(
            {
                "label": epoch_label(float(epochs[t])),
                "marks": [
                    {
                        "type": "rects",
                        "data": _rows(rows),
                        "color": "#1f77b4",
                        "tip": f"{{0}} of {size:,} networks right: examples observed {{1}}, "
                        "expected of independent networks {2}",
                        "values": values,
                    },
                    {
                        "type": "line",
                        "points": _rows(null_points),
                        "color": "#d62728",
                        "width": 2,
                        "dots": False,
                        "tip": "examples expected of independent networks: {0}",
                        "values": [[round(float(e), 1)] for e in bins.expected],
                    },
                ],
            }
        )
        top = max(top, float(bins.counts.max(initial=0)), float(bins.expected.max(initial=0)))
    x_low, x_high = frames_x_range(frames)
    return {
        "title": f"{split}: TP-agreement against independent networks ({size:,} networks)",
        "xlabel": "TP-agreement (share of networks right)",
        "ylabel": "examples",
        "x": [x_low, x_high],
        # Headroom above the tallest bar: a log axis needs a factor.
        "y": [0.0, top * 3.0],
        "ylog": True,
        "zoom": "x",
        "legend": [
            ["observed", "#1f77b4"],
            ["independent networks (Poisson-binomial null)", "#d62728"],
        ],
        "frames": frames,
        "frame": len(frames) - 1,
    }


def frames_x_range(frames: list[dict[str, Any]]) -> tuple[float, float]:
    """The x range covering every rectangle of ``frames``."""
    lows = [row[0] for f in frames for m in f["marks"] if m["type"] == "rects" for row in m["data"]]
    highs = [
        row[1] for f in frames for m in f["marks"] if m["type"] == "rects" for row in m["data"]
    ]
    return (min(lows, default=0.0), max(highs, default=1.0))


def _rows(array: np.ndarray) -> list[list[float | None]]:
    array = np.asarray(array, np.float64)
    return [_round(row) for row in array]


# ----------------------------------------------------------------------------------------------
# Learning curves


def learning_curves_spec(
    split: str,
    tpa: np.ndarray,
    accessibility: np.ndarray,
    epochs: np.ndarray,
    chosen: Sequence[Any] = (),
) -> dict[str, Any]:
    """Mean TP-agreement per checkpoint of each fifth of the examples by accessibility rank,
    then the curves of the ``chosen`` examples of the browser.

    Parameters
    ----------
    tpa : ndarray of float64, dims (checkpoints, examples)
        TP-agreement of the split's labelled examples.
    accessibility : ndarray of float64, dims (examples,)
        Of the same examples, in the same order.
    epochs : ndarray of float64, dims (checkpoints,)
    chosen : sequence of BrowsedExample
        Their ``curve`` (TP-agreement per checkpoint) is drawn thin, coloured by kind.
    """
    x = _epochs_axis(epochs)
    axis_name = "epoch" if np.isfinite(epochs).all() else "checkpoint"
    where = [f"{axis_name} {v:g}" for v in x]
    marks: list[dict[str, Any]] = []
    legend = []
    for b, quintile in enumerate(rank_quintiles(accessibility)):
        curve = tpa[:, quintile.members].mean(axis=1)
        colour = QUINTILE_COLOURS[b % len(QUINTILE_COLOURS)]
        marks.append(
            {
                "type": "line",
                "points": _rows(np.column_stack([x, curve])),
                "color": colour,
                "width": 2.5,
                "tips": [
                    f"{quintile.label}: {v:.3f} at {w}" for w, v in zip(where, curve, strict=True)
                ],
            }
        )
        legend.append([quintile.label, colour])
    for example in chosen:
        colour = KIND_COLOURS[example.kind]
        marks.append(
            {
                "type": "line",
                "points": _rows(np.column_stack([x, example.curve])),
                "color": colour,
                "width": 1,
                "dash": True,
                "tips": [
                    f"example {example.example_id} ({example.kind}): {v:.3f} at {w}"
                    for w, v in zip(where, example.curve, strict=True)
                ],
            }
        )
    legend += [[f"one {kind} example", colour] for kind, colour in KIND_COLOURS.items()]
    return {
        "title": f"{split}: learning curves, by fifths of the examples ranked by accessibility",
        "xlabel": axis_name,
        "ylabel": "mean TP-agreement",
        "x": [float(x[0]), float(x[-1])],
        "y": [-0.02, 1.02],
        "ylog": False,
        "zoom": "xy",
        "legend": legend if chosen else legend[:-3],
        "frames": [{"label": "", "marks": marks}],
        "frame": 0,
    }


def _epochs_axis(epochs: np.ndarray) -> np.ndarray:
    """Epochs where every checkpoint has one, else checkpoint indices (imported stores)."""
    epochs = np.asarray(epochs, np.float64)
    return epochs if np.isfinite(epochs).all() else np.arange(epochs.size, dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# Data map


def data_map_spec(
    split: str,
    examples: dict[str, np.ndarray],
    thresholds: dict[str, float],
    chosen: Sequence[Any] = (),
    shares: dict[str, float] | None = None,
    cells: tuple[int, int] = MAP_CELLS,
) -> dict[str, Any]:
    """The population's data map as a grid of cells (count and mean correctness in each), the
    regions' bounds and names (with their ``shares`` of examples), and the ``chosen`` examples
    of the browser as points.

    ``examples`` holds ``variability_mean``, ``confidence_mean`` and ``correctness_mean``,
    float64 (examples,).
    """
    variability = np.asarray(examples["variability_mean"], np.float64)
    confidence = np.asarray(examples["confidence_mean"], np.float64)
    correctness = np.asarray(examples["correctness_mean"], np.float64)
    keep = np.isfinite(variability) & np.isfinite(confidence) & np.isfinite(correctness)
    x_edges = np.linspace(0.0, 0.5, cells[0] + 1)
    y_edges = np.linspace(0.0, 1.0, cells[1] + 1)
    i = np.clip(np.searchsorted(x_edges, variability[keep], side="right") - 1, 0, cells[0] - 1)
    j = np.clip(np.searchsorted(y_edges, confidence[keep], side="right") - 1, 0, cells[1] - 1)
    flat = i * cells[1] + j
    counts = np.bincount(flat, minlength=cells[0] * cells[1])
    sums = np.bincount(flat, weights=correctness[keep], minlength=cells[0] * cells[1])
    occupied = np.flatnonzero(counts)
    rows, colours, values = [], [], []
    for cell in occupied:
        a, b = divmod(int(cell), cells[1])
        mean = sums[cell] / counts[cell]
        rows.append(_round([x_edges[a], x_edges[a + 1], y_edges[b], y_edges[b + 1]]))
        colours.append(correctness_colour(mean))
        values.append([*rows[-1], int(counts[cell]), round(float(mean), 2)])
    marks: list[dict[str, Any]] = [
        {
            "type": "rects",
            "data": rows,
            "colors": colours,
            "tip": "variability {0}-{1}, confidence {2}-{3}: examples {4}, mean correctness {5}",
            "values": values,
        },
        *_region_rules(thresholds),
        _region_names(shares),
    ]
    if chosen:
        marks.append(
            {
                "type": "points",
                "data": [_round([e.variability, e.confidence]) for e in chosen],
                "colors": [KIND_COLOURS[e.kind] for e in chosen],
                "tips": [
                    f"example {e.example_id} ({e.kind}, label {e.label}): variability "
                    f"{e.variability:.3f}, confidence {e.confidence:.3f}"
                    for e in chosen
                ],
            }
        )
    return {
        "title": f"{split}: data map of the population ({int(keep.sum()):,} examples)",
        "xlabel": "variability (mean over networks)",
        "ylabel": "confidence (mean over networks)",
        "x": [0.0, 0.5],
        "y": [0.0, 1.0],
        "ylog": False,
        "zoom": "xy",
        "width": 760,
        "height": 520,
        "legend": [
            [
                "cell colour: mean correctness, 0 to 1",
                "linear-gradient(90deg, "
                + ", ".join(correctness_colour(v) for v in (0, 0.25, 0.5, 0.75, 1))
                + ")",
            ],
            *([[f"{kind} examples", c] for kind, c in KIND_COLOURS.items()] if chosen else []),
        ],
        "frames": [{"label": "", "marks": marks}],
        "frame": 0,
    }


def _region_rules(thresholds: dict[str, float]) -> list[dict[str, Any]]:
    """Cartography's bounds: variability = ambiguous, and the easy and hard confidences left
    of it."""
    ambiguous = float(thresholds["ambiguous_variability"])
    rules: list[dict[str, Any]] = [
        {"type": "rule", "x": ambiguous, "tips": ["ambiguous to the right"]}
    ]
    for name in ("easy", "hard"):
        level = float(thresholds[f"{name}_confidence"])
        side = "above" if name == "easy" else "below"
        rules.append(
            {
                "type": "rule",
                "points": [[0.0, level], [ambiguous, level]],
                "tips": [f"{name} {side} confidence {level:g}"],
            }
        )
    return rules


#: Where each region's name is written on a data map (x, y, anchor), and its colour.
REGION_LABELS = {
    "easy": (0.005, 0.97, "start", "#2ca02c"),
    "hard": (0.005, 0.02, "start", "#d62728"),
    "other": (0.005, 0.5, "start", "#7f7f7f"),
    "ambiguous": (0.495, 0.97, "end", "#ff7f0e"),
}


def _region_names(shares: dict[str, float] | None) -> dict[str, Any]:
    """The regions' names on the map, each with its share of examples where given (the
    summary's ``population_region_share``, in the page's one format for shares)."""
    from engine.report.html import percent

    labels = [f"{name} {percent(shares[name])}" if shares else name for name in REGION_LABELS]
    return {
        "type": "text",
        "data": [[x, y] for x, y, _, _ in REGION_LABELS.values()],
        "labels": labels,
        "anchors": [a for _, _, a, _ in REGION_LABELS.values()],
        "colors": [c for _, _, _, c in REGION_LABELS.values()],
    }


def correctness_colour(value: float) -> str:
    """A hex colour of matplotlib's RdYlGn at ``value`` in [0, 1] (red wrong, green right)."""
    anchors = np.array(
        [[165, 0, 38], [244, 109, 67], [254, 224, 139], [166, 217, 106], [0, 104, 55]]
    )
    position = float(np.clip(value, 0.0, 1.0)) * (len(anchors) - 1)
    low = min(int(position), len(anchors) - 2)
    mixed = anchors[low] + (anchors[low + 1] - anchors[low]) * (position - low)
    return "#" + "".join(f"{int(round(c)):02x}" for c in mixed)


__all__ = [
    "chosen_frames",
    "correctness_colour",
    "data_map_spec",
    "learning_curves_spec",
    "tpa_histogram_spec",
]

"""`engine analyze` and `engine compare`: compute the measures, write the tables, figures and page.

The runner picks the Dask scheduler (threads, processes, a local distributed cluster or an
existing one), computes the lazy graphs of :mod:`engine.analysis` in one pass over each store,
and writes ``summary.json``, ``examples.parquet``, ``networks.parquet``, PNG figures and a
self-contained ``report.html`` (see docs/outputs.md).
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from pathlib import Path

import numpy as np

from engine.analysis import CHUNK_TASK_PREFIXES
from engine.errors import ConfigError, StoreError
from engine.scheduling import compute_with_progress, dask_scheduler

# ----------------------------------------------------------------------------------------------
# Computing the measures of one or several stores


def _resolve_splits(population, splits) -> list[str]:
    if splits is None:
        return list(population.splits)
    if isinstance(splits, str):
        splits = [s for s in splits.split(",") if s]
    for split in splits:
        population.require_split(split)
    return list(splits)


def _selection(population, require_complete: bool, *, seed: int = 0):
    from engine.analysis import select_networks

    complete = population.complete_networks()
    missing = population.num_networks - complete.size
    if missing and require_complete:
        raise StoreError(f"{population.path} has {missing} incomplete networks of "
                         f"{population.num_networks} (--require-complete refuses to analyse it)")
    if complete.size == 0:
        raise StoreError(f"{population.path} has no complete network to analyse")
    return select_networks(population, networks=complete, seed=seed), int(missing)


def _graphs(population, splits, selection, num_classes, options) -> dict:
    """Lazy counts per split: verdict counts where the split has labels, class counts where it
    stores predictions (every checkpoint on probe splits, the last elsewhere)."""
    from engine.analysis import class_statistics, verdict_statistics

    graphs = {}
    last = population.num_checkpoints - 1
    for split in splits:
        entry = {"counts": None, "classes": None, "classes_last_only": False}
        if population.has_labels(split):
            entry["counts"] = verdict_statistics(population, split, selection, **options)
        if population.predictions(split) is not None:
            last_only = population.has_labels(split)
            entry["classes"] = class_statistics(
                population, split, selection, num_classes,
                checkpoints=(last, last + 1) if last_only else None, **options)
            entry["classes_last_only"] = last_only
        graphs[split] = entry
    return graphs


def _flatten(graphs: dict) -> tuple[list, list]:
    paths, collections = [], []
    for split, entry in graphs.items():
        for part in ("counts", "classes"):
            if entry[part] is not None:
                for name, array in entry[part].items():
                    paths.append((split, part, name))
                    collections.append(array)
    return paths, collections


def _unflatten(graphs: dict, paths: list, values: list) -> dict:
    computed = {split: {"counts": None, "classes": None,
                        "classes_last_only": entry["classes_last_only"]}
                for split, entry in graphs.items()}
    for (split, part, name), value in zip(paths, values, strict=True):
        if computed[split][part] is None:
            computed[split][part] = {}
        computed[split][part][name] = np.asarray(value)
    return computed


def _measures(population, computed: dict, selection) -> dict:
    """split -> {"all": measures, "groups": {name: measures}}."""
    from engine.analysis import split_measures

    membership_split = population.attrs.get("membership_split")
    out = {}
    everyone = list(range(selection.num_groups))
    for split, entry in computed.items():
        labels = population.labels(split)

        def measure(groups, split=split, entry=entry, labels=labels):
            return split_measures(entry["counts"], selection, groups, labels,
                                  classes=entry["classes"],
                                  classes_last_only=entry["classes_last_only"],
                                  membership=split == membership_split)

        result = {"all": measure(everyone), "groups": {}}
        if selection.num_groups > 1:
            for g, name in enumerate(selection.group_names):
                if (selection.network_group == g).any():
                    result["groups"][name] = measure([g])
        out[split] = result
    return out


def _store_name(path: str, taken: set) -> str:
    base = Path(str(path).rstrip("/")).name.removesuffix(".zarr") or "store"
    name, i = base, 1
    while name in taken:
        i += 1
        name = f"{base}-{i}"
    taken.add(name)
    return name


# ----------------------------------------------------------------------------------------------
# analyze


def analyze_store(store: str, out_dir: Path, *, splits=None, scheduler: str = "threads",
                  workers: int | None = None, cluster: str | None = None,
                  require_complete: bool = False, pairwise_checkpoints: str = "last",
                  device: str = "cpu", progress: bool = True,
                  networks_per_task: int | None = None,
                  examples_per_task: int | None = None) -> Path:
    """Compute every measure of a store and write the outputs to ``out_dir``.

    Parameters
    ----------
    store : str
        Folder or URL of a population store.
    out_dir : Path
        Created if needed; receives summary.json, examples.parquet, networks.parquet, the PNG
        figures and report.html (see docs/outputs.md).
    splits : list of str or comma string, optional
        Default: every split.
    scheduler : "threads" or "processes"
        Local Dask scheduler, when neither ``workers`` nor ``cluster`` is given.
    workers : int, optional
        Start a local distributed cluster of this many single-threaded worker processes.
    cluster : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``).
    require_complete : bool
        Refuse a store with incomplete networks instead of analysing the complete ones.
    pairwise_checkpoints : str
        ``last``, ``all``, a comma list of checkpoints, or ``none`` (no pairwise measures).
    device : "cpu" or "cuda"
        Passed to the pairwise measures.
    progress : bool
        Show a progress bar of chunks done.

    Returns
    -------
    Path
        ``out_dir / "report.html"``.
    """
    from engine.analysis import num_classes_of
    from engine.store import open_population

    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device must be 'cpu' or 'cuda', got {device!r}")
    population = open_population(store)
    splits = _resolve_splits(population, splits)
    selection, missing = _selection(population, require_complete)
    out_dir = Path(out_dir)
    options = {"networks_per_task": networks_per_task, "examples_per_task": examples_per_task}
    started = time.perf_counter()
    with dask_scheduler(scheduler, workers, cluster) as client:
        # Only once the flags are valid and the cluster answers: bad input writes nothing.
        out_dir.mkdir(parents=True, exist_ok=True)
        graphs = _graphs(population, splits, selection, num_classes_of(population), options)
        paths, collections = _flatten(graphs)
        values = compute_with_progress(collections, client=client, progress=progress,
                                       counted=CHUNK_TASK_PREFIXES)
        computed = _unflatten(graphs, paths, values)
        measures = _measures(population, computed, selection)
        seconds = time.perf_counter() - started
        pairwise = _pairwise(population, out_dir, splits, pairwise_checkpoints, selection,
                             device)
    execution = {"scheduler": ("cluster " + cluster if cluster else
                               f"local cluster of {workers} workers" if workers else scheduler),
                 "measures_seconds": seconds,
                 "total_seconds": time.perf_counter() - started}
    summary = _summary(population, splits, measures, selection, missing, pairwise, execution)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, allow_nan=False))
    _write_examples(population, splits, measures, out_dir / "examples.parquet")
    _write_networks(population, splits, computed, selection, out_dir / "networks.parquet")
    figures = _figures(population, splits, measures, out_dir)
    figures += [f for f in (pairwise or {}).get("figures", []) if str(f).endswith(".png")]
    return _write_report(out_dir, f"Analysis of {population.path}", summary, figures,
                         _reading(summary))


def _pairwise(population, out_dir, splits, checkpoints, selection, device):
    if str(checkpoints).strip().lower() == "none":
        return None
    try:
        from engine.pairwise import pairwise_report
    except ImportError:  # the pairwise module is optional until integrated
        return {"status": "unavailable: engine.pairwise is not installed"}
    networks = np.flatnonzero(selection.network_group >= 0)
    return pairwise_report(population, out_dir, splits=splits, checkpoints=checkpoints,
                           networks=networks, device=device)


def _epochs(population) -> list[float]:
    return [float(e) for e in population.checkpoints["epoch"].to_numpy()]


_REQUIRED = ("accuracy_mean", "tpa_histogram", "null_histogram", "extreme_fraction",
             "extreme_fraction_null", "agreement_excess", "split_half_spearman")


def _split_summary(population, split, result) -> dict:
    summary = {"checkpoints": list(range(population.num_checkpoints)),
               "epochs": _epochs(population),
               "examples": population.num_examples(split),
               "has_labels": population.has_labels(split)}
    summary.update({key: None for key in _REQUIRED})
    summary.update({k: v for k, v in result["all"]["summary"].items()
                    if k not in ("checkpoints", "examples")})
    summary["labelled_examples"] = result["all"]["summary"].get("examples")
    if result["groups"]:
        summary["groups"] = {name: {k: v for k, v in r["summary"].items()
                                    if k not in ("checkpoints",)}
                             for name, r in result["groups"].items()}
        summary["group_comparison"] = _group_comparison(result["groups"])
    return summary


def _group_comparison(groups: dict) -> list:
    from engine.compare import compare_measures

    names = list(groups)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if "accuracy_mean" in groups[a]["summary"] and \
                    "accuracy_mean" in groups[b]["summary"]:
                pairs.append(compare_measures(a, groups[a], b, groups[b]))
    return pairs


def _summary(population, splits, measures, selection, missing, pairwise, execution) -> dict:
    analysed = int((selection.network_group >= 0).sum())
    note = (f"{missing} incomplete networks left out; measures cover the {analysed} complete "
            f"ones" if missing else "every network is complete")
    return {
        "store": population.path,
        "dataset": population.attrs["dataset"],
        "networks": {"total": population.num_networks, "analysed": analysed,
                     "incomplete_left_out": missing, "note": note},
        "groups": [dict(g, networks=int((selection.network_group == i).sum()))
                   for i, g in enumerate(population.attrs["groups"])],
        "checkpoints": population.num_checkpoints,
        "splits": {split: _split_summary(population, split, measures[split])
                   for split in splits},
        "pairwise": pairwise,
        "execution": execution,
    }


def _example_table(population, split, result) -> dict:
    examples = result["all"]["examples"]
    size = population.num_examples(split)
    nan = np.full(size, np.nan)
    table = {
        "split": np.full(size, split, dtype=object),
        "example": np.arange(size, dtype=np.int64),
        "example_id": population.example_ids(split),
        "label": population.labels(split),
    }
    for column in ("accessibility", "tpa_last", "first_learned_mean", "first_learned_median",
                   "never_learned_share", "forgetting_mean", "consensus_last",
                   "holdout_consistency"):
        table[column] = examples.get(column, nan)
    table["learning_order"] = examples.get("learning_order", np.full(size, -1, np.int64))
    for name, group in result["groups"].items():
        table[f"accessibility_{name}"] = group["examples"].get("accessibility", nan)
    return table


def _write_examples(population, splits, measures, path: Path) -> None:
    import pandas as pd

    frames = [pd.DataFrame(_example_table(population, split, measures[split]))
              for split in splits]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    frame["split"] = frame["split"].astype(str)
    frame.to_parquet(path, index=False)


def _write_networks(population, splits, computed, selection, path: Path) -> None:
    table = population.networks
    table["analysed"] = selection.network_group >= 0
    for split in splits:
        counts = computed[split]["counts"]
        labelled = int((population.labels(split) >= 0).sum())
        if counts is None or labelled == 0:
            continue
        accuracy = counts["network_count"][:, -1] / labelled
        table[f"accuracy_{split}"] = np.where(table["analysed"], accuracy, np.nan)
        forgetting = counts["network_forgetting"] / labelled
        table[f"forgetting_per_example_{split}"] = np.where(table["analysed"], forgetting,
                                                            np.nan)
    table.to_parquet(path, index=False)


# ----------------------------------------------------------------------------------------------
# Figures


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _figures(population, splits, measures, out_dir: Path) -> list[Path]:
    plt = _pyplot()
    epochs = np.asarray(_epochs(population))
    made = []
    labelled = [s for s in splits if "accuracy_mean" in measures[s]["all"]["summary"]]
    if labelled:
        figure, axis = plt.subplots(figsize=(6, 4))
        for split in labelled:
            summary = measures[split]["all"]["summary"]
            mean, std = np.asarray(summary["accuracy_mean"]), np.asarray(summary["accuracy_std"])
            axis.plot(epochs, mean, label=f"{split} (mean of {summary['networks']})")
            axis.fill_between(epochs, mean - std, mean + std, alpha=0.2)
            for name, group in measures[split]["groups"].items():
                axis.plot(epochs, group["summary"]["accuracy_mean"], lw=0.8, ls="--",
                          label=f"{split}, {name}")
        axis.set(xlabel="epoch", ylabel="accuracy", title="Accuracy of the networks")
        axis.legend(fontsize=7)
        made.append(_save(figure, out_dir / "accuracy.png", plt))
    for split in labelled:
        summary = measures[split]["all"]["summary"]
        made.append(_tpa_figure(plt, split, summary, epochs, out_dir))
        made.append(_learning_curve_figure(plt, split, summary, epochs, out_dir))
    for split in splits:
        consensus = measures[split]["all"]["summary"].get("consensus")
        if consensus and not population.has_labels(split):
            made.append(_consensus_figure(plt, split, consensus, epochs, out_dir))
    return made


def _save(figure, path: Path, plt) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _tpa_figure(plt, split, summary, epochs, out_dir):
    total = len(summary["tpa_histogram"])
    chosen = sorted({0, total // 2, total - 1})
    figure, axes = plt.subplots(1, len(chosen), figsize=(4 * len(chosen), 3.3), squeeze=False)
    size = summary["networks"]
    for axis, t in zip(axes[0], chosen, strict=True):
        observed = np.asarray(summary["tpa_histogram"][t], float)
        null = np.asarray(summary["null_histogram"][t], float)
        share = np.arange(size + 1) / max(size, 1)
        edges = np.linspace(-0.5, size + 0.5, size + 2) / max(size, 1)
        # stairs, not bars: one path instead of N + 1 rectangles (N is in the thousands).
        axis.stairs(observed, edges, fill=True, color="tab:blue", label="observed")
        axis.plot(share, null, color="tab:red", lw=1, label="independent (Poisson-binomial)")
        axis.set_yscale("symlog", linthresh=1)
        axis.set(xlabel="TP-agreement (share of networks right)", ylabel="examples",
                 title=f"{split}, epoch {epochs[t]:g}")
        axis.legend(fontsize=7)
    return _save(figure, out_dir / f"tpa_histogram_{split}.png", plt)


def _learning_curve_figure(plt, split, summary, epochs, out_dir):
    figure, axis = plt.subplots(figsize=(6, 4))
    curves = summary["tpa_mean_by_accessibility"]
    edges = curves["edges"]
    for b, curve in enumerate(curves["curves"]):
        if curve is not None:
            axis.plot(epochs, curve, label=f"accessibility {edges[b]:.2f}-{edges[b + 1]:.2f}")
    axis.set(xlabel="epoch", ylabel="mean TP-agreement", ylim=(-0.02, 1.02),
             title=f"{split}: learning curves of examples by accessibility (quintiles)")
    axis.legend(fontsize=7)
    return _save(figure, out_dir / f"learning_curves_{split}.png", plt)


def _consensus_figure(plt, split, consensus, epochs, out_dir):
    histogram = np.asarray(consensus["histogram"][-1], float)
    null = np.asarray(consensus["null_histogram"][-1], float)
    size = histogram.size - 1
    share = np.arange(size + 1) / max(size, 1)
    figure, axis = plt.subplots(figsize=(6, 4))
    edges = np.linspace(-0.5, size + 0.5, size + 2) / max(size, 1)
    axis.stairs(histogram, edges, fill=True, label="observed")
    axis.plot(share, null, color="tab:red", label="independent draws (null)")
    axis.set(xlabel="consensus (share of networks giving the plurality class)",
             ylabel="examples", title=f"{split}: consensus at epoch {epochs[-1]:g}")
    axis.legend(fontsize=7)
    return _save(figure, out_dir / f"consensus_{split}.png", plt)


# ----------------------------------------------------------------------------------------------
# The page


def _number(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return html.escape(str(value))


def _reading(summary: dict) -> list[str]:
    """A short reading of the key numbers, in sentences."""
    lines = []
    networks = summary["networks"]
    lines.append(f"{networks['analysed']} networks analysed ({networks['note']}).")
    for split, s in summary["splits"].items():
        if s.get("accuracy_mean"):
            extreme, null = s["extreme_fraction"][-1], s["extreme_fraction_null"][-1]
            excess = s["agreement_excess"][-1]
            lines.append(
                f"{split}: at the last checkpoint the networks are right on "
                f"{100 * s['accuracy_mean'][-1]:.1f}% of examples on average; "
                f"{100 * extreme:.1f}% of examples are classified correctly by all networks or "
                f"by none, against {100 * null:.3g}% expected of independent networks of the "
                f"same accuracies; agreement excess {_number(excess)} (0: independent, "
                f"1: identical networks). Split-half reliability of the learning order "
                f"(Spearman-Brown): {_number(s['split_half_spearman'])}.")
        consensus = s.get("consensus")
        if consensus and consensus["mean"]:
            lines.append(
                f"{split}: without true labels, on average {100 * consensus['mean'][-1]:.1f}% "
                f"of networks give the plurality class, against "
                f"{100 * consensus['null_mean'][-1]:.1f}% for networks that draw independently "
                f"from their own class frequencies.")
        for pair in s.get("group_comparison", []):
            if pair.get("spearman") is not None:
                lines.append(
                    f"{split}: groups {pair['populations'][0]} and {pair['populations'][1]} "
                    f"share their learning order (Spearman {_number(pair['spearman'])}, ceiling "
                    f"{_number(pair['ceiling'])}); of the examples {pair['weaker']} learns, "
                    f"{_number(pair['superset_fraction'])} are learned by {pair['stronger']}.")
    return lines


def _key_rows(summary: dict) -> list[tuple[str, str]]:
    rows = []
    for split, s in summary.get("splits", {}).items():
        if s.get("accuracy_mean"):
            rows += [
                (f"{split}: accuracy (last)", _number(s["accuracy_mean"][-1])),
                (f"{split}: extreme fraction (last) / null",
                 f"{_number(s['extreme_fraction'][-1])} / "
                 f"{_number(s['extreme_fraction_null'][-1])}"),
                (f"{split}: agreement excess (last)", _number(s["agreement_excess"][-1])),
                (f"{split}: split-half reliability", _number(s["split_half_spearman"])),
            ]
            if s.get("holdout_consistency_mean"):
                rows.append((f"{split}: hold-out consistency (last)",
                             _number(s["holdout_consistency_mean"][-1])))
        if s.get("consensus") and s["consensus"]["mean"]:
            rows.append((f"{split}: consensus (last) / null",
                         f"{_number(s['consensus']['mean'][-1])} / "
                         f"{_number(s['consensus']['null_mean'][-1])}"))
    return rows + _pairwise_rows(summary.get("pairwise"))


def _pairwise_rows(pairwise: dict | None) -> list[tuple[str, str]]:
    """Mean pairwise measures at the last checkpoint computed, with their network intervals."""
    rows = []
    labels = (("kappa", "mean pairwise kappa"), ("agreement", "mean pairwise agreement"),
              ("prediction_agreement", "mean prediction agreement"))
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
            shown = _number(value["mean"])
            if interval:
                shown += f" [{_number(interval[0])}, {_number(interval[1])}]"
            rows.append((f"{split}: {label} (checkpoint {last})", shown))
    return rows


def _write_report(out_dir: Path, title: str, summary: dict, figures: list, reading: list[str],
                  rows: list[tuple[str, str]] | None = None, tables: str = "") -> Path:
    rows = rows if rows is not None else _key_rows(summary)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
        "img{max-width:100%;display:block;margin:1em 0}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Reading</h2><ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in reading)
        + "</ul>",
        "<h2>Key numbers</h2><table>" + "".join(
            f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>",
        tables,
        "<h2>Figures</h2>",
    ]
    for figure in figures:
        path = Path(figure)
        if not path.exists():  # pairwise figures are named relative to out_dir
            path = out_dir / path
        if path.exists():
            encoded = base64.b64encode(path.read_bytes()).decode("ascii")
            parts.append(f"<h3>{html.escape(path.stem)}</h3>"
                         f"<img alt='{html.escape(path.stem)}' "
                         f"src='data:image/png;base64,{encoded}'>")
    parts.append("<p>Full numbers: summary.json; per example: examples.parquet; per network: "
                  "networks.parquet (docs/outputs.md).</p></body></html>")
    target = out_dir / "report.html"
    target.write_text("\n".join(parts), encoding="utf-8")
    return target


# ----------------------------------------------------------------------------------------------
# compare


def compare_stores(stores: list[str], out_dir: Path, *, splits=None, scheduler: str = "threads",
                   workers: int | None = None, cluster: str | None = None,
                   require_complete: bool = False, pairwise: bool = True, device: str = "cpu",
                   progress: bool = True) -> Path:
    """Compare the learning orders of populations trained on the same examples.

    For every two stores and every split they share with labels: Spearman, Pearson and Kendall
    correlation of accessibility, Spearman of TP-agreement per checkpoint, each population's
    split-half ceiling, the superset relation; across stores, test accuracy against agreement
    excess. Writes summary.json, the figures and report.html to ``out_dir``.

    Raises
    ------
    StoreError
        A store is missing or foreign, or the stores hold different data sets.
    """
    from engine.analysis import num_classes_of
    from engine.compare import compare_measures, generalisation_row
    from engine.store import open_population, require_same_dataset

    if len(stores) < 2:
        raise ConfigError("compare needs at least two stores")
    populations = [open_population(s) for s in stores]
    require_same_dataset(populations, "compare")
    first = populations[0]
    common = [s for s in first.splits if all(s in p.splits for p in populations)]
    chosen = _resolve_splits(first, splits) if splits is not None else common
    for population in populations:
        _resolve_splits(population, chosen)
    taken: set = set()
    names = [_store_name(p.path, taken) for p in populations]
    selections = [_selection(p, require_complete) for p in populations]
    out_dir = Path(out_dir)
    started = time.perf_counter()
    with dask_scheduler(scheduler, workers, cluster) as client:
        out_dir.mkdir(parents=True, exist_ok=True)
        all_graphs = [_graphs(p, chosen, s[0], num_classes_of(p), {})
                      for p, s in zip(populations, selections, strict=True)]
        flat = [_flatten(g) for g in all_graphs]
        collections = [c for _, cs in flat for c in cs]
        values = compute_with_progress(collections, client=client, progress=progress,
                                       counted=CHUNK_TASK_PREFIXES)
        measures, offset = [], 0
        for population, graphs, (paths, cs), (selection, _) in zip(
                populations, all_graphs, flat, selections, strict=True):
            computed = _unflatten(graphs, paths, values[offset: offset + len(cs)])
            offset += len(cs)
            measures.append(_measures(population, computed, selection))
        seconds = time.perf_counter() - started
        cross = None
        if pairwise:
            cross = _cross_pairwise(populations, out_dir, chosen, device)
    labelled = [s for s in chosen if all(
        "accuracy_mean" in m[s]["all"]["summary"] for m in measures)]
    pairs = {split: [compare_measures(names[i], measures[i][split]["all"], names[j],
                                      measures[j][split]["all"])
                     for i in range(len(names)) for j in range(i + 1, len(names))]
             for split in labelled}
    generalisation_split = "test" if "test" in labelled else (labelled[0] if labelled else None)
    table = ([generalisation_row(name, m[generalisation_split]["all"])
              for name, m in zip(names, measures, strict=True)]
             if generalisation_split else [])
    summary = {
        "stores": [p.path for p in populations],
        "names": names,
        "dataset": first.attrs["dataset"],
        "populations": {
            name: {"networks": {"total": p.num_networks,
                                "analysed": int((s[0].network_group >= 0).sum()),
                                "incomplete_left_out": s[1]},
                   "splits": {split: _split_summary(p, split, m[split])
                              for split in chosen}}
            for name, p, m, s in zip(names, populations, measures, selections, strict=True)},
        "pairs": pairs,
        "generalisation": {"split": generalisation_split, "rows": table},
        "pairwise": cross,
        "execution": {"measures_seconds": seconds},
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, allow_nan=False))
    figures = _compare_figures(names, measures, pairs, labelled, table, out_dir)
    for report in (cross or {}).values():
        if isinstance(report, dict):
            figures += [f for f in report.get("figures", []) if str(f).endswith(".png")]
    reading = _compare_reading(pairs, table)
    rows = [(f"{split}: {p['populations'][0]} vs {p['populations'][1]}",
             f"Spearman {_number(p.get('spearman'))}, Pearson {_number(p.get('pearson'))}, "
             f"Kendall {_number(p.get('kendall'))}, ceiling {_number(p.get('ceiling'))}, "
             f"superset {_number(p.get('superset_fraction'))}")
            for split, ps in pairs.items() for p in ps]
    rows += [(f"{r['population']} ({generalisation_split})",
              f"accuracy {_number(r['accuracy'])}, agreement excess "
              f"{_number(r['agreement_excess'])}, reliability "
              f"{_number(r['split_half_spearman'])}") for r in table]
    return _write_report(out_dir, "Comparison of " + ", ".join(names), summary, figures,
                         reading, rows)


def _cross_pairwise(populations, out_dir, splits, device):
    try:
        from engine.pairwise import cross_pairwise_report
    except ImportError:  # the pairwise module is optional until integrated
        return {"status": "unavailable: engine.pairwise is not installed"}
    results = {}
    for split in splits:
        if all(p.has_labels(split) for p in populations):
            results[split] = cross_pairwise_report(populations, out_dir / f"pairwise_{split}",
                                                   split=split, device=device)
            results[split]["figures"] = [
                str(Path(f) if Path(f).is_absolute() else out_dir / f"pairwise_{split}" / f)
                for f in results[split].get("figures", [])]
    return results


def _compare_reading(pairs, table) -> list[str]:
    lines = []
    for split, ps in pairs.items():
        for p in ps:
            if p.get("spearman") is None:
                continue
            lines.append(
                f"{split}: {p['populations'][0]} and {p['populations'][1]} order the examples "
                f"alike (Spearman {_number(p['spearman'])} against a split-half ceiling of "
                f"{_number(p['ceiling'])}); of the examples the weaker ({p['weaker']}) learns, "
                f"{_number(p['superset_fraction'])} are learned by the stronger "
                f"({p['stronger']}).")
    if len(table) > 1:
        ordered = sorted(table, key=lambda r: r["accuracy"])
        lines.append("From the least to the most accurate population, agreement excess goes "
                     + " -> ".join(_number(r["agreement_excess"]) for r in ordered) + ".")
    return lines


def _compare_figures(names, measures, pairs, labelled, table, out_dir: Path) -> list[Path]:
    plt = _pyplot()
    made = []
    for split in labelled:
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                a = measures[i][split]["all"]["examples"]["accessibility"]
                b = measures[j][split]["all"]["examples"]["accessibility"]
                keep = np.isfinite(a) & np.isfinite(b)
                figure, axis = plt.subplots(figsize=(5, 5))
                if keep.sum() > 5000:
                    axis.hexbin(a[keep], b[keep], gridsize=60, bins="log", cmap="viridis")
                else:
                    axis.scatter(a[keep], b[keep], s=4, alpha=0.5)
                axis.plot([0, 1], [0, 1], color="grey", lw=0.8)
                axis.set(xlabel=f"accessibility, {names[i]}", ylabel=f"accessibility, {names[j]}",
                         title=f"{split}: {names[i]} vs {names[j]}")
                made.append(_save(figure, out_dir / f"accessibility_{split}_{names[i]}_"
                                                     f"{names[j]}.png", plt))
    if table:
        figure, axis = plt.subplots(figsize=(5, 4))
        for row in table:
            if row["agreement_excess"] is not None:
                axis.scatter(row["agreement_excess"], row["accuracy"])
                axis.annotate(row["population"], (row["agreement_excess"], row["accuracy"]),
                              fontsize=8)
        axis.set(xlabel="agreement excess (last checkpoint)", ylabel="accuracy (last)",
                 title="Generalisation against agreement")
        made.append(_save(figure, out_dir / "generalisation.png", plt))
    return made


__all__ = ["analyze_store", "compare_stores"]

"""`engine select`: the ids of the examples a cartography filter takes, written as ``.npy``.

The score of every example is computed from the store, out of core, on the chosen Dask
scheduler (:func:`engine.measures.filter_scores`); the examples are ranked by
:func:`engine.measures.choose_examples`. Every flag and the store are checked before anything
is computed or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import StoreError
from engine.scheduling import compute_with_progress, dask_scheduler


@dataclass(frozen=True)
class SelectedExamples:
    """What :func:`select_examples` wrote.

    Attributes
    ----------
    path : Path
        The ``.npy`` file: the chosen examples' ``example_ids`` (int64), best first.
    split : str
    chosen : int
        Examples written.
    scored : int
        Examples of the split that had a score (a label and, for soft scores, soft verdicts).
    networks : int
        Networks the scores pool (the complete ones).
    rule : str
        The filter in words, e.g. ``"highest variability first"``.
    """

    path: Path
    split: str
    chosen: int
    scored: int
    networks: int
    rule: str


def select_examples(
    store: str,
    out: Path,
    *,
    fraction: float,
    region: str | None = None,
    by: str | None = None,
    ascending: bool | None = None,
    split: str = "train",
    scheduler: str = "threads",
    workers: int | None = None,
    cluster: str | None = None,
    progress: bool = False,
    accessibility_from: str = "first-trained",
) -> SelectedExamples:
    """Write the ``example_ids`` of the examples a filter takes from one split of a store.

    Parameters
    ----------
    store : str
        Folder or URL of a population store.
    out : Path
        The ``.npy`` file to write (int64 ids, the best first); its folder must exist.
    fraction : float
        Share in (0, 1] of the split's scored examples to take (rounded, at least one).
    region : {"easy", "ambiguous", "hard"}, optional
        Cartography's regions as filters: ambiguous takes the highest variability, easy the
        highest confidence, hard the lowest confidence (population means over networks).
    by : {"aum", "confidence", "variability", "accessibility"}, optional
        A score instead of a region; aum defaults to lowest first (the likely mislabelled), the
        others to highest first. Exactly one of ``region`` and ``by``.
    ascending : bool, optional
        Overrides the default order.
    split : str
    scheduler, workers, cluster
        As in :func:`engine.report.analyze_store`.
    progress : bool
        Show a progress bar of chunks done.
    accessibility_from : {"first-trained", "initialisation"}
        The checkpoints of ``by="accessibility"``, as in :func:`engine.report.analyze_store`.

    Raises
    ------
    ConfigError
        Bad flags (both or neither of region and by, an unknown one, a fraction outside
        (0, 1]).
    StoreError
        The store or split is missing, has no complete network or no labels, or lacks the soft
        verdicts the filter needs (every filter but ``by="accessibility"``).
    """
    from engine.measures import (
        CHUNK_TASK_PREFIXES,
        check_fraction,
        choose_examples,
        example_filter,
        filter_scores,
        select_networks,
    )
    from engine.store import open_population

    chosen_filter = example_filter(region, by, ascending)
    fraction = check_fraction(fraction)
    population = open_population(store)
    complete = population.complete_networks()
    if complete.size == 0:
        raise StoreError(f"{population.path} has no complete network to score examples with")
    selection = select_networks(population, networks=complete, halvings=0)
    lazy = filter_scores(population, split, selection, chosen_filter, accessibility_from)
    with dask_scheduler(scheduler, workers, cluster) as client:
        (scores,) = compute_with_progress(
            [lazy], client=client, progress=progress, counted=CHUNK_TASK_PREFIXES
        )
    scores = np.asarray(scores, np.float64)
    chosen = choose_examples(scores, fraction, chosen_filter.ascending)
    if chosen.size == 0:
        raise StoreError(f"split {split!r} of {population.path} has no example with a score")
    ids = population.example_ids(split)[chosen].astype(np.int64)
    out = Path(out)
    with out.open("wb") as file:
        np.save(file, ids)
    return SelectedExamples(
        out,
        split,
        int(chosen.size),
        int(np.isfinite(scores).sum()),
        int(complete.size),
        chosen_filter.describe(),
    )


__all__ = ["SelectedExamples", "select_examples"]

"""One way to get a Dask scheduler or client, and one progress bar over chunk-reading tasks.

Every command that computes (analyze, compare, pairwise, train on a cluster) goes through
:func:`dask_scheduler`, so ``--scheduler``, ``--workers`` and ``--cluster`` mean the same thing
everywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from engine.errors import ConfigError, EngineError

if TYPE_CHECKING:
    from distributed import Client

SCHEDULERS = ("threads", "processes")
CLUSTER_TIMEOUT_S = 5


# ----------------------------------------------------------------------------------------------
# Schedulers and progress


@contextlib.contextmanager
def dask_scheduler(
    scheduler: str = "threads", workers: int | None = None, cluster: str | None = None
) -> Iterator[Client | None]:
    """Run the enclosed computations on a local scheduler, a new local cluster or an existing one.

    Parameters
    ----------
    scheduler : "threads" or "processes"
        The local scheduler, where neither ``workers`` nor ``cluster`` is given.
    workers : int, optional
        Start a ``distributed.LocalCluster`` of this many single-threaded worker processes.
    cluster : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``), reached within
        :data:`CLUSTER_TIMEOUT_S` seconds.

    Yields
    ------
    distributed.Client or None
        The client (the default one while the context lasts), None for a local scheduler.

    Raises
    ------
    ConfigError
        For an unknown scheduler, ``workers < 1``, or both ``workers`` and ``cluster``.
    EngineError
        Where the scheduler at ``cluster`` does not answer.
    """
    import dask

    if scheduler not in SCHEDULERS:
        raise ConfigError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}")
    if workers is not None and cluster is not None:
        raise ConfigError("give --workers or --cluster, not both")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if cluster is None and workers is None:
        with dask.config.set(scheduler=scheduler):
            yield None
        return
    from distributed import Client, LocalCluster

    if cluster is not None:
        try:
            client = Client(cluster, timeout=f"{CLUSTER_TIMEOUT_S}s", set_as_default=True)
        except (OSError, TimeoutError) as error:
            raise EngineError(
                f"cannot reach the Dask scheduler at {cluster} within "
                f"{CLUSTER_TIMEOUT_S} s: {type(error).__name__}"
            ) from error
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as local,
        Client(local) as client,
    ):
        yield client


def _block_keys(collections, prefixes: tuple[str, ...]) -> list:
    """Keys of the tasks whose names start with one of ``prefixes`` (what the bar counts)."""
    keys = set()
    for collection in collections:
        for key in collection.__dask_graph__():
            name = key if isinstance(key, str) else key[0] if isinstance(key, tuple) else ""
            if isinstance(name, str) and name.startswith(prefixes):
                keys.add(key)
    return sorted(keys, key=str)


def compute_with_progress(
    collections: list,
    *,
    client=None,
    progress: bool = True,
    label: str = "chunks",
    counted: tuple[str, ...] = (),
) -> list:
    """Compute Dask collections, with a rich progress bar of the tasks done.

    ``counted`` holds the name prefixes of the tasks the bar counts (for the analyses, the
    chunk-reading tasks named by :data:`engine.measures.CHUNK_TASK_PREFIXES`); with none the bar
    shows no total.
    """
    import dask

    keys = _block_keys(collections, counted)
    bar = _progress_bar(progress)
    with bar:
        task = bar.add_task(label, total=len(keys))
        if client is None:
            from dask.callbacks import Callback

            wanted = set(keys)

            class _Advance(Callback):
                def _posttask(self, key, result, dsk, state, worker_id):
                    if key in wanted:
                        bar.advance(task)

            with _Advance():
                results = dask.compute(*collections)
            return list(results)
        from dask.delayed import Delayed
        from distributed import as_completed

        futures = client.compute(list(collections))
        block_futures = []
        if keys:
            merged = {}
            for collection in collections:
                merged.update(collection.__dask_graph__())
            block_futures = client.compute([Delayed(k, merged) for k in keys])
        for future in as_completed(block_futures):
            bar.advance(task)
            future.release()
        return client.gather(futures)


def _progress_bar(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=False,
    )


__all__ = ["SCHEDULERS", "dask_scheduler", "compute_with_progress"]

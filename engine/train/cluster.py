"""Train a study on an existing Dask distributed cluster: one task per shard of network blocks.

The client creates the store once; each task then runs :func:`engine.train.loop.train_population`
with its own ``shard=(i, K)`` on a worker, so the store must sit where every worker can write it
(a shared file system). Tasks own disjoint whole blocks, exactly like processes started with
``--shard``, and a task that dies is simply rerun: it resumes from its saved state. Workers that
hold GPUs advertise a resource (``dask worker ... --resources "GPU=1"``) and each task asks for
it, so one GPU trains one shard at a time.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import ConfigError
from engine.train.config import RunOptions, StudyConfig

if TYPE_CHECKING:
    from engine.train.loop import TrainSummary


def parse_resources(text: str | None) -> dict[str, float]:
    """The resources each task of ``--worker-resources`` asks of a Dask worker.

    >>> parse_resources("GPU=1,MEM=4e9")
    {'GPU': 1.0, 'MEM': 4000000000.0}
    >>> parse_resources(None)
    {}
    """
    resources: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        name, _, amount = item.partition("=")
        try:
            resources[name.strip()] = float(amount)
        except ValueError:
            raise ConfigError(f"--worker-resources takes NAME=AMOUNT[,...], got {item!r}") from None
        if not name.strip() or resources[name.strip()] <= 0:
            raise ConfigError(f"--worker-resources takes NAME=AMOUNT with AMOUNT > 0, got {item!r}")
    return resources


def _task_count(study: StudyConfig, options: RunOptions, tasks: int) -> int:
    """The shards to submit, once the study and options are checked."""
    if options.networks is not None or options.shard is not None:
        raise ConfigError(
            "--cluster shares the networks out itself: drop --networks A:B and --shard"
        )
    study.validate()
    options.validate()
    blocks = math.ceil(study.num_networks / study.network_block)
    tasks = tasks or blocks
    if not 1 <= tasks <= blocks:
        raise ConfigError(
            f"--cluster-tasks {tasks}: need 1 to {blocks} (blocks of "
            f"{study.network_block} networks)"
        )
    return tasks


def train_on_cluster(
    study: StudyConfig,
    out: str | os.PathLike,
    address: str,
    options: RunOptions | None = None,
    *,
    tasks: int = 0,
    resources: dict[str, float] | None = None,
) -> list[TrainSummary]:
    """Train (or resume) ``study`` into the store at ``out`` with one cluster task per shard.

    Parameters
    ----------
    study : StudyConfig
    out : path
        The store, on a file system every worker shares.
    address : str
        Address of the Dask scheduler (``tcp://host:8786``), reached through
        :func:`engine.scheduling.dask_scheduler`.
    options : RunOptions, optional
        Device, block size, eval batch; ``networks`` and ``shard`` must be unset.
    tasks : int
        Shards to submit (0: one per stored block of networks).
    resources : dict, optional
        Worker resources each task needs, e.g. ``{"GPU": 1}``.

    Returns
    -------
    list of TrainSummary, one per task.

    Raises
    ------
    ConfigError
        For bad input (see :func:`engine.train.loop.train_population`).
    EngineError
        Where the scheduler does not answer.
    """
    from engine.scheduling import dask_scheduler
    from engine.train.data import load_dataset
    from engine.train.loop import train_population
    from engine.train.population import create_or_open
    from engine.train.seeds import study_checkpoints, study_seeds

    options = options or RunOptions()
    tasks = _task_count(study, options, tasks)
    store = Path(out).absolute()
    dataset = load_dataset(study.data)
    # --threads sets this process's torch threads only (as it always has); workers keep theirs.
    task_options = dataclasses.replace(options, quiet=True, threads=0)
    with dask_scheduler(cluster=address) as client:
        assert client is not None, "an address always gives a client"
        create_or_open(
            study,
            dataset,
            store,
            study_checkpoints(study, dataset),
            study_seeds(study),
            options.command,
        )
        futures = [
            client.submit(
                train_population,
                study,
                str(store),
                dataclasses.replace(task_options, shard=(index, tasks)),
                resources=resources or None,
                pure=False,
                key=f"train-shard-{index}",
            )
            for index in range(tasks)
        ]
        return list(client.gather(futures))

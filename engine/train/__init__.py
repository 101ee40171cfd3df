"""Population training (the only part of the engine that imports torch, and only lazily).

``train_population(study, out, options)`` trains a :class:`StudyConfig` into a store;
``load_study(path)`` reads one from TOML, ``study_from_command_line(flags)`` builds one from the
command line's flags. See docs/training.md.

Rooms: ``config`` (typed settings), ``study`` (TOML and flags), ``data`` (data sets),
``seeds`` (randomness and schedules), ``models`` (batched architectures), ``augment``,
``device``, ``block`` (the unit of work), ``evaluation`` and ``recorders`` (what a checkpoint
writes, and where), ``state`` (resuming), ``population`` (the store a study trains into),
``loop`` (training), ``cluster`` (training on a Dask cluster), ``progress``.
"""

from engine.train.config import DataConfig, GroupConfig, RunOptions, StudyConfig
from engine.train.study import StudyFlags, load_study, study_from_command_line, study_from_flags

__all__ = [
    "DataConfig",
    "GroupConfig",
    "RunOptions",
    "StudyConfig",
    "StudyFlags",
    "load_study",
    "study_from_command_line",
    "study_from_flags",
    "train_population",
]


def train_population(*args, **kwargs):
    """See :func:`engine.train.loop.train_population` (imported lazily: it needs torch)."""
    from engine.train.loop import train_population as train

    return train(*args, **kwargs)

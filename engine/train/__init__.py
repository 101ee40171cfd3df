"""Population training (the only part of the engine that imports torch, and only lazily).

``train_population(study, out, options)`` trains a :class:`StudyConfig` into a store;
``load_study(path)`` reads one from TOML. See docs/training.md.
"""

from engine.train.config import DataConfig, GroupConfig, RunOptions, StudyConfig
from engine.train.study import load_study, study_from_flags

__all__ = ["DataConfig", "GroupConfig", "RunOptions", "StudyConfig", "load_study",
           "study_from_flags", "train_population"]


def train_population(*args, **kwargs):
    """See :func:`engine.train.loop.train_population` (imported lazily: it needs torch)."""
    from engine.train.loop import train_population as train

    return train(*args, **kwargs)

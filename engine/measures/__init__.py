"""The paper's measures over a population store: lazy graphs of counts, then their algebra.

Layout letters: n networks, t checkpoints, x examples, k classes, g groups, s split-halvings.

The rooms, in the order the data flows:

- :mod:`~engine.measures.selection`: which networks are analysed, their groups and halvings;
- :mod:`~engine.measures.tasks`: the tasks that read one column of stored chunks on a worker
  and run the kernels on it;
- :mod:`~engine.measures.graphs`: the lazy Dask graphs of those tasks and of the tree that adds
  their counts (:func:`verdict_statistics`, :func:`class_statistics`); nothing calls
  ``.compute()``, the caller picks the scheduler;
- :mod:`~engine.measures.verdicts` and :mod:`~engine.measures.consensus`: one function per
  measure on the computed counts (plain NumPy, the counts are small), composed per split by
  :func:`split_measures`;
- :mod:`~engine.measures.compare`: learning-order agreement between populations or groups;
- :mod:`~engine.measures.numbers`: rank correlation and JSON-able floats.
"""

from engine.measures.compare import (
    compare_measures,
    generalisation_row,
    learning_order_correlation,
    reliability_ceiling,
    superset_fraction,
)
from engine.measures.consensus import CONSENSUS_NULL_SAMPLES, consensus_null
from engine.measures.graphs import (
    CHUNK_TASK_PREFIXES,
    CLASS_TASK_PREFIX,
    VERDICT_TASK_PREFIX,
    class_statistics,
    num_classes_of,
    verdict_statistics,
)
from engine.measures.numbers import nan_to_none, nan_to_none_list, spearman, spearman_brown
from engine.measures.selection import DEFAULT_HALVINGS, NetworkSelection, select_networks
from engine.measures.split import split_measures
from engine.measures.tasks import ClassTask, VerdictTask, class_block, verdict_block

__all__ = [
    "CHUNK_TASK_PREFIXES",
    "CLASS_TASK_PREFIX",
    "CONSENSUS_NULL_SAMPLES",
    "DEFAULT_HALVINGS",
    "VERDICT_TASK_PREFIX",
    "ClassTask",
    "NetworkSelection",
    "VerdictTask",
    "class_block",
    "class_statistics",
    "compare_measures",
    "consensus_null",
    "generalisation_row",
    "learning_order_correlation",
    "nan_to_none",
    "nan_to_none_list",
    "num_classes_of",
    "reliability_ceiling",
    "select_networks",
    "spearman",
    "spearman_brown",
    "split_measures",
    "superset_fraction",
    "verdict_block",
    "verdict_statistics",
]

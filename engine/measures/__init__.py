"""The paper's measures over a population store: lazy graphs of counts, then their algebra.

Layout letters: n networks, t checkpoints, x examples, k classes, g groups, s split-halvings.

The rooms, in the order the data flows:

- :mod:`~engine.measures.selection`: which networks are analysed, their groups and halvings;
- :mod:`~engine.measures.tasks`: the tasks that read one column of stored chunks on a worker
  and run the kernels on it;
- :mod:`~engine.measures.graphs`: the lazy Dask graphs of those tasks and of the tree that adds
  their counts (:func:`verdict_statistics`, :func:`class_statistics`, :func:`soft_statistics`);
  nothing calls ``.compute()``, the caller picks the scheduler;
- :mod:`~engine.measures.verdicts`, :mod:`~engine.measures.consensus` and
  :mod:`~engine.measures.soft`: one function per measure on the computed counts (plain NumPy,
  the counts are small), composed per split by :func:`split_measures`;
- :mod:`~engine.measures.filtering`: examples chosen by region or score (cartography's filters);
- :mod:`~engine.measures.compare`: learning-order agreement between populations or groups;
- :mod:`~engine.measures.numbers`: rank correlation and JSON-able floats.
"""

from engine.measures.compare import (
    checkpoint_grids,
    compare_measures,
    generalisation_row,
    learning_order_correlation,
    reliability_ceiling,
    superset_fraction,
)
from engine.measures.consensus import CONSENSUS_NULL_SAMPLES, consensus_null
from engine.measures.filtering import (
    ExampleFilter,
    check_fraction,
    choose_examples,
    example_filter,
    filter_scores,
)
from engine.measures.graphs import (
    CHUNK_TASK_PREFIXES,
    CLASS_TASK_PREFIX,
    SOFT_TASK_PREFIX,
    VERDICT_TASK_PREFIX,
    class_statistics,
    num_classes_of,
    soft_first_checkpoint,
    soft_statistics,
    verdict_statistics,
)
from engine.measures.numbers import nan_to_none, nan_to_none_list, spearman, spearman_brown
from engine.measures.selection import DEFAULT_HALVINGS, NetworkSelection, select_networks
from engine.measures.soft import (
    AUM_EDGES,
    POPULATION_REGIONS,
    REGION_THRESHOLDS,
    STATISTIC_NAMES,
    soft_measures,
)
from engine.measures.split import EXAMPLE_AXES, split_measures, subset_counts
from engine.measures.tasks import (
    ClassTask,
    SoftTask,
    VerdictTask,
    class_block,
    soft_block,
    verdict_block,
)
from engine.measures.verdicts import (
    ACCESSIBILITY_FROM,
    EVERY_CHECKPOINT,
    AccessibilityWindow,
    accessibility_window,
)

__all__ = [
    "ACCESSIBILITY_FROM",
    "AUM_EDGES",
    "CHUNK_TASK_PREFIXES",
    "CLASS_TASK_PREFIX",
    "CONSENSUS_NULL_SAMPLES",
    "DEFAULT_HALVINGS",
    "EVERY_CHECKPOINT",
    "EXAMPLE_AXES",
    "POPULATION_REGIONS",
    "REGION_THRESHOLDS",
    "SOFT_TASK_PREFIX",
    "STATISTIC_NAMES",
    "VERDICT_TASK_PREFIX",
    "AccessibilityWindow",
    "ClassTask",
    "ExampleFilter",
    "NetworkSelection",
    "SoftTask",
    "VerdictTask",
    "accessibility_window",
    "check_fraction",
    "checkpoint_grids",
    "choose_examples",
    "class_block",
    "class_statistics",
    "compare_measures",
    "consensus_null",
    "example_filter",
    "filter_scores",
    "generalisation_row",
    "learning_order_correlation",
    "nan_to_none",
    "nan_to_none_list",
    "num_classes_of",
    "reliability_ceiling",
    "select_networks",
    "soft_block",
    "soft_measures",
    "soft_first_checkpoint",
    "soft_statistics",
    "spearman",
    "spearman_brown",
    "split_measures",
    "subset_counts",
    "superset_fraction",
    "verdict_block",
    "verdict_statistics",
]

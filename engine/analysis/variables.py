"""The variables of an analysis Dataset: their dims, dtype, the measure they come from and the
attributes that say what they are (``long_name``, ``units``, ``description``).

Dims: ``checkpoints`` (T), ``examples`` (X, every example of the split, labelled or not),
``networks`` (the analysed networks pooled, n) and ``k`` (0..n, a count of networks). The
definitions are those of docs/measures.md and docs/outputs.md, in one line each.

Each variable belongs to a kind, present or absent for a whole split: ``correctness`` (the split
has labels and verdict counts), ``holdout`` (the split holds the membership mask too), ``soft``
(labels and soft verdicts) and ``consensus`` (stored predictions).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Units of a ratio or share (CF conventions: dimensionless).
RATIO = "1"
CHECKPOINT = "checkpoint index"


@dataclass(frozen=True)
class Variable:
    """One variable of a split's Dataset.

    Attributes
    ----------
    name : str
    dims : tuple of str
    dtype : str
        NumPy dtype name of its values.
    kind : str
        ``correctness``, ``holdout``, ``soft`` or ``consensus``: present where the split has it.
    long_name, units, description : str
        Its attributes: a name for axes, the units, the definition.
    """

    name: str
    dims: tuple[str, ...]
    dtype: str
    kind: str
    long_name: str
    units: str
    description: str

    @property
    def attrs(self) -> dict[str, str]:
        return {"long_name": self.long_name, "units": self.units, "description": self.description}


def _variables(kind: str, dims: tuple[str, ...], dtype: str, rows: list[tuple[str, ...]]):
    return [Variable(name, dims, dtype, kind, *rest) for name, *rest in rows]


E, T, TK, N = ("examples",), ("checkpoints",), ("checkpoints", "k"), ("networks",)

_CORRECTNESS = [
    *_variables(
        "correctness",
        E,
        "float64",
        [
            (
                "accessibility",
                "accessibility",
                RATIO,
                "mean over checkpoints of the example's TP-agreement (NaN without a label)",
            ),
            (
                "tpa_last",
                "TP-agreement at the last checkpoint",
                RATIO,
                "share of the networks right on the example at the last checkpoint",
            ),
            (
                "first_learned_mean",
                "mean first-learned checkpoint",
                CHECKPOINT,
                "mean, over the networks that learn the example, of the checkpoint from which "
                "they stay right on it",
            ),
            (
                "first_learned_median",
                "median first-learned checkpoint",
                CHECKPOINT,
                "median of the same over the networks that learn the example",
            ),
            (
                "first_learned_epoch_mean",
                "mean first-learned epoch",
                "epoch",
                "mean, over the networks that learn the example, of the epoch of the checkpoint "
                "from which they stay right on it (NaN where an epoch is unknown)",
            ),
            (
                "first_learned_epoch_median",
                "median first-learned epoch",
                "epoch",
                "median of the same epochs over the networks that learn the example",
            ),
            (
                "never_learned_share",
                "never-learned share",
                RATIO,
                "share of the networks that have not learned the example by the last checkpoint",
            ),
            (
                "forgetting_mean",
                "forgetting events per network",
                "events per network",
                "right-then-wrong transitions between consecutive checkpoints, mean over networks",
            ),
        ],
    ),
    Variable(
        "learning_order",
        E,
        "int64",
        "correctness",
        "learning order",
        "rank",
        "rank of the example by accessibility, most accessible first (0), ties in example "
        "order; -1 without a label",
    ),
    Variable(
        "tpa",
        ("checkpoints", "examples"),
        "float64",
        "correctness",
        "TP-agreement",
        RATIO,
        "share of the networks right on the example at each checkpoint (NaN without a label)",
    ),
    *_variables(
        "correctness",
        T,
        "float64",
        [
            ("accuracy_mean", "accuracy, mean over networks", RATIO, "mean network accuracy"),
            ("accuracy_std", "accuracy, std over networks", RATIO, "its standard deviation"),
            ("accuracy_min", "accuracy, lowest network", RATIO, "the lowest network accuracy"),
            ("accuracy_max", "accuracy, highest network", RATIO, "the highest network accuracy"),
            (
                "extreme_fraction",
                "extreme fraction",
                RATIO,
                "share of the labelled examples that none or all networks get right",
            ),
            (
                "extreme_fraction_null",
                "extreme fraction of independent networks",
                RATIO,
                "the same expected of independent networks of the same accuracies "
                "(Poisson-binomial null)",
            ),
            (
                "agreement_excess",
                "agreement excess",
                RATIO,
                "(Var_x TPA / (p (1 - p)) - 1/N) / (1 - 1/N): 0 for independent networks of equal "
                "accuracy, 1 when all agree; NaN where undefined",
            ),
        ],
    ),
    Variable(
        "tpa_histogram",
        TK,
        "int64",
        "correctness",
        "TP-agreement histogram",
        "examples",
        "labelled examples on which exactly k of the networks are right",
    ),
    *_variables(
        "correctness",
        TK,
        "float64",
        [
            (
                "null_histogram",
                "TP-agreement histogram of independent networks",
                "examples",
                "its expectation for independent networks of the same accuracies "
                "(Poisson-binomial)",
            ),
            (
                "binomial_histogram",
                "TP-agreement histogram of equal independent networks",
                "examples",
                "its expectation under Binomial(N, mean accuracy)",
            ),
        ],
    ),
    Variable(
        "split_half_spearman",
        (),
        "float64",
        "correctness",
        "split-half reliability of accessibility",
        RATIO,
        "Spearman-Brown corrected Spearman correlation of the accessibilities of two random "
        "halves of the networks, mean over halvings",
    ),
    Variable(
        "network_accuracy",
        ("networks", "checkpoints"),
        "float64",
        "correctness",
        "network accuracy",
        RATIO,
        "share of the labelled examples each network gets right at each checkpoint",
    ),
    Variable(
        "network_forgetting",
        N,
        "float64",
        "correctness",
        "forgetting events per example",
        "events per example",
        "each network's right-then-wrong transitions, summed over examples, per labelled example",
    ),
]

_HOLDOUT = [
    Variable(
        "holdout_consistency",
        E,
        "float64",
        "holdout",
        "hold-out consistency (C-score)",
        RATIO,
        "share right at the last checkpoint among the networks that did not train on the "
        "example; NaN where all trained on it",
    ),
    Variable(
        "holdout_consistency_mean",
        T,
        "float64",
        "holdout",
        "hold-out consistency, mean over examples",
        RATIO,
        "the hold-out consistency at each checkpoint, mean over the examples that have it",
    ),
    Variable(
        "holdout_accessibility_spearman",
        (),
        "float64",
        "holdout",
        "hold-out consistency against accessibility",
        RATIO,
        "Spearman correlation of the last checkpoint's hold-out consistency with accessibility",
    ),
]

_STATISTICS = {
    "confidence": ("confidence", RATIO, "mean true-class probability over checkpoints"),
    "variability": ("variability", RATIO, "standard deviation of that probability"),
    "correctness": ("correctness", RATIO, "share of right verdicts over checkpoints"),
    "aum": ("area under the margin", "logit", "mean true-class logit minus the largest other"),
    "loss": ("loss", "nats", "mean cross-entropy -log p over checkpoints"),
}
_SOFT = [
    Variable(
        f"{name}_{stat}",
        E,
        "float64",
        "soft",
        f"{long_name}, {'mean' if stat == 'mean' else 'std'} over networks",
        units,
        f"per (network, example): {definition}; "
        + ("its mean over networks" if stat == "mean" else "its standard deviation over networks"),
    )
    for name, (long_name, units, definition) in _STATISTICS.items()
    for stat in ("mean", "std")
]
_SOFT += [
    Variable(
        f"{region}_share",
        E,
        "float64",
        "soft",
        f"share of networks in the {region} region",
        RATIO,
        f"share of the networks whose data map puts the example in the {region} region "
        "(fixed thresholds of confidence and variability)",
    )
    for region in ("easy", "ambiguous", "hard", "other")
]
_SOFT += [
    Variable(
        "region_agreement",
        E,
        "float64",
        "soft",
        "region agreement",
        RATIO,
        "the largest of the example's region shares: how far the networks agree on its region",
    ),
    Variable(
        "population_region",
        E,
        "int8",
        "soft",
        "population region",
        "code",
        "region of the example's population means of confidence and variability: a code of "
        "flag_meanings, -1 where no network recorded it",
    ),
]

_CONSENSUS = [
    Variable(
        "consensus_last",
        E,
        "float64",
        "consensus",
        "consensus at the last checkpoint",
        RATIO,
        "share of the networks that predict the example's plurality class (no label needed)",
    ),
    Variable(
        "consensus_mean",
        T,
        "float64",
        "consensus",
        "consensus, mean over examples",
        RATIO,
        "the plurality share, mean over examples; NaN at checkpoints not counted (splits with "
        "labels count the last only)",
    ),
    Variable(
        "consensus_null_mean",
        T,
        "float64",
        "consensus",
        "consensus of independent networks",
        RATIO,
        "its expectation for independent networks of the same class frequencies",
    ),
    Variable(
        "consensus_histogram",
        TK,
        "float64",
        "consensus",
        "consensus histogram",
        "examples",
        "examples whose plurality class is predicted by exactly k networks; NaN at checkpoints "
        "not counted",
    ),
    Variable(
        "consensus_null_histogram",
        TK,
        "float64",
        "consensus",
        "consensus histogram of independent networks",
        "examples",
        "its expectation for independent networks (simulated draws)",
    ),
]

#: Every variable a split's Dataset may hold, by name, in the Dataset's order.
VARIABLES: dict[str, Variable] = {
    v.name: v for v in (*_CORRECTNESS, *_HOLDOUT, *_SOFT, *_CONSENSUS)
}
#: The kinds of variables, each present or absent for a whole split.
KINDS = ("correctness", "holdout", "soft", "consensus")

__all__ = ["KINDS", "VARIABLES", "Variable"]

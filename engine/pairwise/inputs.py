"""What the pairwise report compares: checkpoints, networks, classes, devices and the two sides.

Everything here is resolved once per report and checked before any output is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from engine.store import Population

#: Networks per tile side on the CPU (a 512 x 512 tile of int32 is 1 MiB; enough tiles for two
#: threads to balance at N = 2,000) and on a GPU (bigger products keep it busy).
DEFAULT_BLOCK = 512
DEFAULT_CUDA_BLOCK = 2048
#: Up to this many networks a side (N x N pairs: 16.8 million at 4,096, about 134 MB of
#: uint16 counts, float32 kappa and uint16 prediction agreement before compression) the full
#: matrices are written by default; above, only the streamed summaries unless asked for.
MATRIX_NETWORKS = 4096
#: Up to this many networks a side the network bootstrap is exact (each tile adds W^T S W, N^2 R
#: products over the run); above, it is linearised from each network's sums with each group
#: (N^2 G), as the exact one would cost about 40x the counting itself at 10^5 networks.
EXACT_BOOTSTRAP_NETWORKS = 4096


@dataclass(frozen=True, eq=False)
class PairwiseSide:
    """The networks on one side of the pairs: one population, split and checkpoint.

    Attributes
    ----------
    population : Population
    split : str
    checkpoint : int
    ids : ndarray of int64, dims (networks,)
        Network ids, sorted.
    groups : ndarray of int64, dims (networks,)
        Group index of each network among the groups present on this side (0..groups-1).
    group_names : list of str
        Names of the groups present, indexed by ``groups``.
    weights : ndarray of float32, dims (networks, replicates)
        Network-bootstrap multiplicities.
    num_classes : int
        Classes compared by prediction agreement; 0 where predictions are not compared.
    group_codes : ndarray of int16, dims (networks,)
        The store's group index of each network.
    """

    population: Population
    split: str
    checkpoint: int
    ids: np.ndarray
    groups: np.ndarray
    group_names: list[str]
    weights: np.ndarray
    num_classes: int
    group_codes: np.ndarray

    @property
    def size(self) -> int:
        """Networks on this side."""
        return int(self.ids.size)

    @property
    def num_groups(self) -> int:
        return len(self.group_names)

    @property
    def num_examples(self) -> int:
        return self.population.num_examples(self.split)


@dataclass(frozen=True, eq=False)
class MatrixSides:
    """The two sides of one matrix.

    ``symmetric``: one side paired with itself (``side_0 is side_1``): only pairs i < j are
    summed, each tile is also written transposed, and groups are the same on both sides.
    """

    side_0: PairwiseSide
    side_1: PairwiseSide
    symmetric: bool

    @property
    def num_examples(self) -> int:
        return self.side_0.num_examples


def writes_matrices(matrices: bool | None, sides: MatrixSides) -> bool:
    """Whether a matrix is written to ``pairwise.zarr``: as asked, or by default where it has at
    most ``MATRIX_NETWORKS`` squared pairs."""
    if matrices is not None:
        return bool(matrices)
    return sides.side_0.size * sides.side_1.size <= MATRIX_NETWORKS**2


def linear_bootstrap(bootstrap: int, sides: MatrixSides) -> bool:
    """Whether a matrix's network bootstrap is linearised: above ``EXACT_BOOTSTRAP_NETWORKS``
    squared pairs (and only with replicates)."""
    return bool(bootstrap) and sides.side_0.size * sides.side_1.size > EXACT_BOOTSTRAP_NETWORKS**2


def as_population(population: Any) -> Population:
    """A Population as it is, or the store at a path opened."""
    from engine.store import Population, open_population

    if isinstance(population, Population):
        return population
    return open_population(population)


def check_device(device: str) -> None:
    """Raise ConfigError unless ``device`` is ``"cpu"`` or a usable ``"cuda"``."""
    if device == "cpu":
        return
    if device != "cuda":
        raise ConfigError(f"device must be 'cpu' or 'cuda', got {device!r}")
    from engine.pairwise.cuda import require_cuda

    require_cuda()


def default_block(block: int | None, device: str) -> int:
    """Networks per tile side: ``block``, or the device's default."""
    if block is None:
        return DEFAULT_CUDA_BLOCK if device == "cuda" else DEFAULT_BLOCK
    if int(block) < 1:
        raise ConfigError(f"block must be a positive number of networks, got {block}")
    return int(block)


def check_bootstrap(bootstrap: int) -> int:
    """Bootstrap replicates as an int; ConfigError when negative."""
    if int(bootstrap) < 0:
        raise ConfigError(f"bootstrap must be 0 or more replicates, got {bootstrap}")
    return int(bootstrap)


def resolve_splits(population: Population, splits: str | Sequence[str] | None) -> list[str]:
    """The splits asked for (default: every split with examples), each checked to exist."""
    if splits is None:
        splits = [s for s in population.splits if population.num_examples(s) > 0]
    elif isinstance(splits, str):
        splits = [splits]
    for split in splits:
        population.require_split(split)
    return list(splits)


def resolve_checkpoints(population: Population, checkpoints: Any) -> list[int]:
    """Checkpoint indices from ``"last"``, ``"all"``, a comma list or a sequence of ints.

    Parameters
    ----------
    population : Population
    checkpoints : "last", "all", int, comma string or sequence of int
        Negative indices count from the end.

    Returns
    -------
    list of int
        Sorted, distinct indices in 0:num_checkpoints.
    """
    total = population.num_checkpoints
    if isinstance(checkpoints, str):
        text = checkpoints.strip().lower()
        if text == "last":
            return [total - 1]
        if text == "all":
            return list(range(total))
        try:
            checkpoints = [int(part) for part in text.split(",") if part.strip()]
        except ValueError as error:
            raise ConfigError(
                f"checkpoints must be 'last', 'all' or a comma list of integers, got {text!r}"
            ) from error
    if isinstance(checkpoints, int | np.integer):
        checkpoints = [int(checkpoints)]
    values = []
    for value in checkpoints:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ConfigError(f"checkpoint {value!r} is not an integer")
        index = int(value) + total if int(value) < 0 else int(value)
        if not 0 <= index < total:
            raise ConfigError(f"checkpoint {value} is outside 0:{total} of {population.path}")
        values.append(index)
    if not values:
        raise ConfigError("no checkpoints asked for")
    return sorted(set(values))


def resolve_networks(population: Population, networks: Any, checkpoints: list[int]) -> np.ndarray:
    """Sorted network ids, int64 (networks,): those asked for, checked, or by default every
    network recorded through the latest checkpoint asked for."""
    if networks is None:
        ids = np.flatnonzero(population.checkpoints_completed() > max(checkpoints))
    else:
        ids = np.asarray(networks)
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise ConfigError("networks must be a 1-D array of integer network ids")
        ids = ids.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= population.num_networks):
            raise ConfigError(f"network ids must lie in 0:{population.num_networks}")
        if np.unique(ids).size != ids.size:
            raise ConfigError("network ids must be unique")
        ids = np.sort(ids)
    if ids.size == 0:
        raise ConfigError(
            f"no networks of {population.path} are recorded at checkpoint {max(checkpoints)}"
        )
    return ids


def prediction_classes(population: Population, split: str) -> int:
    """Classes for prediction agreement; 0 where the split stores no predictions."""
    if not population.attrs["splits"][split]["predictions"]:
        return 0
    names = population.attrs.get("class_names")
    labels = population.labels(split)
    count = int(labels.max()) + 1 if labels.size else 0
    if names:
        count = max(count, len(names))
    if count == 0:
        # A probe set without labels nor class names: the largest prediction tells.
        predictions = population.predictions(split)
        assert predictions is not None  # the split stores predictions (checked above)
        count = int(predictions.max().compute()) + 1
    return max(count, 1)


def require_same_examples(populations: Sequence[Population], split: str) -> None:
    """Raise StoreError unless every store holds the first one's examples of ``split``."""
    first = populations[0]
    for other in populations[1:]:
        same = other.attrs["splits"][split]["fingerprint"] == first.attrs["splits"][split][
            "fingerprint"
        ] and other.num_examples(split) == first.num_examples(split)
        if not same:
            raise StoreError(
                f"{other.path} and {first.path} hold different examples in split {split!r} "
                "(fingerprints differ); pairwise comparison needs the same examples"
            )


def network_weights(groups: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Network-bootstrap multiplicities, resampled with replacement within each group.

    Parameters
    ----------
    groups : ndarray of int, dims (networks,)
    replicates : int
    rng : numpy Generator

    Returns
    -------
    ndarray of float32, dims (networks, replicates)
        Each column sums, within each group, to the group's size.
    """
    weights = np.zeros((groups.size, replicates), np.float32)
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        if replicates:
            draws = rng.multinomial(
                members.size, np.full(members.size, 1 / members.size), size=replicates
            )
            weights[members] = draws.T
    return weights


def make_side(
    population: Population,
    split: str,
    checkpoint: int,
    ids: np.ndarray,
    replicates: int,
    rng: np.random.Generator,
    num_classes: int,
    network_groups: np.ndarray | None = None,
) -> PairwiseSide:
    """One side of the pairs, with its network-bootstrap weights drawn from ``rng``.

    ``network_groups``: the store's group of every network, read once per report by the caller
    (one zarr read of a small array costs ~25 ms, one chunk per 32 networks).
    """
    codes = (population.network_groups() if network_groups is None else network_groups)[ids]
    all_groups = codes.astype(np.int64)
    present = np.unique(all_groups)
    names = [population.attrs["groups"][g]["name"] for g in present]
    groups = np.searchsorted(present, all_groups)
    return PairwiseSide(
        population,
        split,
        checkpoint,
        ids,
        groups,
        names,
        network_weights(groups, replicates, rng),
        num_classes,
        codes,
    )

"""Which networks of a population are analysed, their groups and random halvings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.store import Population

#: Random halvings of the networks for the split-half reliability of the learning order.
DEFAULT_HALVINGS = 10


@dataclass(frozen=True)
class NetworkSelection:
    """Which networks are analysed, their groups and the random halvings of each group.

    ``network_group`` holds -1 for networks left out (incomplete ones); halvings are drawn within
    each group, so that a halving of the whole population is stratified by group.
    """

    network_group: np.ndarray  # int64 (n,)
    group_names: tuple[str, ...]
    network_half: np.ndarray  # uint8 (s, n)

    @property
    def num_groups(self) -> int:
        return len(self.group_names)

    def networks_in(self, groups: Iterable[int]) -> np.ndarray:
        """Whether each network is in one of ``groups``, bool (n,)."""
        return np.isin(self.network_group, list(groups))


def select_networks(
    population: Population,
    *,
    networks: np.ndarray | None = None,
    halvings: int = DEFAULT_HALVINGS,
    seed: int = 0,
) -> NetworkSelection:
    """The analysed networks (default: the complete ones), their groups and halvings.

    Parameters
    ----------
    population : engine.Population
    networks : ndarray of int, dims (networks,), optional
        Ids of the networks to analyse.
    halvings : int
        Random halvings drawn within each group (for the split-half reliability).
    seed : int
        Seed of the halvings.
    """
    group = population.network_groups().astype(np.int64)
    chosen = population.complete_networks() if networks is None else np.asarray(networks)
    keep = np.zeros(population.num_networks, bool)
    keep[chosen] = True
    group = np.where(keep, group, -1)
    rng = np.random.default_rng(seed)
    half = np.zeros((halvings, population.num_networks), np.uint8)
    members = [np.flatnonzero(group == g) for g in range(len(population.group_names))]
    for s in range(halvings):
        for group_members in members:
            half[s, rng.permutation(group_members)[: group_members.size // 2]] = 1
    return NetworkSelection(group, tuple(population.group_names), half)

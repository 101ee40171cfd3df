"""The tile task: counts of one ``block x block`` tile of network pairs, written and summed.

For one split and checkpoint the matrix is cut into tiles of ``block x block`` network pairs
(block i <= block j only where the matrix is symmetric). One Dask task per tile calls the kernels
of :mod:`kernels.pairwise`, writes the tile (and its mirror) into ``pairwise.zarr`` and returns
small sums: per group pair, the sum over pairs of each statistic, with network-bootstrap weights
(:class:`TileResult`). Nothing holds the N x N matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.pairwise.blocks import NetworkBlock, SideCounts, side_blocks, side_counts
from engine.pairwise.counts import STATISTICS, agreement_counts, count_dtype
from engine.pairwise.output import MatrixTarget, write_tile

if TYPE_CHECKING:
    from engine.pairwise.inputs import MatrixSides, PairwiseSide

#: Histogram of pairwise kappa: bins over [-1, 1].
KAPPA_BINS = 200


@dataclass(frozen=True, eq=False)
class TileAxis:
    """The networks along one side of a tile.

    Attributes
    ----------
    positions : slice
        Rows (side 0) or columns (side 1) of the matrix: positions in the side's ids.
    groups : ndarray of int64, dims (networks,)
        Group index of each network, 0..num_groups-1.
    num_groups : int
        Groups of the whole side (the sums have one entry per group pair).
    weights : ndarray of float32, dims (networks, replicates)
        Network-bootstrap multiplicities.
    """

    positions: slice
    groups: np.ndarray
    num_groups: int
    weights: np.ndarray

    @classmethod
    def of(cls, side: PairwiseSide, positions: slice) -> TileAxis:
        """The networks of ``side`` at ``positions``."""
        return cls(positions, side.groups[positions], side.num_groups, side.weights[positions])

    @property
    def replicates(self) -> int:
        return int(self.weights.shape[1])


@dataclass(frozen=True, eq=False)
class TileSpec:
    """Where one tile goes and how it is counted; small and picklable (dask.distributed).

    Attributes
    ----------
    target : MatrixTarget
        The matrix group of ``pairwise.zarr`` that the tile is written to.
    rows, columns : TileAxis
        Networks of side 0 and of side 1.
    num_examples : int
        X, the examples compared.
    symmetric : bool
        The matrix pairs one side with itself: the tile is also written transposed, and both
        axes share one set of groups (the histogram splits within and between groups).
    diagonal : bool
        The tile pairs a block with itself: only pairs i < j are summed.
    device : str
        ``"cpu"`` or ``"cuda"``: where the co-correct counts are computed.
    """

    target: MatrixTarget
    rows: TileAxis
    columns: TileAxis
    num_examples: int
    symmetric: bool
    diagonal: bool
    device: str


@dataclass(frozen=True, eq=False)
class TileResult:
    """The sums of one tile that the summary adds up over tiles.

    Attributes
    ----------
    point : dict of str to ndarray of float64, dims (groups_0, groups_1)
        Per statistic (of ``STATISTICS``; no prediction agreement without predictions), the sum
        over the tile's pairs per (group of i, group of j): agreement counts, kappa over pairs
        where it is defined, prediction agreement counts.
    boot : dict of str to ndarray of float64, dims (replicates, groups_0, groups_1)
        The same sums weighted by each network-bootstrap replicate's multiplicities.
    pairs : ndarray of int64, dims (2, groups_0, groups_1)
        Pairs summed, and pairs whose kappa is defined.
    histogram : ndarray of int64, dims (2, KAPPA_BINS)
        Defined kappa binned over [-1, 1]: row 0 within groups, row 1 between.
    """

    point: dict[str, np.ndarray]
    boot: dict[str, np.ndarray]
    pairs: np.ndarray
    histogram: np.ndarray


def tile_counts(
    block_0: NetworkBlock, block_1: NetworkBlock, device: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Co-correct counts, int32 (networks_0, networks_1), and prediction agreement counts
    (the same, or None without predictions) of two blocks."""
    from kernels.pairwise import prediction_agreement_counts

    both = _co_counts(block_0.words, block_1.words, device)
    same = None
    if block_0.classes is not None and block_1.classes is not None:
        same = _co_counts(block_0.classes, block_1.classes, device)
    elif block_0.predictions is not None and block_1.predictions is not None:
        same = prediction_agreement_counts(block_0.predictions, block_1.predictions)
    return both, same


def _co_counts(packed_0: np.ndarray, packed_1: np.ndarray, device: str) -> np.ndarray:
    if device == "cuda":
        from engine.pairwise.cuda import cuda_co_counts

        return cuda_co_counts(packed_0, packed_1)
    from kernels.pairwise import co_correct_counts

    return co_correct_counts(packed_0, packed_1)


def bootstrap_sums(
    values: dict[str, np.ndarray], rows: TileAxis, columns: TileAxis, diagonal: bool
) -> dict[str, np.ndarray]:
    """Network-bootstrap replicate sums of one tile: W_g^T S W_h per statistic and group pair.

    Parameters
    ----------
    values : dict of str to ndarray of float32, dims (networks_0, networks_1)
        The tile's matrix of each statistic (undefined kappa as 0).
    rows, columns : TileAxis
    diagonal : bool
        Only pairs i < j are summed.

    Returns
    -------
    dict of str to ndarray of float64, dims (replicates, groups_0, groups_1)
        By float32 BLAS products.
    """
    boots = {}
    for name, matrix in values.items():
        if diagonal:
            matrix = np.triu(matrix, 1)
        boot = np.zeros((rows.replicates, rows.num_groups, columns.num_groups))
        for h in range(columns.num_groups):
            columns_h = columns.weights * (columns.groups == h)[:, None]
            product = matrix @ columns_h  # (n0, r), float32 BLAS
            for g in range(rows.num_groups):
                rows_g = rows.weights * (rows.groups == g)[:, None]
                boot[:, g, h] = (rows_g * product).sum(axis=0, dtype=np.float64)
        boots[name] = boot
    return boots


def pairwise_tile(block_0: NetworkBlock, block_1: NetworkBlock, spec: TileSpec) -> TileResult:
    """Counts of one tile, written to the zarr target; returns the tile's sums.

    Parameters
    ----------
    block_0, block_1 : NetworkBlock
        The networks of the tile's rows and of its columns.
    spec : TileSpec

    Returns
    -------
    TileResult
    """
    from kernels.pairwise import tile_statistics

    both, same = tile_counts(block_0, block_1, spec.device)
    n0, n1 = both.shape
    dtype = count_dtype(spec.num_examples)
    kappa = np.empty((n0, n1), np.float32)
    both_out = np.empty((n0, n1), dtype)
    if same is None:
        same_in = np.zeros((0, 0), np.int32)
        same_out = np.zeros((0, 0), dtype)
    else:
        same_in = np.ascontiguousarray(same, dtype=np.int32)
        same_out = np.empty((n0, n1), dtype)
    rows, columns = spec.rows, spec.columns
    # One numba pass: kappa, the stored counts, per group-pair sums, pair counts, histogram.
    point, pairs, histogram = tile_statistics(
        both,
        same_in,
        block_0.correct_count,
        block_1.correct_count,
        spec.num_examples,
        rows.groups,
        columns.groups,
        rows.num_groups,
        columns.num_groups,
        spec.diagonal,
        spec.symmetric,
        KAPPA_BINS,
        kappa,
        both_out,
        same_out,
    )
    arrays = {"both_correct": both_out, "kappa": kappa}
    if same is not None:
        arrays["prediction_agree"] = same_out
    write_tile(
        spec.target, arrays, rows.positions, columns.positions, spec.symmetric and not spec.diagonal
    )
    boots = {}
    if rows.replicates:
        # Agreement enters as counts, exact in float32 (row sums of a tile stay below 2^24), and
        # is divided by X in the summary; undefined kappa enters as 0 (the denominators leave it
        # out). Kappa is the tile pass's own, not computed again.
        agree = agreement_counts(
            both, block_0.correct_count[:, None], block_1.correct_count[None, :], spec.num_examples
        )
        values = {"agreement": agree.astype(np.float32), "kappa": np.nan_to_num(kappa, nan=0.0)}
        if same is not None:
            values["prediction_agreement"] = same.astype(np.float32)
        boots = bootstrap_sums(values, rows, columns, spec.diagonal)
    names = [n for n in STATISTICS if n != "prediction_agreement" or same is not None]
    return TileResult(
        point={name: point[STATISTICS.index(name)] for name in names},
        boot={
            name: boots.get(name, np.zeros((0, rows.num_groups, columns.num_groups)))
            for name in names
        },
        pairs=pairs,
        histogram=histogram,
    )


def compute_matrix(
    sides: MatrixSides, target: MatrixTarget, block: int, device: str
) -> tuple[list[TileResult], SideCounts, SideCounts]:
    """Run every tile of one split/checkpoint matrix.

    Returns
    -------
    results : list of TileResult
        One per tile, in a fixed order.
    counts_0, counts_1 : SideCounts
        Each side's per-example and per-network counts (the same object when symmetric).
    """
    import dask

    side_0, side_1 = sides.side_0, sides.side_1
    blocks_0, slices_0 = side_blocks(side_0, block)
    if sides.symmetric:
        blocks_1, slices_1 = blocks_0, slices_0
    else:
        blocks_1, slices_1 = side_blocks(side_1, block)
    tiles = []
    for i, rows in enumerate(slices_0):
        for j, columns in enumerate(slices_1):
            if sides.symmetric and j < i:
                continue
            spec = TileSpec(
                target=target,
                rows=TileAxis.of(side_0, rows),
                columns=TileAxis.of(side_1, columns),
                num_examples=sides.num_examples,
                symmetric=sides.symmetric,
                diagonal=sides.symmetric and i == j,
                device=device,
            )
            tiles.append(dask.delayed(pairwise_tile, pure=False)(blocks_0[i], blocks_1[j], spec))
    counts_0 = dask.delayed(side_counts)(*blocks_0)
    counts_1 = counts_0 if sides.symmetric else dask.delayed(side_counts)(*blocks_1)
    return dask.compute(tiles, counts_0, counts_1)

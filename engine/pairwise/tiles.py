"""The strip task: the tiles of one block of networks against every other, counted and summed.

For one split and checkpoint the matrix is cut into tiles of ``block x block`` network pairs.
One Dask task per block of rows (a strip) calls the kernels of :mod:`kernels.pairwise` on its
tiles one after another. The tiles of the upper triangle (block i <= block j where the matrix is
symmetric) carry everything summed over pairs: per group pair the sums of each statistic with
network-bootstrap weights (:class:`TileResult`), the exact histograms of kappa, agreement and
prediction agreement. Every tile of the strip, below the diagonal too (its co-correct counts again,
without predictions), adds to the statistics of each row network over all the others
(:class:`NetworkStatistics`): its mean and median kappa and its most and least similar networks.
A strip returns only these (:class:`StripResult`); nothing holds the N x N matrix. Where the
matrices are written, the strip also keeps its band of rows (every column; the tiles below the
diagonal then with their predictions) and writes it once, one shard of each array.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from engine.pairwise.blocks import NetworkBlock, SideCounts, side_blocks, side_counts
from engine.pairwise.counts import STATISTICS, add_up, agreement_counts, count_dtype
from engine.pairwise.output import MatrixTarget, write_band

if TYPE_CHECKING:
    from engine.pairwise.inputs import MatrixSides, PairwiseSide

#: Histograms of kappa (of all pairs, and of each network's pairs for its median): bins 1e-4 wide
#: over [-1, 1]. Counts per bin are exact; a value is known to the bin's width.
KAPPA_BINS = 20_000
#: Most and least similar networks kept for each network.
NEIGHBOURS = 5
#: Columns of kappa a strip gathers before adding them to its rows' statistics. Each row's
#: ``KAPPA_BINS`` histogram (80 kB; 41 MB for a strip of 512 rows, beyond the cache) is then
#: visited once per 4,096 columns instead of once per tile: 1.0-1.4 ms a 512 x 512 tile where it
#: was 1.7-4.5 ms (benchmarks/RESULTS.md, Scale, third round), for an 8 MB buffer per strip.
STATISTICS_COLUMNS = 4096


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
    target : MatrixTarget or None
        The matrix group of ``pairwise.zarr`` whose band the tile goes into (written by its
        strip); None for the summaries only.
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
    linear : bool
        The network bootstrap is linearised (:func:`kernels.pairwise.tile_group_sums` instead of
        :func:`bootstrap_sums`; see :func:`engine.pairwise.summaries.linear_network_bootstrap`).
    """

    target: MatrixTarget | None
    rows: TileAxis
    columns: TileAxis
    num_examples: int
    symmetric: bool
    diagonal: bool
    device: str
    linear: bool = False


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
    agree_histogram : ndarray of int64, dims (2, examples + 1)
        Pairs agreeing in correctness on exactly a = 0..X examples (rows as ``histogram``).
    same_histogram : ndarray of int64, dims (2, examples + 1), or None
        The same for prediction agreement, where predictions are compared.
    row_sums, column_sums : ndarray of float64, dims (statistics, networks_0, groups_1) and
        (statistics, networks_1, groups_0), or None
        With a linearised network bootstrap: per statistic (as ``point``), the sums over the
        tile's pairs of each row network with the columns of each group, and of each column
        network with the rows of each group.
    """

    point: dict[str, np.ndarray]
    boot: dict[str, np.ndarray]
    pairs: np.ndarray
    histogram: np.ndarray
    agree_histogram: np.ndarray
    same_histogram: np.ndarray | None
    row_sums: np.ndarray | None = None
    column_sums: np.ndarray | None = None

    @classmethod
    def total(cls, results: list[TileResult]) -> TileResult:
        """The sums of several tiles added up (in their order)."""
        first = results[0]
        same = first.same_histogram
        return cls(
            point={name: add_up(r.point[name] for r in results) for name in first.point},
            boot={name: add_up(r.boot[name] for r in results) for name in first.boot},
            pairs=add_up(r.pairs for r in results),
            histogram=add_up(r.histogram for r in results),
            agree_histogram=add_up(r.agree_histogram for r in results),
            same_histogram=None
            if same is None
            else add_up(cast(np.ndarray, r.same_histogram) for r in results),
        )

    def without_network_sums(self) -> TileResult:
        """The same sums without ``row_sums`` and ``column_sums`` (added up by the strip)."""
        return dataclasses.replace(self, row_sums=None, column_sums=None)


@dataclass(frozen=True, eq=False)
class NetworkStatistics:
    """Each row network's kappa with every other network of the other side.

    Attributes
    ----------
    ids : ndarray of int64, dims (networks,)
    kappa_sum : ndarray of float64, dims (networks,)
    kappa_pairs : ndarray of int64, dims (networks,)
        Pairs with a defined kappa.
    kappa_median : ndarray of float64, dims (networks,)
        Median of the network's defined kappa, from its histogram of ``KAPPA_BINS`` bins (the
        centre of the bin holding the middle value, or the mean of the two middle ones' bins):
        within half a bin width (5e-5) of the exact median; NaN without a defined pair.
    most, least : ndarray of float32, dims (networks, NEIGHBOURS)
        The largest kappa (descending) and the smallest (ascending); NaN where fewer pairs.
    most_ids, least_ids : ndarray of int64, dims (networks, NEIGHBOURS)
        Their networks; -1 where fewer pairs.
    """

    ids: np.ndarray
    kappa_sum: np.ndarray
    kappa_pairs: np.ndarray
    kappa_median: np.ndarray
    most: np.ndarray
    most_ids: np.ndarray
    least: np.ndarray
    least_ids: np.ndarray

    @property
    def kappa_mean(self) -> np.ndarray:
        """Mean defined kappa, float64 (networks,); NaN without a defined pair."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.kappa_pairs > 0, self.kappa_sum / self.kappa_pairs, np.nan)


def histogram_median(histogram: np.ndarray, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """Median of each row's values from their histogram over equal bins of [low, high]:
    :func:`kernels.pairwise.histogram_medians` (float64 (rows,), NaN for an empty row) of int
    (rows, bins)."""
    from kernels.pairwise import histogram_medians

    return histogram_medians(np.ascontiguousarray(histogram, dtype=np.int32), low, high)


@dataclass(frozen=True, eq=False)
class StripResult:
    """What one strip returns: its upper tiles' sums added up, and its rows' statistics.

    ``row_sums`` (statistics, rows, groups_1) and ``column_sums`` (statistics, networks_1,
    groups_0), with a linearised network bootstrap: the upper tiles' sums per network and
    group of the other side (:attr:`TileResult.row_sums`), the columns' over every column of the
    side from the strip's first (``column_start``), else None.
    """

    tiles: TileResult
    networks: NetworkStatistics
    row_sums: np.ndarray | None = None
    column_sums: np.ndarray | None = None
    column_start: int = 0


@dataclass(frozen=True, eq=False)
class ColumnSide:
    """The column side of a matrix, shared by every strip (one Dask key, sent once per worker).

    Attributes
    ----------
    ids : ndarray of int64, dims (networks,)
    groups : ndarray of int64, dims (networks,)
    num_groups : int
    weights : ndarray of float32, dims (networks, replicates)
    slices : list of slice
        Positions of each block of columns.
    """

    ids: np.ndarray
    groups: np.ndarray
    num_groups: int
    weights: np.ndarray
    slices: list[slice]

    def axis(self, j: int) -> TileAxis:
        """The networks of column block ``j``."""
        positions = self.slices[j]
        return TileAxis(positions, self.groups[positions], self.num_groups, self.weights[positions])


@dataclass(frozen=True, eq=False)
class StripSpec:
    """One strip: row block ``index`` against every column block; small and picklable.

    Attributes
    ----------
    target : MatrixTarget or None
        Where the upper tiles are written; None writes nothing.
    index : int
        The row block (where symmetric, column blocks below it count for the rows' own
        statistics only).
    rows : TileAxis
    num_examples : int
    symmetric : bool
    device : str
    linear : bool
        As :class:`TileSpec`.
    """

    target: MatrixTarget | None
    index: int
    rows: TileAxis
    num_examples: int
    symmetric: bool
    device: str
    linear: bool = False


def tile_counts(
    block_0: NetworkBlock, block_1: NetworkBlock, device: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Co-correct counts, int32 (networks_0, networks_1), and prediction agreement counts
    (the same, or None without predictions) of two blocks."""
    from kernels.pairwise import prediction_agreement_counts

    both = _co_counts(block_0.words, block_1.words, device)
    same = None
    if block_0.slices is not None and block_1.slices is not None:
        from kernels.pairwise import same_prediction_counts

        same = same_prediction_counts(block_0.slices, block_1.slices, block_0.example_correct.size)
    elif block_0.classes is not None and block_1.classes is not None:
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


def pairwise_tile(
    block_0: NetworkBlock, block_1: NetworkBlock, spec: TileSpec
) -> tuple[TileResult, dict[str, np.ndarray]]:
    """Counts of one tile and its sums.

    Parameters
    ----------
    block_0, block_1 : NetworkBlock
        The networks of the tile's rows and of its columns.
    spec : TileSpec

    Returns
    -------
    TileResult
    stored : dict of str to ndarray, dims (networks_0, networks_1)
        The tile as ``pairwise.zarr`` stores it: ``both_correct`` and ``prediction_agree`` (where
        predictions are compared) in the stored dtype, ``kappa`` float32 (NaN where undefined).
    """
    from kernels.pairwise import count_histograms, tile_statistics

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
    # What every pass over the tile reads, in the kernels' order.
    tile = (
        both,
        same_in,
        block_0.correct_count,
        block_1.correct_count,
        spec.num_examples,
        rows.groups,
        columns.groups,
    )
    group_counts = (rows.num_groups, columns.num_groups)
    # One numba pass: kappa, the stored counts, per group-pair sums, pair counts, histogram.
    point, pairs, histogram = tile_statistics(
        *tile,
        *group_counts,
        spec.diagonal,
        spec.symmetric,
        KAPPA_BINS,
        kappa,
        both_out,
        same_out,
    )
    stored = {"both_correct": both_out, "kappa": kappa}
    if same is not None:
        stored["prediction_agree"] = same_out
    agree_histogram = np.zeros((2, spec.num_examples + 1), np.int64)
    same_histogram = None if same is None else np.zeros_like(agree_histogram)
    count_histograms(
        *tile,
        spec.diagonal,
        spec.symmetric,
        agree_histogram,
        np.zeros((2, 1), np.int64) if same_histogram is None else same_histogram,
    )
    boots: dict[str, np.ndarray] = {}
    row_sums = column_sums = None
    if rows.replicates and spec.linear:
        # The network sums of the linearised bootstrap, in one numba pass over the tile.
        from kernels.pairwise import tile_group_sums

        row_sums, column_sums = tile_group_sums(*tile, *group_counts, spec.diagonal, kappa)
    elif rows.replicates:
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
    result = TileResult(
        point={name: point[STATISTICS.index(name)] for name in names},
        boot={
            name: boots.get(name, np.zeros((0, rows.num_groups, columns.num_groups)))
            for name in names
        },
        pairs=pairs,
        histogram=histogram,
        agree_histogram=agree_histogram,
        same_histogram=same_histogram,
        row_sums=row_sums,
        column_sums=column_sums,
    )
    return result, stored


def _empty_statistics(ids: np.ndarray) -> dict[str, np.ndarray]:
    size = ids.size
    return {
        "kappa_sum": np.zeros(size),
        "kappa_pairs": np.zeros(size, np.int64),
        "histogram": np.zeros((size, KAPPA_BINS), np.int32),
        "most": np.full((size, NEIGHBOURS), -np.inf, np.float32),
        "most_ids": np.full((size, NEIGHBOURS), -1, np.int64),
        "least": np.full((size, NEIGHBOURS), np.inf, np.float32),
        "least_ids": np.full((size, NEIGHBOURS), -1, np.int64),
    }


def _lower_tile(
    block_0: NetworkBlock, block_1: NetworkBlock, spec: StripSpec
) -> dict[str, np.ndarray]:
    """A tile below the diagonal (its mirror is summed in another strip): its kappa for the rows'
    own statistics, from the co-correct counts again; where the matrices are written, also its
    stored counts (prediction agreement too), so that the strip writes its whole band once."""
    from kernels.pairwise import agreement_and_kappa

    if spec.target is None:
        both = _co_counts(block_0.words, block_1.words, spec.device)
        same = None
    else:
        both, same = tile_counts(block_0, block_1, spec.device)
    _, kappa = agreement_and_kappa(
        both, block_0.correct_count, block_1.correct_count, spec.num_examples
    )
    stored = {"kappa": kappa}
    if spec.target is not None:
        dtype = count_dtype(spec.num_examples)
        stored["both_correct"] = both.astype(dtype)
        if same is not None:
            stored["prediction_agree"] = same.astype(dtype)
    return stored


def pairwise_strip(
    block_0: NetworkBlock, blocks_1: list[NetworkBlock], columns: ColumnSide, spec: StripSpec
) -> StripResult:
    """Every tile of one row block against each column block, one after another.

    Parameters
    ----------
    block_0 : NetworkBlock
        The rows.
    blocks_1 : list of NetworkBlock
        Every block of columns, in order.
    columns : ColumnSide
    spec : StripSpec

    Returns
    -------
    StripResult
    """
    rows = spec.rows
    statistics = _empty_statistics(np.arange(rows.positions.stop - rows.positions.start))
    # The upper tiles' sums, added up as the strip goes: a list of them held 58 MB a strip at
    # 61,565 networks (each tile's histograms are 480 kB at 10,000 examples).
    tiles: TileResult | None = None
    row_sums: np.ndarray | None = None
    column_sums: np.ndarray | None = None
    column_start = 0
    band: dict[str, np.ndarray] = {}
    pending: list[tuple[np.ndarray, slice]] = []
    for j, block_1 in enumerate(blocks_1):
        axis = columns.axis(j)
        if spec.symmetric and j < spec.index:
            stored = _lower_tile(block_0, block_1, spec)
        else:
            tile_spec = TileSpec(
                target=spec.target,
                rows=rows,
                columns=axis,
                num_examples=spec.num_examples,
                symmetric=spec.symmetric,
                diagonal=spec.symmetric and j == spec.index,
                device=spec.device,
                linear=spec.linear,
            )
            result, stored = pairwise_tile(block_0, block_1, tile_spec)
            if result.row_sums is not None and result.column_sums is not None:
                if row_sums is None:
                    row_sums = np.zeros_like(result.row_sums)
                    start = axis.positions.start
                    column_start = start
                    column_sums = np.zeros(
                        (result.column_sums.shape[0], columns.ids.size - start, rows.num_groups)
                    )
                row_sums += result.row_sums
                assert column_sums is not None
                where = slice(
                    axis.positions.start - column_start, axis.positions.stop - column_start
                )
                column_sums[:, where] += result.column_sums
                result = result.without_network_sums()
            tiles = result if tiles is None else TileResult.total([tiles, result])
        kappa = stored["kappa"]
        if spec.target is not None:
            for name, values in stored.items():
                if name not in band:
                    band[name] = np.empty((values.shape[0], columns.ids.size), values.dtype)
                band[name][:, axis.positions] = values
        pending.append((kappa, axis.positions))
        if sum(k.shape[1] for k, _ in pending) >= STATISTICS_COLUMNS or j == len(blocks_1) - 1:
            _add_statistics(pending, columns.ids, rows.positions, spec.symmetric, statistics)
            pending = []
    if spec.target is not None:
        write_band(spec.target, band, rows.positions)
    return StripResult(
        cast(TileResult, tiles),
        _finish_statistics(statistics, rows),
        row_sums,
        column_sums,
        column_start,
    )


def _add_statistics(
    pending: list[tuple[np.ndarray, slice]],
    column_ids: np.ndarray,
    rows: slice,
    symmetric: bool,
    statistics: dict[str, np.ndarray],
) -> None:
    """Add the kappa of consecutive tiles of a strip (each with its columns' positions) to its
    rows' statistics, in one kernel call over their columns side by side."""
    from kernels.pairwise import network_kappa_statistics

    kappa = pending[0][0] if len(pending) == 1 else np.concatenate([k for k, _ in pending], 1)
    first, last = pending[0][1].start, pending[-1][1].stop
    # A network is not its own neighbour: column c + first is row r + rows.start, so row r's own
    # column is r + rows.start - first.
    offset = rows.start - first if symmetric else -(kappa.shape[0] + 1)
    network_kappa_statistics(
        kappa,
        offset,
        column_ids[first:last],
        statistics["kappa_sum"],
        statistics["kappa_pairs"],
        statistics["histogram"],
        statistics["most"],
        statistics["most_ids"],
        statistics["least"],
        statistics["least_ids"],
    )


def _finish_statistics(statistics: dict[str, np.ndarray], rows: TileAxis) -> NetworkStatistics:
    """The rows' statistics with the median read from their histogram (which is dropped)."""
    most, least = statistics["most"], statistics["least"]
    return NetworkStatistics(
        ids=np.arange(rows.positions.start, rows.positions.stop),
        kappa_sum=statistics["kappa_sum"],
        kappa_pairs=statistics["kappa_pairs"],
        kappa_median=histogram_median(statistics["histogram"]),
        most=np.where(np.isfinite(most), most, np.nan).astype(np.float32),
        most_ids=statistics["most_ids"],
        least=np.where(np.isfinite(least), least, np.nan).astype(np.float32),
        least_ids=statistics["least_ids"],
    )


def compute_matrix(
    sides: MatrixSides, target: MatrixTarget | None, block: int, device: str, linear: bool = False
) -> tuple[list[StripResult], SideCounts, SideCounts]:
    """Run every strip of one split/checkpoint matrix.

    Parameters
    ----------
    sides : MatrixSides
    target : MatrixTarget or None
        Where the tiles are written; None for the summaries only.
    block, device
        Networks per tile side, and where the counts are computed.
    linear : bool
        Linearise the network bootstrap (the strips return network sums, no replicate sums).

    Returns
    -------
    results : list of StripResult
        One per block of rows, in order. ``networks.ids`` are positions in side 0.
    counts_0, counts_1 : SideCounts
        Each side's per-example and per-network counts (the same object when symmetric).
    """
    import dask

    side_0, side_1 = sides.side_0, sides.side_1
    sliced = device != "cuda"
    blocks_0, slices_0 = side_blocks(side_0, block, sliced)
    if sides.symmetric:
        blocks_1, slices_1 = blocks_0, slices_0
    else:
        blocks_1, slices_1 = side_blocks(side_1, block, sliced)
    columns = dask.delayed(
        ColumnSide(side_1.ids, side_1.groups, side_1.num_groups, side_1.weights, slices_1),
        pure=False,
    )
    strips = [
        dask.delayed(pairwise_strip, pure=False)(
            blocks_0[i],
            blocks_1,
            columns,
            StripSpec(
                target=target,
                index=i,
                rows=TileAxis.of(side_0, rows),
                num_examples=sides.num_examples,
                symmetric=sides.symmetric,
                device=device,
                linear=linear,
            ),
        )
        for i, rows in enumerate(slices_0)
    ]
    counts_0 = dask.delayed(side_counts)(*blocks_0)
    counts_1 = counts_0 if sides.symmetric else dask.delayed(side_counts)(*blocks_1)
    return dask.compute(strips, counts_0, counts_1)

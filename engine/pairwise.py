"""Pairwise agreement and error consistency between every two networks, out of core.

Layout letters: n networks, t checkpoints, x examples, w 64-bit words, r bootstrap replicates,
g groups. For one split and checkpoint the work is cut into tiles of ``block x block`` network
pairs (block i <= block j only). Dask runs one task per block of networks that reads the store's
packed correctness bits (and predictions) once, and one task per tile that calls the kernels of
:mod:`kernels.pairwise`, writes the tile (and its mirror) into ``pairwise.zarr`` and returns small
sums: per group pair, the sum over pairs of each statistic, with bootstrap weights. Nothing holds
the N x N matrix, let alone N x N x checkpoints.

Summaries (see docs/pairwise.md):

- Means over distinct pairs (i < j) of the correctness agreement rate, kappa (error consistency;
  pairs where it is undefined, c_exp == 1, are left out) and prediction agreement.
- Network bootstrap: resample networks with replacement within each group (group sizes kept);
  a replicate's mean is the weighted mean over distinct-network pairs,
  sum_{i<j} w_i w_j s_ij / sum_{i<j} w_i w_j, with w the multiplicities. Each tile adds
  W_i^T S_ij W_j, a BLAS product, to the replicate sums.
- Example bootstrap: resample examples (multinomial weights on examples). The mean agreement and
  mean prediction agreement over pairs are linear in per-example pair counts
  (k_x choose 2 + (N - k_x) choose 2 for k_x networks right on x), so their replicates are exact
  over all networks. Kappa is not linear; its replicates recompute weighted counts
  C diag(w) C^T on a random subset of ``example_bootstrap_networks`` networks.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError, StoreError

#: Networks per tile side on the CPU (a 512 x 512 tile of int32 is 1 MiB; enough tiles for two
#: threads to balance at N = 2,000) and on a GPU (bigger products keep it busy).
DEFAULT_BLOCK = 512
DEFAULT_CUDA_BLOCK = 2048
#: Up to this many classes, prediction agreement counts popcounts of one bit plane per class;
#: above it a direct comparison of int16 predictions is faster (measured: 8.9e9 words/s of
#: popcount against 2e10 comparisons/s, crossing near 28 classes).
MAX_PLANE_CLASSES = 24
#: Networks whose pairs carry the example bootstrap of kappa.
EXAMPLE_BOOTSTRAP_NETWORKS = 64
#: Networks shown in the kappa heatmap (a random, group-stratified sample beyond it).
HEATMAP_NETWORKS = 300
#: Histogram of pairwise kappa: bins over [-1, 1].
KAPPA_BINS = 200
#: Blosc settings of the stored matrices (None: uncompressed), chosen by
#: benchmarks/bench_pairwise.py (see docs/pairwise.md, "Outputs").
COUNT_COMPRESSORS: dict | None = {"cname": "lz4", "clevel": 1, "shuffle": "shuffle"}
KAPPA_COMPRESSORS: dict | None = {"cname": "lz4", "clevel": 1, "shuffle": "shuffle"}

STATISTICS = ("agreement", "kappa", "prediction_agreement")
#: N x N matrices stored per split and checkpoint (agreement counts are derived on read).
MATRICES = ("both_correct", "kappa", "prediction_agree")
ATTRS_KEY = "created_equal_pairwise"


# ----------------------------------------------------------------------------------------------
# Inputs


@dataclass
class _Side:
    """The networks on one side of the pairs: one population, split and checkpoint."""

    population: Any
    split: str
    checkpoint: int
    ids: np.ndarray  # network ids, sorted, dims (networks,)
    groups: np.ndarray  # group index per network (0..num_groups-1), dims (networks,)
    group_names: list[str]
    weights: np.ndarray  # float32 (networks, replicates): bootstrap multiplicities
    num_classes: int  # 0 where predictions are not compared
    group_codes: np.ndarray  # the store's group index per network, int16, dims (networks,)

    @property
    def size(self) -> int:
        return int(self.ids.size)


def _as_population(population):
    from engine.store import Population, open_population

    if isinstance(population, Population):
        return population
    return open_population(population)


def _check_device(device: str) -> None:
    if device == "cpu":
        return
    if device != "cuda":
        raise ConfigError(f"device must be 'cpu' or 'cuda', got {device!r}")
    try:
        import torch
    except ImportError as error:
        raise ConfigError("--device cuda needs torch, which is not installed") from error
    if not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available "
                          "(torch.cuda.is_available() is False)")


def resolve_checkpoints(population, checkpoints) -> list[int]:
    """Checkpoint indices from ``"last"``, ``"all"``, a comma list or a sequence of ints."""
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
            raise ConfigError(f"checkpoints must be 'last', 'all' or a comma list of integers, "
                              f"got {text!r}") from error
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


def _resolve_networks(population, networks, checkpoints: list[int]) -> np.ndarray:
    if networks is None:
        # Only networks recorded through the latest checkpoint asked for.
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
        raise ConfigError(f"no networks of {population.path} are recorded at checkpoint "
                          f"{max(checkpoints)}")
    return ids


def _num_classes(population, split: str) -> int:
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
        count = int(population.predictions(split).max().compute()) + 1
    return max(count, 1)


def _network_weights(groups: np.ndarray, replicates: int, rng) -> np.ndarray:
    """Bootstrap multiplicities, float32 (networks, replicates), resampled within each group."""
    weights = np.zeros((groups.size, replicates), np.float32)
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        if replicates:
            draws = rng.multinomial(members.size, np.full(members.size, 1 / members.size),
                                    size=replicates)
            weights[members] = draws.T
    return weights


def _make_side(population, split, checkpoint, ids, replicates, rng, num_classes,
               network_groups=None) -> _Side:
    # network_groups: the store's group of every network, read once per report (one zarr read
    # of a small array costs ~25 ms, one chunk per 32 networks).
    codes = (population.network_groups() if network_groups is None else network_groups)[ids]
    all_groups = codes.astype(np.int64)
    present = np.unique(all_groups)
    names = [population.attrs["groups"][g]["name"] for g in present]
    groups = np.searchsorted(present, all_groups)
    return _Side(population, split, checkpoint, ids, groups, names,
                 _network_weights(groups, replicates, rng), num_classes, codes)


# ----------------------------------------------------------------------------------------------
# Block loading (one task per block of networks)


def words_from_bytes(packed_bytes: np.ndarray) -> np.ndarray:
    """uint8 (networks, example_bytes), little bit order -> uint64 (networks, words).

    The store's packed bytes are the kernels' words already: pad to a multiple of 8 bytes and
    read them as little-endian uint64.
    """
    networks, num_bytes = packed_bytes.shape
    num_words = -(-num_bytes // 8)
    padded = np.zeros((networks, 8 * num_words), np.uint8)
    padded[:, :num_bytes] = packed_bytes
    return padded.view("<u8").astype(np.uint64, copy=False)


def _load_block(packed_bytes, predictions, num_examples: int, num_classes: int) -> dict:
    """Kernel inputs of one block of networks at one checkpoint."""
    from kernels.pairwise import pack_classes

    words = words_from_bytes(np.ascontiguousarray(packed_bytes))
    correct_count = np.bitwise_count(words).sum(axis=1, dtype=np.int64)
    unpacked = np.unpackbits(np.ascontiguousarray(packed_bytes), axis=1, count=num_examples,
                             bitorder="little")
    block = {
        "words": words,
        "correct_count": correct_count,
        "example_correct": unpacked.sum(axis=0, dtype=np.int64),
        "classes": None,
        "predictions": None,
        "example_class_counts": None,
    }
    if predictions is not None:
        predictions = np.ascontiguousarray(predictions, dtype=np.int16)
        if predictions.size and predictions.max() >= num_classes:
            raise StoreError(f"a stored prediction ({int(predictions.max())}) is not below the "
                             f"number of classes ({num_classes})")
        counts = np.zeros((num_classes, num_examples), np.int64)
        for k in range(num_classes):
            counts[k] = (predictions == k).sum(axis=0)
        block["example_class_counts"] = counts
        if num_classes <= MAX_PLANE_CLASSES:
            block["classes"] = pack_classes(predictions, num_classes)
        else:
            block["predictions"] = predictions
    return block


def _side_blocks(side: _Side, block: int):
    """Delayed block inputs and the network slice (positions in side.ids) of each."""
    import dask

    population = side.population
    # Read whole blocks of networks per call: zarr's per-call overhead (~2 ms) would otherwise
    # cost more than the kernels at a few thousand networks.
    store_block = population.attrs["network_block"]
    read_block = max(store_block, block - block % store_block)
    packed = population.correct_packed(side.split, chunks=(read_block, 1, -1))
    packed = packed[:, side.checkpoint, :]
    predictions = (population.predictions(side.split, chunks=(read_block, 1, -1))
                   if side.num_classes else None)
    if predictions is not None:
        predictions = predictions[:, side.checkpoint, :]
    if side.size != population.num_networks or not np.array_equal(
            side.ids, np.arange(population.num_networks)):
        packed = packed[side.ids]
        predictions = predictions[side.ids] if predictions is not None else None
    packed = packed.rechunk((block, -1))
    packed_blocks = packed.to_delayed().ravel()
    if predictions is not None:
        predictions = predictions.rechunk((block, -1))
        prediction_blocks = list(predictions.to_delayed().ravel())
    else:
        prediction_blocks = [None] * len(packed_blocks)
    num_examples = population.num_examples(side.split)
    loaded = [dask.delayed(_load_block, pure=True)(p, q, num_examples, side.num_classes)
              for p, q in zip(packed_blocks, prediction_blocks, strict=True)]
    bounds = np.cumsum((0,) + packed.chunks[0])
    slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return loaded, slices


# ----------------------------------------------------------------------------------------------
# Tile counts on a GPU


def _cuda_co_counts(words_0: np.ndarray, words_1: np.ndarray) -> np.ndarray:
    """popcount(AND) counts of two packed blocks by an int8 (or float64) product on the GPU.

    Bits are unpacked on the device; 0/1 products summed in int32 (``torch._int_mm``) or float64
    are exact, so the counts equal the CPU kernel's. Words are taken in slices that keep the
    unpacked operands near 1 GiB.
    """
    import torch

    device = torch.device("cuda")
    n0, num_words = words_0.shape
    n1 = words_1.shape[0]
    counts = torch.zeros((n0, n1), dtype=torch.int32, device=device)
    if num_words == 0 or n0 == 0 or n1 == 0:
        return counts.cpu().numpy()
    shifts = torch.arange(8, dtype=torch.uint8, device=device)
    step = max(1, (1 << 30) // (64 * max(n0, n1, 1)))

    def unpack(words, rows):
        as_bytes = torch.from_numpy(np.ascontiguousarray(words).view(np.uint8)).to(device)
        bits = ((as_bytes.unsqueeze(-1) >> shifts) & 1).reshape(as_bytes.shape[0], -1)
        # _int_mm wants more than 16 rows and multiples of 8; zero rows add nothing.
        padded = torch.zeros((rows, bits.shape[1]), dtype=torch.int8, device=device)
        padded[: bits.shape[0]] = bits.to(torch.int8)
        return padded

    rows_0 = max(24, -(-n0 // 8) * 8)
    rows_1 = max(24, -(-n1 // 8) * 8)
    for start in range(0, num_words, step):
        stop = min(num_words, start + step)
        a = unpack(words_0[:, start:stop], rows_0)
        b = unpack(words_1[:, start:stop], rows_1)
        try:
            product = torch._int_mm(a, b.t())
        except (RuntimeError, AttributeError):
            product = (a.double() @ b.double().t()).round().to(torch.int32)
        counts += product[:n0, :n1]
    return counts.cpu().numpy()


# ----------------------------------------------------------------------------------------------
# Tiles


def _tile_counts(block_0: dict, block_1: dict, device: str):
    from kernels.pairwise import co_correct_counts, prediction_agreement_counts

    if device == "cuda":
        both = _cuda_co_counts(block_0["words"], block_1["words"])
    else:
        both = co_correct_counts(block_0["words"], block_1["words"])
    same = None
    if block_0["classes"] is not None:
        same = (_cuda_co_counts(block_0["classes"], block_1["classes"]) if device == "cuda"
                else co_correct_counts(block_0["classes"], block_1["classes"]))
    elif block_0["predictions"] is not None:
        same = prediction_agreement_counts(block_0["predictions"], block_1["predictions"])
    return both, same


#: Zarr arrays of the output opened once per process and matrix (opening the group and its
#: arrays costs ~2.5 ms, as much as writing a tile). Keyed by a token unique to each run, so a
#: later run into the same folder (new shapes, dtypes) never sees stale metadata.
_OPENED: dict = {}
_OPENED_LOCK = threading.Lock()
_OPENED_LIMIT = 16


def _open_target(target: str, group: str, token: str) -> dict:
    import zarr

    key = (target, group, token)
    with _OPENED_LOCK:
        arrays = _OPENED.get(key)
        if arrays is None:
            matrices = zarr.open_group(target, mode="r+")[group]
            arrays = {name: matrices[name] for name in MATRICES if name in matrices}
            while len(_OPENED) >= _OPENED_LIMIT:
                _OPENED.pop(next(iter(_OPENED)))
            _OPENED[key] = arrays
    return arrays


def _count_dtype(num_examples: int):
    """Stored dtype of counts: uint16 up to 65,535 examples, else uint32."""
    return np.uint16 if num_examples <= np.iinfo(np.uint16).max else np.uint32


def _bootstrap_sums(both, same, block_0, block_1, num_examples, diagonal, groups_0, groups_1,
                    num_groups_0, num_groups_1, weights_0, weights_1):
    """Network-bootstrap replicate sums of one tile: W_g^T S W_h per statistic and group pair,
    (replicates, groups_0, groups_1), by float32 BLAS products."""
    from kernels.pairwise import agreement_and_kappa

    agree, kappa = agreement_and_kappa(both, block_0["correct_count"], block_1["correct_count"],
                                       num_examples)
    # Agreement enters as counts, exact in float32 (row sums of a tile stay below 2^24), and is
    # divided by X in the summary; undefined kappa enters as 0 (the denominators leave it out).
    values = {"agreement": agree.astype(np.float32), "kappa": np.nan_to_num(kappa, nan=0.0)}
    if same is not None:
        values["prediction_agreement"] = same.astype(np.float32)
    replicates = weights_0.shape[1]
    boots = {}
    for name, matrix in values.items():
        if diagonal:
            matrix = np.triu(matrix, 1)
        boot = np.zeros((replicates, num_groups_0, num_groups_1))
        for h in range(num_groups_1):
            columns_h = weights_1 * (groups_1 == h)[:, None]
            product = matrix @ columns_h  # (n0, r), float32 BLAS
            for g in range(num_groups_0):
                rows_g = weights_0 * (groups_0 == g)[:, None]
                boot[:, g, h] = (rows_g * product).sum(axis=0, dtype=np.float64)
        boots[name] = boot
    return boots


def _pairwise_tile(block_0, block_1, rows, columns, diagonal, mirror, target, group, token,
                   num_examples, groups_0, groups_1, num_groups_0, num_groups_1,
                   weights_0, weights_1, same_groups, device):
    """Counts of one tile, written to the zarr target; returns the tile's sums.

    ``diagonal``: the tile pairs a block with itself (pairs i < j only are summed).
    ``mirror``: also write the transposed tile (symmetric matrices).
    ``same_groups``: both sides use one set of groups (within/between histograms).
    """
    from kernels.pairwise import tile_statistics

    both, same = _tile_counts(block_0, block_1, device)
    n0, n1 = both.shape
    dtype = _count_dtype(num_examples)
    kappa = np.empty((n0, n1), np.float32)
    both_out = np.empty((n0, n1), dtype)
    if same is None:
        same_in = np.zeros((0, 0), np.int32)
        same_out = np.zeros((0, 0), dtype)
    else:
        same_in = np.ascontiguousarray(same, dtype=np.int32)
        same_out = np.empty((n0, n1), dtype)
    # One numba pass: kappa, the stored counts, per group-pair sums, pair counts, histogram.
    point, pairs, histogram = tile_statistics(
        both, same_in, block_0["correct_count"], block_1["correct_count"], num_examples,
        groups_0, groups_1, num_groups_0, num_groups_1, diagonal, same_groups, KAPPA_BINS,
        kappa, both_out, same_out)
    arrays = {"both_correct": both_out, "kappa": kappa}
    if same is not None:
        arrays["prediction_agree"] = same_out
    outputs = _open_target(target, group, token)
    for name, values in arrays.items():
        outputs[name][rows, columns] = values
        if mirror and not diagonal:
            outputs[name][columns, rows] = values.T
    boots = {}
    if weights_0.shape[1]:
        boots = _bootstrap_sums(both, same, block_0, block_1, num_examples, diagonal, groups_0,
                                groups_1, num_groups_0, num_groups_1, weights_0, weights_1)
    sums = {}
    for index, name in enumerate(STATISTICS):
        if name == "prediction_agreement" and same is None:
            continue
        sums[name] = {"point": point[index],
                      "boot": boots.get(name, np.zeros((0, num_groups_0, num_groups_1)))}
    return {"sums": sums, "pairs": pairs, "histogram": histogram}


# ----------------------------------------------------------------------------------------------
# The zarr output


def _compressors(name: str):
    from zarr.codecs import BloscCodec

    if name == "kappa":
        return KAPPA_COMPRESSORS and [BloscCodec(**KAPPA_COMPRESSORS)]
    return COUNT_COMPRESSORS and [BloscCodec(**COUNT_COMPRESSORS)]


def _create_matrix_group(root, group: str, side_0: _Side, side_1: _Side, block: int,
                         with_predictions: bool, attrs: dict) -> str:
    """Create one matrix group's arrays; returns the token that names this run's arrays."""
    target = root.require_group(group)
    target.attrs.update(attrs)
    shape = (side_0.size, side_1.size)
    chunks = (max(1, min(block, shape[0])), max(1, min(block, shape[1])))
    dims = ("networks_0", "networks_1")
    count_dtype = np.dtype(_count_dtype(attrs["examples"])).name
    specs = [("both_correct", count_dtype, 0), ("kappa", "float32", np.nan)]
    if with_predictions:
        specs.append(("prediction_agree", count_dtype, 0))
    for name, dtype, fill in specs:
        # Tiles are whole chunks, never empty: skip zarr's check of each chunk against the fill.
        target.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill,
                            dimension_names=dims, compressors=_compressors(name),
                            config={"write_empty_chunks": True}, overwrite=True)
    for index, side in enumerate((side_0, side_1)):
        dim = f"networks_{index}"
        target.create_array(dim, shape=(side.size,), dtype="int64", dimension_names=(dim,),
                            overwrite=True)[:] = side.ids
        target.create_array(f"network_group_{index}", shape=(side.size,), dtype="int16",
                            dimension_names=(dim,), overwrite=True)[:] = side.group_codes
    return uuid.uuid4().hex


def _write_correct_counts(root, group: str, info_0: dict, info_1: dict) -> None:
    """Examples each network gets right, per side: with both_correct they give agreement."""
    for name, dim, info in (("correct_count", "networks_0", info_0),
                            ("correct_count_1", "networks_1", info_1)):
        counts = info["network_correct"]
        root[group].create_array(name, shape=counts.shape, dtype="int64",
                                 dimension_names=(dim,), overwrite=True)[:] = counts


# ----------------------------------------------------------------------------------------------
# One matrix: schedule the tiles, compute, summarise


def _compute_matrix(side_0: _Side, side_1: _Side, symmetric: bool, target: str, group: str,
                    token: str, block: int, device: str):
    """Run every tile of one split/checkpoint matrix; return the tiles' results and the blocks'
    per-example counts (sums over each side's networks)."""
    import dask

    blocks_0, slices_0 = _side_blocks(side_0, block)
    if symmetric:
        blocks_1, slices_1 = blocks_0, slices_0
    else:
        blocks_1, slices_1 = _side_blocks(side_1, block)
    num_examples = side_0.population.num_examples(side_0.split)
    ng0, ng1 = len(side_0.group_names), len(side_1.group_names)
    tiles = []
    for i, rows in enumerate(slices_0):
        for j, columns in enumerate(slices_1):
            if symmetric and j < i:
                continue
            tiles.append(dask.delayed(_pairwise_tile, pure=False)(
                blocks_0[i], blocks_1[j], rows, columns, symmetric and i == j, symmetric,
                target, group, token, num_examples,
                side_0.groups[rows], side_1.groups[columns], ng0, ng1,
                side_0.weights[rows], side_1.weights[columns], symmetric, device))

    def gather(blocks):
        def total(*loaded):
            info = {
                "example_correct": sum(b["example_correct"] for b in loaded),
                "example_class_counts": None,
                "network_correct": np.concatenate([b["correct_count"] for b in loaded]),
            }
            if loaded and loaded[0]["example_class_counts"] is not None:
                info["example_class_counts"] = sum(b["example_class_counts"] for b in loaded)
            return info
        return dask.delayed(total)(*blocks)

    info_0 = gather(blocks_0)
    info_1 = info_0 if symmetric else gather(blocks_1)
    return dask.compute(tiles, info_0, info_1)


def _interval(values: np.ndarray) -> list[float] | None:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def _float(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _fold(sums: np.ndarray, symmetric: bool) -> np.ndarray:
    """Sums over pairs i < j per (group of i, group of j), (g, g, ...) -> unordered group pairs:
    (g, h) + (h, g) above the diagonal, zero below. Cross matrices are returned unchanged."""
    if not symmetric:
        return sums
    swapped = np.swapaxes(sums, 0, 1)
    upper = np.triu(np.ones(sums.shape[:2], bool))
    diagonal = np.eye(sums.shape[0], dtype=bool)
    folded = np.where(diagonal[(...,) + (None,) * (sums.ndim - 2)], sums, sums + swapped)
    return folded * upper[(...,) + (None,) * (sums.ndim - 2)]


def _pair_weights(side_0: _Side, side_1: _Side, symmetric: bool, mask_0=None, mask_1=None):
    """Weighted number of distinct-network pairs per (unordered) group pair, (g0, g1, 1 + r):
    column 0 counts pairs (weights 1), then one column per network-bootstrap replicate."""
    w0 = np.concatenate([np.ones((side_0.size, 1)), side_0.weights.astype(np.float64)], axis=1)
    w1 = np.concatenate([np.ones((side_1.size, 1)), side_1.weights.astype(np.float64)], axis=1)
    if mask_0 is not None:
        w0 = w0 * mask_0[:, None]
        w1 = w1 * mask_1[:, None]
    ng0, ng1 = len(side_0.group_names), len(side_1.group_names)
    totals_0 = np.stack([w0[side_0.groups == g].sum(axis=0) for g in range(ng0)])
    totals_1 = np.stack([w1[side_1.groups == h].sum(axis=0) for h in range(ng1)])
    pairs = totals_0[:, None, :] * totals_1[None, :, :]
    if symmetric:
        pairs = pairs * np.triu(np.ones((ng0, ng0)))[..., None]
        for g in range(ng0):
            squares = (w0[side_0.groups == g] ** 2).sum(axis=0)
            pairs[g, g] = (totals_0[g] ** 2 - squares) / 2
    return pairs


def _summarise(side_0, side_1, symmetric, results, info_0, info_1, bootstrap, rng,
               kappa_sample):
    """Means, intervals and group breakdowns of one matrix from the tiles' sums."""
    num_examples = side_0.population.num_examples(side_0.split)
    ng0, ng1 = len(side_0.group_names), len(side_1.group_names)
    names = [n for n in STATISTICS if results and n in results[0]["sums"]]
    totals = {}
    for name in names:
        point = sum(r["sums"][name]["point"] for r in results)
        boot = sum(r["sums"][name]["boot"] for r in results)
        stacked = np.concatenate([point[..., None], boot.transpose(1, 2, 0)], axis=2)
        if name != "kappa":
            stacked = stacked / num_examples if num_examples else stacked * np.nan
        totals[name] = _fold(stacked, symmetric)
    pairs = _pair_weights(side_0, side_1, symmetric)
    # Kappa is undefined for pairs whose networks are both always right or both always wrong.
    invalid = np.zeros_like(pairs)
    for extreme in (num_examples, 0):
        mask_0 = (info_0["network_correct"] == extreme).astype(np.float64)
        mask_1 = (info_1["network_correct"] == extreme).astype(np.float64)
        invalid += _pair_weights(side_0, side_1, symmetric, mask_0, mask_1)

    def ratio(numerator, denominator):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(denominator > 0, numerator / np.where(denominator > 0,
                                                                  denominator, 1), np.nan)

    selections = {"all": np.ones((ng0, ng1), bool)}
    if symmetric and ng0 > 1:
        selections["within"] = np.eye(ng0, dtype=bool)
        selections["between"] = np.triu(np.ones((ng0, ng0), bool), 1)
    summary: dict[str, Any] = {"pairs": int(round(pairs[..., 0].sum())),
                               "networks": [side_0.size] if symmetric
                               else [side_0.size, side_1.size]}
    for name in names:
        denominator = pairs - invalid if name == "kappa" else pairs
        entry: dict[str, Any] = {}
        for kind, chosen in selections.items():
            means = ratio(totals[name][chosen].sum(axis=0), denominator[chosen].sum(axis=0))
            entry[kind] = {"mean": _float(means[0]),
                           "networks_ci": _interval(means[1:]) if bootstrap else None,
                           "examples_ci": None,
                           "pairs": int(round(denominator[chosen].sum(axis=0)[0]))}
        per_group = ratio(totals[name][..., 0], denominator[..., 0])
        if symmetric:
            per_group = np.where(np.isnan(np.triu(per_group)), 0, np.triu(per_group))
            per_group = per_group + np.triu(per_group, 1).T
            per_group[denominator[..., 0] + denominator[..., 0].T == 0] = np.nan
        entry["group_means"] = [[_float(v) for v in row] for row in per_group]
        summary[name] = entry
    if bootstrap and num_examples and names:
        example_weights = rng.multinomial(num_examples, np.full(num_examples, 1 / num_examples),
                                          size=bootstrap)
        linear = _linear_example_bootstrap(side_0, side_1, symmetric, info_0, info_1,
                                           example_weights)
        for name, values in linear.items():
            if name in summary:
                summary[name]["all"]["examples_ci"] = _interval(values)
        if "kappa" in summary and kappa_sample is not None:
            summary["kappa"]["all"]["examples_ci"] = _interval(
                _kappa_example_bootstrap(kappa_sample, example_weights, symmetric))
            summary["kappa"]["all"]["examples_ci_networks"] = kappa_sample["networks"]
    return summary


def _linear_example_bootstrap(side_0, side_1, symmetric, info_0, info_1, example_weights):
    """Exact replicates of the mean agreement and prediction agreement over all pairs.

    sum over pairs of agree_ij = sum_x e_x, with e_x the pairs that agree on x: for one side,
    k_x (k_x - 1) / 2 + (N - k_x)(N - k_x - 1) / 2; across two sides, k_x l_x + (N-k_x)(M-l_x).
    Each replicate weighs e_x by the example multiplicities.
    """
    n0, n1 = side_0.size, side_1.size
    num_examples = side_0.population.num_examples(side_0.split)
    k0, classes_0 = info_0["example_correct"], info_0["example_class_counts"]
    k1, classes_1 = info_1["example_correct"], info_1["example_class_counts"]
    k0 = k0.astype(np.float64)
    k1 = k1.astype(np.float64)
    if symmetric:
        pairs = n0 * (n0 - 1) / 2
        agree = k0 * (k0 - 1) / 2 + (n0 - k0) * (n0 - k0 - 1) / 2
    else:
        pairs = n0 * n1
        agree = k0 * k1 + (n0 - k0) * (n1 - k1)
    out = {}
    if pairs:
        out["agreement"] = example_weights @ agree / (num_examples * pairs)
        if classes_0 is not None and classes_1 is not None:
            c0 = classes_0.astype(np.float64)
            c1 = classes_1.astype(np.float64)
            same = (c0 * (c0 - 1) / 2).sum(axis=0) if symmetric else (c0 * c1).sum(axis=0)
            out["prediction_agreement"] = example_weights @ same / (num_examples * pairs)
    return out


def _kappa_sample(side_0: _Side, side_1: _Side, symmetric: bool, rng) -> dict:
    """Correctness of a random subset of networks for the example bootstrap of kappa."""
    import dask

    def choose(side):
        count = min(side.size, EXAMPLE_BOOTSTRAP_NETWORKS if symmetric
                    else EXAMPLE_BOOTSTRAP_NETWORKS // 2)
        return np.sort(rng.choice(side.ids, size=count, replace=False))

    ids_0 = choose(side_0)
    ids_1 = ids_0 if symmetric else choose(side_1)
    num_examples = side_0.population.num_examples(side_0.split)

    def read(side, ids):
        packed = side.population.correct_packed(side.split)[:, side.checkpoint, :][ids]
        return packed

    packed_0, packed_1 = dask.compute(read(side_0, ids_0), read(side_1, ids_1))
    unpack = lambda p: np.unpackbits(p, axis=1, count=num_examples,  # noqa: E731
                                     bitorder="little").astype(np.float32)
    return {"correct_0": unpack(packed_0), "correct_1": unpack(packed_1),
            "networks": int(ids_0.size if symmetric else ids_0.size + ids_1.size)}


def _kappa_example_bootstrap(sample: dict, example_weights: np.ndarray, symmetric: bool):
    """Mean kappa over the sample's pairs for each replicate of example weights.

    Weighted counts B_w[i, j] = sum_x w_x C_ix C_jx for every pair and replicate come from one
    product (pairs x examples) @ (examples x replicates), taken over slices of examples. Its
    entries are integers below 2^24, so float32 products are exact.
    """
    c0, c1 = sample["correct_0"], sample["correct_1"]
    num_examples = c0.shape[1]
    replicates = example_weights.shape[0]
    means = np.full(replicates, np.nan)
    if c0.shape[0] == 0 or c1.shape[0] == 0 or (symmetric and c0.shape[0] < 2):
        return means
    if symmetric:
        first, second = np.triu_indices(c0.shape[0], 1)
    else:
        first, second = (a.ravel() for a in np.meshgrid(np.arange(c0.shape[0]),
                                                       np.arange(c1.shape[0]), indexing="ij"))
    both = np.zeros((first.size, replicates))
    count_0 = np.zeros((c0.shape[0], replicates))
    count_1 = np.zeros((c1.shape[0], replicates))
    step = 4096
    for start in range(0, num_examples, step):
        stop = min(num_examples, start + step)
        weights = np.ascontiguousarray(example_weights[:, start:stop].T, dtype=np.float32)
        both += (c0[first, start:stop] * c1[second, start:stop]) @ weights
        count_0 += c0[:, start:stop] @ weights
        count_1 += c1[:, start:stop] @ weights
    ci = np.rint(count_0[first]).astype(np.int64)
    cj = np.rint(count_1[second]).astype(np.int64)
    total = np.int64(num_examples)
    agree = total - ci - cj + 2 * np.rint(both).astype(np.int64)
    expected = ci * cj + (total - ci) * (total - cj)
    denominator = (total * total - expected).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(denominator != 0, (agree * total - expected) / denominator, np.nan)
    valid = np.isfinite(kappa)
    counts = valid.sum(axis=0)
    sums = np.where(valid, kappa, 0).sum(axis=0)
    means[counts > 0] = sums[counts > 0] / counts[counts > 0]
    return means


# ----------------------------------------------------------------------------------------------
# Figures


def _sample_positions(side: _Side, limit: int, rng) -> np.ndarray:
    """Up to ``limit`` positions of side.ids, every group represented in proportion."""
    if side.size <= limit:
        return np.arange(side.size)
    chosen = []
    for g in range(len(side.group_names)):
        members = np.flatnonzero(side.groups == g)
        count = max(1, int(round(limit * members.size / side.size)))
        chosen.append(rng.choice(members, size=min(count, members.size), replace=False))
    return np.sort(np.concatenate(chosen))


def kappa_heatmap(kappa: np.ndarray, groups: np.ndarray, group_names: Sequence[str], path: Path,
                  title: str) -> None:
    """Heatmap of a (sampled) kappa matrix with networks ordered by average-linkage clustering
    on the distance 1 - kappa (undefined kappa counts as distance 1)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    size = kappa.shape[0]
    if size >= 3:
        distance = 1 - np.nan_to_num(kappa.astype(np.float64), nan=0.0)
        distance = np.clip((distance + distance.T) / 2, 0, None)
        np.fill_diagonal(distance, 0)
        order = leaves_list(linkage(squareform(distance, checks=False), method="average"))
    else:
        order = np.arange(size)
    figure, axes = plt.subplots(figsize=(7, 6))
    shown = kappa[np.ix_(order, order)].astype(np.float64)
    # A network agrees with itself (kappa 1); blank the diagonal so the colours span the pairs.
    np.fill_diagonal(shown, np.nan)
    finite = shown[np.isfinite(shown)]
    low, high = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    image = axes.imshow(shown, cmap="magma", vmin=low, vmax=max(high, low + 1e-6),
                        interpolation="nearest")
    figure.colorbar(image, ax=axes, label="error consistency (kappa)")
    if len(group_names) > 1:
        ordered = groups[order]
        for g, name in enumerate(group_names):
            where = np.flatnonzero(ordered == g)
            axes.scatter(np.full(where.size, -2), where, s=4, marker="s", label=name,
                         clip_on=False)
        axes.legend(loc="upper right", fontsize=7, markerscale=3, title="group")
    axes.set_xlabel("networks (clustered)")
    axes.set_ylabel("networks (clustered)")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def kappa_distribution(histogram: np.ndarray, labels: Sequence[str], path: Path,
                       title: str) -> None:
    """Distribution of pairwise kappa, one curve per row of ``histogram`` (bins over [-1, 1])."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    edges = np.linspace(-1, 1, histogram.shape[1] + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    figure, axes = plt.subplots(figsize=(6, 4))
    for counts, label in zip(histogram, labels, strict=True):
        total = counts.sum()
        if total:
            axes.step(centres, counts / total / (edges[1] - edges[0]), where="mid",
                      label=f"{label} ({total:,} pairs)")
    axes.set_xlabel("error consistency (kappa)")
    axes.set_ylabel("density")
    axes.set_title(title, fontsize=9)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _figures(target: str, group: str, side_0: _Side, side_1: _Side, symmetric: bool,
             histogram: np.ndarray, out_dir: Path, stem: str, title: str, rng) -> list[str]:
    import zarr

    written = []
    if not histogram.any():
        # Kappa is undefined for every pair (a split without labels, or networks that are all
        # always right): a heatmap of NaN and an empty distribution would say nothing.
        return written
    kappa_array = zarr.open_group(target, mode="r")[f"{group}/kappa"]
    if symmetric:
        positions = _sample_positions(side_0, HEATMAP_NETWORKS, rng)
        sample = kappa_array.get_orthogonal_selection((positions, positions))
        heatmap = out_dir / f"kappa_heatmap_{stem}.png"
        shown = "" if positions.size == side_0.size else f" (sample of {positions.size})"
        kappa_heatmap(sample, side_0.groups[positions], side_0.group_names, heatmap,
                      f"{title}: {side_0.size} networks{shown}")
        written.append(heatmap.name)
        labels = (["within groups", "between groups"] if len(side_0.group_names) > 1
                  else ["all pairs", "unused"])
        rows = histogram if len(side_0.group_names) > 1 else histogram[:1] + histogram[1:]
        distribution = out_dir / f"kappa_distribution_{stem}.png"
        kappa_distribution(rows, labels[: rows.shape[0]], distribution, title)
        written.append(distribution.name)
    else:
        distribution = out_dir / f"kappa_distribution_{stem}.png"
        kappa_distribution(histogram[1:], ["between the stores"], distribution, title)
        written.append(distribution.name)
    return written


# ----------------------------------------------------------------------------------------------
# Synthetic stores (tests and benchmarks)


def synthetic_population(path, *, networks: int, examples: int, checkpoints: int = 1,
                         groups: Sequence[int] | None = None, predictions: bool = False,
                         num_classes: int = 10, seed: int = 0, batch: int = 1024,
                         checkpoint_block: int | None = None):
    """A store with random but correlated verdicts, as real populations have.

    Network n at checkpoint t is right on example x with probability
    sigmoid(skill_n + 1.5 t / T - difficulty_x), difficulty shared by all networks; a wrong
    prediction is the example's own confusing class half of the time. Each group gets its own
    skill offset. Store chunks hold ``checkpoint_block`` checkpoints, by default
    ``min(16, checkpoints)`` (a chunk longer than the store only adds padding to decode: reading
    one checkpoint of a 16-checkpoint chunk decodes 16). Returns the opened
    :class:`~engine.store.Population`.
    """
    import engine
    from engine.store import SplitSpec

    rng = np.random.default_rng(seed)
    sizes = list(groups) if groups is not None else [networks]
    if sum(sizes) != networks:
        raise ConfigError("group sizes must add up to the number of networks")
    labels = rng.integers(0, num_classes, examples).astype(np.int64)
    confusing = (labels + rng.integers(1, max(num_classes, 2), examples)) % max(num_classes, 2)
    difficulty = rng.normal(0, 2, examples).astype(np.float32)
    group_specs = [engine.GroupSpec(f"group{g}", f"arch{g}", size, {"offset": 0.5 * g})
                   for g, size in enumerate(sizes)]
    offsets = np.repeat(0.5 * np.arange(len(sizes)), sizes).astype(np.float32)
    skill = (rng.normal(1.0, 0.3, networks).astype(np.float32) + offsets)
    writer = engine.create_population(
        path, dataset_name="synthetic",
        splits={"test": SplitSpec(labels=labels, predictions=predictions,
                                  fingerprint=f"synthetic-{examples}-{seed}")},
        groups=group_specs, checkpoint_epochs=list(range(checkpoints)),
        class_names=[str(k) for k in range(num_classes)], command="synthetic_population",
        checkpoint_block=checkpoint_block or min(16, checkpoints))
    step = max(32, batch - batch % 32)
    for start in range(0, networks, step):
        stop = min(networks, start + step)
        for t in range(checkpoints):
            logits = skill[start:stop, None] + 1.5 * t / max(checkpoints, 1) - difficulty[None]
            chance = 1 / (1 + np.exp(-logits))
            correct = rng.random((stop - start, examples), dtype=np.float32) < chance
            if predictions:
                wrong = np.where(rng.random((stop - start, examples)) < 0.5, confusing[None],
                                 rng.integers(0, num_classes, (stop - start, examples)))
                wrong = np.where(wrong == labels[None], confusing[None], wrong)
                chosen = np.where(correct, labels[None], wrong)
                writer.record("test", t, (start, stop), predictions=chosen)
            else:
                writer.record("test", t, (start, stop), correct=correct)
            writer.mark_checkpoint(t, (start, stop))
    return engine.open_population(path)


# ----------------------------------------------------------------------------------------------
# Public API


def _open_output(out_dir: Path, attrs: dict):
    import zarr

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = str(out_dir / "pairwise.zarr")
    root = zarr.open_group(target, mode="w")
    root.attrs[ATTRS_KEY] = attrs
    return target, root


def _default_block(block: int | None, device: str) -> int:
    if block is None:
        return DEFAULT_CUDA_BLOCK if device == "cuda" else DEFAULT_BLOCK
    if int(block) < 1:
        raise ConfigError(f"block must be a positive number of networks, got {block}")
    return int(block)


def _check_bootstrap(bootstrap: int) -> int:
    if int(bootstrap) < 0:
        raise ConfigError(f"bootstrap must be 0 or more replicates, got {bootstrap}")
    return int(bootstrap)


def pairwise_report(population, out_dir: Path, *, splits=None, checkpoints="last",
                    networks=None, device="cpu", block=None, bootstrap=200, seed=0,
                    figures=True) -> dict:
    """Pairwise agreement and error consistency between every two networks of a store.

    For each split and checkpoint, the N x N matrices of co-correct counts (``both_correct``),
    correctness agreement counts (``agree``), error consistency (``kappa``) and, where predictions
    are stored, prediction agreement counts (``prediction_agree``) go to
    ``out_dir/pairwise.zarr/<split>/checkpoint_<t>/`` (dims ``networks_0``, ``networks_1``),
    written tile by tile. Runs on whatever Dask scheduler or distributed Client is active.

    Parameters
    ----------
    population : Population or path
    out_dir : Path
        Folder for ``pairwise.zarr``, the figures and ``pairwise.json``.
    splits : sequence of str, optional
        Default: every split of the store with examples.
    checkpoints : "last", "all", list of int or comma string
    networks : ndarray of int, dims (networks,), optional
        Network ids to include; default the networks recorded through the latest checkpoint.
    device : "cpu" or "cuda"
        Where the tile counts are computed (equal results).
    block : int, optional
        Networks per tile side (and zarr chunk); default 512 on the CPU, 2048 on a GPU.
    bootstrap : int
        Bootstrap replicates over networks and over examples (0 for none).
    seed : int
    figures : bool
        Draw the kappa heatmap and distribution at each split's last checkpoint asked for.

    Returns
    -------
    dict
        JSON-able: ``{"splits": {split: {"checkpoints": {t: summary}}}, ...}``, each summary with
        ``agreement``, ``kappa`` and ``prediction_agreement`` entries holding ``all`` (and
        ``within``/``between`` with several groups) as ``{"mean", "networks_ci",
        "examples_ci", "pairs"}``, plus ``group_means`` (group x group).
    """
    _check_device(device)
    population = _as_population(population)
    block = _default_block(block, device)
    bootstrap = _check_bootstrap(bootstrap)
    if splits is None:
        splits = [s for s in population.splits if population.num_examples(s) > 0]
    elif isinstance(splits, str):
        splits = [splits]
    for split in splits:
        population.require_split(split)
    checkpoint_list = resolve_checkpoints(population, checkpoints)
    ids = _resolve_networks(population, networks, checkpoint_list)
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    report: dict[str, Any] = {
        "store": population.path,
        "dataset_fingerprint": population.dataset_fingerprint,
        "networks": int(ids.size),
        "device": device,
        "block": block,
        "bootstrap": bootstrap,
        "seed": seed,
        "groups": [g["name"] for g in population.attrs["groups"]],
        "splits": {},
        "figures": [],
        "zarr": "pairwise.zarr",
    }
    target, root = _open_output(out_dir, {k: v for k, v in report.items()
                                          if k not in ("splits", "figures")})
    epochs = population.checkpoints["epoch"].to_numpy()
    network_groups = population.network_groups()
    for split in splits:
        num_classes = _num_classes(population, split)
        split_report = {"examples": population.num_examples(split),
                        "predictions": bool(num_classes), "checkpoints": {}}
        for t in checkpoint_list:
            side = _make_side(population, split, t, ids, bootstrap, rng, num_classes,
                              network_groups)
            group = f"{split}/checkpoint_{t}"
            token = _create_matrix_group(
                root, group, side, side, block, bool(num_classes),
                {"split": split, "checkpoint": t, "epoch": float(epochs[t]),
                 "examples": population.num_examples(split)})
            draw = figures and t == checkpoint_list[-1]
            results, info, _ = _compute_matrix(side, side, True, target, group, token, block,
                                               device)
            _write_correct_counts(root, group, info, info)
            sample = _kappa_sample(side, side, True, rng) if bootstrap else None
            summary = _summarise(side, side, True, results, info, info, bootstrap, rng, sample)
            summary["epoch"] = float(epochs[t])
            summary["group_names"] = side.group_names
            split_report["checkpoints"][str(t)] = summary
            if draw:
                histogram = sum(r["histogram"] for r in results)
                report["figures"] += _figures(target, group, side, side, True, histogram,
                                              out_dir, f"{split}_checkpoint{t}",
                                              f"{split}, checkpoint {t}", rng)
        report["splits"][split] = split_report
    (out_dir / "pairwise.json").write_text(json.dumps(report, indent=1))
    return report


def cross_pairwise_report(populations: list, out_dir: Path, *, split="test", checkpoint="last",
                          device="cpu", bootstrap=200, seed=0, block=None,
                          figures=True) -> dict:
    """Agreement and error consistency between the networks of two (or more) stores.

    Every two stores ``a < b`` give one rectangular matrix (networks of a x networks of b) in
    ``out_dir/pairwise.zarr/<a>_<b>/<split>/`` and one summary. The stores must hold the same
    examples of ``split`` (equal split fingerprints).

    Parameters
    ----------
    populations : list of Population or paths
    split : str
    checkpoint : "last" or int
        ``"last"`` takes each store's own last checkpoint.
    device, bootstrap, seed, block, figures
        As in :func:`pairwise_report`.
    """
    _check_device(device)
    block = _default_block(block, device)
    bootstrap = _check_bootstrap(bootstrap)
    populations = [_as_population(p) for p in populations]
    if len(populations) < 2:
        raise ConfigError("cross_pairwise_report needs at least two stores")
    for population in populations:
        population.require_split(split)
    first = populations[0]
    for other in populations[1:]:
        same = (other.attrs["splits"][split]["fingerprint"]
                == first.attrs["splits"][split]["fingerprint"]
                and other.num_examples(split) == first.num_examples(split))
        if not same:
            raise StoreError(f"{other.path} and {first.path} hold different examples in split "
                             f"{split!r} (fingerprints differ); pairwise comparison needs the "
                             "same examples")
    rng = np.random.default_rng(seed)
    sides_input = []
    for population in populations:
        t = resolve_checkpoints(population, "last" if checkpoint == "last" else [checkpoint])[-1]
        ids = _resolve_networks(population, None, [t])
        sides_input.append((population, t, ids))
    report: dict[str, Any] = {"stores": [p.path for p in populations], "split": split,
                              "device": device, "bootstrap": bootstrap, "seed": seed,
                              "comparisons": [], "figures": [], "zarr": "pairwise.zarr"}
    out_dir = Path(out_dir)
    target, root = _open_output(out_dir, {k: v for k, v in report.items()
                                          if k not in ("comparisons", "figures")})
    classes = [_num_classes(p, split) for p in populations]
    # Predictions are compared only where every store keeps them, over the union of classes.
    num_classes = max(classes) if min(classes) > 0 else 0
    for a in range(len(populations)):
        for b in range(a + 1, len(populations)):
            side_0 = _make_side(sides_input[a][0], split, sides_input[a][1], sides_input[a][2],
                                bootstrap, rng, num_classes)
            side_1 = _make_side(sides_input[b][0], split, sides_input[b][1], sides_input[b][2],
                                bootstrap, rng, side_0.num_classes)
            group = f"stores_{a}_{b}/{split}"
            token = _create_matrix_group(
                root, group, side_0, side_1, block, bool(side_0.num_classes),
                {"split": split, "stores": [populations[a].path, populations[b].path],
                 "checkpoints": [side_0.checkpoint, side_1.checkpoint],
                 "examples": first.num_examples(split)})
            results, info_0, info_1 = _compute_matrix(side_0, side_1, False, target, group,
                                                      token, block, device)
            _write_correct_counts(root, group, info_0, info_1)
            sample = _kappa_sample(side_0, side_1, False, rng) if bootstrap else None
            summary = _summarise(side_0, side_1, False, results, info_0, info_1, bootstrap,
                                 rng, sample)
            summary.update({"stores": [populations[a].path, populations[b].path],
                            "checkpoints": [side_0.checkpoint, side_1.checkpoint],
                            "group_names": [side_0.group_names, side_1.group_names],
                            "zarr_group": group})
            report["comparisons"].append(summary)
            if figures:
                histogram = sum(r["histogram"] for r in results)
                report["figures"] += _figures(target, group, side_0, side_1, False, histogram,
                                              out_dir, f"stores_{a}_{b}_{split}",
                                              f"{Path(populations[a].path).name} vs "
                                              f"{Path(populations[b].path).name}, {split}", rng)
    (out_dir / "pairwise.json").write_text(json.dumps(report, indent=1))
    return report


def open_pairwise(path, split: str | None = None, checkpoint: int | None = None, *,
                  group: str | None = None, lazy: bool = True) -> dict:
    """The matrices of one split and checkpoint of a ``pairwise.zarr``, agreement derived.

    ``agree`` is not stored: A_ij = X - c_i - c_j + 2 B_ij from ``both_correct`` and the stored
    ``correct_count`` of each side, computed here (lazily by default).

    Parameters
    ----------
    path : str or Path
        The output folder of :func:`pairwise_report` or the ``pairwise.zarr`` in it.
    split : str, optional
        Default: the only split stored (an error where there are several).
    checkpoint : int, optional
        Default: the latest checkpoint stored for the split.
    group : str, optional
        A matrix group instead of split and checkpoint, e.g. ``"stores_0_1/test"`` of
        :func:`cross_pairwise_report`.
    lazy : bool
        Dask arrays chunked as stored (True) or NumPy arrays (False).

    Returns
    -------
    dict
        ``both_correct`` (uint16/uint32), ``agree`` (same dtype), ``agreement`` (float32, A / X),
        ``kappa`` (float32, NaN where undefined), ``prediction_agree`` (or None), all dims
        (networks_0, networks_1); ``networks_0``, ``networks_1`` (ids), ``correct_count_0``,
        ``correct_count_1`` (int64) and ``examples`` (X).
    """
    import dask.array as da
    import zarr

    path = Path(path)
    if path.name != "pairwise.zarr" and (path / "pairwise.zarr").exists():
        path = path / "pairwise.zarr"
    try:
        root = zarr.open_group(str(path), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as error:
        raise StoreError(f"no pairwise.zarr at {path}") from error
    if group is None:
        splits = [name for name in root.group_keys() if not name.startswith("stores_")]
        if split is None:
            if len(splits) != 1:
                raise ConfigError(f"{path} holds splits {', '.join(splits) or 'none'}: "
                                  "name one")
            split = splits[0]
        if split not in splits:
            raise StoreError(f"split {split!r} is not in {path}; it has {', '.join(splits)}")
        stored = sorted(int(name.removeprefix("checkpoint_"))
                        for name in root[split].group_keys())
        if checkpoint is None:
            checkpoint = stored[-1]
        if checkpoint not in stored:
            raise StoreError(f"checkpoint {checkpoint} of split {split!r} is not in {path}; it "
                             f"has {', '.join(map(str, stored))}")
        group = f"{split}/checkpoint_{checkpoint}"
    if group not in root:
        raise StoreError(f"{path} has no group {group!r}")
    matrices = root[group]
    examples = int(matrices.attrs["examples"])
    count_0 = matrices["correct_count"][:]
    count_1 = (matrices["correct_count_1"][:] if "correct_count_1" in matrices else count_0)

    def load(name):
        if name not in matrices:
            return None
        array = matrices[name]
        return da.from_array(array, chunks=array.chunks) if lazy else array[:]

    both = load("both_correct")
    wide = both.astype(np.int64) * 2 + (examples - count_0[:, None] - count_1[None, :])
    agree = wide.astype(both.dtype)
    agreement = (wide / examples if examples else wide * np.nan).astype(np.float32)
    return {"both_correct": both, "agree": agree, "agreement": agreement,
            "kappa": load("kappa"), "prediction_agree": load("prediction_agree"),
            "networks_0": matrices["networks_0"][:], "networks_1": matrices["networks_1"][:],
            "correct_count_0": count_0, "correct_count_1": count_1, "examples": examples}


__all__ = ["cross_pairwise_report", "kappa_distribution", "kappa_heatmap", "open_pairwise",
           "pairwise_report", "resolve_checkpoints", "synthetic_population", "words_from_bytes"]

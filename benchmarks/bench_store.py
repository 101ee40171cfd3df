"""Choose the encoding of the verdict arrays: bits per stored entry, write and read throughput.

Candidates are encodings of one (networks, checkpoints, examples) correctness tensor, written the
way training writes (one checkpoint at a time, each rewriting its chunk) and read whole. The tensor
is real: the MNIST-1D populations in ../shared/data (or a trained store given with --store).

    python benchmarks/bench_store.py [--store pop.zarr --split train] [--repeat 3] [--smoke]
    python benchmarks/bench_store.py --soft /tmp/soft-logits.npz   # soft verdicts (format v2)

Prints a table and one JSON line per candidate. Throughputs count logical entries (one verdict of
one network at one checkpoint on one example) per second, on one thread (zarr's and blosc's
thread pools are held to one), so they are per core.

``--smoke`` measures every candidate and the engine on a tiny simulated population (40 networks x
6 checkpoints x 300 examples, engine.testing), checkpoint blocks 1 and 4, timed once: a test that
every step runs, for tests/test_benchmarks.py; flags given with it still win.

``--soft LOGITS.npz`` measures instead the encodings of the two soft-verdict arrays of store
format v2, the true-class probability and the margin (true-class logit minus the largest other
logit), on the logits of a real population (benchmarks/soft_logits.py writes them): each
quantisation (:data:`SOFT_QUANTISERS`) with each compressor (:func:`soft_compressors`; the added,
coarser quantisers with :data:`SOFT_EXTRA_COMPRESSORS`), written through real zarr arrays in the
store's chunk layout, with the quantisation errors of the entries and of the measures built on
them (confidence, variability, area under the margin, mean loss), then the cost of the pairs and
of the choice (:data:`SOFT_CHOICE`). About 45 minutes at ``--repeat 3`` on one core, most of it
recording at zstd level 9; ``--soft-quantisers`` and ``--soft-compressors`` cut it down.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist1d-populations.npz"


def real_tensors(store: str | None, split: str) -> list[tuple[str, np.ndarray]]:
    if store:
        import engine

        population = engine.open_population(store)
        return [(f"{store}:{split}", population.correct(split).compute())]
    data = np.load(SHARED)
    tensors = []
    for population in ("mlp0", "mlp1", "cnn0", "cnn1"):
        for name in ("train", "test"):
            packed = data[f"{population}_{name}_packed"]
            count = int(data[f"{population}_{name}_examples"])
            tensors.append(
                (
                    f"{population}_{name}",
                    np.unpackbits(packed, axis=2, count=count, bitorder="little").astype(bool),
                )
            )
    return tensors


def candidates():
    from zarr.codecs import BloscCodec, Crc32cCodec, TransposeCodec, ZstdCodec

    bitshuffle = BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle", typesize=1)
    return {
        # bool entries, one byte each, compressed as they are.
        "bool+zstd": dict(
            dtype="bool", filters=[], compressors=[ZstdCodec(level=5), Crc32cCodec()]
        ),
        # bit-shuffled along examples: the same bits as packing along examples.
        "bool+bitshuffle": dict(dtype="bool", filters=[], compressors=[bitshuffle, Crc32cCodec()]),
        # examples outermost, checkpoints innermost, then bit-shuffled: the store's choice.
        "bool+transpose+bitshuffle": dict(
            dtype="bool",
            filters=[TransposeCodec(order=(2, 0, 1))],
            compressors=[bitshuffle, Crc32cCodec()],
        ),
        # bits packed along examples by the writer (numpy.packbits), uint8 stored with zstd.
        # packed along examples, then examples outermost and bit-shuffled: each example's bits
        # across networks and checkpoints meet in one bit plane, and reads move 1 bit per entry.
        "packed-examples+transpose+bitshuffle": dict(
            dtype="uint8",
            packed=True,
            filters=[TransposeCodec(order=(2, 0, 1))],
            compressors=[bitshuffle, Crc32cCodec()],
        ),
        "packed-examples+zstd": dict(
            dtype="uint8", packed=True, filters=[], compressors=[ZstdCodec(level=5), Crc32cCodec()]
        ),
    }


def measure(name, config, tensor, checkpoint_block, network_block, repeat):
    import zarr

    config = dict(config)
    packed = config.pop("packed", False)
    data = np.packbits(tensor, axis=2, bitorder="little") if packed else tensor
    networks, checkpoints, width = data.shape
    folder = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        array = zarr.create_array(
            folder / "a.zarr",
            shape=data.shape,
            chunks=(network_block, checkpoint_block, width),
            fill_value=0 if packed else False,
            **config,
        )
        start = time.perf_counter()
        for t in range(checkpoints):  # as training writes: one checkpoint at a time
            array[:, t, :] = data[:, t, :]
        write = time.perf_counter() - start
        stored = sum(f.stat().st_size for f in (folder / "a.zarr").rglob("c/**/*") if f.is_file())
        read, back = best_of(repeat, lambda: zarr.open_array(folder / "a.zarr")[:])
        if packed:
            back = np.unpackbits(back, axis=2, count=tensor.shape[2], bitorder="little")
        assert np.array_equal(back.astype(bool), tensor), name
    finally:
        shutil.rmtree(folder)
    return stored, write, read


def best_of(repeat, compute):
    """The fastest of ``repeat`` runs of ``compute()``, in seconds, and its result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = compute()
        best = min(best, time.perf_counter() - start)
    return best, result


def engine_path(tensors, repeat):
    """Write each tensor through the engine's writer (one checkpoint at a time, as training does)
    and read it back through the engine's dask arrays on one thread."""
    import dask

    import engine

    entries = stored = write = read_packed = read_bool = 0.0
    for name, tensor in tensors:
        networks, checkpoints, examples = tensor.shape
        folder = Path(tempfile.mkdtemp(prefix="bench-engine-"))
        try:
            writer = engine.create_population(
                folder / "p.zarr",
                dataset_name=name,
                splits={"s": engine.SplitSpec(labels=np.zeros(examples, int), predictions=False)},
                groups=[engine.GroupSpec("g", "real", networks)],
                checkpoint_epochs=np.arange(checkpoints),
            )
            start = time.perf_counter()
            for t in range(checkpoints):
                writer.record("s", t, (0, networks), correct=tensor[:, t])
                writer.mark_checkpoint(t, (0, networks))
            write += time.perf_counter() - start
            population = engine.open_population(folder / "p.zarr")
            stored += population.stored_bytes("splits/s/correct_packed")
            with dask.config.set(scheduler="synchronous"):
                seconds, packed = best_of(repeat, population.correct_packed("s").compute)
                read_packed += seconds
                seconds, back = best_of(repeat, population.correct("s").compute)
                read_bool += seconds
            assert packed.shape[2] == -(-examples // 8)
            assert np.array_equal(back, tensor), name
            entries += tensor.size
        finally:
            shutil.rmtree(folder)
    return {
        "encoding": "engine (writer + dask reader, defaults)",
        "bits_per_entry": round(8 * stored / entries, 4),
        "write_entries_per_s": float(f"{entries / write:.3g}"),
        "read_packed_entries_per_s": float(f"{entries / read_packed:.3g}"),
        "read_bool_entries_per_s": float(f"{entries / read_bool:.3g}"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="measure a trained store's correctness instead")
    parser.add_argument("--split", default="train")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--network-block", type=int, default=32)
    parser.add_argument("--checkpoint-blocks", default="1,4,16,32")
    parser.add_argument("--encodings", help="comma list of candidate names (default: all)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a tiny simulated population, timed once: a test that every step runs",
    )
    parser.add_argument(
        "--soft",
        metavar="LOGITS.npz",
        help="measure the soft-verdict encodings on these logits (benchmarks/soft_logits.py)",
    )
    parser.add_argument(
        "--soft-splits", default="test,train", help="with --soft: splits of the npz to use"
    )
    parser.add_argument(
        "--soft-quantisers", help="with --soft: comma list of quantiser names (default: all)"
    )
    parser.add_argument(
        "--soft-compressors", help="with --soft: comma list of compressor names (default: all)"
    )
    args = parser.parse_args()
    if args.soft:
        run_soft(args)
        return
    smoke_folder = None
    if args.smoke:
        parser.set_defaults(repeat=1, checkpoint_blocks="1,4")
        args = parser.parse_args()
        if not args.store:
            from engine.testing import simulate_population

            smoke_folder = Path(tempfile.mkdtemp(prefix="bench-store-smoke-"))
            args.store = str(smoke_folder / "smoke.zarr")
            simulate_population(
                args.store, networks=40, checkpoints=6, splits={args.split: 300}, seed=0
            )
    try:
        run(args)
    finally:
        if smoke_folder is not None:
            shutil.rmtree(smoke_folder, ignore_errors=True)


def run(args) -> None:
    """Measure every chosen candidate, then the engine's writer and reader, and print them."""
    import numcodecs
    import zarr

    numcodecs.blosc.set_nthreads(1)
    zarr.config.set({"async.concurrency": 1, "threading.max_workers": 1})
    tensors = real_tensors(args.store, args.split)
    entries = sum(t.size for _, t in tensors)
    print(f"tensors: {[(n, t.shape) for n, t in tensors]}  entries: {entries:.3g}")
    rows = []
    blocks = [int(b) for b in args.checkpoint_blocks.split(",")]
    chosen = args.encodings.split(",") if args.encodings else None
    for name, config in candidates().items():
        if chosen and name not in chosen:
            continue
        for block in blocks:
            stored = write = read = 0.0
            for _, tensor in tensors:
                s, w, r = measure(name, config, tensor, block, args.network_block, args.repeat)
                stored, write, read = stored + s, write + w, read + r
            row = {
                "encoding": name,
                "checkpoint_block": block,
                "network_block": args.network_block,
                "bits_per_entry": round(8 * stored / entries, 4),
                "write_entries_per_s": float(f"{entries / write:.3g}"),
                "read_entries_per_s": float(f"{entries / read:.3g}"),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if not chosen or "engine" in chosen:
        row = engine_path(tensors, args.repeat)
        print(json.dumps(row), flush=True)
    print(f"\n{'encoding':28s} {'t-block':>7s} {'bits/entry':>10s} {'write/s':>9s} {'read/s':>9s}")
    for row in rows:
        print(
            f"{row['encoding']:28s} {row['checkpoint_block']:7d} {row['bits_per_entry']:10.3f} "
            f"{row['write_entries_per_s']:9.3g} {row['read_entries_per_s']:9.3g}"
        )


# ----------------------------------------------------------------------------------------------
# Soft verdicts (--soft): encodings of the true-class probability and of the margin

#: Chunks of the soft arrays, as of the verdicts: networks, checkpoints and examples per chunk
#: (checkpoints and examples capped at the array's).
SOFT_NETWORK_BLOCK = 32
SOFT_CHECKPOINT_BLOCK = 16
SOFT_EXAMPLE_BLOCK = 65536


def soft_verdicts(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact (float64) true-class log-probability and margin of every entry.

    Parameters
    ----------
    logits : ndarray of float32, dims (networks, checkpoints, examples, classes)
    labels : ndarray of int, dims (examples,)

    Returns
    -------
    log_probability, margin : ndarray of float64, dims (networks, checkpoints, examples)
    """
    networks, checkpoints, examples, _ = logits.shape
    rows = np.arange(examples)
    log_probability = np.empty((networks, checkpoints, examples))
    margin = np.empty_like(log_probability)
    for t in range(checkpoints):
        z = logits[:, t].astype(np.float64)  # (networks, examples, classes)
        true = z[:, rows, labels]
        top = z.max(axis=2)
        log_probability[:, t] = true - top - np.log(np.exp(z - top[..., None]).sum(axis=2))
        z[:, rows, labels] = -np.inf
        margin[:, t] = true - z.max(axis=2)
    return log_probability, margin


@dataclass(frozen=True)
class Quantiser:
    """One encoding of a soft array's values as stored codes.

    Attributes
    ----------
    name : str
    array : str
        ``probability`` (values in [0, 1]) or ``margin`` (any real).
    dtype : str
        Stored dtype.
    fill : int or float
        The "not recorded" sentinel, the array's fill value; never a code of a value.
    scale : float
        Codes per unit: a value v is stored as ``round(scale * v)``, clipped to ``[-limit,
        limit]`` (margins) or ``[0, limit]`` (probabilities), and read back as ``code / scale``;
        0 stores the value as it is (float16).
    limit : int
    required : bool
        One of the candidates the issue names (the others were added after measuring them);
        a required one is measured with every compressor, another with
        :data:`SOFT_EXTRA_COMPRESSORS`.
    """

    name: str
    array: str
    dtype: str
    fill: int | float
    scale: float = 0.0
    limit: int = 0
    required: bool = True

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Codes of values (``numpy.rint``: to the nearest, ties to even)."""
        if not self.scale:
            return values.astype(self.dtype)
        low = -self.limit if self.array == "margin" else 0
        return np.clip(np.rint(values * self.scale), low, self.limit).astype(self.dtype)

    def decode(self, codes: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Values of stored codes; NaN where the sentinel says "not recorded"."""
        values = codes.astype(dtype)
        if self.scale:
            values[codes == self.fill] = np.nan
            values /= dtype(self.scale)
        return values

    @property
    def floor(self) -> float:
        """The probability a loss -log p is clamped at: the largest one stored as code 0 (half
        a step), or float16's smallest subnormal."""
        return 0.5 / self.scale if self.scale else float(np.finfo(np.float16).smallest_subnormal)

    @property
    def clip(self) -> float:
        """The largest |value| a code holds (inf for float16)."""
        return self.limit / self.scale if self.scale else float("inf")


SOFT_QUANTISERS = (
    # The candidates the issue names.
    Quantiser("p uint8 254p", "probability", "uint8", 255, 254, 254),
    Quantiser("p uint16 4094p", "probability", "uint16", 4095, 4094, 4094),
    Quantiser("p float16", "probability", "float16", float("nan")),
    Quantiser("m int8 8m", "margin", "int8", -128, 8, 127),
    Quantiser("m int8 4m", "margin", "int8", -128, 4, 127),
    Quantiser("m float16", "margin", "float16", float("nan")),
    # Coarser codes, added because the named ones cost twice the target: the probability in
    # steps of 1/100 to 1/20 (sentinel 255), the margin in steps of 1/2 to 2 (sentinel -128).
    Quantiser("p uint8 100p", "probability", "uint8", 255, 100, 100, required=False),
    Quantiser("p uint8 50p", "probability", "uint8", 255, 50, 50, required=False),
    Quantiser("p uint8 32p", "probability", "uint8", 255, 32, 32, required=False),
    Quantiser("p uint8 20p", "probability", "uint8", 255, 20, 20, required=False),
    Quantiser("m int8 2m", "margin", "int8", -128, 2, 127, required=False),
    Quantiser("m int8 1m", "margin", "int8", -128, 1, 127, required=False),
    Quantiser("m int8 m/2", "margin", "int8", -128, 0.5, 127, required=False),
)

#: The compressors the added quantisers are measured with (the named ones get every one).
SOFT_EXTRA_COMPRESSORS = (
    "blosc-zstd1-bitshuffle",
    "blosc-zstd3-bitshuffle",
    "blosc-zstd9-bitshuffle",
    "blosc-zstd1-noshuffle",
    "zstd3",
)

#: The encoding chosen for store format v2 (benchmarks/RESULTS.md): quantiser and compressor of
#: the probability and of the margin.
SOFT_CHOICE = {
    "probability": ("p uint8 32p", "blosc-zstd1-bitshuffle"),
    "margin": ("m int8 1m", "blosc-zstd1-bitshuffle"),
}


def soft_compressors() -> dict[str, Callable[[int], list]]:
    """Compressor chains by name, each a function of the stored dtype's size; every chain ends
    with crc32c, as every array of the store does. ``blosc-zstd9-bitshuffle`` is an extra (the
    others are the issue's candidates)."""
    from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

    def blosc(level: int, shuffle: str) -> Callable[[int], list]:
        return lambda size: [
            BloscCodec(cname="zstd", clevel=level, shuffle=shuffle, typesize=size),
            Crc32cCodec(),
        ]

    chains = {
        f"blosc-zstd{level}-{shuffle}": blosc(level, shuffle)
        for shuffle in ("bitshuffle", "shuffle", "noshuffle")
        for level in (1, 3)
    }
    chains["zstd3"] = lambda size: [ZstdCodec(level=3), Crc32cCodec()]
    chains["blosc-zstd9-bitshuffle"] = blosc(9, "bitshuffle")
    return chains


def soft_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Chunks of a (networks, checkpoints, examples[, classes]) soft array."""
    networks, checkpoints, examples = shape[:3]
    return (
        SOFT_NETWORK_BLOCK,
        min(SOFT_CHECKPOINT_BLOCK, checkpoints),
        min(SOFT_EXAMPLE_BLOCK, examples),
        *shape[3:],
    )


def soft_array(folder: Path, name: str, shape, dtype: str, fill, compressors: list):
    """A fresh zarr array in the store's layout: chunks of 32 networks x 16 checkpoints x all
    examples, stored order (examples, networks, checkpoints[, classes])."""
    import zarr
    from zarr.codecs import TransposeCodec

    order = (2, 0, 1, *range(3, len(shape)))
    dims = ("networks", "checkpoints", "examples", "classes")[: len(shape)]
    return zarr.create_array(
        folder / name,
        shape=shape,
        chunks=soft_chunks(shape),
        dtype=dtype,
        fill_value=fill,
        filters=[TransposeCodec(order=order)],
        compressors=compressors,
        dimension_names=dims,
        overwrite=True,
    )


def chunk_bytes(path: Path) -> int:
    """Stored bytes of an array's chunks (metadata left out)."""
    return sum(f.stat().st_size for f in (path / "c").rglob("*") if f.is_file())


def measure_soft_encoding(values, quantiser, compressors, repeat, folder):
    """Bytes, encode, record and decode seconds of one quantiser and compressor on one split.

    encode: quantise everything and write it in one assignment; record: quantise and write one
    checkpoint at a time, as training records (each checkpoint rewrites its chunks); decode: read
    the whole array and turn the codes back into float32 values. Checks the values read back.
    """
    import zarr

    codes = quantiser.encode(values)
    size = np.dtype(quantiser.dtype).itemsize
    fill = quantiser.fill

    def encode():
        array = soft_array(folder, "e.zarr", values.shape, quantiser.dtype, fill, compressors(size))
        array[:] = quantiser.encode(values)
        return array

    def record():
        array = soft_array(folder, "r.zarr", values.shape, quantiser.dtype, fill, compressors(size))
        for t in range(values.shape[1]):
            array[:, t, :] = quantiser.encode(values[:, t])

    encode_s, _ = best_of(repeat, encode)
    stored = chunk_bytes(folder / "e.zarr")
    record_s, _ = best_of(repeat, record)
    assert chunk_bytes(folder / "r.zarr") == stored, quantiser.name
    decode_s, back = best_of(
        repeat, lambda: quantiser.decode(zarr.open_array(folder / "e.zarr")[:], np.float32)
    )
    assert np.array_equal(back, quantiser.decode(codes, np.float32), equal_nan=True)
    for name in ("e.zarr", "r.zarr"):
        shutil.rmtree(folder / name)
    return stored, encode_s, record_s, decode_s


def soft_errors(quantiser, splits) -> dict:
    """Quantisation errors of one quantiser over every split: of the entries, and of the
    per-(network, example) measures over checkpoints built on them.

    probability: confidence (mean p), variability (standard deviation of p), mean loss
    (-log p, the decoded p clamped at :attr:`Quantiser.floor`; against the exact loss).
    margin: area under the margin (mean margin): its error, the share of (network, example)
    whose sign flips, the Spearman correlation of the population's per-example mean AUM, and
    the share of the examples with the lowest 5% AUM that stay there (the population's; each
    network's, averaged), as a flagging of mislabelled examples would take them.
    """
    from scipy.stats import spearmanr

    entries = error_sum = 0.0
    error_max = inside_max = clipped = 0.0
    measures: dict[str, list] = {}
    for _, log_probability, margin in splits:
        exact = np.exp(log_probability) if quantiser.array == "probability" else margin
        decoded = quantiser.decode(quantiser.encode(exact))
        assert not np.isnan(decoded).any(), quantiser.name  # no value meets the sentinel
        error = np.abs(decoded - exact)
        entries += error.size
        error_sum += error.sum()
        error_max = max(error_max, float(error.max()))
        inside = np.abs(exact) <= quantiser.clip
        clipped += (~inside).sum()
        inside_max = max(inside_max, float(error[inside].max()))
        pairs = {
            "exact_mean": exact.mean(axis=1),
            "decoded_mean": decoded.mean(axis=1),
        }
        if quantiser.array == "probability":
            pairs["exact_std"] = exact.std(axis=1)
            pairs["decoded_std"] = decoded.std(axis=1)
            pairs["exact_loss"] = -log_probability.mean(axis=1)
            pairs["decoded_loss"] = -np.log(np.maximum(decoded, quantiser.floor)).mean(axis=1)
        else:
            pairs["exact_population_aum"] = margin.mean(axis=(0, 1))
            pairs["decoded_population_aum"] = decoded.mean(axis=(0, 1))
            # The examples a network's AUM flags (its lowest 5%): how many stay flagged.
            low = max(1, margin.shape[2] // 20)
            kept = [
                np.intersect1d(np.argsort(e)[:low], np.argsort(d)[:low]).size / low
                for e, d in zip(exact.mean(axis=1), decoded.mean(axis=1), strict=True)
            ]
            pairs["network_bottom5_kept"] = np.array(kept)
        for key, value in pairs.items():
            measures.setdefault(key, []).append(value.ravel())
    m = {key: np.concatenate(value) for key, value in measures.items()}
    row = {
        "quantiser": quantiser.name,
        "array": quantiser.array,
        "entry_max_error": float(f"{error_max:.3g}"),
        "entry_mean_error": float(f"{error_sum / entries:.3g}"),
    }
    if quantiser.array == "probability":
        row["confidence_max_error"] = float(
            f"{np.abs(m['decoded_mean'] - m['exact_mean']).max():.3g}"
        )
        row["variability_max_error"] = float(
            f"{np.abs(m['decoded_std'] - m['exact_std']).max():.3g}"
        )
        loss_error = np.abs(m["decoded_loss"] - m["exact_loss"])
        row["loss_floor"] = float(f"{quantiser.floor:.3g}")
        row["loss_max_error"] = float(f"{loss_error.max():.3g}")
        row["loss_mean_error"] = float(f"{loss_error.mean():.3g}")
    else:
        aum_error = np.abs(m["decoded_mean"] - m["exact_mean"])
        flips = np.sign(m["decoded_mean"]) != np.sign(m["exact_mean"])
        rho = spearmanr(m["decoded_population_aum"], m["exact_population_aum"]).statistic
        row["clip"] = quantiser.clip
        row["clipped_share"] = float(f"{clipped / entries:.3g}")
        row["entry_max_error_unclipped"] = float(f"{inside_max:.3g}")
        row["aum_max_error"] = float(f"{aum_error.max():.3g}")
        row["aum_mean_error"] = float(f"{aum_error.mean():.3g}")
        row["aum_sign_flip_share"] = float(f"{flips.mean():.3g}")
        row["aum_sign_flip_largest_exact"] = float(
            f"{np.abs(m['exact_mean'][flips]).max() if flips.any() else 0.0:.3g}"
        )
        row["population_aum_spearman"] = float(f"{rho:.6f}")
        low = max(1, m["exact_population_aum"].size // 20)
        kept = np.intersect1d(
            np.argsort(m["exact_population_aum"])[:low],
            np.argsort(m["decoded_population_aum"])[:low],
        )
        row["population_aum_bottom5_kept"] = float(f"{kept.size / low:.4f}")
        row["network_aum_bottom5_kept"] = float(f"{m['network_bottom5_kept'].mean():.4f}")
    return row


def logit_vector_bits(logits_by_split, compressors, folder) -> float:
    """Bits per (network, checkpoint, example) of the whole float16 logit vector, stored in the
    same layout with classes innermost."""
    stored = entries = 0
    for logits in logits_by_split:
        array = soft_array(folder, "l.zarr", logits.shape, "float16", float("nan"), compressors(2))
        array[:] = logits.astype(np.float16)
        stored += chunk_bytes(folder / "l.zarr")
        entries += logits.size // logits.shape[3]
        shutil.rmtree(folder / "l.zarr")
    return 8 * stored / entries


def pair_loss_errors(probability: Quantiser, margin: Quantiser, splits) -> dict:
    """Error of the mean loss per (network, example) when a probability stored as code 0 (below
    :attr:`Quantiser.floor`) takes its loss from the margin instead: -log p >= softplus(-m)
    always (p <= sigmoid(m)), so the loss is max(-log floor, softplus(-m)) there."""
    errors = []
    for _, log_probability, exact_margin in splits:
        p = probability.decode(probability.encode(np.exp(log_probability)))
        m = margin.decode(margin.encode(exact_margin))
        below = -np.log(probability.floor)
        loss = np.where(
            p > 0,
            -np.log(np.maximum(p, probability.floor)),
            np.maximum(below, np.logaddexp(0.0, -m)),
        )
        errors.append(np.abs(loss.mean(axis=1) - (-log_probability.mean(axis=1))).ravel())
    error = np.concatenate(errors)
    return {
        "loss_max_error": float(f"{error.max():.3g}"),
        "loss_mean_error": float(f"{error.mean():.3g}"),
    }


def run_soft(args) -> None:
    """Measure every soft quantiser with its compressors on real logits, and print them."""
    import numcodecs
    import zarr

    numcodecs.blosc.set_nthreads(1)
    zarr.config.set({"async.concurrency": 1, "threading.max_workers": 1})
    data = np.load(args.soft)
    splits = []
    for split in args.soft_splits.split(","):
        log_probability, margin = soft_verdicts(data[f"{split}_logits"], data[f"{split}_labels"])
        splits.append((split, log_probability, margin))
    entries = sum(s[1].size for s in splits)
    print(f"soft arrays: {[(s[0], s[1].shape) for s in splits]}  entries: {entries:.3g}")
    wanted = args.soft_quantisers.split(",") if args.soft_quantisers else None
    quantisers = [q for q in SOFT_QUANTISERS if not wanted or q.name in wanted]
    chains = soft_compressors()
    if args.soft_compressors:
        chains = {k: v for k, v in chains.items() if k in args.soft_compressors.split(",")}
    errors = {}
    for quantiser in quantisers:
        errors[quantiser.name] = soft_errors(quantiser, splits)
        print(json.dumps(errors[quantiser.name]), flush=True)
    rows = []
    folder = Path(tempfile.mkdtemp(prefix="bench-soft-"))
    try:
        for quantiser in quantisers:
            for name, chain in chains.items():
                if not quantiser.required and name not in SOFT_EXTRA_COMPRESSORS:
                    continue
                stored = encode = record = decode = 0.0
                for _, log_probability, margin in splits:
                    values = np.exp(log_probability) if quantiser.array == "probability" else margin
                    s, e, r, d = measure_soft_encoding(
                        values, quantiser, chain, args.repeat, folder
                    )
                    stored, encode, record, decode = stored + s, encode + e, record + r, decode + d
                row = {
                    "quantiser": quantiser.name,
                    "compressor": name,
                    "bits_per_entry": round(8 * stored / entries, 3),
                    "encode_entries_per_s": float(f"{entries / encode:.3g}"),
                    "record_entries_per_s": float(f"{entries / record:.3g}"),
                    "decode_entries_per_s": float(f"{entries / decode:.3g}"),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
        best = {
            q.name: min(
                (r for r in rows if r["quantiser"] == q.name), key=lambda r: r["bits_per_entry"]
            )
            for q in quantisers
        }
        vector_chains = {SOFT_CHOICE["probability"][1]}
        if "p float16" in best:
            vector_chains.add(best["p float16"]["compressor"])
        logits = [data[f"{split}_logits"] for split, _, _ in splits]
        vector = {}
        for name in sorted(vector_chains & set(chains)):
            vector[name] = round(logit_vector_bits(logits, chains[name], folder), 3)
            print(json.dumps({"logit_vector_float16": name, "bits_per_entry": vector[name]}))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print_soft_tables(quantisers, chains, rows, errors, best, vector, splits)


def print_soft_tables(quantisers, chains, rows, errors, best, vector, splits) -> None:
    """Bits by quantiser and compressor, speeds, errors, the pairs' costs and the choice."""
    by = {(r["quantiser"], r["compressor"]): r for r in rows}
    print("\nbits per entry")
    print(f"{'quantiser':15s} " + " ".join(f"{name:>22s}" for name in chains))
    for q in quantisers:
        cells = [
            f"{by[q.name, name]['bits_per_entry']:22.3f}" if (q.name, name) in by else " " * 22
            for name in chains
        ]
        print(f"{q.name:15s} {' '.join(cells)}")
    print(
        f"\n{'quantiser':15s} {'compressor':24s} {'bits':>6s} {'encode/s':>9s} "
        f"{'record/s':>9s} {'decode/s':>9s}"
    )
    for r in rows:
        print(
            f"{r['quantiser']:15s} {r['compressor']:24s} {r['bits_per_entry']:6.3f} "
            f"{r['encode_entries_per_s']:9.3g} {r['record_entries_per_s']:9.3g} "
            f"{r['decode_entries_per_s']:9.3g}"
        )
    print("\nerrors")
    for q in quantisers:
        print(json.dumps(errors[q.name]))
    named = {q.name: q for q in quantisers}
    print("\nprobability + margin, each with its smallest compressor; mean loss with the margin")
    print("taking over where the probability is code 0")
    for p in (q for q in quantisers if q.array == "probability" and q.scale):
        for m in (q for q in quantisers if q.array == "margin"):
            bits = best[p.name]["bits_per_entry"] + best[m.name]["bits_per_entry"]
            loss = pair_loss_errors(p, m, splits)
            print(
                f"{p.name:15s} ({best[p.name]['compressor']}) + {m.name:10s} "
                f"({best[m.name]['compressor']}): {bits:.3f} bits; loss error max "
                f"{loss['loss_max_error']}, mean {loss['loss_mean_error']}"
            )
    if "p float16" in best:
        r = best["p float16"]
        print(f"float16 probability alone ({r['compressor']}): {r['bits_per_entry']:.3f} (raw 16)")
    for name, bits in vector.items():
        print(f"10-class float16 logit vector ({name}): {bits:.3f} bits per entry (raw 160)")
    chosen = {array: by.get(choice) for array, choice in SOFT_CHOICE.items()}
    if all(chosen.values()):
        p_row, m_row = chosen["probability"], chosen["margin"]
        total = p_row["bits_per_entry"] + m_row["bits_per_entry"]
        loss = pair_loss_errors(named[p_row["quantiser"]], named[m_row["quantiser"]], splits)
        print(
            json.dumps(
                {
                    "choice": SOFT_CHOICE,
                    "bits_per_entry": round(total, 3),
                    "probability": p_row,
                    "margin": m_row,
                    "probability_errors": errors[p_row["quantiser"]],
                    "margin_errors": errors[m_row["quantiser"]],
                    "loss_with_margin_fallback": loss,
                }
            )
        )


if __name__ == "__main__":
    main()

"""Choose the encoding of the verdict arrays: bits per stored entry, write and read throughput.

Candidates are encodings of one (networks, checkpoints, examples) correctness tensor, written the
way training writes (one checkpoint at a time, each rewriting its chunk) and read whole. The tensor
is real: the MNIST-1D populations in ../shared/data (or a trained store given with --store).

    python benchmarks/bench_store.py [--store pop.zarr --split train] [--repeat 3] [--smoke]

Prints a table and one JSON line per candidate. Throughputs count logical entries (one verdict of
one network at one checkpoint on one example) per second, on one thread (zarr's and blosc's
thread pools are held to one), so they are per core.

``--smoke`` measures every candidate and the engine on a tiny simulated population (40 networks x
6 checkpoints x 300 examples, engine.testing), checkpoint blocks 1 and 4, timed once: a test that
every step runs, for tests/test_benchmarks.py; flags given with it still win.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()

"""Benchmark of pairwise agreement: the engine against one float32 matrix product C C^T.

Prints one JSON object. For N networks and X examples of a synthetic store (random but correlated
verdicts, written with engine.create_population in a child process):

- ``engine_matrix_s``: ``pairwise_report`` with no bootstrap and no figures: read the store, count
  every tile, write both_correct (uint16) and kappa (float32) to pairwise.zarr, both whole N x N
  matrices (agreement is derived on read, see docs/pairwise.md);
- ``engine_report_s``: the same with the default 200 bootstrap replicates and the figures
  (``--report``);
- ``kernel_s``: the bare kernels on the in-memory verdicts (pack, tiles on dask threads, agree);
- ``numpy_s``: the best NumPy formulation, float32 C @ C.T and agree = X - c_i - c_j + 2 B,
  measured in the same run (best of ``--repeat``), with the BLAS that threadpoolctl reports;
- with ``--device cuda``: the engine on the GPU and a plain torch float32 product on the GPU.

Checks that every formulation gives the same co-correct counts. Run it with
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`` where those are set (they slow a current numpy).
``--smoke`` runs every step (the report included) on 40 networks x 300 examples, timed once, for
tests/test_benchmarks.py; flags given with it still win.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def _make_store(
    path: str, networks: int, examples: int, seed: int, checkpoint_block: int | None
) -> None:
    from engine.testing import simulate_population

    simulate_population(
        path,
        networks=networks,
        checkpoints=1,
        splits={"test": examples},
        seed=seed,
        checkpoint_block=checkpoint_block or 16,
    )


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def kernel_matrix(correct: np.ndarray, block: int = 512):
    """Co-correct and agreement counts of every pair with the bare kernels on dask threads."""
    import dask

    from kernels.pairwise import agreement_and_kappa, co_correct_counts, pack_bits

    num_networks, num_examples = correct.shape
    bounds = list(range(0, num_networks, block)) + [num_networks]
    slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    packed = [dask.delayed(pack_bits)(correct[s]) for s in slices]
    counts = np.zeros(num_networks, np.int64)
    both = np.empty((num_networks, num_networks), np.int32)
    agree = np.empty((num_networks, num_networks), np.int32)
    packed = dask.compute(*packed)
    for s, p in zip(slices, packed, strict=True):
        counts[s] = np.bitwise_count(p).sum(axis=1)

    def tile(i, j):
        b = co_correct_counts(packed[i], packed[j])
        a, _ = agreement_and_kappa(b, counts[slices[i]], counts[slices[j]], num_examples)
        both[slices[i], slices[j]] = b
        agree[slices[i], slices[j]] = a
        if i != j:
            both[slices[j], slices[i]] = b.T
            agree[slices[j], slices[i]] = a.T

    dask.compute(
        *[dask.delayed(tile)(i, j) for i in range(len(slices)) for j in range(i, len(slices))]
    )
    return both, agree


def numpy_matrix(correct: np.ndarray):
    """The NumPy formulation: one float32 product (exact for counts below 2^24)."""
    as_float = correct.astype(np.float32)
    both = as_float @ as_float.T
    counts = as_float.sum(axis=1)
    agree = correct.shape[1] - counts[:, None] - counts[None, :] + 2 * both
    return both.astype(np.int32), agree.astype(np.int32)


def _best(function, repeat: int):
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=2000)
    parser.add_argument("--examples", type=int, default=10000)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--block", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--report",
        action="store_true",
        help="also time the full report (200 bootstrap replicates, figures)",
    )
    parser.add_argument("--no-numpy", action="store_true", help="skip the NumPy baseline")
    parser.add_argument("--no-kernel", action="store_true", help="skip the bare kernel timing")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--checkpoint-block",
        type=int,
        default=None,
        help="checkpoints per store chunk; default 1 (the store holds one "
        "checkpoint); 16 is a trained store's default chunking",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="40 networks x 300 examples, timed once, with --report: a test that every step runs",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        parser.set_defaults(networks=40, examples=300, repeat=1, report=True)
        args = parser.parse_args(argv)

    import dask
    import threadpoolctl

    from engine.pairwise import pairwise_report
    from engine.store import open_population
    from kernels.pairwise import (
        agreement_and_kappa,
        co_correct_counts,
        pack_bits,
        tile_statistics,
    )

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-pairwise-"))
    store = workdir / "population.zarr"
    if store.exists():
        shutil.rmtree(store)
    start = time.perf_counter()
    # A child process writes the store, so that this process's peak memory is the engine's.
    child = multiprocessing.get_context("spawn").Process(
        target=_make_store,
        args=(str(store), args.networks, args.examples, args.seed, args.checkpoint_block),
    )
    child.start()
    child.join()
    if child.exitcode:
        raise SystemExit(f"writing the synthetic store failed ({child.exitcode})")
    store_s = time.perf_counter() - start

    # Warm up numba on small inputs.
    warm = np.ones((4, 130), bool)
    packed = pack_bits(warm)
    agreement_and_kappa(co_correct_counts(packed, packed), np.full(4, 130), np.full(4, 130), 130)
    tile_statistics(
        co_correct_counts(packed, packed),
        np.zeros((0, 0), np.int32),
        np.full(4, 130),
        np.full(4, 130),
        130,
        np.zeros(4, np.int64),
        np.zeros(4, np.int64),
        1,
        1,
        True,
        True,
        10,
        np.empty((4, 4), np.float32),
        np.empty((4, 4), np.uint16),
        np.zeros((0, 0), np.uint16),
    )

    population = open_population(store)
    pairs = args.networks * (args.networks - 1) / 2
    comparisons = pairs * args.examples
    result: dict = {
        "networks": args.networks,
        "examples": args.examples,
        "device": args.device,
        "store_chunks": list(population.array("splits/test/correct_packed").chunks),
        "load_average": os.getloadavg(),
        "pairs": pairs,
        "example_comparisons": comparisons,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "store_write_s": round(store_s, 2),
        "blas": [
            {
                k: v
                for k, v in info.items()
                if k in ("internal_api", "version", "architecture", "num_threads")
            }
            for info in threadpoolctl.threadpool_info()
        ],
        "openblas_env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
    }

    out = workdir / "out"
    with dask.config.set(scheduler="threads"):
        engine_s, _ = _best(
            lambda: pairwise_report(
                population, out, device=args.device, block=args.block, bootstrap=0, figures=False
            ),
            args.repeat,
        )
    result["engine_matrix_s"] = round(engine_s, 4)
    result["engine_comparisons_per_s"] = comparisons / engine_s
    result["engine_peak_rss_mb"] = round(_peak_rss_mb(), 1)
    if args.report:
        with dask.config.set(scheduler="threads"):
            report_s, _ = _best(
                lambda: pairwise_report(population, out, device=args.device, block=args.block), 1
            )
        result["engine_report_s"] = round(report_s, 3)
        result["engine_report_peak_rss_mb"] = round(_peak_rss_mb(), 1)

    import zarr

    engine_both = zarr.open_group(str(out / "pairwise.zarr"), mode="r")[
        f"test/checkpoint_{population.num_checkpoints - 1}/both_correct"
    ]
    correct = population.correct("test")[:, -1, :].compute()
    reference_rows = slice(0, min(256, args.networks))
    check = engine_both[reference_rows, :]

    if not args.no_kernel:
        with dask.config.set(scheduler="threads"):
            kernel_s, (both, _) = _best(lambda: kernel_matrix(correct), args.repeat)
        result["kernel_s"] = round(kernel_s, 4)
        result["kernel_comparisons_per_s"] = comparisons / kernel_s
        result["kernel_equal_engine"] = bool(np.array_equal(both[reference_rows], check))
        del both
    if not args.no_numpy:
        numpy_s, (both, _) = _best(lambda: numpy_matrix(correct), args.repeat)
        result["numpy_s"] = round(numpy_s, 4)
        result["numpy_comparisons_per_s"] = comparisons / numpy_s
        result["numpy_equal_engine"] = bool(np.array_equal(both[reference_rows], check))
        result["engine_speedup_over_numpy"] = round(numpy_s / engine_s, 2)
        if "kernel_s" in result:
            result["kernel_speedup_over_numpy"] = round(numpy_s / result["kernel_s"], 2)
        del both
    if args.device == "cuda":
        import torch

        def torch_matrix():
            on_device = torch.from_numpy(correct).to("cuda").float()
            both = on_device @ on_device.T
            torch.cuda.synchronize()
            return both

        def torch_product_only(on_device):
            both = on_device @ on_device.T
            torch.cuda.synchronize()
            return both

        torch_matrix()
        torch_s, both = _best(torch_matrix, args.repeat)
        result["torch_fp32_with_transfer_s"] = round(torch_s, 4)
        on_device = torch.from_numpy(correct).to("cuda").float()
        product_s, both = _best(lambda: torch_product_only(on_device), args.repeat)
        result["torch_fp32_product_s"] = round(product_s, 4)
        result["torch_tf32_allowed"] = bool(torch.backends.cuda.matmul.allow_tf32)
        result["torch_equal_engine"] = bool(
            np.array_equal(both[reference_rows].round().int().cpu().numpy(), check)
        )
        result["gpu"] = torch.cuda.get_device_name()
        result["engine_speedup_over_torch_with_transfer"] = round(torch_s / engine_s, 2)
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

"""Every GPU check in one run, within a deadline, into one JSON file (driven by gpu_checks.sh).

Steps, most important first (each a child process with its own time limit, cut to what is left
of the deadline; a step that no longer fits is skipped and says so):

1. ``pytest_gpu``: the test suite's ``gpu`` tests;
2. ``train_mlp``: benchmarks/bench_train.py, 512 MLPs on MNIST-1D, the batched trainer against
   the one-network-at-a-time loop (16 networks timed, extrapolated) and the vmap ensemble,
   recording into memory and a Zarr store;
3. ``train_cnn``: 256 small CNNs on 32x32 RGB images (a synthetic, learnable set of 50,000
   train and 10,000 test images written here: the machine reaches no network), every split
   recorded at every epoch (60,000 images);
4. ``parity``: benchmarks/train_parity.py, the same seeds on CPU and GPU (target: at least 99%
   of final predictions agree);
5. ``pairwise``: benchmarks/bench_pairwise.py on CUDA, 10,000 networks x 60,000 examples;
6. ``train_mlp_bf16``: step 2 with bf16 autocast on both sides, no store.

The JSON holds each step's exit status, seconds and parsed result, and ``targets``: each
target of issue 16 with the figure measured and whether it was met (null where not measured).

``--cpu-smoke`` runs every step on the CPU at a tiny size (the tests run it in CI): a test that
the script works, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_images(path: Path, train: int, test: int, seed: int = 0) -> None:
    """A learnable 10-class set of 32x32 RGB images (uint8, channels last) as an npz file:
    each class a smooth random template, each image its class's template shifted by up to 4
    pixels, scaled and with noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(10, 8, 8, 3))
    templates = coarse.repeat(4, axis=1).repeat(4, axis=2)  # (10, 32, 32, 3), smooth
    arrays = {}
    for name, count in (("train", train), ("test", test)):
        labels = rng.integers(0, 10, count)
        images = np.empty((count, 32, 32, 3), np.uint8)
        for start in range(0, count, 5000):  # bounded memory
            stop = min(start + 5000, count)
            shift = rng.integers(-4, 5, (stop - start, 2))
            chunk = templates[labels[start:stop]]
            for row in range(stop - start):
                chunk[row] = np.roll(chunk[row], tuple(shift[row]), axis=(0, 1))
            chunk = chunk * rng.uniform(0.6, 1.4, (stop - start, 1, 1, 1))
            chunk = chunk + rng.normal(scale=1.0, size=chunk.shape)
            images[start:stop] = np.clip(chunk * 40 + 128, 0, 255).astype(np.uint8)
        arrays[f"x_{name}"], arrays[f"y_{name}"] = images, labels
    np.savez(path, **arrays)


def _text(output) -> str:
    """What a timed-out child printed (bytes, even with ``text=True``, or None)."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def last_json(stdout: str):
    """The last JSON object a step printed (one line, or indented over several)."""
    lines = stdout.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith("{"):
            try:
                return json.loads("\n".join(lines[index:]))
            except json.JSONDecodeError:
                continue
    return None


def gpu_test_files() -> list[str]:
    """The test files that hold ``gpu`` tests. Why not the whole folder: collecting every file
    imports every optional extra installed on the GPU machine's image (lightning,
    transformers), tens of seconds of the step's limit for tests that ``-m gpu`` deselects."""
    tests = sorted((ROOT / "tests").glob("test_*.py"))
    return [str(path) for path in tests if "mark.gpu" in path.read_text(encoding="utf-8")]


def steps(args, work: Path) -> list[tuple[str, int, list[str]]]:
    """(name, seconds allowed, command) of every step, in order."""
    python = sys.executable
    bench = str(ROOT / "benchmarks")
    images, warm = work / "images.npz", work / "images-warm.npz"
    pytest = [python, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"]
    if args.cpu_smoke:
        # bench_train's own smoke test takes its other steps (store, CNNs, repeats).
        train_mlp = ["--smoke", "--device", "cpu", "--no-store", "--repeats", "1",
                     "--cnn-networks", "0"]  # fmt: skip
        cnn = ["--cnn-networks", "2", "--cnn-width", "4", "--epochs", "1", "--threads", "1"]
        return [
            # One test file: the step's mechanics (collecting every file takes minutes here).
            ("pytest_gpu", 300, [*pytest, str(ROOT / "tests" / "test_train.py")]),
            ("train_mlp", 300, [python, f"{bench}/bench_train.py", *train_mlp]),
            ("train_cnn", 300, [python, f"{bench}/bench_train.py", "--cnn-only", "--device", "cpu",
                                "--cnn-dataset", "npz", "--cnn-data-dir", str(images),
                                "--cnn-warm-data-dir", str(warm), *cnn]),
            ("parity", 300, [python, f"{bench}/train_parity.py", "--smoke"]),
            ("pairwise", 300, [python, f"{bench}/bench_pairwise.py", "--smoke", "--workdir",
                               str(work / "pairwise")]),
            ("train_mlp_bf16", 300, [python, f"{bench}/bench_train.py", *train_mlp,
                                     "--precision", "bf16", "--no-store"]),
        ]  # fmt: skip
    mlp = ["--dataset", "mnist1d", "--arch", "mlp", "--networks", "512", "--epochs", "5",
           "--device", "cuda", "--baseline-networks", "16", "--repeats", "1"]  # fmt: skip
    return [
        ("pytest_gpu", 100, [*pytest, *gpu_test_files()]),
        ("train_mlp", 100, [python, f"{bench}/bench_train.py", *mlp]),
        ("train_cnn", 120, [python, f"{bench}/bench_train.py", "--cnn-only", "--device", "cuda",
                            "--cnn-networks", "256", "--cnn-epochs", "1", "--cnn-dataset", "npz",
                            "--cnn-data-dir", str(images), "--cnn-warm-data-dir", str(warm)]),
        ("parity", 60, [python, f"{bench}/train_parity.py", "--devices", "cpu,cuda",
                        "--networks", "16", "--epochs", "3"]),
        ("pairwise", 90, [python, f"{bench}/bench_pairwise.py", "--networks", "10000",
                          "--examples", "60000", "--device", "cuda", "--repeat", "1",
                          "--no-kernel", "--no-numpy"]),
        ("train_mlp_bf16", 60, [python, f"{bench}/bench_train.py", *mlp, "--precision", "bf16",
                                "--no-store", "--no-vmap"]),
    ]  # fmt: skip


def targets(results: dict) -> dict:
    """Each target of issue 16: the figure measured (None where not) and whether it was met."""

    def figure(step: str, key: str):
        value = (results.get(step, {}).get("result") or {}).get(key)
        return value if isinstance(value, int | float) else None

    def check(value, bound, above: bool) -> dict:
        met = None if value is None else (value >= bound if above else value <= bound)
        return {"measured": value, "target": bound, "met": met}

    parity = results.get("parity", {}).get("result") or {}
    agreements = [parity[a]["final_agreement"] for a in ("mlp", "cnn") if a in parity]
    return {
        "mlp_512_over_loop": check(figure("train_mlp", "ratio"), 50, True),
        "mlp_512_over_vmap": check(figure("train_mlp", "ratio_vs_vmap"), 2, True),
        "cnn_256_seconds_per_network_epoch": check(
            figure("train_cnn", "cnn_seconds_per_network_epoch"), 0.3, False
        ),
        "pairwise_10000x60000_seconds": check(figure("pairwise", "engine_matrix_s"), 2, False),
        "parity_final_agreement": check(min(agreements) if agreements else None, 0.99, True),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "/tmp/gpu-out"))
    parser.add_argument(
        "--deadline",
        type=float,
        default=0,
        help="seconds for every step (0: 340 on the GPU, within the 6 minutes with the set-up; "
        "3,000 for --cpu-smoke)",
    )
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny, on the CPU (CI)")
    parser.add_argument("--only", default="", help="comma-separated steps to run (default all)")
    args = parser.parse_args(argv)
    args.deadline = args.deadline or (3000 if args.cpu_smoke else 340)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (environment.get("PYTHONPATH", ""), str(ROOT)) if p
    )
    environment.pop("PYTHONOPTIMIZE", None)
    report: dict = {
        "benchmark": "gpu_checks",
        "mode": "cpu-smoke" if args.cpu_smoke else "gpu",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "deadline_s": args.deadline,
        "steps": {},
    }
    try:
        import torch

        report["torch"] = torch.__version__
        if torch.cuda.is_available():
            report["gpu"] = torch.cuda.get_device_name()
    except ImportError:  # pragma: no cover - the engine needs torch
        pass
    with tempfile.TemporaryDirectory(prefix="gpu-checks-") as folder:
        work = Path(folder)
        sizes = ((120, 40), (60, 20)) if args.cpu_smoke else ((50_000, 10_000), (2_000, 500))
        write_images(work / "images.npz", *sizes[0])
        write_images(work / "images-warm.npz", *sizes[1], seed=1)
        chosen = set(filter(None, args.only.split(",")))
        for name, allowed, command in steps(args, work):
            if chosen and name not in chosen:
                continue
            left = args.deadline - (time.monotonic() - started)
            limit = min(allowed, left)
            if limit < 10:
                report["steps"][name] = {"skipped": f"{left:.0f} s of the deadline left"}
                continue
            step_started = time.monotonic()
            print(f"== {name} (up to {limit:.0f} s): {' '.join(command[1:])}", flush=True)
            try:
                done = subprocess.run(
                    command,
                    cwd=ROOT,
                    env=environment,
                    capture_output=True,
                    text=True,
                    timeout=limit,
                )
                rc, stdout, stderr = done.returncode, done.stdout, done.stderr
            except subprocess.TimeoutExpired as expired:
                rc, stdout, stderr = "timeout", _text(expired.stdout), _text(expired.stderr)
            (out / f"{name}.log").write_text(f"{stdout}\n--- stderr ---\n{stderr}")
            entry = {"rc": rc, "seconds": round(time.monotonic() - step_started, 1)}
            if name == "pytest_gpu":
                entry["summary"] = (stdout.strip().splitlines() or [""])[-1]
            else:
                entry["result"] = last_json(stdout)
            if rc != 0:
                entry["tail"] = (stdout + stderr)[-1500:]
            report["steps"][name] = entry
            print(json.dumps({name: {k: v for k, v in entry.items() if k != "result"}}), flush=True)
    report["targets"] = targets(report["steps"])
    report["seconds"] = round(time.monotonic() - started, 1)
    path = out / "gpu_checks.json"
    path.write_text(json.dumps(report, indent=1))
    print(json.dumps(report["targets"], indent=1))
    print(f"wrote {path}")
    failed = [n for n, e in report["steps"].items() if e.get("rc") not in (0, None)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

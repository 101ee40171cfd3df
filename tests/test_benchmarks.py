"""Every benchmark runs at its ``--smoke`` size, so that none of them can rot.

Each benchmark runs in a child process from the repository root, as it is run by hand, at a tiny
size that still takes every step: its baseline, its timings, its checks that the engine and the
baseline agree (plain ``assert`` statements, which is why ``PYTHONOPTIMIZE`` is cleared) and its
output. The tests then read what it printed. Only the speed of the numbers is left unchecked.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def run_benchmark(name: str, tmp: Path, *arguments: str) -> str:
    """Run ``benchmarks/<name>`` with ``arguments`` and its temporary files in ``tmp``; check it
    succeeds and return its stdout."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONOPTIMIZE"}
    environment.update(PYTHONUNBUFFERED="1", TMPDIR=str(tmp))
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, (
        f"{name} {' '.join(arguments)} exited {completed.returncode}\n"
        f"stdout:\n{completed.stdout[-4000:]}\nstderr:\n{completed.stderr[-4000:]}"
    )
    return completed.stdout


def json_lines(stdout: str) -> list:
    """Every line of ``stdout`` that is a JSON object or list, parsed."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith(("{", "["))]


def positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def non_negative(value) -> bool:
    """For numbers the benchmark rounds (a tiny run may round a ratio down to 0.0)."""
    return isinstance(value, int | float) and math.isfinite(value) and value >= 0


def test_bench_kernels_smoke(tmp_path):
    from tests.kernel_table import CASES

    rows = json.loads(run_benchmark("bench_kernels.py", tmp_path, "--smoke").splitlines()[-1])
    # A row is written only after its kernel and reference were checked equal.
    assert [row["kernel"] for row in rows] == [case.name for case in CASES]
    for row, case in zip(rows, CASES, strict=True):
        assert row["sizes"].keys() == case.bench_sizes.keys()
        assert all(row["sizes"][k] <= v for k, v in case.bench_sizes.items())
        assert row["sizes"] != case.bench_sizes  # the smoke size is cut
        for key in ("kernel_s", "entries_per_s", "reference_s_scaled", "speedup"):
            assert positive(row[key]), (case.name, key, row[key])


def test_bench_pairwise_smoke(tmp_path):
    stdout = run_benchmark("bench_pairwise.py", tmp_path, "--smoke", "--workdir", str(tmp_path))
    result = json.loads(stdout[stdout.index("{") :])
    assert (result["networks"], result["examples"], result["device"]) == (40, 300, "cpu")
    assert result["pairs"] == 40 * 39 / 2
    assert result["kernel_equal_engine"] is True
    assert result["numpy_equal_engine"] is True
    for key in (
        "engine_comparisons_per_s",
        "kernel_comparisons_per_s",
        "numpy_comparisons_per_s",
        "engine_peak_rss_mb",
        "engine_report_peak_rss_mb",
    ):
        assert positive(result[key]), (key, result[key])
    for key in (
        "store_write_s",
        "engine_matrix_s",
        "engine_report_s",
        "kernel_s",
        "numpy_s",
        "engine_speedup_over_numpy",
        "kernel_speedup_over_numpy",
    ):
        assert non_negative(result[key]), (key, result[key])
    assert isinstance(result["blas"], list)
    out = tmp_path / "out"
    assert (out / "pairwise.zarr").is_dir()
    assert (out / "pairwise.json").is_file()
    assert list(out.glob("*.png"))  # the --report run drew its figures


def test_bench_store_smoke(tmp_path):
    stdout = run_benchmark("bench_store.py", tmp_path, "--smoke")
    rows = json_lines(stdout)
    *candidates, engine = rows
    encodings = {
        "bool+zstd",
        "bool+bitshuffle",
        "bool+transpose+bitshuffle",
        "packed-examples+transpose+bitshuffle",
        "packed-examples+zstd",
    }
    # A row is written only after its encoding read back the tensor it wrote.
    assert {(row["encoding"], row["checkpoint_block"]) for row in candidates} == {
        (encoding, block) for encoding in encodings for block in (1, 4)
    }
    for row in candidates:
        for key in ("bits_per_entry", "write_entries_per_s", "read_entries_per_s"):
            assert positive(row[key]), (row["encoding"], key, row[key])
    assert engine["encoding"].startswith("engine")
    for key in (
        "bits_per_entry",
        "write_entries_per_s",
        "read_packed_entries_per_s",
        "read_bool_entries_per_s",
    ):
        assert positive(engine[key]), (key, engine[key])
    assert "(40, 6, 300)" in stdout.splitlines()[0]
    table = stdout[stdout.index("\nencoding") :].splitlines()
    assert len(table) == 2 + len(candidates)  # blank line, header, one row per candidate


@pytest.mark.slow
def test_bench_analyze_smoke(tmp_path):
    out = tmp_path / "bench"
    stdout = run_benchmark("bench_analyze.py", tmp_path, "--smoke", "--dir", str(out))
    result = json.loads(stdout.splitlines()[-1])
    assert set(result) == {
        "full_threads",
        "scaling_measures_seconds",
        "full_local_cluster_2_workers",
        "numpy_baseline_12x6x200",  # written after the engine was checked against NumPy
    }
    threads, cluster = result["full_threads"], result["full_local_cluster_2_workers"]
    assert threads["execution"]["scheduler"] == "threads"
    assert cluster["execution"]["scheduler"] == "local cluster of 2 workers"
    for run in (threads, cluster):
        assert positive(run["seconds"]) and positive(run["peak_rss_mib"])
    assert positive(cluster["cluster_startup_s"])
    scaling = result["scaling_measures_seconds"]
    assert {k: sorted(map(int, v)) for k, v in scaling.items()} == {
        "networks": [6, 12, 24],
        "checkpoints": [2, 3, 6],
        "examples": [50, 100, 200],
    }
    assert all(positive(s) for points in scaling.values() for s in points.values())
    baseline = result["numpy_baseline_12x6x200"]
    assert all(positive(baseline[k]) for k in ("numpy_s", "engine_s", "ratio"))
    assert math.isclose(baseline["ratio"], baseline["numpy_s"] / baseline["engine_s"])
    # Every store and output has a smoke_ name of its own, beside a real run's in --dir.
    assert all(p.name.startswith("smoke_") for p in out.iterdir())
    for name in ("smoke_out", "smoke_out_cluster"):
        assert (out / name / "full" / "summary.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_bench_train_smoke(device, tmp_path):
    if device == "cuda":
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA device")
    (result,) = json_lines(run_benchmark("bench_train.py", tmp_path, "--smoke", "--device", device))
    assert result["benchmark"] == "train"
    assert (result["networks"], result["epochs"], result["repeats"], result["threads"]) == (
        2,
        1,
        2,
        1,
    )
    assert result["baseline_networks_timed"] == 1
    for key in (
        "batched_network_epochs_per_s",
        "baseline_network_epochs_per_s",
        "ratio",
        "train_only_ratio",
        "batched_seconds",
        "batched_train_seconds",
        "baseline_seconds_extrapolated",
        "batched_record_seconds_store",
        "batched_network_epochs_per_s_with_store",
        "cnn_network_epochs_per_s",
        "cnn_train_network_epochs_per_s",
    ):
        assert positive(result[key]), (key, result[key])
    assert math.isclose(
        result["ratio"],
        result["batched_network_epochs_per_s"] / result["baseline_network_epochs_per_s"],
    )
    # The vmap ensemble: timed, and from the batched trainer's initial weights it reaches the
    # same final predictions (two networks, one epoch: no room to drift apart).
    for key in ("vmap_network_epochs_per_s", "ratio_vs_vmap", "train_only_ratio_vs_vmap"):
        assert positive(result[key]), (key, result[key])
    assert math.isclose(result["ratio_vs_vmap"], result["vmap_seconds"] / result["batched_seconds"])
    assert result["vmap_final_test_agreement"] == 1.0
    assert result["cnn_networks"] == 2
    for key in ("final_test_accuracy", "cnn_final_test_accuracy"):
        assert 0 <= result[key] <= 1


def test_bench_import_smoke(tmp_path):
    stdout = run_benchmark("bench_import.py", tmp_path, "--smoke", "--dir", str(tmp_path / "b"))
    result = json_lines(stdout)[-1]
    assert result["benchmark"] == "import" and result["shape"] == [200, 300, 10]
    # Each part is printed after its store was checked against NumPy from the source.
    for part in (result["dense"], *result["blocks"].values(), result["runs"]):
        for key in ("seconds", "cpu_seconds", "mb_per_s", "mb_per_cpu_s", "peak_rss_mib"):
            assert positive(part[key]), (key, part)
    assert result["dense"]["imported_networks"] == 200
    assert positive(result["dense"]["read_only_mb_per_s"])
    assert sorted(result["blocks"]) == ["16", "8"]
    assert [p["imported_networks"] for p in result["two_importers"]["parts"]] == [96, 104]
    assert result["runs"]["imported_networks"] == 20
    assert not list((tmp_path / "b").iterdir())  # --smoke cleans up after itself


def test_bench_soft_smoke(tmp_path):
    stdout = run_benchmark("bench_soft.py", tmp_path, "--smoke")
    result = json.loads(stdout[stdout.index("{") :])
    recording, analysis = result["recording"], result["analysis"]
    assert recording["block"] == [4, 3, 100, 10]
    assert analysis["store"] == [8, 3, 100]
    for key in ("predictions_s", "logits_s", "ratio", "logits_mb_per_s"):
        assert positive(recording[key]), key
    assert recording["ratio"] == pytest.approx(recording["logits_s"] / recording["predictions_s"])
    for key in ("verdicts_s", "soft_s", "ratio", "soft_entries_per_s"):
        assert positive(analysis[key]), key
    assert set(analysis["bits_per_entry"]) == {
        "correct_packed",
        "predictions",
        "probability",
        "margin",
    }
    assert all(positive(bits) for bits in analysis["bits_per_entry"].values())


def test_bench_runs_smoke(tmp_path):
    stdout = run_benchmark("bench_runs.py", tmp_path, "--smoke")
    (result,) = json_lines(stdout)
    assert result["benchmark"] == "runs" and result["shape"] == [40, 4, 300]
    rows = {row["layout"]: row for row in result["layouts"]}
    # Each store was checked to hold the same verdicts and to analyse alike before this line.
    assert list(rows) == ["block", "runs cb=16", "runs cb=2", "compacted (runs cb=16)"]
    assert [row["network_block"] for row in rows.values()] == [32, 1, 1, 32]
    for row in rows.values():
        assert set(row["bits_per_entry"]) == {"correct_packed", "predictions"}
        assert all(positive(bits) for bits in row["bits_per_entry"].values())
        assert positive(row["analyze_best_s"]) and len(row["analyze_s"]) == 1
        assert row["files"] > row["chunk_files"] > 0
    assert rows["block"]["analyze_ratio_to_block"] == 1.0
    for name in ("block", "runs cb=16", "runs cb=2"):
        assert positive(rows[name]["write_s"]) and positive(rows[name]["write_s_per_recorder"])
    assert positive(rows["compacted (runs cb=16)"]["compact_s"])
    # One network per stored object: a chunk file per network (and per checkpoint block).
    assert rows["runs cb=16"]["chunk_files"] > 4 * rows["block"]["chunk_files"]
    # Compaction gives the block layout's objects back: the same bits.
    assert rows["compacted (runs cb=16)"]["bits_per_entry"] == rows["block"]["bits_per_entry"]


def test_bench_scale_smoke(tmp_path):
    out = tmp_path / "scale"
    stdout = run_benchmark(
        "bench_scale.py", tmp_path, "--smoke", "--dir", str(out), "--steps", "cifar,matrices"
    )
    result = json.loads(stdout.splitlines()[-1])
    assert set(result) == {"cifar", "matrices"}
    cifar = result["cifar"]
    assert positive(cifar["seconds"]) and positive(cifar["peak_rss_mib"])
    # Every output of the analysis, the pairwise tables among them, with its size.
    assert {"summary.json", "histograms.parquet", "pairwise_networks.parquet"} <= set(
        cifar["bytes"]
    )
    assert all(positive(size) for size in cifar["bytes"].values())
    matrices = result["matrices"]  # written after the stored kappa was checked against NumPy
    assert math.isclose(matrices["engine_over_numpy"], matrices["numpy_s"] / matrices["engine_s"])
    assert all(p.name.startswith("smoke_") for p in out.iterdir())


@pytest.mark.slow
def test_gpu_checks_cpu_smoke(tmp_path):
    """benchmarks/gpu_checks.sh --cpu-smoke: every GPU check's step, on the CPU at a tiny size,
    into one JSON file."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONOPTIMIZE"}
    environment.update(OUT=str(tmp_path / "out"), TMPDIR=str(tmp_path), PYTHON=sys.executable)
    completed = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_checks.sh"), "--cpu-smoke"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    report = json.loads((tmp_path / "out" / "gpu_checks.json").read_text())
    assert report["mode"] == "cpu-smoke"
    steps = report["steps"]
    assert list(steps) == [
        "pytest_gpu",
        "train_mlp",
        "train_cnn",
        "parity",
        "pairwise",
        "train_mlp_bf16",
    ]
    assert all(step["rc"] == 0 for step in steps.values()), steps
    assert (
        "skipped" in steps["pytest_gpu"]["summary"]
        or "deselected" in steps["pytest_gpu"]["summary"]
    )
    mlp, cnn = steps["train_mlp"]["result"], steps["train_cnn"]["result"]
    assert positive(mlp["ratio"]) and positive(mlp["ratio_vs_vmap"])
    assert steps["train_mlp_bf16"]["result"]["precision"] == "bf16"
    assert (cnn["cnn_networks"], cnn["cnn_train_examples"]) == (2, 120)
    assert cnn["cnn_recorded_examples_per_checkpoint"] == 160
    assert positive(cnn["cnn_seconds_per_network_epoch"])
    parity = steps["parity"]["result"]
    assert parity["devices"] == ["cpu", "cpu"]
    for arch in ("mlp", "cnn"):
        # The same device twice: the same networks, so the check itself cannot fail here.
        assert parity[arch]["initial_agreement"] == parity[arch]["final_agreement"] == 1.0
    assert steps["pairwise"]["result"]["networks"] == 40
    targets = report["targets"]
    assert set(targets) == {
        "mlp_512_over_loop",
        "mlp_512_over_vmap",
        "cnn_256_seconds_per_network_epoch",
        "pairwise_10000x60000_seconds",
        "parity_final_agreement",
    }
    for target in targets.values():  # measured at the smoke size, so met or not says nothing
        assert positive(target["measured"]) and isinstance(target["met"], bool)
    for name in steps:
        assert (tmp_path / "out" / f"{name}.log").is_file()


def test_profile_train_step_smoke(tmp_path):
    (result,) = json_lines(run_benchmark("profile_train_step.py", tmp_path, "--smoke"))
    assert (result["networks"], result["width"], result["repeats"]) == (4, 8, 2)
    assert result["steps"] == 1348 // 64
    assert (
        set(result["cpu_seconds"])
        == set(result["page_faults"])
        == {
            "batched_steps_hand",
            "batched_steps_autograd",
            "vmap_steps",
            "batched_eval",
            "vmap_eval",
        }
    )
    assert all(positive(seconds) for seconds in result["cpu_seconds"].values())
    for key in ("step_ratio_vs_vmap", "step_ratio_hand_vs_autograd", "eval_ratio_vs_vmap"):
        assert positive(result[key]), key


def test_gpu_checks_runs_only_the_test_files_with_gpu_tests(tmp_path):
    """The GPU run's pytest step names the files holding ``gpu`` tests (collecting the whole
    folder there imports every optional extra of the image) and passes ``-m gpu``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_checks", BENCHMARKS / "gpu_checks.py")
    assert spec is not None and spec.loader is not None
    gpu_checks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_checks)
    files = [Path(name).name for name in gpu_checks.gpu_test_files()]
    assert "test_train.py" in files and "test_pairwise_engine.py" in files
    assert "test_architecture.py" not in files and "test_store.py" not in files

    class Args:
        cpu_smoke = False

    (name, _, command), *_ = gpu_checks.steps(Args(), tmp_path)
    assert name == "pytest_gpu" and command[command.index("gpu") - 1] == "-m"
    assert [Path(part).name for part in command if part.endswith(".py")] == files


def test_tile_kernels_smoke(tmp_path):
    # The counts were checked against NumPy before any time was printed.
    result = json.loads(run_benchmark("tile_kernels.py", tmp_path, "--smoke").splitlines()[-1])
    assert result["tile"] == [40, 40, 300]
    for key in (
        "same_prediction_ms",
        "co_correct_ms",
        "network_statistics_per_tile_ms",
        "network_statistics_gathered_ms",
    ):
        assert positive(result[key]), key

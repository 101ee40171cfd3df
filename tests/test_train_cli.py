"""`engine train-population` as users run it: resume after kill -9, shards filling one store
together, quickstart, and a one-line error for every bad input with nothing written damaged."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import engine
from cli.app import main

COMMAND = [
    "train-population",
    "--dataset",
    "digits",
    "--arch",
    "mlp",
    "--networks",
    "8",
    "--width",
    "24",
    "--epochs",
    "2",
    "--record-every",
    "7",
    "--group-size",
    "4",
    "--network-block",
    "4",
    "--subset-fraction",
    "0.8",
    "--augment",
    "--probes",
    "noise",
    "--threads",
    "1",
    "--quiet",
]


def run_cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        [sys.executable, "-m", "cli.app", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def finish(process: subprocess.Popen, timeout: float = 240) -> None:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err


def store_arrays(path: Path) -> dict[str, np.ndarray]:
    population = engine.open_population(path)
    arrays = {
        "completed": population.checkpoints_completed(),
        "loss": population.train_loss().compute(),
        "membership": population.membership().compute(),
    }
    for split in population.splits:
        arrays[f"{split}/predictions"] = population.predictions(split).compute()
        arrays[f"{split}/correct"] = population.correct(split).compute()
    return arrays


def assert_same_store(left: Path, right: Path) -> None:
    a, b = store_arrays(left), store_arrays(right)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The study trained without interruption, in one process."""
    path = tmp_path_factory.mktemp("reference") / "pop.zarr"
    finish(run_cli([*COMMAND, "--out", str(path)]))
    return path


def _wait_for(condition, process, timeout=120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "timed out waiting for training progress"
        time.sleep(0.02)


def _completed(path: Path) -> int:
    try:
        return int(engine.open_population(path).checkpoints_completed().sum())
    except engine.StoreError:
        return 0


def test_resume_after_kill_equals_uninterrupted_run(tmp_path, reference, capsys):
    store = tmp_path / "pop.zarr"
    state = tmp_path / ".pop.zarr.train-state"
    total = engine.open_population(reference).num_checkpoints * 8
    # Kill twice at different moments: once soon after the first state was saved, once late.
    for threshold in (1, total // 2):
        process = run_cli([*COMMAND, "--out", str(store)])
        _wait_for(lambda t=threshold: state.exists() and _completed(store) >= t, process)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert _completed(store) < total
    finish(run_cli([*COMMAND, "--out", str(store)]))
    assert_same_store(store, reference)
    assert not state.exists()
    # A finished store is never trained again.
    before = _digest(store)
    assert main([*COMMAND[:-1], "--out", str(store)]) == 0
    assert "trained 0 networks (8 already complete)" in capsys.readouterr().out
    assert _digest(store) == before


def test_two_shards_fill_one_store_at_once(tmp_path, reference):
    store = tmp_path / "pop.zarr"
    shards = [run_cli([*COMMAND, "--shard", f"{i}/2", "--out", str(store)]) for i in range(2)]
    for process in shards:
        finish(process)
    assert_same_store(store, reference)
    assert not list(tmp_path.glob(".pop.zarr.creating-*"))


def test_network_range_trains_only_its_blocks(tmp_path):
    store = tmp_path / "pop.zarr"
    assert main([*COMMAND, "--networks", "4:8", "--out", str(store)]) == 0
    completed = engine.open_population(store).checkpoints_completed()
    assert (completed[:4] == 0).all() and (completed[4:] > 0).all()


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


SMALL = [
    "train-population",
    "--dataset",
    "digits",
    "--arch",
    "linear",
    "--networks",
    "2",
    "--epochs",
    "1",
    "--quiet",
]


# An unknown data set, architecture or precision is a usage error now (exit 2, the choices
# listed): tests/test_cli_validation.py.
@pytest.mark.parametrize(
    "args,message",
    [
        (["--dataset", "gaussian", "--arch", "cnn"], "needs images or sequences"),
        (["--shard", "2/2"], "--shard 2/2"),
        (["--shard", "0/3"], "only 1 blocks"),
        (["--shard", "one/two"], "--shard takes I/K"),
        (["--networks", "0:1"], "must start and end on blocks"),
        (["--networks", "0:9"], "outside 0:2"),
        (["--networks", "0:2", "--shard", "0/1"], "not both"),
        (["--vary", "everything"], "--vary"),
        (["--dataset", "mnist"], "give --data-dir"),
        (["--dataset", "cifar10", "--data-dir", "EMPTY"], "has no cifar-10-batches-py"),
        (["--dataset", "svhn", "--data-dir", "MISSING"], "does not exist"),
        (["--seed", "-1"], "--seed must be >= 0"),
        (["--group-size", "-1"], "--group-size must be >= 0"),
        (["--threads", "-2"], "--threads must be >= 0"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    args = [
        str(tmp_path / "empty")
        if a == "EMPTY"
        else str(tmp_path / "missing")
        if a == "MISSING"
        else a
        for a in args
    ]
    base = {"--dataset": "digits", "--arch": "linear", "--networks": "2", "--epochs": "1"}
    overridden = set(args[::2]) - {"--networks"}
    command = ["train-population"]
    for flag, value in base.items():
        if flag not in overridden:
            command += [flag, value]
    store = tmp_path / "pop.zarr"
    code = main([*command, *args, "--quiet", "--out", str(store)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err
    assert not store.exists()


def test_existing_store_with_another_configuration_is_left_intact(tmp_path, capsys):
    store = tmp_path / "pop.zarr"
    assert main([*SMALL, "--out", str(store)]) == 0
    before = _digest(store)
    code = main([*SMALL[:-3], "--epochs", "2", "--quiet", "--out", str(store)])
    err = capsys.readouterr().err
    assert code == 1 and "different configuration: epochs (1 in the store, 2 now)" in err
    assert err.count("\n") == 1
    code = main([*SMALL, "--lr", "0.2", "--out", str(store)])
    assert code == 1 and "lr (0.05 in the store, 0.2 now)" in capsys.readouterr().err
    code = main([*SMALL, "--precision", "bf16", "--out", str(store)])
    assert code == 1 and "precision ('fp32' in the store, 'bf16' now)" in capsys.readouterr().err
    assert _digest(store) == before
    # A folder that is a Zarr store of something else is refused too.
    other = tmp_path / "other.zarr"
    other.mkdir()
    assert main([*SMALL, "--out", str(other)]) == 1
    assert "not a population store" in capsys.readouterr().err


def test_bf16_store_does_not_resume_as_fp32(tmp_path, capsys):
    store = tmp_path / "pop.zarr"
    assert main([*SMALL, "--precision", "bf16", "--out", str(store)]) == 0
    groups = engine.open_population(store).attrs["groups"]
    assert groups[0]["hyperparameters"]["precision"] == "bf16"
    assert main([*SMALL, "--precision", "bf16", "--out", str(store)]) == 0  # same study: reuse
    capsys.readouterr()
    code = main([*SMALL, "--out", str(store)])
    assert code == 1 and "precision ('bf16' in the store, 'fp32' now)" in capsys.readouterr().err


def test_cuda_request_without_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main([*SMALL, "--device", "cuda", "--out", str(tmp_path / "pop.zarr")])
    err = capsys.readouterr().err
    assert code == 1 and "CUDA is not available" in err and err.count("\n") == 1
    assert not (tmp_path / "pop.zarr").exists()


def test_study_file_and_flags_do_not_mix(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(
        '[data]\nname = "digits"\n[[groups]]\narch = "linear"\nnetworks = 2\n'
    )
    code = main(
        [
            "train-population",
            "--study",
            str(tmp_path / "s.toml"),
            "--epochs",
            "3",
            "--out",
            str(tmp_path / "p.zarr"),
        ]
    )
    assert code == 1 and "drop --epochs" in capsys.readouterr().err


def test_quickstart_trains_and_points_at_results(tmp_path, capsys, monkeypatch):
    import cli.train_commands as commands

    small = re.sub(
        r"networks = \d+",
        "networks = 4",
        re.sub(r"epochs = \d+", "epochs = 1", commands.QUICKSTART_STUDY),
    )
    assert small != commands.QUICKSTART_STUDY
    monkeypatch.setattr(commands, "QUICKSTART_STUDY", small)
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert str(out / "population.zarr") in printed
    population = engine.open_population(out / "population.zarr")
    assert population.group_names == ["linear", "mlp"]
    assert len(population.complete_networks()) == 8
    assert "probe_noise" in population.splits
    report = out / "report" / "report.html"
    assert f"report: {report}" in printed
    page = report.read_text()
    assert "TP-agreement" in page or "tpa_histogram" in page
    assert population.soft_arrays("test") == ["probability", "margin"]
    assert (out / "report" / "data_map_test.png").exists()
    assert page.count("data:image/png;base64,") == len(list((out / "report").glob("*.png")))


@pytest.mark.distributed
def test_dask_cluster_tasks_fill_one_store(tmp_path, reference, capsys):
    from distributed import LocalCluster

    store = tmp_path / "pop.zarr"
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        resources={"GPU": 1},
        dashboard_address=None,
    ) as cluster:
        code = main(
            [
                *COMMAND,
                "--out",
                str(store),
                "--cluster",
                cluster.scheduler_address,
                "--worker-resources",
                "GPU=1",
            ]
        )
    assert code == 0, capsys.readouterr().err
    assert "in 2 tasks" in capsys.readouterr().out
    assert_same_store(store, reference)


def test_unreachable_training_cluster_is_one_line(tmp_path, capsys):
    code = main(
        [
            *COMMAND,
            "--out",
            str(tmp_path / "pop.zarr"),
            "--cluster",
            "tcp://127.0.0.1:9",
            "--cluster-tasks",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "cannot reach the Dask scheduler" in err and err.count("\n") == 1
    assert not (tmp_path / "pop.zarr").exists()


def test_bad_worker_resources_are_one_line(tmp_path, capsys):
    code = main(
        [
            *COMMAND,
            "--out",
            str(tmp_path / "pop.zarr"),
            "--cluster",
            "tcp://127.0.0.1:9",
            "--worker-resources",
            "GPU",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "--worker-resources takes NAME=AMOUNT" in err
    assert not (tmp_path / "pop.zarr").exists()

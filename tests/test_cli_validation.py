"""Hostile input to every command: one line naming the problem, the right exit status, and
nothing created. Usage errors exit 2; bad values, damaged stores and missing devices exit 1;
Ctrl-C exits 130 and SIGTERM 143, and a rerun of the interrupted command resumes the store to
exactly what an uninterrupted run writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import engine
from cli import checks
from cli.app import main
from engine.errors import ConfigError
from engine.testing import simulate_population
from engine.train.study import load_study

TRAIN = ["train-population", "--dataset", "digits", "--arch", "linear", "--networks", "2"]
TRAIN += ["--epochs", "1", "--quiet"]


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str, start: str = "error: ") -> str:
    """The single line of ``err``, checked to be one line starting with ``start``."""
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(start), err
    return err


def nothing_in(folder: Path, *keep: str) -> None:
    """No store, staging folder, state folder or output: only the files the test made."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(keep)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("store") / "pop.zarr"
    simulate_population(path, networks=8, checkpoints=3, splits={"train": 64, "test": 32})
    return str(path)


# ----------------------------------------------------------------------------------------------
# Usage errors: exit 2, one line, no traceback (point 9)


@pytest.mark.parametrize(
    "args,named",
    [
        (["info"], "Missing argument 'STORE'"),
        (["info", "x", "--bogus"], "No such option: --bogus"),
        (["merge", "a", "b"], "Missing option '--output'"),
        (["train-population"], "Missing option '--out'"),
        (["train-population", "--out", "x", "--epochs", "abc"], "'--epochs'"),
        (["train-population", "--out", "x", "--lr", "fast"], "'--lr'"),
        (["quickstart", "--bogus"], "No such option: --bogus"),
        (["analyze"], "Missing argument 'STORE'"),
        (["analyze", "x"], "Missing option '--out'"),
        (["analyze", "x", "--out", "y", "--cluster", "nope"], "'--cluster'"),
        (["analyze", "x", "--out", "y", "--workers", "0"], "'--workers'"),
        (["compare"], "Missing argument 'STORES"),
        (["pairwise", "x", "--out", "y", "--bootstrap", "100000000"], "'--bootstrap'"),
        (["pairwise", "x", "--out", "y", "--block", "0"], "'--block'"),
        (["pairwise", "x", "--out", "y", "--seed", "-1"], "'--seed'"),
        (["select", "x", "--out", "y.npy"], "Missing option '--fraction'"),
        (["select", "x", "--out", "y.npy", "--fraction", "0.5", "--region", "odd"], "'--region'"),
        (["import"], "Missing argument 'SOURCE'"),
        (["import", "x.npy", "--out", "y", "--network-block", "5000"], "'--network-block'"),
        (["nosuch"], "No such command 'nosuch'"),
        # Choices: the flag, the choices and the nearest one named.
        (["analyze", "x", "--out", "y", "--scheduler", "thread"], "did you mean 'threads'?"),
        (["analyze", "x", "--out", "y", "--device", "tpu"], "'tpu' is not one of 'cpu', 'cuda'"),
        (["analyze", "x", "--out", "y", "--device", "cuda:0"], "'--device'"),
        (["pairwise", "x", "--out", "y", "--device", "gpu"], "'--device'"),
        (["compare", "x", "y", "--out", "z", "--device", "gpu"], "'--device'"),
        (["compare", "x", "y", "--out", "z", "--accessibility-from", "zero"], "first-trained"),
        (["pairwise", "x", "--out", "y", "--scheduler", "mpi"], "'--scheduler'"),
        (["select", "x", "--out", "y.npy", "--fraction", "0.5", "--by", "aun"], "'aum'"),
        (["import", "x.npy", "--out", "y", "--kind", "logit"], "did you mean 'logits'?"),
        (["import", "x.npy", "--out", "y", "--format", "csv"], "'--format'"),
        (["train-population", "--out", "x", "--arch", "mpl"], "did you mean 'mlp'?"),
        (["train-population", "--out", "x", "--dataset", "mnist-1d"], "'mnist1d'"),
        (["train-population", "--out", "x", "--optimizer", "adamw"], "'--optimizer'"),
        (["train-population", "--out", "x", "--schedule", "linear"], "'--schedule'"),
        (["train-population", "--out", "x", "--precision", "fp16"], "'--precision'"),
        (["train-population", "--out", "x", "--device", "gpu"], "'cuda:N'"),
        # Misspelt options and commands.
        (["analyze", "x", "--out", "y", "--schedular", "threads"], "--scheduler"),
        (["analyse", "x"], "Did you mean 'analyze'?"),
        (["--bogus"], "No such option: --bogus"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, args, named):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(args, capsys)
    assert code == 2
    assert named in one_line(err, "Error: ")
    assert "--help" in err  # where to look next, on the same line
    nothing_in(tmp_path)


def test_bare_engine_prints_its_help(capsys):
    code, out, err = run([], capsys)
    assert code == 2 and "Traceback" not in out + err
    assert "train-population" in out + err


# ----------------------------------------------------------------------------------------------
# Numbers: finite, in range, before anything is created (points 4 and 6)


@pytest.mark.parametrize(
    "flags,named",
    [
        (["--lr", "nan"], "lr must be a finite number, got nan"),
        (["--lr", "inf"], "lr must be a finite number, got inf"),
        (["--lr", "-inf"], "lr must be a finite number"),
        (["--lr", "0"], "lr must be > 0"),
        (["--momentum", "nan"], "momentum must be a finite number"),
        (["--momentum", "1"], "momentum must lie in [0, 1)"),
        (["--weight-decay", "inf"], "weight_decay must be a finite number"),
        (["--weight-decay", "-0.1"], "weight_decay must be >= 0"),
        (["--gamma", "nan"], "gamma must be a finite number"),
        (["--gamma", "0"], "gamma must lie in (0, 1]"),
        (["--subset-fraction", "nan"], "--subset-fraction must be a finite number"),
        (["--subset-fraction", "1.5"], "--subset-fraction must lie in (0, 1]"),
        (["--threads", "100000"], "--threads must be <="),
        (["--epochs", "100000000000000000000000"], "epochs must be <= 100,000"),
        (["--network-block", "1000000000"], "network_block must be <= 1024"),
        (["--networks", "1000000000"], "networks must be <= 10,000,000"),
        (["--arch", "mlp", "--width", "1000000000"], "width must be <= 65,536"),
        (["--arch", "mlp", "--depth", "1000"], "depth must be <= 64"),
        (["--batch-size", "0"], "batch_size must be >= 1"),
        (["--batch-size", "10000000"], "batch_size must be <= 1,000,000"),
        (["--seed", str(2**64)], "--seed must be <="),
        (["--group-size", "100000000"], "--group-size must be <="),
        (["--dataset", "gaussian", "--samples", "1000000000"], "samples must be <= 1,000,000"),
        (["--out", ""], "--out must name the store"),
    ],
)
def test_bad_numbers_are_one_line_and_create_nothing(tmp_path, capsys, flags, named):
    out = ["--out", str(tmp_path / "pop.zarr")] if "--out" not in flags else []
    code, _, err = run([*TRAIN, *flags, *out], capsys)
    assert code == 1
    assert named in one_line(err)
    nothing_in(tmp_path)


def test_threads_up_to_the_cpus_are_accepted(tmp_path, capsys):
    from engine.train.config import RunOptions

    cpus = os.cpu_count() or 1
    RunOptions(threads=cpus).validate()  # training with them all is slow on a shared machine
    code, _, err = run([*TRAIN, "--threads", str(cpus + 1), "--out", str(tmp_path / "q")], capsys)
    assert code == 1 and f"--threads must be <= {cpus}" in one_line(err)
    nothing_in(tmp_path)


# ----------------------------------------------------------------------------------------------
# Study files: every value type-checked with its key named (point 7), group names (point 8)

STUDY = """\
epochs = 1
{top}
[data]
name = "digits"
{data}
[[groups]]
name = {name}
arch = "linear"
{networks}
{group}
"""


def study_file(tmp_path: Path, *, top="", data="", group="", name='"lin"') -> Path:
    """A one-group study with ``top``, ``data`` and ``group`` lines added (a ``networks``
    line replaces the group's)."""
    networks = "" if group.startswith("networks") else "networks = 2"
    path = tmp_path / "study.toml"
    path.write_text(STUDY.format(top=top, data=data, group=group, name=name, networks=networks))
    return path


@pytest.mark.parametrize(
    "where,line,named",
    [
        ("group", "networks = 2.0", "networks must be an integer, got 2.0"),
        ("group", "width = 8.5", "width must be an integer, got 8.5"),
        ("group", 'augment = "yes"', "augment must be true or false, got 'yes'"),
        ("group", "batch_norm = 2", "batch_norm must be true or false, got 2"),
        ("group", 'lr = "fast"', "lr must be a number, got 'fast'"),
        ("group", "lr = true", "lr must be a number, got True"),
        ("group", "lr = nan", "lr must be a finite number, got nan"),
        ("group", "momentum = inf", "momentum must be a finite number, got inf"),
        ("group", "milestones = 1", "milestones must be a list, got 1"),
        ("group", 'milestones = [1, "2"]', "milestones[1] must be an integer, got '2'"),
        ("group", "optimizer = 3", "optimizer must be a string, got 3"),
        ("top", "seed = 0.5", "seed must be an integer, got 0.5"),
        ("top", 'record_every = "3"', "record_every must be an integer, got '3'"),
        ("top", "soft = 1", "soft must be true or false, got 1"),
        ("top", 'vary = "init"', "vary must be a list, got 'init'"),
        ("top", "network_block = true", "network_block must be an integer, got True"),
        ("top", 'subset_fraction = "all"', "subset_fraction must be a number, got 'all'"),
        ("data", "samples = 1.5", "samples must be an integer, got 1.5"),
        ("data", 'probes = "noise"', "probes must be a list, got 'noise'"),
        ("data", "separation = nan", "separation must be a finite number, got nan"),
        ("data", "test_fraction = 1", "test_fraction must lie in (0, 1), got 1.0"),
    ],
)
def test_study_values_are_type_checked_with_the_key_named(tmp_path, capsys, where, line, named):
    path = study_file(tmp_path, **{where: line})
    with pytest.raises(ConfigError) as error:
        load_study(path)
    assert named in str(error.value)
    code, _, err = run(
        ["train-population", "--study", str(path), "--out", str(tmp_path / "p")], capsys
    )
    assert code == 1 and str(error.value) in one_line(err)
    nothing_in(tmp_path, "study.toml")


@pytest.mark.parametrize(
    "document,named",
    [
        ('epochs = 1\ndata = 5\n[[groups]]\narch = "linear"\nnetworks = 2\n', "data in"),
        ("epochs = 1\ngroups = [1]\n", "group 0 of"),
        ('epochs = 1\n[defaults]\nlr = [1]\n[[groups]]\narch = "linear"\nnetworks = 2\n', "lr"),
        ("[[groups]]\narch = 5\nnetworks = 2\n", "arch must be a string, got 5"),
    ],
)
def test_study_structure_is_checked(tmp_path, document, named):
    path = tmp_path / "study.toml"
    path.write_text(document)
    with pytest.raises(ConfigError) as error:
        load_study(path)
    assert named in str(error.value)


def test_a_study_file_not_in_utf8_is_one_line(tmp_path):
    path = tmp_path / "study.toml"
    path.write_bytes(b"epochs = \xff\n")
    with pytest.raises(ConfigError, match="cannot read study file"):
        load_study(path)


def test_numbers_of_a_study_file_take_ints_for_floats(tmp_path):
    study = load_study(study_file(tmp_path, group="lr = 1\nmomentum = 0"))
    assert study.groups[0].lr == 1.0 and isinstance(study.groups[0].lr, float)
    assert isinstance(study.groups[0].momentum, float)


@pytest.mark.parametrize(
    "name",
    ['"../../x"', '"a/b"', '"a\\\\b"', '".."', '""', '".hidden"', '"a b"', '"x' + "y" * 64 + '"'],
)
def test_group_names_that_are_not_safe_file_names_are_refused(tmp_path, capsys, name):
    path = study_file(tmp_path, name=name)
    state = tmp_path / "state"
    state.mkdir()
    code, _, err = run(
        ["train-population", "--study", str(path), "--out", str(state / "p.zarr")], capsys
    )
    assert code == 1 and "group name" in one_line(err)
    nothing_in(state)
    nothing_in(tmp_path, "study.toml", "state")


def test_a_safe_group_name_trains(tmp_path, capsys):
    path = study_file(tmp_path, name='"wide-mlp_2.0+bn"')
    code, _, err = run(
        ["train-population", "--study", str(path), "--quiet", "--out", str(tmp_path / "p.zarr")],
        capsys,
    )
    assert code == 0, err
    assert engine.open_population(tmp_path / "p.zarr").group_names == ["wide-mlp_2.0+bn"]


# ----------------------------------------------------------------------------------------------
# Tiny data sets: they train, or fail before a store exists (point 10)


@pytest.mark.parametrize(
    "flags,named",
    [
        (["--dataset", "gaussian", "--samples", "1"], "samples 1 leaves no training example"),
        (["--dataset", "teacher", "--samples", "1"], "samples 1 leaves no training example"),
        (["--dataset", "mnist1d", "--samples", "3"], "samples must be >= 10 for mnist1d"),
    ],
)
def test_too_few_samples_fail_before_a_store_exists(tmp_path, capsys, flags, named):
    code, _, err = run([*TRAIN, *flags, "--out", str(tmp_path / "p.zarr")], capsys)
    assert code == 1 and named in one_line(err)
    nothing_in(tmp_path)


@pytest.mark.parametrize(
    "flags",
    [
        ["--dataset", "gaussian", "--samples", "2"],
        ["--dataset", "gaussian", "--samples", "3"],
        ["--dataset", "teacher", "--samples", "3"],
        ["--dataset", "mnist1d", "--samples", "10"],
    ],
)
def test_tiny_data_sets_train_to_a_complete_store(tmp_path, capsys, flags):
    store = tmp_path / "p.zarr"
    code, _, err = run([*TRAIN, *flags, "--out", str(store)], capsys)
    assert code == 0, err
    population = engine.open_population(store)
    assert len(population.complete_networks()) == 2
    assert population.num_examples("train") >= 1 and population.num_examples("test") >= 1
    nothing_in(tmp_path, "p.zarr")


def test_npz_without_test_examples_fails_before_a_store_exists(tmp_path, capsys):
    data = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(
        data,
        x_train=rng.standard_normal((20, 4)),
        y_train=np.arange(20) % 2,
        x_test=np.zeros((0, 4)),
        y_test=np.zeros(0, int),
    )
    args = ["train-population", "--dataset", "npz", "--data-dir", str(data), "--arch", "linear"]
    code, _, err = run(
        [*args, "--networks", "2", "--epochs", "1", "--out", str(tmp_path / "p")], capsys
    )
    assert code == 1 and "has no test examples" in one_line(err)
    nothing_in(tmp_path, "d.npz")


# ----------------------------------------------------------------------------------------------
# Damaged metadata and the analyses' flags: named before any work or folder (point 11)


@pytest.fixture
def damaged(store, tmp_path) -> Path:
    """A copy of the store whose test correct_packed zarr.json is cut in the middle."""
    import shutil

    copy = tmp_path / "damaged.zarr"
    shutil.copytree(store, copy)
    metadata = copy / "splits" / "test" / "correct_packed" / "zarr.json"
    metadata.write_bytes(metadata.read_bytes()[:100])
    return copy


@pytest.mark.parametrize(
    "command",
    [
        ["info", "STORE"],
        ["info", "STORE", "--verify"],
        ["analyze", "STORE", "--out", "OUT", "--no-progress"],
        ["pairwise", "STORE", "--out", "OUT", "--no-figures"],
        ["select", "STORE", "--out", "OUT", "--fraction", "0.5", "--by", "accessibility"],
        ["compare", "STORE", "STORE", "--out", "OUT", "--no-progress"],
        ["merge", "STORE", "STORE", "--output", "OUT"],
    ],
)
def test_a_truncated_zarr_json_is_named(damaged, tmp_path, capsys, command):
    out = tmp_path / "out"
    args = [str(damaged) if a == "STORE" else str(out) if a == "OUT" else a for a in command]
    code, _, err = run(args, capsys)
    assert code == 1
    assert "correct_packed/zarr.json is damaged: not valid JSON" in one_line(err)
    assert not out.exists()


def test_resuming_a_store_with_damaged_metadata_names_the_file(damaged, capsys):
    root = damaged / "zarr.json"
    root.write_bytes(b"")
    code, _, err = run([*TRAIN, "--out", str(damaged)], capsys)
    assert code == 1 and f"{root} is damaged" in one_line(err)


@pytest.mark.parametrize(
    "command,named",
    [
        (["analyze", "STORE", "--pairwise-checkpoints", "99"], "--pairwise-checkpoints '99'"),
        (["analyze", "STORE", "--pairwise-checkpoints", "abc"], "--pairwise-checkpoints 'abc'"),
        (["analyze", "STORE", "--pairwise-checkpoints", ""], "--pairwise-checkpoints ''"),
        (["analyze", "STORE", "--split", "nope"], "split 'nope'"),
        (["analyze", "STORE", "--by", "nope"], "--by nope"),
        (["pairwise", "STORE", "--checkpoints", "7"], "--checkpoints '7'"),
    ],
)
def test_analysis_flags_are_checked_before_the_output_folder(
    store, tmp_path, capsys, command, named
):
    out = tmp_path / "out"
    args = [store if a == "STORE" else a for a in command]
    code, _, err = run([*args, "--out", str(out)], capsys)
    assert code == 1 and named in one_line(err)
    assert not out.exists()


def test_cuda_asked_for_without_cuda_leaves_no_folder(store, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for command in (["analyze", store], ["pairwise", store], ["compare", store, store]):
        out = tmp_path / "out"
        code, _, err = run([*command, "--device", "cuda", "--out", str(out)], capsys)
        assert code == 1 and "--device cuda" in one_line(err)
        assert not out.exists()


def test_output_folder_is_removed_only_when_the_command_made_it_empty(tmp_path):
    made = tmp_path / "made"
    with pytest.raises(RuntimeError), checks.output_folder(made):
        made.mkdir()
        raise RuntimeError
    assert not made.exists()
    kept = tmp_path / "kept"
    with pytest.raises(RuntimeError), checks.output_folder(kept):
        kept.mkdir()
        (kept / "partial.json").write_text("{}")
        raise RuntimeError
    assert (kept / "partial.json").exists()
    before = tmp_path / "before"
    before.mkdir()
    with pytest.raises(KeyboardInterrupt), checks.output_folder(before):
        raise KeyboardInterrupt
    assert before.is_dir()


# ----------------------------------------------------------------------------------------------
# Ctrl-C and SIGTERM of a training run (point 3)

SIGNALLED = [
    "train-population",
    "--dataset",
    "digits",
    "--arch",
    "mlp",
    "--width",
    "16",
    "--networks",
    "4",
    "--epochs",
    "30",
    "--network-block",
    "2",
    "--group-size",
    "2",
    "--threads",
    "1",
    "--quiet",
]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("uninterrupted") / "pop.zarr"
    assert main([*SIGNALLED, "--out", str(path)]) == 0
    return path


def _completed(path: Path) -> int:
    try:
        # Unchecked: a poll must be quick beside the training it watches (the checks on
        # opening take a good part of a second on a loaded machine).
        return int(engine.open_population(path, check=False).checkpoints_completed().sum())
    except engine.StoreError:
        return 0


@pytest.mark.parametrize(
    "sent,status,said",
    [(signal.SIGINT, 130, "interrupted (Ctrl-C)"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
)
def test_a_signalled_run_says_so_and_resumes(uninterrupted, tmp_path, sent, status, said):
    store = tmp_path / "pop.zarr"
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.app", *SIGNALLED, "--out", str(store)],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    total = engine.open_population(uninterrupted).num_checkpoints * 4
    deadline = time.monotonic() + 120
    while _completed(store) < 2:  # the store exists and training has begun
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.02)
    process.send_signal(sent)
    _, err = process.communicate(timeout=120)
    assert process.returncode == status
    assert said in one_line(err) and "rerun the same command to resume" in err
    assert 0 < _completed(store) < total
    assert main([*SIGNALLED, "--out", str(store)]) == 0
    left, right = engine.open_population(store), engine.open_population(uninterrupted)
    np.testing.assert_array_equal(left.checkpoints_completed(), right.checkpoints_completed())
    np.testing.assert_array_equal(left.train_loss().compute(), right.train_loss().compute())
    for split in right.splits:
        np.testing.assert_array_equal(
            left.predictions(split).compute(), right.predictions(split).compute()
        )
    nothing_in(tmp_path, "pop.zarr")

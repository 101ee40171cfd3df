"""The command line's conventions: choices that are the engine's, help that reads as click's,
one spelling of progress, outputs not overwritten silently, missing optional packages named."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer.main

from cli import import_commands, options, select_commands, train_commands
from cli.app import app, main
from engine.testing import simulate_population

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("opts") / "pop.zarr"
    simulate_population(path, networks=8, checkpoints=3, splits={"train": 64, "test": 32})
    return str(path)


def _values(enum) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


def test_the_choices_are_the_engines():
    from engine.measures import ACCESSIBILITY_FROM
    from engine.scheduling import SCHEDULERS
    from engine.train.config import ARCHITECTURES, OPTIMIZERS, PRECISIONS, SCHEDULES
    from engine.train.data import DATASETS

    assert _values(options.SchedulerName) == SCHEDULERS
    assert _values(options.AccessibilityFrom) == ACCESSIBILITY_FROM
    assert _values(train_commands.DatasetName) == DATASETS
    assert _values(train_commands.ArchName) == ARCHITECTURES
    assert _values(train_commands.OptimizerName) == OPTIMIZERS
    assert _values(train_commands.ScheduleName) == SCHEDULES
    assert _values(train_commands.PrecisionName) == PRECISIONS


def _commands() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", _commands())
def test_help_reads_as_click_does(command, capsys):
    code, out, err = run([command, "--help"], capsys)
    assert code == 0, err
    for odd in ("<bool>", "<str>", "<int", "<float>", "<list[", "<path>", "Name>"):
        assert odd not in out, f"{command} --help shows {odd}"
    usage = out.split("Usage:", 1)[1].splitlines()[0]
    arguments = re.findall(r"[{\[]([A-Za-z_]+)[}\]]", usage.replace("[OPTIONS]", ""))
    assert all(a.isupper() for a in arguments), usage
    if command in PROGRESS:
        assert "--progress" in out and "--no-progress" in out, command


#: The commands that show progress bars: all spell it --progress/--no-progress.
PROGRESS = ("analyze", "compare", "select", "import", "train-population", "quickstart")


def test_choices_are_listed_in_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one line per option: the choices are not wrapped
    _, out, _ = run(["analyze", "--help"], capsys)
    for choices in ("[threads|processes]", "[cpu|cuda]", "[first-trained|initialisation]"):
        assert choices in out
    _, out, _ = run(["train-population", "--help"], capsys)
    assert "[linear|mlp|cnn|resnet|vgg]" in out and "[auto|cpu|cuda|cuda:N]" in out
    assert "--quiet" not in out  # the old spelling is accepted but not offered
    _, out, _ = run(["import", "--help"], capsys)
    assert "[" + "|".join(_values(import_commands.Kind)) + "]" in out
    _, out, _ = run(["select", "--help"], capsys)
    assert "[" + "|".join(_values(select_commands.Score)) + "]" in out


def test_help_of_a_command_loads_nothing_heavy():
    heavy = ("numpy", "zarr", "dask", "distributed", "numba", "pandas", "torch", "matplotlib")
    code = (
        "import sys\nfrom cli.app import main\n"
        "for c in ([], ['analyze'], ['train-population'], ['import']):\n"
        "    main([*c, '--help'])\n"
        f"print('LOADED', *sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = result.stdout.rsplit("LOADED", 1)[1].split()
    assert not loaded, f"--help loads {loaded}"


# ----------------------------------------------------------------------------------------------
# Outputs are not overwritten silently


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_analyze_refuses_an_existing_output_and_replaces_it_with_overwrite(store, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["analyze", store, "-o", str(out), "--no-progress", "--pairwise-checkpoints", "none"]
    assert run(args, capsys)[0] == 0
    (out / "stale.txt").write_text("from an older run")
    before = _listing(out)
    code, _, err = run(args, capsys)
    assert code == 1 and "--out" in err and "--overwrite" in err and err.count("\n") == 1
    assert _listing(out) == before  # refusing writes nothing
    code, _, err = run([*args, "--overwrite"], capsys)
    assert code == 0, err
    assert not (out / "stale.txt").exists()  # replaced, not written over
    assert json.loads((out / "summary.json").read_text())["splits"]
    assert not list(tmp_path.glob(".out.replaced-*"))


def test_an_empty_folder_is_not_an_output_to_protect(store, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run(
        ["analyze", store, "-o", str(out), "--no-progress", "--pairwise-checkpoints", "none"],
        capsys,
    )
    assert code == 0, err


def test_overwrite_removes_only_an_output_of_the_command(store, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("not an engine output")
    for args in (
        ["analyze", store, "-o", str(out)],
        ["pairwise", store, "-o", str(out)],
        ["select", store, "-o", str(out), "--fraction", "0.5", "--by", "accessibility"],
    ):
        code, _, err = run([*args, "--overwrite"], capsys)
        assert code == 1 and "not an output of engine" in err, err
    assert _listing(out) == {"thesis.tex": b"not an engine output"}


def test_a_failed_overwrite_keeps_the_old_output(store, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["analyze", store, "-o", str(out), "--no-progress", "--pairwise-checkpoints", "none"]
    assert run(args, capsys)[0] == 0
    before = _listing(out)
    code, _, err = run([*args, "--overwrite", "--by", "nope"], capsys)
    assert code == 1 and "nope" in err
    assert _listing(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_pairwise_and_select_refuse_then_overwrite(store, tmp_path, capsys):
    out = tmp_path / "pw"
    args = ["pairwise", store, "-o", str(out), "--no-figures", "--bootstrap", "0"]
    assert run(args, capsys)[0] == 0
    assert run(args, capsys)[0] == 1
    assert run([*args, "--overwrite"], capsys)[0] == 0
    ids = tmp_path / "ids.npy"
    args = ["select", store, "-o", str(ids), "--fraction", "0.5", "--by", "accessibility"]
    args += ["--split", "test", "--no-progress"]
    assert run(args, capsys)[0] == 0
    np.save(ids, np.array([-1]))
    code, _, err = run(args, capsys)
    assert code == 1 and "already exists" in err
    assert np.load(ids).tolist() == [-1]
    assert run([*args, "--overwrite"], capsys)[0] == 0
    assert np.load(ids).size == 16


def test_merge_and_compact_refuse_then_overwrite(store, tmp_path, capsys):
    from tests.test_store import make_store

    a, _, _ = make_store(tmp_path / "a.zarr", seed=1)
    b, _, _ = make_store(tmp_path / "b.zarr", seed=2)
    merged = tmp_path / "m.zarr"
    args = ["merge", str(a), str(b), "-o", str(merged)]
    code, _, err = run(args, capsys)
    assert code == 0, err
    code, _, err = run(args, capsys)
    assert code == 1 and "--overwrite" in err
    code, _, err = run([*args, "--overwrite"], capsys)
    assert code == 0, err
    compacted = tmp_path / "c.zarr"
    args = ["compact", store, "-o", str(compacted), "--network-block", "4"]
    assert run(args, capsys)[0] == 0
    code, _, err = run(args, capsys)
    assert code == 1 and "--output" in err and "--overwrite" in err
    assert run([*args, "--overwrite"], capsys)[0] == 0


# ----------------------------------------------------------------------------------------------
# Missing optional packages are named


@pytest.mark.parametrize(
    "url,package", [("s3://bucket/p.zarr", "s3fs"), ("gs://b/p.zarr", "gcsfs")]
)
def test_a_url_without_its_file_system_names_the_package(url, package, tmp_path, capsys):
    pytest.importorskip("fsspec")
    if package in sys.modules or _installed(package):
        pytest.skip(f"{package} is installed here")
    for args in (["analyze", url, "-o", str(tmp_path / "out")], ["info", url]):
        code, _, err = run(args, capsys)
        assert code == 1 and f"pip install {package}" in err and "ImportError" not in err
    assert not (tmp_path / "out").exists()


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_workers_without_distributed_names_it(store, tmp_path, capsys, monkeypatch):
    for name in [m for m in sys.modules if m == "distributed" or m.startswith("distributed.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now fails
    out = tmp_path / "out"
    code, _, err = run(["analyze", store, "-o", str(out), "--workers", "2"], capsys)
    assert code == 1 and "--workers" in err and "pip install distributed" in err, err
    assert err.count("\n") == 1 and not out.exists()


def test_bench_cli_smoke(tmp_path):
    from tests.test_benchmarks import run_benchmark

    lines = [
        json.loads(line)
        for line in run_benchmark("bench_cli.py", tmp_path, "--smoke").split("\n")
        if line.startswith("{")
    ]
    startups = {row["startup"]: row for row in lines if "startup" in row}
    assert set(startups) == {
        "python -c pass",
        "import cli.app",
        "engine --help",
        "engine analyze --help",
    }
    assert startups["python -c pass"]["ratio"] == 1.0
    (verdicts,) = [row for row in lines if "verdict_pass" in row]
    assert verdicts["seconds"] > 0 and verdicts["baseline_seconds"] > 0


@pytest.mark.parametrize(
    "command",
    [
        ["train-population", "--dataset", "digits", "--arch", "linear", "--networks", "2"],
        ["import", "x.npy"],
        ["analyze", "STORE"],
        ["pairwise", "STORE"],
        ["merge", "STORE", "STORE"],
        ["compact", "STORE"],
    ],
)
def test_a_url_output_is_refused_not_written_as_a_local_folder(
    store, command, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    flag = "--output" if command[0] in ("merge", "compact") else "--out"
    args = [store if a == "STORE" else a for a in command]
    code, _, err = run([*args, flag, "s3://bucket/x.zarr"], capsys)
    assert code == 1 and "not a URL" in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())  # no folder named s3:

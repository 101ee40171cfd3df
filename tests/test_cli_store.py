"""The CLI shell: version, help, info, merge, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cli.app import main
from tests.test_store import corrupt_one_chunk, make_store, tree_digest


def run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version_and_help(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("created-equal ")
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for command in ("info", "merge"):
        assert command in out


def test_console_script_is_installed():
    result = subprocess.run(
        [sys.executable, "-m", "cli.app", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "created-equal" in result.stdout


def test_info_reports_shape_and_bits(tmp_path, capsys):
    path, _, _ = make_store(tmp_path / "p.zarr", networks=5)
    code, out, err = run(["info", str(path), "--verify"], capsys)
    assert code == 0, err
    assert "networks: 5 (5 complete), checkpoints: 3" in out
    assert "bits / entry" in out
    assert "matching checksum" in out


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (lambda p: p / "missing.zarr", "does not exist"),
        (lambda p: (p / "folder").mkdir() or p / "folder", "not a population store"),
    ],
)
def test_info_bad_paths_one_line(tmp_path, capsys, make_bad, message):
    code, out, err = run(["info", str(make_bad(tmp_path))], capsys)
    assert code == 1
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_info_verify_reports_corrupt_chunk_in_one_line(tmp_path, capsys):
    path, _, _ = make_store(tmp_path / "p.zarr", networks=4)
    corrupt_one_chunk(path)
    before = tree_digest(path)
    code, _, err = run(["info", str(path), "--verify"], capsys)
    assert code == 1
    assert "corrupt or unreadable chunk" in err and err.count("\n") == 1
    assert tree_digest(path) == before


def test_debug_shows_traceback(tmp_path):
    from engine.errors import StoreError

    with pytest.raises(StoreError):
        main(["--debug", "info", str(tmp_path / "missing.zarr")])


def test_merge_command(tmp_path, capsys):
    a, _, _ = make_store(tmp_path / "a.zarr", seed=1)
    b, _, _ = make_store(tmp_path / "b.zarr", seed=2)
    code, out, err = run(["merge", str(a), str(b), "-o", str(tmp_path / "m.zarr")], capsys)
    assert code == 0, err
    assert "10 networks from 2 stores" in out
    code, _, err = run(["merge", str(a), str(b), "-o", str(tmp_path / "m.zarr")], capsys)
    assert code == 1 and "already exists" in err


def test_merge_of_different_data_sets_fails_cleanly(tmp_path, capsys):
    a, _, _ = make_store(tmp_path / "a.zarr")
    b, _, _ = make_store(tmp_path / "b.zarr", data_seed=5)
    code, _, err = run(["merge", str(a), str(b), "-o", str(tmp_path / "m.zarr")], capsys)
    assert code == 1 and "different data sets" in err
    assert not (tmp_path / "m.zarr").exists()

"""Property-based fuzzing of ``engine train-population``'s flags and study files, and of the
flags of ``analyze``, ``pairwise`` and ``select``.

Every input, whatever hypothesis draws, must end one of three ways:

- exit 0 with a complete store (every network it owns has every checkpoint) and nothing else
  beside it (no staging ``.creating-*`` folder, no state folder unless ``--keep-state``);
- exit 2 (a usage error) with one line ``Error: ...`` naming a flag;
- exit 1 with one line ``error: ...`` naming a flag, key or value that was given, from
  :class:`engine.errors.EngineError` (not the "rerun with --debug" line of an unexpected
  exception);

and never a traceback, a half-written store, a hang (60 s per input) or any other file left in
the folder (the analyses: their output, or nothing). The draws mix cheap valid values with
hostile ones (NaN, infinities, negatives, absurdly large numbers, wrong types, path-like names),
never valid but expensive ones, so that a success costs seconds.

CI runs a quick version; ``ENGINE_FUZZ_EXAMPLES=500 pytest tests/test_fuzz_cli.py`` runs more.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, event, given, settings

import engine
from cli.app import main
from engine.testing import simulate_population

EXAMPLES = int(os.environ.get("ENGINE_FUZZ_EXAMPLES", "10"))
SECONDS_PER_INPUT = 60
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ----------------------------------------------------------------------------------------------
# The flags and the values drawn for each: cheap valid ones first, then hostile ones.

HUGE = ["1000000000", str(2**63), "100000000000000000000000"]
BAD_NUMBERS = ["nan", "inf", "-inf", "-1", "x", ""]
FLAGS: dict[str, list[str]] = {
    "--dataset": ["digits", "gaussian", "teacher", "mnist1d", "imagenet", "mnist", "npz", ""],
    "--arch": ["linear", "mlp", "cnn", "transformer", "", "../x"],
    "--networks": ["1", "2", "3", "0", "-1", "2.5", "0:2", "1:2", "2:1", "0:x", *HUGE],
    "--epochs": ["1", "2", "0", "1e23", *BAD_NUMBERS, *HUGE],
    "--seed": ["0", "7", *BAD_NUMBERS, *HUGE],
    "--vary": ["init", "order", "init,order", "weights", "", ","],
    "--record-every": ["0", "7", "-1", "x", *HUGE],
    "--subset-fraction": ["1", "0.5", "0", "1.5", "1e-300", *BAD_NUMBERS],
    "--width": ["0", "4", "8", "-1", "x", *HUGE],
    "--depth": ["0", "1", "2", "-1", "1000", *HUGE],
    "--optimizer": ["sgd", "adam", "lbfgs", ""],
    "--lr": ["0.05", "0.5", "0", "1e308", *BAD_NUMBERS],
    "--momentum": ["0", "0.9", "1", "-0.5", *BAD_NUMBERS],
    "--weight-decay": ["0", "0.0005", "1e308", *BAD_NUMBERS],
    "--schedule": ["constant", "cosine", "step", "linear"],
    "--milestones": ["1", "1,2", "0", "5", "a", "1,,2", "-1", ""],
    "--gamma": ["0.1", "1", "0", "2", *BAD_NUMBERS],
    "--batch-size": ["16", "64", "256", "0", "-1", "x", *HUGE],
    "--precision": ["fp32", "bf16", "fp16", ""],
    "--samples": ["2", "3", "10", "40", "1", "-1", "x", *HUGE],
    "--holdout-classes": ["1", "0,1", "-1", "99", "0,1,2,3,4,5,6,7,8", "x", ","],
    "--probes": ["noise", "patterns", "noise,patterns", "stars", ","],
    "--network-block": ["1", "2", "32", "0", "-1", "1025", *HUGE],
    "--group-size": ["0", "1", "2", "-1", "x", *HUGE],
    "--device": ["cpu", "cuda", "tpu", "cuda:99", ""],
    "--threads": ["0", "1", "-1", "100000", "x"],
    "--shard": ["0/1", "0/2", "1/2", "2/2", "0/0", "x", "1"],
    "--data-dir": ["", "/nonexistent/folder"],
}
SWITCHES = ["--soft", "--no-soft", "--batch-norm", "--no-batch-norm", "--augment", "--keep-state"]
BASE = {"--dataset": "digits", "--arch": "linear", "--networks": "2", "--epochs": "1"}


@st.composite
def command_lines(draw) -> list[str]:
    """A train-population command line: the base flags, some replaced, dropped or added."""
    given = dict(BASE)
    for flag in draw(st.lists(st.sampled_from(sorted(FLAGS)), max_size=5, unique=True)):
        given[flag] = draw(st.sampled_from(FLAGS[flag]))
    if draw(st.integers(0, 5)) == 0:
        del given[draw(st.sampled_from(sorted(BASE)))]  # a required flag left out
    if given.get("--dataset") == "mnist1d" and "--samples" not in given:
        given["--samples"] = "40"  # MNIST-1D's default 5000 takes seconds to generate
    args = [part for flag, value in given.items() for part in (flag, value)]
    args += draw(st.lists(st.sampled_from(SWITCHES), max_size=2, unique=True))
    if draw(st.booleans()):
        args.append("--quiet")
    return args


# ----------------------------------------------------------------------------------------------
# The analyses' flags, on a small simulated store.

ANALYSIS_FLAGS: dict[str, dict[str, list[str]]] = {
    "analyze": {
        "--split": ["train", "test", "nope", ""],
        "--scheduler": ["threads", "nope", ""],
        "--workers": ["0", "-1", "x"],
        "--cluster": ["nope", "tcp://host:x", ""],
        "--pairwise-checkpoints": ["last", "all", "none", "0", "-1", "99", "abc", "", "0,1"],
        "--device": ["cpu", "cuda", "gpu", ""],
        "--by": ["nope", ""],
    },
    "pairwise": {
        "--split": ["train", "test", "nope"],
        "--checkpoints": ["last", "all", "0", "99", "abc", ""],
        "--device": ["cpu", "cuda", "gpu"],
        "--block": ["1", "4", "0", "-1", "x", "1000000000"],
        "--bootstrap": ["0", "10", "-1", "100000000", "x"],
        "--seed": ["0", "-1", "x", str(2**64)],
    },
    "select": {
        "--fraction": ["0.5", "1", "0", "nan", "inf", "-1", "x"],
        "--region": ["easy", "ambiguous", "hard", "odd"],
        "--by": ["aum", "confidence", "variability", "accessibility", "loss"],
        "--split": ["train", "test", "nope"],
    },
}
ANALYSIS_SWITCHES = {
    "analyze": ["--require-complete", "--network-table", "--no-progress", "--no-progress"],
    "pairwise": ["--no-figures", "--no-figures", "--figures"],
    "select": ["--ascending", "--descending"],
}


@st.composite
def analysis_command_lines(draw) -> tuple[str, list[str]]:
    """A command of the analyses and some of its flags (figures and progress mostly off)."""
    command = draw(st.sampled_from(sorted(ANALYSIS_FLAGS)))
    flags = ANALYSIS_FLAGS[command]
    given = {"--fraction": "0.5", "--region": "easy"} if command == "select" else {}
    for flag in draw(st.lists(st.sampled_from(sorted(flags)), max_size=3, unique=True)):
        given[flag] = draw(st.sampled_from(flags[flag]))
    if "--by" in given and "--region" in given and draw(st.integers(0, 3)) > 0:
        del given["--region"]  # select takes one of them
    args = [part for flag, value in given.items() for part in (flag, value)]
    args += draw(st.lists(st.sampled_from(ANALYSIS_SWITCHES[command]), max_size=2, unique=True))
    return command, args


# ----------------------------------------------------------------------------------------------
# Study files: hostile values of every type for every key, and broken structure.

ANY_VALUE = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 10**9, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),  # TOML has no surrogates
    st.sampled_from(["../../x", "a/b", "..", "", "yes", "digits", "linear"]),
    st.lists(st.one_of(st.integers(-3, 12), st.text(max_size=4)), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 3), max_size=2),
)
STUDY_VALUES = {
    "epochs": [1],
    "seed": [0, 3],
    "vary": [["init"], ["order"], ["init", "order"]],
    "record_every": [0, 9],
    "subset_fraction": [1.0, 0.5],
    "network_block": [1, 2, 32],
    "soft": [True, False],
}
DATA_VALUES = {
    "name": ["digits", "gaussian", "teacher"],
    "samples": [0, 3, 40],
    "classes": [2, 3],
    "dims": [2, 5],
    "separation": [0.5, 2.0],
    "holdout_classes": [[1], []],
    "probes": [["noise"], ["patterns"], []],
    "probe_examples": [5, 50],
    "test_fraction": [0.25, 0.5],
    "data_seed": [0, 1],
}
GROUP_VALUES = {
    "name": ["g", "wide-mlp_2.0+bn", "../../x", "a/b", "..", ".hidden", "a b", ""],
    "arch": ["linear", "mlp"],
    "networks": [1, 2],
    "width": [0, 4],
    "depth": [0, 1],
    "batch_norm": [True, False],
    "optimizer": ["sgd", "adam"],
    "lr": [0.05, 1],
    "momentum": [0.0, 0.9],
    "weight_decay": [0.0, 0.0005],
    "schedule": ["constant", "cosine", "step"],
    "milestones": [[1], []],
    "gamma": [0.1, 0.5],
    "batch_size": [32, 64],
    "augment": [True, False],
    "precision": ["fp32", "bf16"],
}


#: Keys where a valid int can be expensive (many epochs, networks, examples, checkpoints...):
#: a hostile int drawn for them is moved out of the valid range instead.
COSTLY = {
    "epochs",
    "networks",
    "samples",
    "probe_examples",
    "dims",
    "classes",
    "width",
    "depth",
    "image_size",
    "batch_size",
    "record_every",
}


def _valid(draw, known: dict[str, list], required: tuple[str, ...] = ()) -> dict:
    """Some keys of a table, each with a cheap valid value."""
    keys = set(required) | set(draw(st.lists(st.sampled_from(sorted(known)), max_size=3)))
    return {key: draw(st.sampled_from(known[key])) for key in sorted(keys)}


def _hostile(draw, key: str):
    value = draw(ANY_VALUE)
    if key in COSTLY and isinstance(value, int) and not isinstance(value, bool) and value > 0:
        value = draw(st.sampled_from([-1, 10**9, 2**63]))
    return value


@st.composite
def study_documents(draw) -> dict:
    """A study file's content as a dict: a valid study of one or two groups, then up to two
    hostile changes (a value of any type under any key, an unknown key, a key removed, a
    section that is not a table)."""
    document = _valid(draw, STUDY_VALUES, required=("epochs",))
    document["data"] = _valid(draw, DATA_VALUES, required=("name",))
    if draw(st.booleans()):
        document["defaults"] = _valid(draw, GROUP_VALUES)
    groups = [
        _valid(draw, GROUP_VALUES, ("arch", "networks")) for _ in range(draw(st.integers(1, 2)))
    ]
    for number, group in enumerate(groups):
        group.setdefault("name", f"g{number}")  # unique unless a change says otherwise
    document["groups"] = groups
    for _ in range(draw(st.integers(0, 2))):
        where = draw(st.sampled_from(["top", "data", "defaults", "group", "section"]))
        if where == "section":
            document[draw(st.sampled_from(["data", "defaults", "groups"]))] = draw(ANY_VALUE)
            continue
        known = {"top": STUDY_VALUES, "data": DATA_VALUES}.get(where, GROUP_VALUES)
        table = {"top": document, "data": document.get("data")}.get(where)
        if where == "defaults":
            table = document.setdefault("defaults", {})
        elif where == "group":
            table = groups[draw(st.integers(0, len(groups) - 1))]
        if not isinstance(table, dict):
            continue
        key = draw(st.sampled_from([*sorted(known), "bogus_key"]))
        if draw(st.integers(0, 4)) == 0:
            table.pop(key, None)
        else:
            table[key] = _hostile(draw, key)
    return document


def toml_value(value) -> str:
    """A TOML literal of a value drawn above."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML's basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(document: dict) -> str:
    """The study file: plain keys first, then the tables (those that are tables)."""
    tables = {
        k: v for k, v in document.items() if k in ("data", "defaults") and isinstance(v, dict)
    }
    groups = document.get("groups")
    lines = [
        f"{key} = {toml_value(value)}"
        for key, value in document.items()
        if key not in tables and not (key == "groups" and isinstance(groups, list))
    ]
    for name, table in tables.items():
        lines += [f"[{name}]", *(f"{k} = {toml_value(v)}" for k, v in table.items())]
    if isinstance(groups, list):
        for group in groups:
            lines += ["[[groups]]", *(f"{k} = {toml_value(v)}" for k, v in group.items())]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# The property


class Hung(BaseException):
    """An input ran past its time: a hang the engine should have refused up front."""


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def stop(signum, frame):
        raise Hung(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _squashed(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def names_something(line: str, names: list[str], values: list[str]) -> bool:
    """Whether an error line names one of the flags or keys given, or one of their values
    (spelling aside: ``--weight-decay``, ``weight_decay`` and ``weight decay`` are one name)."""
    squashed = _squashed(line)
    words = [_squashed(n) for n in names] + [_squashed(v) for v in values if len(v) >= 2]
    return any(word and word in squashed for word in words)


def check_outcome(code, out, err, folder: Path, store: Path, names, values, keep_state) -> None:
    """The three allowed endings (see the module docstring), and nothing else in ``folder``."""
    event(f"exit {code}")
    assert "Traceback" not in out + err, err
    left = sorted(p.name for p in folder.iterdir() if p.name != "study.toml")
    if code == 0:
        population = engine.open_population(store)
        completed = population.checkpoints_completed()
        owned = completed[completed > 0]
        assert (owned == population.num_checkpoints).all(), completed
        state = [".pop.zarr.train-state"] if keep_state and len(left) > 1 else []
        assert left == sorted(["pop.zarr", *state]), left
        return
    assert err.count("\n") == 1, err
    assert left == [], f"{err.strip()} left {left}"
    if code == 2:
        assert err.startswith("Error: ") and ("--" in err or "Missing" in err), err
        return
    assert code == 1 and err.startswith("error: "), (code, err)
    assert "rerun with --debug" not in err, f"an unexpected exception: {err}"
    assert names_something(err, names, values), f"names no flag, key or value: {err}"


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    with time_limit(SECONDS_PER_INPUT):
        code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@FUZZ
@given(args=command_lines())
def test_fuzzed_flags_work_or_fail_in_one_line(args, capsys):
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        store = folder / "pop.zarr"
        code, out, err = _run(["train-population", *args, "--out", str(store)], capsys)
        flags = [a for a in args if a.startswith("--")]
        values = [a for a in args if not a.startswith("--")]
        check_outcome(code, out, err, folder, store, flags, values, "--keep-state" in args)


def _names_and_values(document) -> tuple[list[str], list[str]]:
    """Every key and every string or number of a document, at any depth."""
    names, values = [], []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                names.append(key)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        else:
            values.append(str(node))

    walk(document)
    # Structure errors name the file's sections as they are spelled there.
    return names + ["groups", "study file", "group"], values


@FUZZ
@given(document=study_documents())
def test_fuzzed_study_files_work_or_fail_in_one_line(document, capsys):
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        study = folder / "study.toml"
        study.write_text(toml_document(document))
        store = folder / "pop.zarr"
        args = ["train-population", "--study", str(study), "--quiet", "--out", str(store)]
        code, out, err = _run(args, capsys)
        names, values = _names_and_values(document)
        check_outcome(code, out, err, folder, store, names, values, keep_state=False)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> str:
    """A store of 8 networks, 3 checkpoints and soft verdicts (what select ranks by)."""
    path = tmp_path_factory.mktemp("simulated") / "pop.zarr"
    simulate_population(
        path, networks=8, checkpoints=3, splits={"train": 64, "test": 32}, soft=True
    )
    return str(path)


@FUZZ
@given(drawn=analysis_command_lines())
def test_fuzzed_analysis_flags_work_or_fail_in_one_line(drawn, simulated, capsys):
    command, args = drawn
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        out = folder / ("ids.npy" if command == "select" else "out")
        code, out_text, err = _run([command, simulated, *args, "--out", str(out)], capsys)
        event(f"{command} exit {code}")
        assert "Traceback" not in out_text + err, err
        left = sorted(p.name for p in folder.iterdir())
        if code == 0:
            assert left == [out.name]
            assert out.is_file() if command == "select" else any(out.iterdir())
            return
        assert err.count("\n") == 1 and left == [], (err, left)
        if code == 2:
            assert err.startswith("Error: ") and "--" in err, err
            return
        assert code == 1 and err.startswith("error: ") and "rerun with --debug" not in err, err
        flags = [a for a in args if a.startswith("--")]
        values = [a for a in args if not a.startswith("--")]
        assert names_something(err, flags, values), f"names no flag or value: {err}"


def test_the_fuzzed_study_files_are_toml():
    """The serialiser above writes what tomllib reads back (else the fuzz tests only TOML)."""
    import tomllib

    document = {
        "epochs": 1,
        "seed": float("nan"),
        "vary": ["init", 3],
        "data": {"name": "digits", "probes": {"a": 1}},
        "groups": [{"name": 'a"b\n', "arch": "mlp", "networks": True, "lr": -math.inf}],
    }
    back = tomllib.loads(toml_document(document))
    assert back["groups"][0] == {"name": 'a"b\n', "arch": "mlp", "networks": True, "lr": -math.inf}
    assert back["data"] == document["data"] and back["vary"] == ["init", 3]
    assert math.isnan(back["seed"])

"""Faults tried on purpose (docs/reliability.md): kill -9 of training, import and analysis at
random moments, a Dask worker killed mid-analysis, a full disk while training saves its state,
every kind of damage on every array of a small store, and reads while a writer is at work.

The quick version runs by default (about a minute on a shared 2-core machine): a few random
moments and one damage per array. ``CREATED_EQUAL_FAULTS=full`` runs the full one (many more
moments, every damage on several chunks of every array). With ``CREATED_EQUAL_FAULT_LOG=FILE``
every trial appends its fault, target and outcome as one JSON line to FILE, which
``benchmarks/fault_table.py`` turns into the table of docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import engine
from engine.errors import EngineError
from engine.store import verify_population

FULL = os.environ.get("CREATED_EQUAL_FAULTS", "") == "full"
#: Random moments per kill scenario: quick, full.
KILLS = {"train": (2, 12), "import": (1, 8), "analyze": (1, 6)}
#: Seeded, so that a failure can be rerun; the full suite draws other moments than the quick.
RNG = random.Random(1414 if FULL else 14)


def record(fault: str, target: str, outcome: str) -> None:
    """Append one trial to the fault log (``CREATED_EQUAL_FAULT_LOG``), if there is one."""
    log = os.environ.get("CREATED_EQUAL_FAULT_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(json.dumps({"fault": fault, "target": target, "outcome": outcome}) + "\n")


def kills(kind: str) -> int:
    return KILLS[kind][1 if FULL else 0]


# ----------------------------------------------------------------------------------------------
# A small store holding every kind of array


def make_store(path: Path, *, networks: int = 4, checkpoints: int = 3) -> Path:
    """A store of format 2 with every array the format has: predictions, soft verdicts,
    membership, example metadata (text and numbers), a probe split; several chunks each."""
    rng = np.random.default_rng(3)
    classes = 3
    labels = {"train": rng.integers(0, classes, 20), "test": rng.integers(0, classes, 12)}
    splits = {
        name: engine.SplitSpec(
            labels=values,
            soft=True,
            fingerprint=engine.split_fingerprint(np.arange(values.size), values),
            metadata={"condition": np.where(np.arange(values.size) % 2, "a", "b")}
            | ({"severity": np.arange(values.size) % 3} if name == "train" else {}),
        )
        for name, values in labels.items()
    }
    probe = np.full(9, -1)
    splits["probe"] = engine.SplitSpec(
        labels=probe, fingerprint=engine.split_fingerprint(probe, probe)
    )
    writer = engine.create_population(
        path,
        dataset_name="faults",
        splits=splits,
        groups=[
            engine.GroupSpec("a", "mlp", networks // 2, {"width": 8}),
            engine.GroupSpec("b", "cnn", networks - networks // 2),
        ],
        checkpoint_epochs=np.arange(checkpoints, dtype=float),
        checkpoint_steps=np.arange(checkpoints) * 5,
        class_names=[str(c) for c in range(classes)],
        init_seeds=np.arange(networks),
        order_seeds=np.arange(networks) + 50,
        membership_split="train",
        network_block=2,
        checkpoint_block=2,
        example_block=8,
        command="tests/test_faults.py",
    )
    for start in range(0, networks, 2):
        block = (start, min(start + 2, networks))
        size = block[1] - block[0]
        writer.record_membership(block, rng.random((size, labels["train"].size)) < 0.6)
        for checkpoint in range(checkpoints):
            for name, values in labels.items():
                logits = rng.normal(size=(size, values.size, classes)) + 2.0 * (
                    np.arange(classes) == values[:, None]
                ) * (checkpoint / max(checkpoints - 1, 1))
                writer.record(name, checkpoint, block, logits=logits.astype(np.float32))
            writer.record(
                "probe", checkpoint, block, predictions=rng.integers(0, classes, (size, 9))
            )
            writer.record_loss(checkpoint, block, rng.random(size))
            writer.mark_checkpoint(checkpoint, block)
    return path


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("small") / "pop.zarr")


# ----------------------------------------------------------------------------------------------
# Results: what analyze and pairwise give of a store, without the figures


def _without_paths(value):
    """``value`` (JSON) without what differs between two runs on equal data: paths, seconds."""
    if isinstance(value, dict):
        return {
            k: _without_paths(v)
            for k, v in value.items()
            if k not in ("store", "execution", "figures", "zarr")
        }
    if isinstance(value, list):
        return [_without_paths(v) for v in value]
    return value


def results(store: Path, out: Path, monkeypatch) -> dict:
    """summary.json, pairwise.json and the tables of ``engine analyze`` (figures left out: they
    draw what the tables hold), as comparable values."""
    from engine import pairwise as pairwise_room
    from engine.report import figures
    from engine.report.run import analyze_store

    original = pairwise_room.pairwise_report
    monkeypatch.setattr(figures, "analysis_figures", lambda *a, **k: [])
    monkeypatch.setattr(figures, "soft_figures", lambda *a, **k: [])
    monkeypatch.setattr(
        pairwise_room, "pairwise_report", lambda *a, **k: original(*a, **{**k, "figures": False})
    )
    analyze_store(str(store), out, progress=False)
    return {
        "summary": _without_paths(json.loads((out / "summary.json").read_text())),
        "pairwise": _without_paths(json.loads((out / "pairwise.json").read_text())),
        "examples": pd.read_parquet(out / "examples.parquet").to_dict("list"),
        "networks": pd.read_parquet(out / "networks.parquet").to_dict("list"),
    }


def same(left, right) -> bool:
    """Equal, NaN equal to NaN, at any depth."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, float) and isinstance(right, float):
        return left == right or (np.isnan(left) and np.isnan(right))
    if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
        return np.array_equal(np.asarray(left), np.asarray(right), equal_nan=True)
    return bool(left == right)


@pytest.fixture(scope="module")
def intact(small_store, tmp_path_factory) -> dict:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return results(small_store, tmp_path_factory.mktemp("intact"), monkeypatch)


# ----------------------------------------------------------------------------------------------
# Every kind of damage on every array

DAMAGES = ("flip", "truncate", "delete", "truncate-metadata", "delete-metadata")

#: Damage whose outcome the format cannot tell from an honest store, as docs/reliability.md
#: lists it, with the outcome seen: the only trials allowed to give results that differ from
#: the intact store's. A deleted chunk of these arrays reads as its fill value, which the format
#: (docs/store-format.md) lets a writer leave unwritten.
KNOWN_GAPS = {
    ("delete", "splits/train/membership"): "reads as trained on every example",
    ("delete", "network_init_seed"): "reads as an unknown seed (-1)",
    ("delete", "network_order_seed"): "reads as an unknown seed (-1)",
    ("delete", "checkpoint_epoch"): "reads as an unknown epoch (NaN)",
    ("delete", "checkpoint_step"): "reads as an unknown step (-1)",
}


def array_names(store: Path) -> list[str]:
    return engine.open_population(store).array_names()


def chunk_files(store: Path, name: str) -> list[Path]:
    folder = store / name / "c"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def damage(store: Path, name: str, kind: str, chunk: int) -> str:
    """Damage the array ``name`` of ``store``; returns what was damaged, for the log."""
    if kind.endswith("metadata"):
        target = store / name / "zarr.json"
    else:
        chunks = chunk_files(store, name)
        target = chunks[chunk % len(chunks)]
    data = target.read_bytes()
    if kind in ("delete", "delete-metadata"):
        target.unlink()
    elif kind in ("truncate", "truncate-metadata"):
        target.write_bytes(data[: len(data) // 2])
    else:
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0x5A
        target.write_bytes(bytes(flipped))
    return str(target.relative_to(store))


def damage_plan(names: list[str]) -> list[tuple[str, str, int]]:
    """(array, damage, chunk) trials: every damage on every array, on up to three chunks in
    the full suite; quick, one damage per array, the kinds taken in turn, and the metadata
    damages on a few arrays more."""
    if FULL:
        return [
            (n, k, c)
            for n in names
            for k in DAMAGES
            for c in range(3 if "metadata" not in k else 1)
        ]
    plan = [(name, DAMAGES[i % len(DAMAGES)], 0) for i, name in enumerate(names)]
    return plan


def outcome_of(store: Path, name: str, kind: str, out: Path, intact: dict, monkeypatch) -> str:
    """Run verify, analyze and pairwise on a damaged store; return the outcome:

    ``error``: each that read the damage stopped with a one-line error naming the array;
    ``identical``: results equal to the intact store's (and verify agrees it is sound or
    names the array); anything else fails the test.
    """
    short = name.rsplit("/", 1)[-1]
    errors = []
    try:
        verify_population(engine.open_population(store, check=False))
    except EngineError as error:
        errors.append(("verify", str(error)))
    try:
        got = results(store, out, monkeypatch)
    except EngineError as error:
        errors.append(("analyze", str(error)))
        got = None
    for who, message in errors:
        assert "\n" not in message, (who, message)
        assert name in message or short in message, (who, name, kind, message)
    if got is None:
        return "error"
    if same(got, intact):
        return "identical" if not errors else "identical (verify names it)"
    gap = KNOWN_GAPS.get((kind, name))
    assert gap is not None, f"{kind} of {name}: analysis gave other numbers without an error"
    return f"known gap: {gap}"


def test_every_damage_on_every_array_is_named_or_harmless(
    small_store, intact, tmp_path, monkeypatch
):
    names = array_names(small_store)
    plan = damage_plan(names)
    for index, (name, kind, chunk) in enumerate(plan):
        store = tmp_path / f"d{index}" / "pop.zarr"
        shutil.copytree(small_store, store)
        if not kind.endswith("metadata") and not chunk_files(store, name):
            record(f"store damage: {kind}", name, "no chunk stored (nothing to damage)")
            continue
        damage(store, name, kind, chunk)
        outcome = outcome_of(store, name, kind, tmp_path / f"o{index}", intact, monkeypatch)
        record(f"store damage: {kind}", name, outcome)
        shutil.rmtree(store.parent)

"""`engine import`: every source format on small files in its real layout, verdicts against a
direct computation, crashes that resume to the same store, importers at once, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

import engine
from cli.app import main
from engine.errors import ConfigError, WriterError
from engine.importers import (
    FINAL_CHECKPOINT,
    Examples,
    detect_format,
    import_population,
    load_examples,
    open_source,
)
from engine.importers.examples import streamed_fingerprint
from engine.importers.files import ArrayFile
from engine.store import split_fingerprint
from engine.store.format import (
    MARGIN_LIMIT,
    MARGIN_SCALE,
    PROBABILITY_SCALE,
)

ROOT = Path(__file__).resolve().parents[1]
NETWORKS, EXAMPLES, CLASSES = 40, 37, 5
BLOCK = 8  # several blocks, the last one partial where the count is not a multiple


def run(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def population_data(seed: int = 0, networks: int = NETWORKS, checkpoints: int | None = None):
    """Logits (networks, [checkpoints,] examples, classes) float16, with ties, and labels."""
    rng = np.random.default_rng(seed)
    shape = (
        (networks, EXAMPLES, CLASSES)
        if checkpoints is None
        else (networks, checkpoints, EXAMPLES, CLASSES)
    )
    logits = (3 * rng.standard_normal(shape)).astype(np.float16)
    logits[..., 0, :] = 1.0  # every class tied: the first wins
    labels = rng.integers(0, CLASSES, EXAMPLES)
    return logits, labels


def softmax(logits: np.ndarray) -> np.ndarray:
    values = logits.astype(np.float64)
    values = np.exp(values - values.max(axis=-1, keepdims=True))
    return values / values.sum(axis=-1, keepdims=True)


def store_contents(path: Path) -> dict[str, np.ndarray]:
    """Every array of a store by path, read whole."""
    root = zarr.open_group(str(path), mode="r")
    return {
        name: np.asarray(item[...])
        for name, item in root.members(max_depth=None)
        if isinstance(item, zarr.Array)
    }


def assert_same_store(a: Path, b: Path) -> None:
    """Every array equal (NaN equal to NaN) and the metadata, but the command line."""
    first, second = store_contents(a), store_contents(b)
    assert sorted(first) == sorted(second)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    meta_a = dict(engine.open_population(a).attrs)
    meta_b = dict(engine.open_population(b).attrs)
    meta_a.pop("command"), meta_b.pop("command")
    assert meta_a == meta_b


def check_logit_verdicts(path: Path, logits: np.ndarray, labels: np.ndarray, t: int = 0):
    """The stored verdicts of checkpoint ``t`` against a float64 NumPy computation."""
    population = engine.open_population(path)
    values = logits if logits.ndim == 3 else logits[:, t]
    predictions = values.astype(np.float32).argmax(axis=2)
    np.testing.assert_array_equal(population.predictions("test")[:, t].compute(), predictions)
    np.testing.assert_array_equal(
        population.correct("test")[:, t].compute(), predictions == labels[None, :]
    )
    probability = np.take_along_axis(softmax(values), labels[None, :, None], axis=2)[..., 0]
    stored = population.probability("test")[:, t].compute()
    assert np.abs(stored - probability).max() <= 1 / (2 * PROBABILITY_SCALE) + 1e-6
    wide = values.astype(np.float64)
    true = np.take_along_axis(wide, labels[None, :, None], axis=2)[..., 0]
    np.put_along_axis(wide, labels[None, :, None], -np.inf, axis=2)
    margin = np.clip(
        true - wide.max(axis=2), -MARGIN_LIMIT / MARGIN_SCALE, MARGIN_LIMIT / MARGIN_SCALE
    )
    stored_margin = population.margin("test")[:, t].compute()
    assert np.abs(stored_margin - margin).max() <= 1 / (2 * MARGIN_SCALE) + 1e-5
    assert (population.checkpoints_completed() == population.num_checkpoints).all()


# ----------------------------------------------------------------------------------------------
# Dense arrays


def test_npy_logits_import_as_soft_verdicts_of_a_final_checkpoint(tmp_path, capsys):
    logits, labels = population_data()
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    store = tmp_path / "pop.zarr"
    code, out, err = run(
        [
            "import",
            tmp_path / "logits.npy",
            "--labels",
            tmp_path / "labels.npy",
            "-o",
            store,
            "--network-block",
            BLOCK,
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    assert f"networks 0:{NETWORKS} of {NETWORKS} ({NETWORKS} imported)" in out and "logits" in out
    check_logit_verdicts(store, logits, labels)
    population = engine.open_population(store)
    assert population.soft_arrays("test") == ["probability", "margin"]
    assert np.isnan(population.checkpoints["epoch"].to_numpy()).all()
    assert population.attrs["extra"]["checkpoint_labels"] == [FINAL_CHECKPOINT]
    assert population.attrs["network_block"] == BLOCK
    assert population.attrs["class_names"] == [str(k) for k in range(CLASSES)]
    accuracy = np.asarray(population.array("splits/test/final_accuracy")[:])
    expected = (logits.astype(np.float32).argmax(axis=2) == labels).mean(axis=1)
    np.testing.assert_allclose(accuracy, expected, rtol=1e-6)


def test_checkpoints_epochs_and_every_dense_kind(tmp_path):
    logits, labels = population_data(checkpoints=3)
    np.save(tmp_path / "logits.npy", logits)
    examples = load_examples(labels=labels)
    with open_source(tmp_path / "logits.npy") as source:
        import_population(
            source,
            tmp_path / "logits.zarr",
            examples=examples,
            epochs=[0, 1, 2.5],
            network_block=BLOCK,
        )
    for t in range(3):
        check_logit_verdicts(tmp_path / "logits.zarr", logits, labels, t)
    reference = engine.open_population(tmp_path / "logits.zarr")
    np.testing.assert_array_equal(reference.checkpoints["epoch"], [0, 1, 2.5])
    assert "checkpoint_labels" not in reference.attrs["extra"]
    correct = reference.correct("test").compute()
    predictions = reference.predictions("test").compute()

    probabilities = softmax(logits).astype(np.float32)
    margins = np.where(correct, 1.0, -1.0).astype(np.float32)
    inputs = {
        "probabilities": (probabilities, "probabilities"),
        "predictions": (predictions.astype(np.int64), "predictions"),
        "correct": (correct, "correct"),
        "margins": (margins, "margins"),
    }
    for name, (values, kind) in inputs.items():
        np.save(tmp_path / f"{name}.npy", values)
        # Floats (n, t, x) could be logits (n, x, c): margins with checkpoints are declared.
        declared = "margins" if name == "margins" else None
        with open_source(tmp_path / f"{name}.npy", kind=declared) as source:
            assert source.shape.kind == kind  # inferred from dtype and shape
            import_population(
                source,
                tmp_path / f"{name}.zarr",
                examples=examples,
                epochs=[0, 1, 2.5],
                network_block=BLOCK,
            )
        population = engine.open_population(tmp_path / f"{name}.zarr")
        np.testing.assert_array_equal(population.correct("test").compute(), correct, name)
        if kind in ("probabilities", "predictions"):
            np.testing.assert_array_equal(population.predictions("test").compute(), predictions)
        else:
            assert population.predictions("test") is None
        if kind == "probabilities":
            got = population.probability("test").compute()
            want = reference.probability("test").compute()
            assert np.abs(got - want).max() <= 1 / PROBABILITY_SCALE + 1e-6
        assert population.dataset_fingerprint == reference.dataset_fingerprint


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed], ids=["stored", "compressed"])
def test_npz_members_stream_to_the_store_the_npy_gives(tmp_path, save):
    logits, labels = population_data(checkpoints=2)
    np.save(tmp_path / "logits.npy", logits)
    save(tmp_path / "dump.npz", logits=logits, labels=labels)
    with ArrayFile(tmp_path / "dump.npz", "logits") as array:
        assert array.compressed == (save is np.savez_compressed)
        np.testing.assert_array_equal(array.read(3, 9), logits[3:9])
        np.testing.assert_array_equal(array.read(5, 7, 1), logits[5:7, 1])
        np.testing.assert_array_equal(array.read(0, 2), logits[0:2])  # backwards: restarts
        np.testing.assert_array_equal(array.read_rows(np.array([1, 4, 39])), logits[[1, 4, 39]])
    for name, member in (("logits.npy", None), ("dump.npz", "logits")):
        with open_source(tmp_path / name, member=member) as source:
            import_population(
                source,
                tmp_path / f"{name}.zarr",
                examples=load_examples(labels=tmp_path / "dump.npz"),
                epochs=[1, 2],
                network_block=BLOCK,
            )
    a, b = (
        engine.open_population(tmp_path / "logits.npy.zarr"),
        engine.open_population(tmp_path / "dump.npz.zarr"),
    )
    for read in ("correct", "predictions", "probability", "margin"):
        np.testing.assert_array_equal(
            getattr(a, read)("test").compute(), getattr(b, read)("test").compute()
        )
    assert a.dataset_fingerprint == b.dataset_fingerprint


# ----------------------------------------------------------------------------------------------
# A folder of runs


def write_runs(folder: Path, logits: np.ndarray, suffix: str, names: list[str]) -> None:
    import torch

    folder.mkdir()
    for name, run_logits in zip(names, logits, strict=True):
        path = folder / f"{name}{suffix}"
        if suffix == ".npy":
            np.save(path, run_logits)
        elif suffix == ".npz":
            np.savez(path, logits=run_logits)
        else:
            torch.save({"logits": torch.from_numpy(run_logits.astype(np.float32))}, path)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".pt"])
def test_a_folder_of_runs_in_natural_order_keeps_the_file_names(tmp_path, suffix, capsys):
    logits, labels = population_data(networks=12)
    names = [f"run{i}" for i in range(12)]  # natural order: run2 before run10
    write_runs(tmp_path / "runs", logits, suffix, names)
    np.save(tmp_path / "labels.npy", labels)
    store = tmp_path / "runs.zarr"
    code, _, err = run(
        [
            "import",
            tmp_path / "runs",
            "--labels",
            tmp_path / "labels.npy",
            "-o",
            store,
            "--order",
            "natural",
            "--network-block",
            4,
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    population = engine.open_population(store)
    assert population.attrs["extra"]["network_names"] == [f"{n}{suffix}" for n in names]
    check_logit_verdicts(store, logits.astype(np.float32) if suffix == ".pt" else logits, labels)
    # By name, run10 and run11 come before run2; a listing file gives any order.
    listing = tmp_path / "order.txt"
    chosen = [3, 1, 0, 2, 11, 10, 9, 8, 4, 5, 6, 7]
    listing.write_text("# my order\n" + "\n".join(f"run{i}{suffix}" for i in chosen) + "\n")
    with open_source(tmp_path / "runs", order=str(listing)) as source:
        assert source.network_names == [f"run{i}{suffix}" for i in chosen]
        import_population(source, tmp_path / "listed.zarr", examples=load_examples(labels=labels))
    listed = engine.open_population(tmp_path / "listed.zarr").predictions("test").compute()
    np.testing.assert_array_equal(listed, population.predictions("test").compute()[chosen])
    with open_source(tmp_path / "runs", order="name") as source:
        assert source.network_names[:4] == [f"run{i}{suffix}" for i in (0, 1, 10, 11)]


def test_runs_of_predictions_with_checkpoints(tmp_path):
    rng = np.random.default_rng(3)
    predictions = rng.integers(0, CLASSES, (6, 4, EXAMPLES))
    labels = rng.integers(0, CLASSES, EXAMPLES)
    (tmp_path / "runs").mkdir()
    for i, run_predictions in enumerate(predictions):
        np.save(tmp_path / "runs" / f"seed{i}.npy", run_predictions)
    with open_source(tmp_path / "runs") as source:
        assert (source.shape.kind, source.shape.checkpoints) == ("predictions", 4)
        import_population(
            source,
            tmp_path / "p.zarr",
            examples=load_examples(labels=labels, class_names=list("abcde")),
            epochs=[0, 1, 2, 3],
        )
    population = engine.open_population(tmp_path / "p.zarr")
    np.testing.assert_array_equal(population.predictions("test").compute(), predictions)
    assert population.attrs["class_names"] == list("abcde")


# ----------------------------------------------------------------------------------------------
# A datamodels store


def write_datamodels(folder: Path, models: int, seed: int = 5):
    """The datamodels writer's layout: pre-allocated memmaps per key and _completed.npy."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    logits = np.lib.format.open_memmap(
        folder / "logits.npy", mode="w+", dtype=np.float16, shape=(models, EXAMPLES, CLASSES)
    )
    masks = np.lib.format.open_memmap(
        folder / "masks.npy", mode="w+", dtype=bool, shape=(models, EXAMPLES)
    )
    margins = np.lib.format.open_memmap(
        folder / "margins.npy", mode="w+", dtype=np.float32, shape=(models, EXAMPLES)
    )
    completed = rng.random(models) < 0.7
    for model in np.flatnonzero(completed):
        logits[model] = 3 * rng.standard_normal((EXAMPLES, CLASSES))
        masks[model] = rng.random(EXAMPLES) < 0.5
        margins[model] = rng.standard_normal(EXAMPLES)
    logits.flush(), masks.flush(), margins.flush()
    np.save(folder / "_completed.npy", completed)
    return np.asarray(logits), np.asarray(masks), np.asarray(margins), completed


def test_datamodels_completed_models_only_with_masks_as_membership(tmp_path, capsys):
    logits, masks, margins, completed = write_datamodels(tmp_path / "dm", models=30)
    labels = np.random.default_rng(1).integers(0, CLASSES, EXAMPLES)
    np.save(tmp_path / "labels.npy", labels)
    assert detect_format(tmp_path / "dm") == "datamodels"
    store = tmp_path / "dm.zarr"
    code, _, err = run(
        [
            "import",
            tmp_path / "dm",
            "--labels",
            tmp_path / "labels.npy",
            "-o",
            store,
            "--split",
            "train",
            "--network-block",
            4,
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    population = engine.open_population(store)
    kept = np.flatnonzero(completed)
    assert population.num_networks == kept.size
    assert population.attrs["extra"]["network_names"] == [str(i) for i in kept]
    assert population.attrs["membership_split"] == "train"
    np.testing.assert_array_equal(population.membership("train").compute(), masks[kept])
    np.testing.assert_array_equal(
        population.predictions("train")[:, 0].compute(),
        logits[kept].astype(np.float32).argmax(axis=2),
    )
    # margins: correctness is their sign; no masks with --masks none.
    code, _, err = run(
        [
            "import",
            tmp_path / "dm",
            "--labels",
            tmp_path / "labels.npy",
            "-o",
            tmp_path / "margins.zarr",
            "--key",
            "margins",
            "--masks",
            "none",
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    population = engine.open_population(tmp_path / "margins.zarr")
    assert population.membership() is None and population.predictions("test") is None
    np.testing.assert_array_equal(population.correct("test")[:, 0].compute(), margins[kept] > 0)


def test_datamodels_membership_feeds_hold_out_consistency(tmp_path):

    write_datamodels(tmp_path / "dm", models=24)
    labels = np.random.default_rng(1).integers(0, CLASSES, EXAMPLES)
    with open_source(tmp_path / "dm") as source:
        assert source.has_membership
        import_population(
            source, tmp_path / "dm.zarr", examples=load_examples(labels=labels, split="train")
        )
    from engine.report import analyze_store

    analyze_store(tmp_path / "dm.zarr", tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    train = summary["splits"]["train"]
    assert train["epochs"] == [None]  # the final checkpoint, of unknown epoch
    assert train["holdout_consistency_mean"][0] is not None


# ----------------------------------------------------------------------------------------------
# Trial tables


def trial_table(seed: int = 7, observers: int = 4, images: int = 12) -> pd.DataFrame:
    """Rows in model-vs-human's raw-data layout, observers in shuffled order."""
    rng = np.random.default_rng(seed)
    categories = ["airplane", "bear", "bicycle", "bird"]
    image_category = rng.choice(categories, images)
    conditions = rng.choice(["0", "3", "5"], images)
    rows = []
    for subject in range(observers):
        order = rng.permutation(images)
        for trial, image in enumerate(order):
            response = (
                image_category[image] if rng.random() < 0.6 else rng.choice(categories + ["boat"])
            )
            rows.append(
                {
                    "subj": f"subject-{subject:02d}",
                    "session": 1 + trial // 6,
                    "trial": trial + 1,
                    "rt": float(rng.integers(300, 1500)),
                    "object_response": response,
                    "category": image_category[image],
                    "condition": conditions[image],
                    "imagename": f"{image:04d}_cl_{conditions[image]}_{image_category[image]}.png",
                }
            )
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_trial_tables_observers_become_networks(tmp_path, suffix, capsys):
    table = trial_table()
    path = tmp_path / f"colour{suffix}"
    table.to_csv(path, index=False) if suffix == ".csv" else table.to_parquet(path)
    store = tmp_path / "humans.zarr"
    code, _, err = run(["import", path, "-o", store, "--no-progress"], capsys)
    assert code == 0, err
    population = engine.open_population(store)
    classes = sorted(set(table["category"]) | set(table["object_response"]))
    assert population.attrs["class_names"] == classes
    observers = sorted(table["subj"].unique())
    assert population.attrs["extra"]["network_names"] == observers
    images = sorted(table["imagename"].unique())
    first = table.drop_duplicates("imagename").set_index("imagename")
    np.testing.assert_array_equal(
        population.labels("test"), [classes.index(first.loc[i, "category"]) for i in images]
    )
    predictions = population.predictions("test")[:, 0].compute()
    for row in table.itertuples():
        n, x = observers.index(row.subj), images.index(row.imagename)
        assert predictions[n, x] == classes.index(row.object_response)
    metadata = population.example_metadata("test")
    assert sorted(metadata.columns) == ["condition", "imagename"]  # rt, trial, session vary
    assert list(metadata["imagename"].astype(str)) == images
    assert list(metadata["condition"].astype(str)) == [
        str(first.loc[i, "condition"]) for i in images
    ]
    assert population.attrs["dataset"]["name"] == "colour"


def test_trial_tables_folder_checkpoints_and_refusals(tmp_path, capsys):
    table = trial_table(observers=3)
    table["epoch"] = 0
    later = table.copy()
    later["epoch"] = 5
    (tmp_path / "tables").mkdir()
    table.to_csv(tmp_path / "tables" / "a.csv", index=False)
    later.to_csv(tmp_path / "tables" / "b.csv", index=False)
    with open_source(
        tmp_path / "tables",
        columns=engine.importers.TrialColumns(checkpoint="epoch"),
    ) as source:
        assert source.shape.checkpoints == 2
        import_population(source, tmp_path / "t.zarr")
    np.testing.assert_array_equal(
        engine.open_population(tmp_path / "t.zarr").checkpoints["epoch"], [0, 5]
    )
    # An observer that missed examples is refused, with the counts.
    partial = table[~((table["subj"] == "subject-01") & (table["trial"] <= 3))]
    partial.to_csv(tmp_path / "partial.csv", index=False)
    code, _, err = run(["import", tmp_path / "partial.csv", "-o", tmp_path / "x.zarr"], capsys)
    one_line_error(
        code,
        err,
        "observers saw different examples (12 in all)",
        "subject-01 saw 9",
        "2 of 3 saw all",
    )
    table.drop(columns="category").to_csv(tmp_path / "nolabel.csv", index=False)
    code, _, err = run(["import", tmp_path / "nolabel.csv", "-o", tmp_path / "x.zarr"], capsys)
    one_line_error(code, err, "no column 'category'", "--label-column")
    pd.concat([table, table.head(2)]).to_csv(tmp_path / "twice.csv", index=False)
    code, _, err = run(["import", tmp_path / "twice.csv", "-o", tmp_path / "x.zarr"], capsys)
    one_line_error(code, err, "2 trials repeat")
    assert not (tmp_path / "x.zarr").exists()


# ----------------------------------------------------------------------------------------------
# Examples and fingerprints


def test_fingerprints_prove_two_imports_aligned(tmp_path):
    logits, labels = population_data(networks=6)
    inputs = np.random.default_rng(2).standard_normal((EXAMPLES, 3, 4)).astype(np.float32)
    np.save(tmp_path / "inputs.npy", inputs)
    assert streamed_fingerprint(tmp_path / "inputs.npy", labels) == split_fingerprint(
        inputs, labels
    )
    np.save(tmp_path / "logits.npy", logits)
    write_runs(tmp_path / "runs", logits, ".npy", [f"r{i}" for i in range(6)])
    examples = load_examples(labels=labels, inputs=tmp_path / "inputs.npy")
    for name in ("logits.npy", "runs"):
        with open_source(tmp_path / name) as source:
            import_population(source, tmp_path / f"{name}.zarr", examples=examples)
    a = engine.open_population(tmp_path / "logits.npy.zarr")
    b = engine.open_population(tmp_path / "runs.zarr")
    assert a.dataset_fingerprint == b.dataset_fingerprint
    assert a.attrs["splits"]["test"]["fingerprint"] == split_fingerprint(inputs, labels)
    other = load_examples(labels=labels[::-1].copy())
    assert other.fingerprint == "" and examples.fingerprint != ""


def test_labels_from_a_built_in_data_set_match_its_trained_fingerprint(tmp_path):
    from engine.train.data import DataConfig, load_dataset

    dataset = load_dataset(DataConfig(name="digits"))
    test = dataset.splits["test"]
    examples = load_examples(dataset="digits")
    assert examples.fingerprint == dataset.fingerprints()["test"]
    np.testing.assert_array_equal(examples.labels, test.labels)
    np.testing.assert_array_equal(examples.example_ids, test.example_ids)
    assert examples.class_names == dataset.class_names
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, len(test), dataset.num_classes)).astype(np.float32)
    np.save(tmp_path / "digits.npy", logits)
    with open_source(tmp_path / "digits.npy") as source:
        import_population(source, tmp_path / "d.zarr", examples=examples)
    population = engine.open_population(tmp_path / "d.zarr")
    assert population.attrs["dataset"]["name"] == "digits"
    np.testing.assert_array_equal(population.example_ids("test"), test.example_ids)


# ----------------------------------------------------------------------------------------------
# Resuming and importers at once


def test_a_writer_that_fails_after_some_blocks_resumes_to_the_same_store(tmp_path, monkeypatch):
    logits, labels = population_data(checkpoints=2)
    np.save(tmp_path / "logits.npy", logits)
    examples = load_examples(labels=labels)

    def do_import(out: Path) -> None:
        with open_source(tmp_path / "logits.npy") as source:
            import_population(source, out, examples=examples, epochs=[0, 1], network_block=BLOCK)

    do_import(tmp_path / "whole.zarr")
    calls = {"count": 0}
    original = engine.PopulationWriter.mark_checkpoint

    def failing(self, checkpoint, networks):
        calls["count"] += 1
        if calls["count"] == 5:  # the third block's first checkpoint, recorded, not marked
            raise OSError("disk full")
        original(self, checkpoint, networks)

    monkeypatch.setattr(engine.PopulationWriter, "mark_checkpoint", failing)
    with pytest.raises(OSError, match="disk full"):
        do_import(tmp_path / "resumed.zarr")
    completed = engine.open_population(tmp_path / "resumed.zarr").checkpoints_completed()
    np.testing.assert_array_equal(completed, [2] * 16 + [0] * (NETWORKS - 16))
    monkeypatch.setattr(engine.PopulationWriter, "mark_checkpoint", original)
    with open_source(tmp_path / "logits.npy") as source:
        report = import_population(
            source, tmp_path / "resumed.zarr", examples=examples, epochs=[0, 1]
        )
    assert (report.imported_networks, report.skipped_networks) == (NETWORKS - 16, 16)
    assert_same_store(tmp_path / "whole.zarr", tmp_path / "resumed.zarr")


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import engine
    kill_at = int(os.environ["KILL_AT"])
    original = engine.PopulationWriter.record
    calls = [0]

    def record(self, *args, **kwargs):
        original(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] == kill_at:  # recorded, not yet marked: as a kill -9 mid-block leaves it
            os.kill(os.getpid(), signal.SIGKILL)

    if kill_at:
        engine.PopulationWriter.record = record
    from cli.app import main
    sys.exit(main(sys.argv[1:]))
    """
)


def cli_child(args: list, kill_at: int = 0) -> subprocess.Popen:
    environment = {**os.environ, "KILL_AT": str(kill_at)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *map(str, args)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_a_killed_import_resumes_and_importers_at_once_fill_one_store(tmp_path, capsys):
    logits, labels = population_data(networks=44)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    common = [
        "import",
        tmp_path / "logits.npy",
        "--labels",
        tmp_path / "labels.npy",
        "--network-block",
        BLOCK,
        "--no-progress",
    ]
    assert run([*common, "-o", tmp_path / "whole.zarr"], capsys)[0] == 0
    # kill -9 in the middle of the fourth block.
    child = cli_child([*common, "-o", tmp_path / "killed.zarr"], kill_at=4)
    child.communicate(timeout=300)
    assert child.returncode == -signal.SIGKILL
    completed = engine.open_population(tmp_path / "killed.zarr").checkpoints_completed()
    assert completed.sum() == 3 * BLOCK
    code, out, err = run([*common, "-o", tmp_path / "killed.zarr"], capsys)
    assert code == 0, err
    assert "20 imported, 24 already there" in out
    assert_same_store(tmp_path / "whole.zarr", tmp_path / "killed.zarr")
    # Two importers at once on disjoint blocks, into a store that neither finds made.
    children = [
        cli_child([*common, "-o", tmp_path / "both.zarr", "--networks", networks])
        for networks in ("0:24", "24:44")
    ]
    for child in children:
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
    assert_same_store(tmp_path / "whole.zarr", tmp_path / "both.zarr")


# ----------------------------------------------------------------------------------------------
# One-line errors


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    logits, labels = population_data(checkpoints=2)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "final.npy", logits[:, -1])
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "short.npy", labels[:-1])
    np.save(tmp_path / "vector.npy", labels.astype(np.float32))
    np.save(tmp_path / "big.npy", labels + CLASSES)
    bad = logits[:, -1].copy()
    bad[9, 3, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    np.savez(tmp_path / "two.npz", a=logits, b=logits)
    np.save(tmp_path / "fortran.npy", np.asfortranarray(logits[:, -1]))
    out = tmp_path / "out.zarr"
    lab = ["--labels", tmp_path / "labels.npy"]
    cases = [
        (["import", tmp_path / "missing.npy", *lab], "does not exist"),
        (
            ["import", tmp_path / "final.npy", "--labels", tmp_path / "short.npy"],
            f"holds {EXAMPLES} examples per network but there are {EXAMPLES - 1} labels",
        ),
        (
            ["import", tmp_path / "final.npy", "--labels", tmp_path / "big.npy"],
            f"labels go up to {int(labels.max()) + CLASSES} but the source has {CLASSES} classes",
        ),
        (
            ["import", tmp_path / "final.npy", *lab, "--class-names", "a,b"],
            f"the source has {CLASSES} classes but 2 class names",
        ),
        (["import", tmp_path / "logits.npy", *lab], "holds 2 checkpoints: give their epochs"),
        (
            ["import", tmp_path / "logits.npy", *lab, "--epochs", "0,1,2"],
            "holds 2 checkpoints but 3 epochs",
        ),
        (
            ["import", tmp_path / "final.npy", *lab, "--kind", "predictions"],
            "holds float16, which cannot hold predictions",
        ),
        (
            ["import", tmp_path / "vector.npy", *lab, "--kind", "logits"],
            "has shape (37,); logits need (networks, [checkpoints,] examples, classes)",
        ),
        (["import", tmp_path / "two.npz", *lab], "holds 2 arrays (a, b); choose one with --member"),
        (["import", tmp_path / "two.npz", *lab, "--member", "c"], "has no array 'c'"),
        (["import", tmp_path / "fortran.npy", *lab], "Fortran order"),
        (["import", tmp_path / "final.npy"], "give --labels FILE or --labels-from-dataset NAME"),
        (
            ["import", tmp_path / "final.npy", *lab, "--networks", "3:16", "--network-block", "8"],
            "must start and end on blocks of 8 networks",
        ),
        (["import", tmp_path / "final.npy", *lab, "--networks", "0-8"], "give START:STOP"),
        (["import", tmp_path / "final.npy", "--labels-from-dataset", "nope"], "unknown data set"),
    ]
    for args, message in cases:
        code, _, err = run([*args, "-o", out, "--no-progress"], capsys)
        one_line_error(code, err, message)
        assert not out.exists(), args
    code, _, err = run(["import", tmp_path / "nan.npy", *lab, "-o", out], capsys)
    one_line_error(code, err, "logits hold NaN or infinite values")
    # A store of another import is refused; so is a store that no import made.
    assert run(["import", tmp_path / "final.npy", *lab, "-o", tmp_path / "a.zarr"], capsys)[0] == 0
    code, _, err = run(["import", tmp_path / "nan.npy", *lab, "-o", tmp_path / "a.zarr"], capsys)
    one_line_error(code, err, "holds another import", "source.file (final.npy in the store")
    np.save(tmp_path / "other.npy", np.roll(labels, 1))
    code, _, err = run(
        [
            "import",
            tmp_path / "final.npy",
            "--labels",
            tmp_path / "other.npy",
            "-o",
            tmp_path / "a.zarr",
        ],
        capsys,
    )
    one_line_error(code, err, "holds another import: fingerprint")
    from tests.test_store import make_store

    made, _, _ = make_store(tmp_path / "trained.zarr", networks=2)
    code, _, err = run(["import", tmp_path / "final.npy", *lab, "-o", made], capsys)
    one_line_error(code, err, "was not made by engine import")


def test_the_default_block_keeps_a_block_within_its_bytes():
    from engine.importers import Source, SourceShape, default_block

    def source(examples, classes, checkpoints=1, item_bytes=2, reads_whole=False):
        made = Source()
        made.shape = SourceShape("logits", 61565, checkpoints, examples, classes)
        made.item_bytes, made.reads_whole = item_bytes, reads_whole
        return made

    assert default_block(source(10000, 10)) == 128  # CIFAR-10 test logits, float16: 26 MB
    assert default_block(source(10000, 10, checkpoints=50)) == 128  # read a checkpoint at a time
    assert default_block(source(10000, 10, checkpoints=50, reads_whole=True)) == 2
    assert default_block(source(50000, 1000, item_bytes=4)) == 1  # ImageNet logits: 200 MB each
    assert default_block(source(37, 5)) == 128


def test_python_errors_are_engine_errors(tmp_path):
    logits, labels = population_data()
    np.save(tmp_path / "logits.npy", logits)
    with pytest.raises(ConfigError, match="unknown format"):
        open_source(tmp_path / "logits.npy", format="hdf5")
    with pytest.raises(ConfigError, match="unknown kind"):
        open_source(tmp_path / "logits.npy", kind="scores")
    bad = logits.copy()
    bad[0, 0, 0] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    with open_source(tmp_path / "inf.npy") as source, pytest.raises(WriterError, match="NaN"):
        import_population(source, tmp_path / "x.zarr", examples=Examples(labels=labels))

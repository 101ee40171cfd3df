"""The in-memory analysis API (`engine.analyze`, `engine.compare`) and `open_pairwise` as a
Dataset: lazy until computed, one pass over the chunks, the same numbers as plain NumPy and as
the files `engine analyze` and `engine compare` write."""

from __future__ import annotations

import json
import subprocess
import sys

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from dask.callbacks import Callback

import engine
from engine.analysis import VARIABLES
from engine.errors import ConfigError, StoreError
from engine.measures import CHUNK_TASK_PREFIXES
from engine.pairwise import open_pairwise, pairwise_report
from engine.report import analyze_store, compare_stores
from engine.testing import simulate_population


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """13 networks in 2 groups, 4 checkpoints, awkward chunks, membership, predictions, soft
    verdicts, and a probe split without labels."""
    path = tmp_path_factory.mktemp("api") / "s.zarr"
    return simulate_population(
        path,
        networks=13,
        checkpoints=4,
        splits={"train": 57, "test": 33},
        probe_examples=11,
        groups=2,
        membership=True,
        predictions=True,
        soft=True,
        seed=5,
        network_block=4,
        checkpoint_block=3,
        example_block=16,
    )


@pytest.fixture(scope="module")
def computed(store):
    return engine.analyze(store.path).compute()


class _Tasks(Callback):
    """Counts the chunk-reading tasks run (local schedulers)."""

    def __init__(self):
        super().__init__()
        self.reads = 0
        self.tasks = 0

    def _posttask(self, key, result, dsk, state, worker_id):
        self.tasks += 1
        name = key[0] if isinstance(key, tuple) else key
        if str(name).startswith(CHUNK_TASK_PREFIXES):
            self.reads += 1


def test_building_computes_nothing_and_values_are_dask(store):
    with _Tasks() as tasks:
        analysis = engine.analyze(store.path, splits="test,probe")
        dataset = analysis.split("test")
    assert tasks.tasks == 0
    assert not analysis.computed
    assert analysis.splits == ("test", "probe")
    assert isinstance(dataset["accessibility"].data, da.Array)
    assert isinstance(dataset["tpa_histogram"].data, da.Array)


def test_one_dataset_compute_reads_each_chunk_once(store):
    analysis = engine.analyze(store.path, splits="test")
    with _Tasks() as whole:
        dataset = analysis.split("test").compute()
    # The same counts computed directly: as many chunk reads for all 40-odd variables.
    counts = analysis.lazy_counts["test"]
    arrays = [a for part in (counts.verdicts, counts.classes, counts.soft) for a in part.values()]
    with _Tasks() as direct:
        dask.compute(*arrays)
    assert whole.reads == direct.reads > 0
    assert len(dataset.data_vars) > 30


def test_lazy_datasets_equal_the_computed_ones(store, computed):
    for split in computed.splits:
        for group in (None, *computed.groups):
            lazy = engine.analyze(store.path).split(split, group)
            xr.testing.assert_identical(lazy.compute(), computed.split(split, group))
    # Every split and group at once: one computation, the same values.
    lazy = engine.analyze(store.path).datasets()
    (loaded,) = dask.compute(lazy)
    for split, per_group in loaded.items():
        for group, dataset in per_group.items():
            xr.testing.assert_identical(dataset, computed.split(split, group))


def test_values_equal_numpy(store, computed):
    correct = store.correct("test").compute()  # (n, t, x)
    labels = store.labels("test")
    dataset = computed.split("test")
    tpa = correct.mean(axis=0)
    np.testing.assert_allclose(dataset["tpa"], tpa)
    # By default the initialisation checkpoint (epoch 0) is left out of accessibility.
    assert computed.selection.accessibility.start == 1
    assert dataset.attrs["accessibility_from"] == "first-trained"
    assert dataset.attrs["accessibility_first_checkpoint"] == 1
    np.testing.assert_allclose(dataset["accessibility"], tpa[1:].mean(axis=0))
    np.testing.assert_allclose(dataset["tpa_last"], tpa[-1])
    np.testing.assert_allclose(dataset["accuracy_mean"], correct.mean(axis=2).mean(axis=0))
    np.testing.assert_allclose(dataset["network_accuracy"], correct.mean(axis=2))
    histogram = np.stack([np.bincount(c, minlength=14) for c in correct.sum(axis=0)])
    np.testing.assert_array_equal(dataset["tpa_histogram"], histogram)
    assert dataset["tpa_histogram"].dims == ("checkpoints", "k")
    np.testing.assert_array_equal(dataset["label"], labels)
    np.testing.assert_array_equal(dataset["epoch"], store.checkpoints["epoch"])
    # A group's Dataset pools its own networks only.
    group = computed.split("test", "group1")
    members = (store.networks["group"] == "group1").to_numpy()
    np.testing.assert_array_equal(group["networks"], np.flatnonzero(members))
    np.testing.assert_allclose(
        group["accessibility"], correct[members].mean(axis=0)[1:].mean(axis=0)
    )
    assert set(group["group"].values) == {"group1"}


def test_every_variable_says_what_it_is(computed):
    for split in computed.splits:
        dataset = computed.split(split)
        for name, variable in dataset.data_vars.items():
            assert variable.dims == VARIABLES[name].dims
            assert variable.dtype == np.dtype(VARIABLES[name].dtype)
            for key in ("long_name", "units", "description"):
                assert variable.attrs[key], (split, name, key)
    assert computed.split("train")["population_region"].attrs["flag_meanings"]


def test_splits_hold_what_they_have(computed):
    probe, test, train = (computed.split(s) for s in ("probe", "test", "train"))
    # No labels: consensus only, over every checkpoint.
    assert set(probe.data_vars) == {v.name for v in VARIABLES.values() if v.kind == "consensus"}
    assert np.isfinite(probe["consensus_mean"]).all()
    # Labels: consensus at the last checkpoint only; membership on train.
    assert np.isnan(test["consensus_mean"][:-1]).all() and np.isfinite(test["consensus_mean"][-1])
    assert "holdout_consistency" in train and "holdout_consistency" not in test
    assert "confidence_mean" in test


def test_files_hold_the_same_numbers(store, computed, tmp_path):
    analyze_store(store.path, tmp_path, pairwise_checkpoints="none", progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    examples = pd.read_parquet(tmp_path / "examples.parquet")
    networks = pd.read_parquet(tmp_path / "networks.parquet")
    histograms = pd.read_parquet(tmp_path / "histograms.parquet")
    tables = computed.tables
    pd.testing.assert_frame_equal(examples, tables["examples"])
    pd.testing.assert_frame_equal(networks, tables["networks"], check_dtype=False)
    pd.testing.assert_frame_equal(histograms, tables["histograms"])
    for split in ("train", "test"):
        dataset, written = computed.split(split), summary["splits"][split]
        for name in ("accuracy_mean", "extreme_fraction", "extreme_fraction_null"):
            np.testing.assert_array_equal(dataset[name], written[name])
        excess = [np.nan if v is None else v for v in written["agreement_excess"]]
        np.testing.assert_array_equal(dataset["agreement_excess"], excess)
        assert float(dataset["split_half_spearman"]) == written["split_half_spearman"]
        rows = examples[examples["split"] == split]
        for name in ("accessibility", "learning_order", "first_learned_mean", "aum_mean"):
            np.testing.assert_array_equal(rows[name], dataset[name])
        np.testing.assert_array_equal(
            rows["accessibility_group0"], computed.split(split, "group0")["accessibility"]
        )
        np.testing.assert_array_equal(
            networks[f"accuracy_{split}"], dataset["network_accuracy"][:, -1]
        )
        tpa = histograms[
            (histograms["split"] == split)
            & (histograms["group"] == "all")
            & (histograms["measure"] == "tpa")
        ]
        np.testing.assert_array_equal(tpa["examples"], dataset["tpa_histogram"].values.ravel())


def test_compare(store, tmp_path):
    # The same seed gives the same examples; 9 networks, not 13, a population of its own.
    other = simulate_population(
        tmp_path / "other.zarr",
        networks=9,
        checkpoints=4,
        splits={"train": 57, "test": 33},
        probe_examples=11,
        seed=5,
    )
    stores = [store.path, other.path]
    with _Tasks() as tasks:
        comparison = engine.compare(stores, splits="test")
    assert tasks.tasks == 0
    assert comparison.names == ("s", "other")
    stacked = comparison.split("test")
    assert stacked["accessibility"].dims == ("populations", "examples")
    np.testing.assert_array_equal(
        stacked["accessibility"].sel(populations="other"),
        engine.analyze(other.path, "test").split("test")["accessibility"].compute(),
    )
    compare_stores(stores, tmp_path / "cmp", splits="test", pairwise=False, progress=False)
    summary = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    (written,) = summary["pairs"]["test"]
    (row,) = comparison.pairs().to_dict("records")
    for key in ("spearman", "pearson", "kendall", "superset_fraction", "ceiling"):
        assert row[key] == written[key]
    assert list(comparison.generalisation()["population"]) == ["s", "other"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "cmp" / "histograms.parquet"), comparison.histograms()
    )


def test_bad_input_says_what(store, computed):
    with pytest.raises(StoreError, match="nope"):
        engine.analyze(store.path, splits="nope")
    with pytest.raises(ConfigError, match="group 'nope' is not in the store"):
        computed.split("test", "nope")
    with pytest.raises(ConfigError, match="split 'probe' is not analysed"):
        engine.analyze(store.path, splits="test").split("probe")
    with pytest.raises(ConfigError, match="at least two stores"):
        engine.compare([store.path])


def test_import_engine_stays_light():
    code = (
        "import sys, engine; engine.__dir__(); "
        "print(sorted(m for m in ('xarray', 'pandas', 'dask', 'zarr') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert {"analyze", "compare", "Analysis"} <= set(dir(engine))


def test_benchmark_smoke(tmp_path):
    from tests.test_benchmarks import json_lines, positive, run_benchmark

    out = run_benchmark("bench_analysis_api.py", tmp_path, "--smoke", "--dir", str(tmp_path))
    (row,) = json_lines(out)
    assert all(positive(row[k]) for k in ("counts_s", "analysis_s", "lazy_s", "tables_s"))
    assert positive(row["analysis_over_counts"])


# ----------------------------------------------------------------------------------------------
# open_pairwise


@pytest.fixture(scope="module")
def pairwise_out(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("pw")
    pairwise_report(
        store, out, splits=["train", "test"], checkpoints="0,3", bootstrap=0, figures=False
    )
    return out


def test_open_pairwise_stacks_checkpoints(store, pairwise_out):
    matrices = open_pairwise(pairwise_out, "test")
    assert matrices["kappa"].dims == ("checkpoints", "networks", "networks_other")
    assert isinstance(matrices["agree"].data, da.Array)
    assert list(matrices["checkpoints"].values) == [0, 3]
    np.testing.assert_array_equal(matrices["epoch"], store.checkpoints["epoch"].to_numpy()[[0, 3]])
    assert "correct_count_1" not in matrices
    correct = store.correct("test").compute()[:, [0, 3]].astype(np.int64)  # (n, 2, x)
    both = np.einsum("itx,jtx->tij", correct, correct)
    wrong = np.einsum("itx,jtx->tij", 1 - correct, 1 - correct)
    np.testing.assert_array_equal(matrices["both_correct"].compute(), both)
    np.testing.assert_array_equal(matrices["agree"].compute(), both + wrong)
    np.testing.assert_allclose(matrices["agreement"], (both + wrong) / 33, rtol=1e-6)
    np.testing.assert_array_equal(matrices["correct_count"], correct.sum(axis=2).T)
    for name, variable in matrices.data_vars.items():
        assert variable.attrs["long_name"] and variable.attrs["description"], name
    eager = open_pairwise(pairwise_out, "test", 3, lazy=False)
    assert isinstance(eager["kappa"].data, np.ndarray) and eager["kappa"].dims == (
        "networks",
        "networks_other",
    )
    np.testing.assert_array_equal(eager["agree"], both[1] + wrong[1])


def test_open_pairwise_of_several_splits(pairwise_out):
    matrices = open_pairwise(pairwise_out, lazy=False)  # the default two-split output
    assert matrices["kappa"].dims == ("splits", "checkpoints", "networks", "networks_other")
    assert list(matrices["splits"].values) == ["test", "train"]
    np.testing.assert_array_equal(matrices["num_examples"].sel(checkpoints=3), [33, 57])
    xr.testing.assert_equal(
        matrices["kappa"].sel(splits="train", drop=True),
        open_pairwise(pairwise_out, "train", lazy=False)["kappa"],
    )
    for kwargs, error, message in [
        (dict(split="probe"), StoreError, "split 'probe' is not in"),
        (dict(split="test", checkpoint=1), StoreError, "checkpoint 1 of split 'test'"),
        (dict(group="stores_0_1/test"), StoreError, "no group"),
    ]:
        with pytest.raises(error, match=message):
            open_pairwise(pairwise_out, **kwargs)
    with pytest.raises(StoreError, match="no pairwise.zarr"):
        open_pairwise(pairwise_out / "nothing")


def test_accessibility_from_the_initialisation_averages_every_checkpoint(store):
    tpa = store.correct("test").compute().mean(axis=0)
    analysis = engine.analyze(store.path, "test", accessibility_from="initialisation")
    dataset = analysis.compute().split("test")
    np.testing.assert_allclose(dataset["accessibility"], tpa.mean(axis=0))
    with pytest.raises(engine.ConfigError, match="accessibility"):
        engine.analyze(store.path, accessibility_from="epoch-3")

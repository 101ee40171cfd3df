"""pairwise_report and cross_pairwise_report: tiles, schedulers, bootstrap, errors, CLI."""

import json

import dask
import numpy as np
import pytest
import zarr

from engine.errors import ConfigError, EngineError, StoreError
from engine.pairwise import cross_pairwise_report, open_pairwise, pairwise_report
from engine.pairwise.inputs import network_weights
from engine.pairwise.summaries import KappaSample, kappa_example_bootstrap
from engine.testing import simulate_population
from tests.reference_pairwise import pairwise_matrices


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    path = tmp_path_factory.mktemp("pairwise") / "population.zarr"
    return simulate_population(
        path,
        networks=45,
        checkpoints=3,
        splits={"test": 130},
        groups=[20, 25],
        predictions=True,
        classes=5,
        seed=1,
    )


@pytest.fixture(scope="module")
def direct(population):
    """Reference matrices of every checkpoint, computed without tiles."""
    correct = population.correct("test").compute()
    predictions = population.predictions("test").compute()
    return [pairwise_matrices(correct[:, t], predictions[:, t]) for t in range(3)]


def _read(out, t, name="kappa"):
    return open_pairwise(out, "test", t, lazy=False)[name]


def _pair_mean(matrix, mask=None):
    upper = np.triu(np.ones(matrix.shape, bool), 1)
    if mask is not None:
        upper &= mask
    values = matrix[upper].astype(np.float64)
    return np.nanmean(values)


def test_tiles_equal_direct_computation(population, direct, tmp_path):
    report = pairwise_report(population, tmp_path, checkpoints="all", block=16, bootstrap=20)
    root = zarr.open_group(str(tmp_path / "pairwise.zarr"), mode="r")
    for t in range(3):
        group = open_pairwise(tmp_path, "test", t, lazy=False)
        for name in ("both_correct", "agree", "prediction_agree"):
            np.testing.assert_array_equal(group[name], direct[t][name])
        # atol: where kappa is exactly 0 the reference's float64 order of operations leaves
        # ~1e-15, which no relative tolerance accepts.
        np.testing.assert_allclose(
            group["kappa"], direct[t]["kappa"], rtol=1e-6, atol=1e-12, equal_nan=True
        )
        stored = root[f"test/checkpoint_{t}"]
        assert stored["kappa"].metadata.dimension_names == ("networks_0", "networks_1")
        # Agreement is derived on read, counts are stored as uint16 (X = 130).
        assert "agree" not in stored
        assert stored["both_correct"].dtype == np.uint16
        assert stored["prediction_agree"].dtype == np.uint16
        summary = report["splits"]["test"]["checkpoints"][str(t)]
        assert summary["pairs"] == 45 * 44 // 2
        assert summary["kappa"]["all"]["mean"] == pytest.approx(
            _pair_mean(direct[t]["kappa"]), rel=1e-5
        )
        assert summary["agreement"]["all"]["mean"] == pytest.approx(
            _pair_mean(direct[t]["agree"] / 130), rel=1e-9
        )
        assert summary["prediction_agreement"]["all"]["mean"] == pytest.approx(
            _pair_mean(direct[t]["prediction_agree"] / 130), rel=1e-9
        )
        same = np.equal.outer(population.network_groups(), population.network_groups())
        assert summary["kappa"]["within"]["mean"] == pytest.approx(
            _pair_mean(direct[t]["kappa"], same), rel=1e-5
        )
        assert summary["kappa"]["between"]["mean"] == pytest.approx(
            _pair_mean(direct[t]["kappa"], ~same), rel=1e-5
        )
        for name in ("agreement", "kappa", "prediction_agreement"):
            low, high = summary[name]["all"]["networks_ci"]
            assert low <= summary[name]["all"]["mean"] <= high
            low, high = summary[name]["all"]["examples_ci"]
            assert low < high
    saved = json.loads((tmp_path / "pairwise.json").read_text())
    assert saved["splits"]["test"]["checkpoints"]["2"]["pairs"] == 990
    assert {"kappa_heatmap_test_checkpoint2.png", "kappa_distribution_test_checkpoint2.png"} <= set(
        report["figures"]
    )
    assert all((tmp_path / f).stat().st_size > 1000 for f in report["figures"])


def test_network_bootstrap_is_the_weighted_pair_mean(population, direct, tmp_path):
    """One replicate: its interval is that replicate's weighted mean over distinct pairs, per
    group pair, the group pairs weighted by their pairs in the estimate (pooling the
    replicate's own weighted pairs leans: tests/test_pairwise_groups.py)."""
    report = pairwise_report(population, tmp_path, bootstrap=1, seed=7, figures=False)
    groups = population.network_groups()
    weights = network_weights(groups, 1, np.random.default_rng(7))[:, 0].astype(np.float64)
    kappa = direct[2]["kappa"].astype(np.float64)
    upper = np.triu(np.ones(kappa.shape, bool), 1) & np.isfinite(kappa)
    same = groups[:, None] == groups[None, :]
    means, counts = [], []
    for pairs in [upper & same & (groups[:, None] == g) for g in (0, 1)] + [upper & ~same]:
        pair_weights = np.outer(weights, weights) * pairs
        means.append((pair_weights * np.nan_to_num(kappa)).sum() / pair_weights.sum())
        counts.append(pairs.sum())
    expected = np.average(means, weights=counts)
    low, high = report["splits"]["test"]["checkpoints"]["2"]["kappa"]["all"]["networks_ci"]
    assert low == pytest.approx(expected, rel=1e-5)
    assert high == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("block,scheduler", [(7, "sync"), (64, "threads"), (16, "processes")])
def test_blocks_and_schedulers_agree(population, direct, tmp_path, block, scheduler):
    with dask.config.set(scheduler=scheduler):
        report = pairwise_report(
            population, tmp_path, block=block, bootstrap=10, seed=3, figures=False
        )
    for name in ("both_correct", "agree", "prediction_agree"):
        np.testing.assert_array_equal(_read(tmp_path, 2, name), direct[2][name])
    summary = report["splits"]["test"]["checkpoints"]["2"]
    assert summary["kappa"]["all"]["mean"] == pytest.approx(
        _pair_mean(direct[2]["kappa"]), rel=1e-5
    )
    reference = pairwise_report(
        population, tmp_path / "ref", block=45, bootstrap=10, seed=3, figures=False
    )["splits"]["test"]["checkpoints"]["2"]
    np.testing.assert_allclose(
        summary["kappa"]["all"]["networks_ci"], reference["kappa"]["all"]["networks_ci"], rtol=1e-5
    )


@pytest.mark.distributed
def test_local_cluster(population, direct, tmp_path):
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        pairwise_report(population, tmp_path, block=16, bootstrap=5, figures=False)
    np.testing.assert_array_equal(_read(tmp_path, 2, "both_correct"), direct[2]["both_correct"])


def test_network_subset(population, direct, tmp_path):
    ids = np.array([3, 1, 40, 22, 9])
    report = pairwise_report(population, tmp_path, networks=ids, bootstrap=0, figures=False)
    order = np.sort(ids)
    np.testing.assert_array_equal(
        _read(tmp_path, 2, "agree"), direct[2]["agree"][np.ix_(order, order)]
    )
    np.testing.assert_array_equal(
        zarr.open_group(str(tmp_path / "pairwise.zarr"))["test/checkpoint_2/networks_0"][:], order
    )
    assert report["splits"]["test"]["checkpoints"]["2"]["pairs"] == 10


def test_cross_stores(population, direct, tmp_path):
    # The same store twice: the cross matrix is the full square matrix.
    report = cross_pairwise_report([population, population.path], tmp_path, bootstrap=10, block=16)
    matrices = open_pairwise(tmp_path, group="stores_0_1/test", lazy=False)
    np.testing.assert_array_equal(matrices["agree"], direct[2]["agree"])
    np.testing.assert_array_equal(
        matrices["correct_count_other"], direct[2]["both_correct"].diagonal()
    )
    kappa = direct[2]["kappa"].astype(np.float64)
    comparison = report["comparisons"][0]
    assert comparison["kappa"]["all"]["mean"] == pytest.approx(np.nanmean(kappa), rel=1e-5)
    assert comparison["pairs"] == 45 * 45


def test_cross_stores_need_the_same_examples(population, tmp_path):
    other = simulate_population(
        tmp_path / "other.zarr", networks=4, checkpoints=1, splits={"test": 131}, seed=2
    )
    with pytest.raises(StoreError, match="different examples"):
        cross_pairwise_report([population, other], tmp_path / "out")


@pytest.mark.parametrize(
    "kwargs,error",
    [
        (dict(splits=["bogus"]), "does not exist"),
        (dict(checkpoints=[0, 5]), "outside"),
        (dict(checkpoints="zero"), "comma list"),
        (dict(networks=[0, 0, 1]), "unique"),
        (dict(networks=[99]), "must lie"),
        (dict(block=0), "block"),
        (dict(bootstrap=-1), "bootstrap"),
        (dict(device="tpu"), "device"),
    ],
)
def test_bad_inputs(population, tmp_path, kwargs, error):
    with pytest.raises(EngineError, match=error):
        pairwise_report(population, tmp_path, **kwargs)


def test_missing_store(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        pairwise_report(tmp_path / "nothing", tmp_path / "out")


def test_cuda_unavailable(population, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ConfigError, match="no CUDA device"):
        pairwise_report(population, tmp_path, device="cuda")


@pytest.mark.gpu
def test_gpu_equals_cpu(population, tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for block in (16, 45):
        gpu = pairwise_report(
            population,
            tmp_path / f"gpu{block}",
            checkpoints="all",
            device="cuda",
            block=block,
            bootstrap=5,
            figures=False,
        )
        cpu = pairwise_report(
            population,
            tmp_path / f"cpu{block}",
            checkpoints="all",
            device="cpu",
            block=block,
            bootstrap=5,
            figures=False,
        )
        for t in range(3):
            for name in ("both_correct", "agree", "kappa", "prediction_agree"):
                np.testing.assert_array_equal(
                    _read(tmp_path / f"gpu{block}", t, name),
                    _read(tmp_path / f"cpu{block}", t, name),
                )
        assert gpu["splits"] == cpu["splits"]


def test_cli(population, tmp_path, capsys):
    from cli.app import main

    out = tmp_path / "cli"
    code = main(
        [
            "pairwise",
            population.path,
            "--out",
            str(out),
            "--checkpoints",
            "0,2",
            "--block",
            "16",
            "--bootstrap",
            "5",
            "--no-figures",
            "--workers",
            "2",
        ]
    )
    assert code == 0
    assert "0.7" in capsys.readouterr().out or (out / "pairwise.json").exists()
    saved = json.loads((out / "pairwise.json").read_text())
    assert set(saved["splits"]["test"]["checkpoints"]) == {"0", "2"}
    for args, message in [
        (["pairwise", str(tmp_path / "none"), "--out", str(out)], "does not exist"),
        (["pairwise", population.path, "--out", str(out), "--split", "bogus"], "bogus"),
        (["pairwise", population.path, "--out", str(out), "--checkpoints", "1,x"], "comma list"),
    ]:
        assert main(args) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and "\n" not in err


def test_kappa_example_bootstrap_with_unit_weights_is_the_sample_mean():
    rng = np.random.default_rng(0)
    correct = rng.random((6, 150)) < 0.6
    correct[0] = True  # a degenerate network: its pairs with itself are left out
    sample = KappaSample(correct.astype(np.float32), correct.astype(np.float32), networks=6)
    weights = np.ones((2, 150), np.int64)
    weights[1] = rng.multinomial(150, np.full(150, 1 / 150))
    means = kappa_example_bootstrap(sample, weights, True)
    kappa = pairwise_matrices(correct)["kappa"].astype(np.float64)
    assert means[0] == pytest.approx(_pair_mean(kappa), rel=1e-6)
    resampled = np.repeat(correct, weights[1], axis=1)
    assert means[1] == pytest.approx(
        _pair_mean(pairwise_matrices(resampled)["kappa"].astype(np.float64)), rel=1e-6
    )


def test_open_pairwise(population, direct, tmp_path):
    pairwise_report(population, tmp_path, checkpoints="0,2", block=16, bootstrap=0, figures=False)
    lazy = open_pairwise(tmp_path / "pairwise.zarr")  # the only split, every checkpoint
    assert isinstance(lazy["agree"].data, dask.array.Array)
    assert lazy["agree"].dims == ("checkpoints", "networks", "networks_other")
    assert lazy["agree"].chunks[1] == (16, 16, 13)
    assert list(lazy["checkpoints"].values) == [0, 2]
    eager = open_pairwise(tmp_path, "test", 0, lazy=False)
    np.testing.assert_array_equal(lazy["agree"].sel(checkpoints=2).compute(), direct[2]["agree"])
    np.testing.assert_array_equal(eager["agree"], direct[0]["agree"])
    assert eager["agree"].dtype == np.uint16 and eager["num_examples"] == 130
    np.testing.assert_allclose(eager["agreement"], direct[0]["agree"] / 130, rtol=1e-6)
    np.testing.assert_array_equal(eager["correct_count"], direct[0]["both_correct"].diagonal())
    for kwargs, message in [(dict(split="train"), "not in"), (dict(checkpoint=1), "not in")]:
        with pytest.raises(StoreError, match=message):
            open_pairwise(tmp_path, **kwargs)
    with pytest.raises(StoreError, match="no pairwise.zarr"):
        open_pairwise(tmp_path / "nothing")


def test_many_examples_store_uint32_counts(tmp_path):
    """Above 65,535 examples counts no longer fit uint16: both_correct is uint32."""
    population = simulate_population(
        tmp_path / "wide.zarr", networks=3, checkpoints=1, splits={"test": 70_001}, seed=4
    )
    pairwise_report(population, tmp_path / "out", bootstrap=0, figures=False)
    matrices = open_pairwise(tmp_path / "out", lazy=False).isel(checkpoints=-1)
    correct = population.correct("test")[:, -1].compute()
    expected = pairwise_matrices(correct)
    assert matrices["both_correct"].dtype == np.uint32
    np.testing.assert_array_equal(matrices["both_correct"], expected["both_correct"])
    np.testing.assert_array_equal(matrices["agree"], expected["agree"])

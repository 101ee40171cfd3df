"""Tasks that gather several stored blocks of checkpoints per kernel call count what one block
at a time counts (engine/measures/tasks.py, issue 12's analysis speed)."""

import dask
import numpy as np
import pytest

from engine import measures
from engine.measures import tasks
from engine.testing import simulate_population


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    path = tmp_path_factory.mktemp("gather") / "population.zarr"
    # 7 checkpoints in blocks of 2: the last block is short, so spans end mid-block.
    return simulate_population(
        path,
        networks=40,
        checkpoints=7,
        splits={"train": 90},
        groups=[15, 25],
        predictions=True,
        membership=True,
        classes=4,
        seed=5,
        network_block=8,
        checkpoint_block=2,
    )


def _counts(population, gather_bytes, monkeypatch):
    monkeypatch.setattr(tasks, "GATHER_BYTES", gather_bytes)
    selection = measures.select_networks(population)
    verdicts = measures.verdict_statistics(population, "train", selection)
    classes = measures.class_statistics(population, "train", selection, 4, checkpoints=(3, 7))
    assert classes is not None
    lazy = {**verdicts, **{f"class_{k}": v for k, v in classes.items()}}
    return dict(zip(lazy, dask.compute(*lazy.values(), scheduler="sync"), strict=True))


@pytest.mark.parametrize("gather_bytes", [1, 8 * 12 * 2 * 2, 1 << 30])
def test_gathered_counts_equal_one_block_at_a_time(population, gather_bytes, monkeypatch):
    # 1 byte: one stored block per call (as before the gathering); 8 networks x 12 bytes x 2
    # checkpoints x 2: two blocks of a verdict chunk column per call; 1 GiB: every checkpoint
    # in one call.
    one = _counts(population, 1, monkeypatch)
    gathered = _counts(population, gather_bytes, monkeypatch)
    for name, values in one.items():
        np.testing.assert_array_equal(gathered[name], values, err_msg=name)
    correct = population.correct("train").compute()
    groups = population.network_groups()
    for g in range(2):
        np.testing.assert_array_equal(
            gathered["tpa_count"][g], correct[groups == g].sum(axis=0).T, err_msg=str(g)
        )
    np.testing.assert_array_equal(gathered["network_count"], correct.sum(axis=2))
    predictions = population.predictions("train").compute()[:, 3:]
    expected = (predictions[..., None] == np.arange(4)).sum(axis=2)
    np.testing.assert_array_equal(gathered["class_network_class_count"], expected)

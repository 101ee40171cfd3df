"""Units of the output tables: every column of every parquet file that analyze, compare and
pairwise write carries ``units``, ``long_name`` and ``description`` in its schema's field
metadata, the same units docs/outputs.md ("Units") gives; first-learned in checkpoint index and
in epoch."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import engine
from engine.measures.verdicts import first_learned_epochs, first_learned_statistics
from engine.report import analyze_store, compare_stores

ROOT = Path(__file__).resolve().parents[1]
NETWORKS, EXAMPLES, CLASSES = 6, 40, 4
#: Unevenly spaced, as with step checkpoints: the epoch of the mean checkpoint is not the mean
#: epoch.
EPOCHS = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 4.0])


def _store(path: Path, seed: int) -> Path:
    """Two groups; a soft ``test`` split with a metadata column, a ``train`` split of verdicts,
    a ``probe`` split without labels."""
    rng = np.random.default_rng(seed)
    world = np.random.default_rng(0)
    labels = world.integers(0, CLASSES, EXAMPLES)
    easy = world.random(EXAMPLES)
    checkpoints = len(EPOCHS)
    condition = {"condition": np.array(["clean", "blur"] * (EXAMPLES // 2), dtype=object)}
    writer = engine.create_population(
        path,
        dataset_name="d",
        splits={
            "test": engine.SplitSpec(labels=labels, fingerprint="t", soft=True, metadata=condition),
            "train": engine.SplitSpec(
                labels=labels, fingerprint="r", predictions=False, metadata=condition
            ),
            "probe": engine.SplitSpec(
                labels=np.full(EXAMPLES, -1), fingerprint="p", predictions=True, metadata=condition
            ),
        },
        groups=[engine.GroupSpec("a", "mlp", 3), engine.GroupSpec("b", "cnn", 3)],
        checkpoint_epochs=EPOCHS,
        class_names=[str(c) for c in range(CLASSES)],
    )
    for t in range(checkpoints):
        # Examples are learned in order of ease as training goes on, with noise per network.
        learned = easy[None, :] < (t + 1) / checkpoints + 0.2 * rng.standard_normal(
            (NETWORKS, EXAMPLES)
        )
        logits = rng.normal(0, 1, (NETWORKS, EXAMPLES, CLASSES)).astype(np.float32)
        logits += 4.0 * np.eye(CLASSES, dtype=np.float32)[labels] * learned[..., None]
        writer.record("test", t, (0, NETWORKS), logits=logits)
        writer.record("train", t, (0, NETWORKS), correct=learned)
        writer.record("probe", t, (0, NETWORKS), predictions=logits.argmax(-1))
        writer.mark_checkpoint(t, (0, NETWORKS))
    return path


def documented_units() -> dict[str, dict[str, str]]:
    """docs/outputs.md's "Units" section: per table, column (or pattern) -> units."""
    text = (ROOT / "docs" / "outputs.md").read_text()
    section = text.split("\n## Units\n", 1)[1].split("\n## ", 1)[0]
    tables: dict[str, dict[str, str]] = {}
    current = None
    for line in section.splitlines():
        heading = re.match(r"^### `(.+\.parquet)`", line)
        if heading:
            current = tables.setdefault(heading[1], {})
        row = re.match(r"^\| `([^`]+)` \| ([^|]+?) \|", line)
        if row and current is not None:
            current[row[1]] = row[2].strip()
    return tables


def documented(table: dict[str, str], column: str) -> str | None:
    """A column's documented units: its own row, or a pattern row such as
    ``accuracy_<split>``."""
    if column in table:
        return table[column]
    for name, units in table.items():
        parts = re.split(r"<[^>]+>", name)
        if len(parts) > 1 and re.fullmatch(".+".join(map(re.escape, parts)), column):
            return units
    return None


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("units")
    a, b = _store(folder / "a.zarr", 1), _store(folder / "b.zarr", 2)
    analyze_store(str(a), folder / "analyze", network_table=True, by="condition", progress=False)
    compare_stores([str(a), str(b)], folder / "compare", progress=False)
    return folder


def test_every_parquet_column_has_units_and_the_documented_ones(outputs):
    docs = documented_units()
    files = sorted(outputs.rglob("*.parquet"))
    names = {f.name for f in files}
    assert names == {
        "examples.parquet",
        "networks.parquet",
        "histograms.parquet",
        "network_examples.parquet",
        "pairwise_networks.parquet",
        "pairwise_histograms.parquet",
    }
    missing = []
    for path in files:
        schema = pq.read_schema(path)
        for field in schema:
            metadata = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
            where = f"{path.relative_to(outputs)}: {field.name}"
            if not all(metadata.get(key) for key in ("units", "long_name", "description")):
                missing.append(f"{where} has no units, long_name or description")
                continue
            if field.name == "condition":  # the --by column: units as stored
                assert metadata["units"] == "as stored"
                continue
            said = documented(docs.get(path.name, {}), field.name)
            if said != metadata["units"]:
                missing.append(f"{where}: {metadata['units']!r} in the file, {said!r} in the doc")
    assert not missing, "\n".join(missing)


def test_first_learned_in_checkpoint_index_and_in_epoch(outputs):
    import pandas as pd

    frame = pd.read_parquet(outputs / "analyze" / "examples.parquet")
    test = frame[frame.split == "test"]
    assert test.first_learned_mean.notna().any()
    # Defined on the same examples as the checkpoint-index columns; the exact statistics are
    # checked below.
    for name in ("mean", "median"):
        index, epoch = test[f"first_learned_{name}"], test[f"first_learned_epoch_{name}"]
        assert (index.isna() == epoch.isna()).all()
        assert epoch.dropna().between(EPOCHS[0], EPOCHS[-1]).all()
    assert (test.first_learned_epoch_mean.dropna() <= EPOCHS[-1]).all()
    assert not np.allclose(test.first_learned_epoch_mean, test.first_learned_mean, equal_nan=True)
    probe = frame[frame.split == "probe"]
    assert probe.first_learned_epoch_mean.isna().all()


def test_first_learned_epochs_are_the_order_statistics_of_the_epochs():
    rng = np.random.default_rng(3)
    checkpoints = len(EPOCHS)
    first = rng.integers(0, checkpoints + 1, (50, 7))  # checkpoints == never learned
    first[0] = checkpoints  # an example no network learns
    histogram = np.stack([np.bincount(row, minlength=checkpoints + 1) for row in first])
    mean, median = first_learned_epochs(histogram, EPOCHS)
    index_mean, _, _ = first_learned_statistics(histogram, 7)
    for x, row in enumerate(first):
        learned = EPOCHS[row[row < checkpoints]]
        if learned.size == 0:
            assert np.isnan(mean[x]) and np.isnan(median[x])
            continue
        assert mean[x] == pytest.approx(learned.mean())
        assert median[x] == pytest.approx(np.median(learned))
    # Evenly spaced epochs give the checkpoint statistics back.
    even, _ = first_learned_epochs(histogram, np.arange(checkpoints, dtype=float))
    np.testing.assert_allclose(even, index_mean)
    # An unknown epoch (one imported final checkpoint) gives NaN where it is needed.
    unknown, _ = first_learned_epochs(histogram[:, -2:], np.array([np.nan]))
    assert np.isnan(unknown[histogram[:, -2] > 0]).all()

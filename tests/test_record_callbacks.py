"""The recording callbacks on the real libraries: a Lightning MLP and a Hugging Face BERT built
from a config (no download), both trained on digits on the CPU.

Each fit is small (a few hundred optimiser steps at most); the fits that several tests read
are made once per module.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import engine
from engine.errors import ConfigError, StoreError, WriterError
from engine.report import analyze_store

L = pytest.importorskip("lightning.pytorch")  # installed by the extras in CI; a guard only
transformers = pytest.importorskip("transformers")

from engine.record.lightning import RecordVerdicts as LightningRecorder  # noqa: E402
from engine.record.transformers import RecordVerdicts as HFRecorder  # noqa: E402

# Lightning 2.6 on torch 2.13 builds its data loaders with torch's deprecated pytree LeafSpec,
# and warns that a CPU data loader without worker processes may be slow: neither is ours. (The
# marks cover the module's fixtures too: they run inside the first test that asks for them.)
pytestmark = [
    pytest.mark.filterwarnings(r"ignore:.*isinstance\(treespec, LeafSpec\).*:FutureWarning"),
    pytest.mark.filterwarnings(r"ignore:.*does not have many workers.*"),
]

TRAIN, TEST = slice(0, 1200), slice(1200, None)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared CPU: one thread is many times faster than several that spin."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    """Pixels 0..16 as floats (for the MLP) and as token ids (for BERT), and the labels."""
    data = load_digits()
    return (
        torch.tensor(data.data / 16.0, dtype=torch.float32),
        torch.tensor(data.data, dtype=torch.long),
        torch.tensor(data.target, dtype=torch.long),
    )


# -- Lightning ---------------------------------------------------------------------------------


class DigitsMLP(L.LightningModule):
    def __init__(self, fail_at_epoch: int | None = None):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
        )
        self.fail_at_epoch = fail_at_epoch

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        if self.current_epoch == self.fail_at_epoch:
            raise RuntimeError("a crash in the middle of the fit")
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_epoch=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.2)


def lightning_fit(digits, callback, *, seed=0, epochs=3, train=600, fail_at_epoch=None, **kw):
    """Train a fresh MLP with ``callback``; returns the trained module."""
    x, _, y = digits
    torch.manual_seed(seed)
    module = DigitsMLP(fail_at_epoch)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x[:train], y[:train]), batch_size=64, shuffle=True
    )
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
        **kw,
    )
    trainer.fit(module, loader)
    return module


def lightning_splits(digits):
    x, _, y = digits
    return {"test": (x[TEST], y[TEST]), "train": (x[TRAIN], y[TRAIN])}


@pytest.fixture(scope="module")
def lightning_store(digits, tmp_path_factory):
    """Networks 0 and 1 of one store, two fits with two callbacks; the trained modules."""
    path = tmp_path_factory.mktemp("lightning") / "mlp.zarr"
    modules = []
    for network in (0, 1):
        callback = LightningRecorder(
            path, splits=lightning_splits(digits), network=network, num_networks=2, soft=True
        )
        modules.append(lightning_fit(digits, callback, seed=network))
    return path, modules


@pytest.mark.slow
def test_lightning_records_every_epoch(digits, lightning_store):
    path, modules = lightning_store
    x, _, y = digits
    population = engine.open_population(str(path))
    assert population.complete_networks().tolist() == [0, 1]
    assert population.checkpoints["epoch"].tolist() == [0.0, 1.0, 2.0, 3.0]
    # 600 examples in batches of 64: 10 optimiser steps an epoch.
    assert population.checkpoints["step"].tolist() == [0, 10, 20, 30]
    for network, module in enumerate(modules):
        module.eval()
        with torch.no_grad():
            logits = module(x[TEST])
        stored = population.predictions("test")[network, -1].compute()
        np.testing.assert_array_equal(stored, logits.argmax(1).numpy())
        probability = population.probability("test")[network, -1].compute()
        expected = torch.softmax(logits, 1)[torch.arange(len(logits)), y[TEST]].numpy()
        # Stored as round(32 p) (docs/store-format.md): within 1/64.
        np.testing.assert_allclose(probability, expected, rtol=0, atol=1 / 64 + 1e-6)
    accuracy = population.correct("test").mean(axis=2).compute()  # (networks, checkpoints)
    assert (accuracy[:, -1] > accuracy[:, 0] + 0.3).all(), accuracy
    loss = population.train_loss().compute()
    assert np.isnan(loss[:, 0]).all()  # no loss before the first step
    assert np.isfinite(loss[:, 1:]).all() and (loss[:, -1] < loss[:, 1]).all(), loss


@pytest.mark.parametrize(
    ("accumulate", "every", "steps"),
    [
        # 600 examples in batches of 64: 10 batches an epoch, 30 optimiser steps in 3 epochs.
        (1, 7, [0, 7, 14, 21, 28, 30]),
        # Two batches a step: 5 steps an epoch; the end of the fit is always recorded.
        (2, 4, [0, 4, 8, 12, 15]),
    ],
)
def test_lightning_records_every_k_steps(digits, tmp_path, accumulate, every, steps):
    path = tmp_path / "steps.zarr"
    callback = LightningRecorder(path, splits=lightning_splits(digits), every_n_steps=every)
    lightning_fit(digits, callback, accumulate_grad_batches=accumulate)
    population = engine.open_population(str(path))
    assert population.complete_networks().tolist() == [0]
    assert population.checkpoints["step"].tolist() == steps
    per_epoch = 10 // accumulate
    np.testing.assert_allclose(population.checkpoints["epoch"], np.array(steps) / per_epoch)
    loss = population.train_loss().compute()[0]
    assert np.isnan(loss[0]) and np.isfinite(loss[1:]).all()  # the step's own loss
    accuracy = population.correct("test").mean(axis=2).compute()[0]
    assert accuracy[-1] > accuracy[0] + 0.3, accuracy


def test_lightning_refuses_a_complete_network(digits, tmp_path):
    path = tmp_path / "done.zarr"
    lightning_fit(digits, LightningRecorder(path, splits=lightning_splits(digits)), epochs=1)
    before = engine.open_population(str(path)).predictions("test").compute()
    again = LightningRecorder(path, splits=lightning_splits(digits))
    with pytest.raises(WriterError, match="network 0 of .* is already complete.*overwrite=True"):
        lightning_fit(digits, again, seed=1, epochs=1)
    np.testing.assert_array_equal(engine.open_population(str(path)).predictions("test"), before)
    # overwrite=True records it again, from the new fit.
    module = lightning_fit(
        digits,
        LightningRecorder(path, splits=lightning_splits(digits), overwrite=True),
        seed=1,
        epochs=1,
    )
    population = engine.open_population(str(path))
    assert population.complete_networks().tolist() == [0]
    x, _, _ = digits
    with torch.no_grad():
        expected = module.eval()(x[TEST]).argmax(1).numpy()
    np.testing.assert_array_equal(population.predictions("test")[0, -1], expected)


def test_lightning_rerun_of_a_crashed_fit_starts_over(digits, tmp_path):
    path = tmp_path / "crash.zarr"
    crashing = LightningRecorder(path, splits=lightning_splits(digits))
    with pytest.raises(RuntimeError, match="a crash in the middle"):
        lightning_fit(digits, crashing, fail_at_epoch=2)
    population = engine.open_population(str(path))
    # The initialisation and epochs 1 and 2 (current_epoch 0 and 1); the third never ends.
    assert population.checkpoints_completed().tolist() == [3]
    assert population.complete_networks().tolist() == []
    module = lightning_fit(digits, LightningRecorder(path, splits=lightning_splits(digits)), seed=3)
    population = engine.open_population(str(path))
    assert population.complete_networks().tolist() == [0]
    x, _, _ = digits
    with torch.no_grad():
        expected = module.eval()(x[TEST]).argmax(1).numpy()
    np.testing.assert_array_equal(population.predictions("test")[0, -1], expected)


def test_lightning_warns_when_the_fit_stops_early(digits, tmp_path):
    path = tmp_path / "early.zarr"
    callback = LightningRecorder(path, splits=lightning_splits(digits))

    class Stop(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            trainer.should_stop = trainer.current_epoch >= 1

    x, _, y = digits
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x[:600], y[:600]), batch_size=64
    )
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback, Stop()],
    )
    with pytest.warns(UserWarning, match="after 3 of 4 checkpoints: network 0 .* incomplete"):
        trainer.fit(DigitsMLP(), loader)
    assert engine.open_population(str(path)).complete_networks().tolist() == []


def test_lightning_step_limit_ends_the_last_epoch_early(digits, tmp_path):
    """max_steps inside epoch 3: that epoch's checkpoint is where the fit stops."""
    path = tmp_path / "limit.zarr"
    lightning_fit(
        digits, LightningRecorder(path, splits=lightning_splits(digits)), epochs=5, max_steps=25
    )
    population = engine.open_population(str(path))
    assert population.complete_networks().tolist() == [0]
    assert population.checkpoints["step"].tolist() == [0, 10, 20, 25]
    assert population.checkpoints["epoch"].tolist() == [0.0, 1.0, 2.0, 2.5]


def test_callback_arguments_are_checked(digits, tmp_path):
    splits = lightning_splits(digits)
    with pytest.raises(ConfigError, match="not both"):
        LightningRecorder(tmp_path / "s", splits=splits, every_n_epochs=1, every_n_steps=5)
    with pytest.raises(ConfigError, match="every_n_steps must be at least 1"):
        HFRecorder(tmp_path / "s", splits=splits, every_n_steps=0)
    with pytest.raises(ConfigError, match="network 2 is not in 0:2"):
        LightningRecorder(tmp_path / "s", splits=splits, network=2, num_networks=2)
    x, _, y = digits
    with pytest.raises(ConfigError, match="split 'test' has 597 examples but 10 labels"):
        LightningRecorder(tmp_path / "s", splits={"test": (x[TEST], y[:10])})
    with pytest.raises(ConfigError, match="pair"):
        HFRecorder(tmp_path / "s", splits={"test": x[TEST]})


def test_a_store_of_another_fit_length_is_refused(digits, lightning_store):
    path, _ = lightning_store
    callback = LightningRecorder(path, splits=lightning_splits(digits), num_networks=2, soft=True)
    with pytest.raises(StoreError, match=r"epochs \[0.0, 1.0, 2.0, 3.0\], not \[0.0, 1.0\]"):
        lightning_fit(digits, callback, epochs=1)


def test_analyze_runs_on_a_store_the_callbacks_filled(lightning_store, tmp_path):
    path, _ = lightning_store
    report = analyze_store(
        str(path), tmp_path / "out", splits="test", pairwise_checkpoints="none", progress=False
    )
    assert report.exists()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["networks"]["analysed"] == 2
    test = summary["splits"]["test"]
    assert test["epochs"] == [0.0, 1.0, 2.0, 3.0]
    accuracy = engine.open_population(str(path)).correct("test").mean(axis=(0, 2)).compute()
    np.testing.assert_allclose(test["accuracy_mean"], accuracy)


# -- Hugging Face Transformers ----------------------------------------------------------------


class TokenDigits(torch.utils.data.Dataset):
    """Digits as sequences of 64 tokens, the pixels 0..16."""

    def __init__(self, ids, labels):
        self.ids, self.labels = ids, labels

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


def tiny_bert(seed):
    """A one-layer BERT from a config, nothing downloaded; no dropout and a wider
    initialisation than BERT's, so that two epochs on digits visibly learn."""
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=17,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=10,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=0.2,
    )
    return transformers.BertForSequenceClassification(config)


def hf_fit(digits, callback, out, *, seed=0, epochs=2, train=1200, **arguments):
    """Train a fresh tiny BERT with the HF Trainer and ``callback``; returns the model."""
    _, ids, y = digits
    model = tiny_bert(seed)
    arguments = {"logging_steps": 25, **arguments}
    args = transformers.TrainingArguments(
        output_dir=str(out),
        num_train_epochs=epochs,
        per_device_train_batch_size=16,
        learning_rate=3e-3,
        lr_scheduler_type="constant",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=seed,
        **arguments,
    )
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=TokenDigits(ids[:train], y[:train]),
        callbacks=[callback],
    )
    trainer.train()
    return model, trainer


def hf_splits(digits):
    """The test split as a tensor of input ids, the train split as a tokenizer's mapping."""
    _, ids, y = digits
    return {"test": (ids[TEST], y[TEST]), "train": ({"input_ids": ids[TRAIN]}, y[TRAIN])}


def logits_of(model, ids):
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.fixture(scope="module")
def hf_store(digits, tmp_path_factory):
    """Networks 0 and 1 of one store, two runs of the HF Trainer with two callbacks."""
    folder = tmp_path_factory.mktemp("transformers")
    path = folder / "bert.zarr"
    runs = []
    for network in (0, 1):
        callback = HFRecorder(path, splits=hf_splits(digits), network=network, num_networks=2)
        runs.append(hf_fit(digits, callback, folder / f"out{network}", seed=network))
    return path, runs


@pytest.mark.slow
def test_transformers_records_every_epoch(digits, hf_store):
    path, runs = hf_store
    _, ids, _ = digits
    population = engine.open_population(str(path))
    assert population.complete_networks().tolist() == [0, 1]
    # 1,200 examples in batches of 16: 75 optimiser steps an epoch.
    assert population.checkpoints["step"].tolist() == [0, 75, 150]
    assert population.checkpoints["epoch"].tolist() == [0.0, 1.0, 2.0]
    loss = population.train_loss().compute()
    for network, (model, trainer) in enumerate(runs):
        expected = logits_of(model, ids[TEST]).argmax(1).numpy()
        np.testing.assert_array_equal(population.predictions("test")[network, -1], expected)
        train = logits_of(model, ids[TRAIN]).argmax(1).numpy()
        np.testing.assert_array_equal(population.predictions("train")[network, -1], train)
        # The loss logged at each epoch's last step (logging_steps 25 divides 75).
        logged = {e["step"]: e["loss"] for e in trainer.state.log_history if "loss" in e}
        np.testing.assert_allclose(loss[network], [np.nan, logged[75], logged[150]], rtol=1e-6)
    accuracy = population.correct("test").mean(axis=2).compute()
    assert (accuracy[:, -1] > accuracy[:, 0] + 0.1).all(), accuracy


def test_transformers_records_every_k_steps(digits, tmp_path):
    path = tmp_path / "steps.zarr"
    callback = HFRecorder(path, splits=hf_splits(digits), every_n_steps=5)
    model, trainer = hf_fit(digits, callback, tmp_path / "out", max_steps=12, logging_steps=5)
    population = engine.open_population(str(path))
    assert population.complete_networks().tolist() == [0]
    assert population.checkpoints["step"].tolist() == [0, 5, 10, 12]
    np.testing.assert_allclose(population.checkpoints["epoch"], np.array([0, 5, 10, 12]) / 75)
    _, ids, _ = digits
    expected = logits_of(model, ids[TEST]).argmax(1).numpy()
    np.testing.assert_array_equal(population.predictions("test")[0, -1], expected)
    # Steps 5 and 10 are logged; step 12 is not, nor any step after 10.
    logged = {entry["step"]: entry.get("loss") for entry in trainer.state.log_history}
    loss = population.train_loss().compute()[0]
    np.testing.assert_allclose(loss[1:3], [logged[5], logged[10]], rtol=1e-6)
    assert np.isnan(loss[0]) and (np.isnan(loss[3]) or loss[3] == logged.get(12))


def test_transformers_step_checkpoints_take_the_loss_logged_after_the_epoch(digits, tmp_path):
    """logging_strategy="epoch" logs after on_epoch_end: the checkpoint at an epoch's last
    step waits for that log."""
    path = tmp_path / "epoch-logs.zarr"
    callback = HFRecorder(path, splits=hf_splits(digits), every_n_steps=20)
    # 320 examples in batches of 16: 20 steps an epoch.
    _, trainer = hf_fit(digits, callback, tmp_path / "out", train=320, logging_strategy="epoch")
    population = engine.open_population(str(path))
    assert population.checkpoints["step"].tolist() == [0, 20, 40]
    logged = {e["step"]: e["loss"] for e in trainer.state.log_history if "loss" in e}
    assert sorted(logged) == [20, 40]
    loss = population.train_loss().compute()[0]
    np.testing.assert_allclose(loss, [np.nan, logged[20], logged[40]], rtol=1e-6)


def test_transformers_refuses_a_complete_network(digits, hf_store, tmp_path):
    path, _ = hf_store
    before = engine.open_population(str(path)).predictions("test").compute()
    callback = HFRecorder(path, splits=hf_splits(digits), network=1, num_networks=2)
    with pytest.raises(WriterError, match="network 1 of .* is already complete"):
        hf_fit(digits, callback, tmp_path / "out", seed=5)
    np.testing.assert_array_equal(engine.open_population(str(path)).predictions("test"), before)


def test_analyze_runs_on_a_store_the_trainer_filled(hf_store, tmp_path):
    path, _ = hf_store
    analyze_store(str(path), tmp_path / "out", pairwise_checkpoints="none", progress=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["networks"]["analysed"] == 2
    assert sorted(summary["splits"]) == ["test", "train"]


# -- the examples of docs/recording.md ---------------------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "recording.md"


def doc_examples(heading: str) -> list[str]:
    """The python code blocks of one ``## heading`` section of docs/recording.md."""
    text = DOC.read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


@pytest.mark.parametrize(
    ("heading", "store", "steps"),
    [
        ("Lightning", "digits-mlp.zarr", [0, 19, 38, 57]),
        ("Hugging Face Transformers", "digits-bert.zarr", list(range(0, 151, 25))),
    ],
)
def test_the_documented_examples_run(heading, store, steps, tmp_path, monkeypatch):
    examples = doc_examples(heading)
    assert examples, f"no python example under ## {heading}"
    monkeypatch.chdir(tmp_path)
    for example in examples:
        exec(compile(example, f"{DOC.name}: {heading}", "exec"), {"__name__": "example"})
    population = engine.open_population(str(tmp_path / store))
    assert population.num_networks == 4
    assert population.complete_networks().tolist() == [0]
    assert population.checkpoints["step"].tolist() == steps

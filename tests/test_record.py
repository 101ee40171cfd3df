"""The recorder for the user's own loop (engine.record): a real PyTorch loop on digits, the
store it makes, reruns, and the one-line errors of misuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import engine
from engine.errors import StoreError, WriterError
from engine.record import StoreLayout, open_recorder
from engine.record.evaluate import model_outputs

EPOCHS = 3


@pytest.fixture(scope="module")
def digits():
    inputs, labels = load_digits(return_X_y=True)
    inputs = torch.tensor(inputs / 16.0, dtype=torch.float32)
    labels = torch.tensor(labels)
    return {"train": (inputs[:1200], labels[:1200]), "test": (inputs[1200:], labels[1200:])}


def _layout(digits, networks: int, soft: bool = False) -> StoreLayout:
    return StoreLayout(
        labels={name: labels.numpy() for name, (_, labels) in digits.items()},
        num_networks=networks,
        checkpoints=EPOCHS + 1,
        num_classes=10,
        soft=soft,
        dataset="digits",
    )


def _train(digits, seed: int, recorder=None) -> torch.nn.Module:
    """A user's loop: an MLP, SGD, an epoch at a time, recording at each checkpoint."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    inputs, labels = digits["train"]

    def record(loss):
        if recorder is not None:
            outputs = {name: model_outputs(model, x) for name, (x, _) in digits.items()}
            recorder.record(outputs, loss=loss)

    record(float("nan"))
    for _ in range(EPOCHS):
        total = 0.0
        for batch in torch.randperm(len(inputs)).split(64):
            loss = torch.nn.functional.cross_entropy(model(inputs[batch]), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        record(total / len(inputs))
    return model


def test_a_plain_loop_records_every_checkpoint_of_every_split(digits, tmp_path):
    path = tmp_path / "runs.zarr"
    models = {}
    for network in (2, 0):  # any order
        with open_recorder(path, network, layout=_layout(digits, 3, soft=True)) as recorder:
            models[network] = _train(digits, seed=network, recorder=recorder)
        assert recorder.complete
    population = engine.open_population(path)
    assert population.attrs["network_block"] == 1
    assert list(population.complete_networks()) == [0, 2]
    for network, model in models.items():
        for split, (inputs, labels) in digits.items():
            logits = model_outputs(model, inputs)
            predicted = population.predictions(split)[network, -1].compute()
            np.testing.assert_array_equal(predicted, logits.argmax(1).numpy())
            probability = population.probability(split)[network, -1].compute()
            softmax = torch.softmax(logits, 1)[torch.arange(len(labels)), labels].numpy()
            # Stored as a code of 1/32 steps: within half a step.
            assert np.abs(probability - softmax).max() <= 1 / 64 + 1e-6
        accuracy = population.correct("test")[network].mean(axis=1).compute()
        assert accuracy[-1] > accuracy[0] + 0.3  # it learned
    loss = population.train_loss().compute()
    assert np.isnan(loss[0, 0]) and (loss[0, 1:] > 0).all()


def test_predictions_and_correctness_record_without_logits(digits, tmp_path):
    path = tmp_path / "runs.zarr"
    test_labels = digits["test"][1].numpy()
    layout = StoreLayout(labels={"test": test_labels}, num_networks=1, checkpoints=2)
    with open_recorder(path, 0, layout=layout) as recorder:
        recorder.record(test=np.zeros_like(test_labels))
        recorder.record(test=torch.tensor(test_labels))
    population = engine.open_population(path)
    correct = population.correct("test")[0].compute()
    assert correct[1].all() and correct[0].sum() == (test_labels == 0).sum()


def test_the_checkpoint_is_marked_only_once_every_split_holds_it(digits, tmp_path):
    path = tmp_path / "runs.zarr"
    recorder = open_recorder(path, 1, layout=_layout(digits, 2))
    logits = {name: torch.randn(len(x), 10) for name, (x, _) in digits.items()}
    assert recorder.record(test=logits["test"]) == 0
    assert engine.open_population(path).checkpoints_completed()[1] == 0
    assert recorder.next_checkpoint == 0
    assert recorder.record(train=logits["train"]) == 0
    assert engine.open_population(path).checkpoints_completed()[1] == 1
    recorder.record(test=logits["test"])
    with pytest.raises(WriterError, match="checkpoint 1 was recorded for some splits"):
        recorder.close()


def test_a_rerun_of_a_crashed_network_starts_it_over_and_resume_goes_on(digits, tmp_path):
    path = tmp_path / "runs.zarr"
    logits = {name: torch.randn(len(x), 10) for name, (x, _) in digits.items()}
    recorder = open_recorder(path, 0, layout=_layout(digits, 1))
    recorder.record(logits)
    recorder.record(logits)  # then the process dies
    assert engine.open_population(path).checkpoints_completed()[0] == 2
    resumed = open_recorder(path, 0, layout=_layout(digits, 1), resume=True)
    assert resumed.next_checkpoint == 2
    rerun = open_recorder(path, 0, layout=_layout(digits, 1))
    assert rerun.next_checkpoint == 0
    assert engine.open_population(path).checkpoints_completed()[0] == 0
    for _ in range(EPOCHS + 1):
        rerun.record(logits)
    rerun.close()
    again = open_recorder(path, 0, layout=_layout(digits, 1))
    assert again.complete
    with pytest.raises(WriterError, match="already complete; open the recorder with overwrite"):
        again.record(logits)
    overwrite = open_recorder(path, 0, layout=_layout(digits, 1), overwrite=True)
    assert overwrite.next_checkpoint == 0 and not overwrite.complete


def test_a_block_of_networks_records_with_a_networks_axis(digits, tmp_path):
    path = tmp_path / "runs.zarr"
    labels = digits["test"][1].numpy()
    layout = StoreLayout(labels={"test": labels}, num_networks=6, checkpoints=1, num_classes=10)
    logits = np.random.default_rng(0).normal(size=(3, labels.size, 10)).astype(np.float32)
    with open_recorder(path, (3, 6), layout=layout) as recorder:
        recorder.record(test=logits)
    population = engine.open_population(path)
    np.testing.assert_array_equal(population.complete_networks(), [3, 4, 5])
    np.testing.assert_array_equal(population.predictions("test")[3:, 0].compute(), logits.argmax(2))
    with pytest.raises(WriterError, match="expected \\(networks, examples, classes\\)"):
        open_recorder(path, (0, 2)).record(test=logits[0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"num_networks": 4}, "holds 3 networks, not 4"),
        ({"checkpoints": 7}, "has checkpoints at epochs"),
        ({"labels": {"test": np.zeros(3, int)}}, "holds the splits"),
        ({"soft": True}, "soft="),
    ],
)
def test_a_run_whose_layout_differs_from_the_store_is_refused(digits, tmp_path, change, message):
    path = tmp_path / "runs.zarr"
    open_recorder(path, 0, layout=_layout(digits, 3))
    settings = {
        "labels": {name: labels.numpy() for name, (_, labels) in digits.items()},
        "num_networks": 3,
        "checkpoints": EPOCHS + 1,
        "num_classes": 10,
    }
    with pytest.raises(StoreError, match=message):
        open_recorder(path, 1, layout=StoreLayout(**{**settings, **change}))


def test_misuse_is_a_one_line_error(digits, tmp_path):
    path = tmp_path / "runs.zarr"
    with pytest.raises(StoreError, match="does not exist; give a layout"):
        open_recorder(path, 0)
    recorder = open_recorder(path, 0, layout=_layout(digits, 2))
    logits = torch.randn(len(digits["test"][0]), 10)
    with pytest.raises(WriterError, match="unknown split 'validation'"):
        recorder.record(validation=logits)
    with pytest.raises(WriterError, match="outside 0:2"):
        open_recorder(path, 2)
    with pytest.raises(WriterError, match="must be floats \\(logits\\), integers"):
        recorder.record(test=np.array(["a"] * len(logits)))
    with pytest.raises(WriterError, match="class id 10, beyond the 10 classes"):
        recorder.record(test=torch.full((len(logits),), 10))
    with pytest.raises(WriterError, match="num_classes 5 is not above the largest label 9"):
        StoreLayout(
            labels={"test": digits["test"][1].numpy()}, num_networks=1, checkpoints=1, num_classes=5
        ).create(tmp_path / "other.zarr")
    with pytest.raises(WriterError, match="is outside 0:4 of this store"):
        recorder.record(test=logits, checkpoint=9)
    recorder.close()
    with pytest.raises(WriterError, match="this recorder is closed"):
        recorder.record(test=logits)


def test_bf16_tensors_are_recorded_as_float32(digits, tmp_path):
    labels = digits["test"][1].numpy()
    layout = StoreLayout(labels={"test": labels}, num_networks=1, checkpoints=1, num_classes=10)
    logits = torch.randn(labels.size, 10).to(torch.bfloat16)
    with open_recorder(tmp_path / "runs.zarr", 0, layout=layout) as recorder:
        recorder.record(test=logits)
    population = engine.open_population(tmp_path / "runs.zarr")
    np.testing.assert_array_equal(
        population.predictions("test")[0, 0].compute(), logits.float().argmax(1).numpy()
    )

"""The trainer's fast paths against the plain ones: hand-written gradients of linear stacks
against autograd, feature-major forward passes and reused buffers against fresh tensors,
evaluation's reductions against plain PyTorch, and the background writer against writing in
line (in process, on the CPU)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.errors import StoreError
from engine.train import loop
from engine.train.config import GroupConfig, RunOptions
from engine.train.data import DataConfig, load_dataset
from engine.train.device import DeviceData
from engine.train.evaluation import evaluate
from engine.train.loop import train_population
from engine.train.models import BatchedModel
from engine.train.recorders import BackgroundRecorder, MemoryRecorder
from engine.train.seeds import study_checkpoints
from engine.train.study import study_from_flags


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig("digits"))


def _autograd_gradients(model, params, inputs, labels):
    """The gradients the autograd path takes: forward, mean cross-entropy per network, summed."""
    for p in params.values():
        p.grad = None
    logits = model.forward(params, {}, inputs, train=True, shared=False)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[2]), labels.reshape(-1), reduction="sum")
    (loss / labels.shape[1]).backward()
    return {name: p.grad.clone() for name, p in params.items()}


@pytest.mark.parametrize(
    "arch,depth,shape,batch",
    [
        ("mlp", 2, (1, 8, 8), 16),
        ("mlp", 1, (12,), 5),
        ("mlp", 3, (2, 7), 1),
        ("linear", 1, (9,), 4),
    ],
)
def test_hand_written_gradients_equal_autograd(arch, depth, shape, batch):
    group = GroupConfig(arch, arch, networks=3, width=6, depth=depth)
    model = BatchedModel(group, "vector" if len(shape) == 1 else "image", shape, 4)
    assert model.linear_stack
    params, _ = model.init_params([1, 2, 3], "cpu")
    generator = torch.Generator().manual_seed(0)
    for trial in range(2):  # the second call overwrites the first's .grad in place
        inputs = torch.randn(3, batch, *shape, generator=generator)
        labels = torch.randint(0, 4, (3, batch), generator=generator)
        expected = _autograd_gradients(model, params, inputs, labels)
        if trial == 0:
            for p in params.values():
                p.grad = None
        model.linear_stack_gradients(params, inputs, labels)
        for name, p in params.items():
            torch.testing.assert_close(p.grad, expected[name], rtol=1e-5, atol=1e-6)


def test_hand_written_gradients_refuse_convolutions():
    group = GroupConfig("cnn", "cnn", networks=2, width=4, depth=1)
    model = BatchedModel(group, "image", (1, 8, 8), 3)
    assert not model.linear_stack
    params, _ = model.init_params([1, 2], "cpu")
    with pytest.raises(AssertionError, match="linear stacks"):
        model.linear_stack_gradients(params, torch.zeros(2, 4, 1, 8, 8), torch.zeros(2, 4).long())


def test_training_with_hand_gradients_agrees_with_autograd(digits, monkeypatch):
    study = study_from_flags(dataset="digits", arch="mlp", networks=6, epochs=3, width=32)

    def run() -> MemoryRecorder:
        recorder = MemoryRecorder(6, len(study_checkpoints(study, digits).epochs), digits)
        train_population(
            study, None, RunOptions(device="cpu", quiet=True), dataset=digits, recorder=recorder
        )
        return recorder

    hand = run()
    monkeypatch.setattr(loop, "HAND_GRADIENTS", False)
    autograd = run()
    for split in digits.splits:
        np.testing.assert_array_equal(
            hand.predictions[split][:, 0], autograd.predictions[split][:, 0]
        )
        # fp32 sums in another order: the same networks up to the last bits of their weights.
        agreement = hand.predictions[split][:, -1] == autograd.predictions[split][:, -1]
        assert agreement.mean() >= 0.995
    np.testing.assert_allclose(hand.loss, autograd.loss, rtol=1e-3)
    assert (hand.predictions["test"][:, -1] == digits.splits["test"].labels).mean() > 0.8


def test_reused_buffers_change_no_result_and_never_hold_the_logits():
    group = GroupConfig("mlp", "mlp", networks=4, width=8, depth=2)
    model = BatchedModel(group, "vector", (5,), 3)
    params, buffers = model.init_params([1, 2, 3, 4], "cpu")
    first, second = torch.randn(7, 5), torch.randn(7, 5)
    with torch.no_grad():
        fresh = [
            model.forward(params, buffers, x, train=False, shared=True).clone()
            for x in (first, second)
        ]
        kept = model.forward(params, buffers, first, train=False, shared=True)
        model.forward(params, buffers, second, train=False, shared=True)  # reuses the buffers
    assert model._workspace  # the hidden activations did go to reused buffers
    torch.testing.assert_close(kept, fresh[0], rtol=0, atol=0)  # not overwritten
    with_grad = model.forward(params, buffers, second, train=False, shared=True)
    torch.testing.assert_close(with_grad.detach(), fresh[1], rtol=1e-6, atol=1e-6)
    # A shared batch gives what every network's own copy of it gives.
    stacked = model.forward(params, buffers, second.expand(4, 7, 5), train=False, shared=False)
    torch.testing.assert_close(stacked.detach(), fresh[1], rtol=1e-5, atol=1e-5)


def test_scratch_reuses_on_the_cpu_only():
    model = BatchedModel(GroupConfig("mlp", "mlp", networks=2, width=4), "vector", (3,), 2)
    cpu = torch.zeros(1)
    a = model.scratch("x", (2, 3), cpu)
    assert model.scratch("x", (2, 3), cpu) is a
    assert model.scratch("x", (3, 2), cpu) is not a
    assert model.scratch("y", (2, 3), cpu) is not a
    meta = torch.zeros(1, device="meta")  # stands for a device with its own allocator
    assert model.scratch("x", (2, 3), meta) is not model.scratch("x", (2, 3), meta)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_evaluation_reductions_equal_plain_pytorch(digits, arch):
    group = GroupConfig(arch, arch, networks=3, width=8, depth=1)
    model = BatchedModel(group, digits.kind, digits.input_shape, digits.num_classes)
    params, buffers = model.init_params([5, 6, 7], "cpu")
    data = DeviceData.build(digits, torch.device("cpu"))
    verdicts = evaluate(model, params, buffers, data, "train", 100)
    with torch.no_grad():
        logits = model.forward(params, buffers, data.inputs["train"], train=False, shared=True)
    np.testing.assert_array_equal(verdicts.predictions, logits.argmax(2).numpy())
    loss = [F.cross_entropy(logits[n], data.labels["train"]).item() for n in range(3)]
    np.testing.assert_allclose(verdicts.loss, loss, rtol=1e-5)


class _SlowRecorder(MemoryRecorder):
    """Records like MemoryRecorder, slowly, noting the thread each call ran on."""

    def __init__(self, *args, fail_on: str | None = None):
        super().__init__(*args)
        self.threads: set[int] = set()
        self.fail_on = fail_on

    def record(self, split, checkpoint, networks, predictions, **codes):
        self.threads.add(threading.get_ident())
        threading.Event().wait(0.002)
        if split == self.fail_on and checkpoint == 1:
            raise StoreError("disk full")
        super().record(split, checkpoint, networks, predictions, **codes)


def test_background_writer_records_what_writing_in_line_records(digits):
    study = study_from_flags(dataset="digits", arch="mlp", networks=4, epochs=2, width=16)
    checkpoints = len(study_checkpoints(study, digits).epochs)
    in_line = MemoryRecorder(4, checkpoints, digits)
    train_population(
        study,
        None,
        RunOptions(device="cpu", quiet=True, group_size=2),
        dataset=digits,
        recorder=in_line,
    )
    slow = _SlowRecorder(4, checkpoints, digits)
    with BackgroundRecorder(slow, depth=2) as background:
        train_population(
            study,
            None,
            RunOptions(device="cpu", quiet=True, group_size=2),
            dataset=digits,
            recorder=background,
        )
    assert slow.threads and threading.get_ident() not in slow.threads
    for split in digits.splits:
        np.testing.assert_array_equal(slow.predictions[split], in_line.predictions[split])
    np.testing.assert_array_equal(slow.loss, in_line.loss)
    np.testing.assert_array_equal(slow.completed, in_line.completed)


def test_background_writer_copies_what_it_queues():
    recorder = MemoryRecorder(2, 1, load_dataset(DataConfig("gaussian", samples=40)))
    with BackgroundRecorder(recorder) as background:
        predictions = np.ones((2, recorder.predictions["train"].shape[2]), np.int16)
        background.record("train", 0, (0, 2), predictions)
        predictions[:] = 7  # the caller reuses its array at once
    assert (recorder.predictions["train"][:, 0] == 1).all()


def test_background_writer_raises_the_writers_error_in_the_trainer(digits):
    study = study_from_flags(dataset="digits", arch="mlp", networks=2, epochs=3, width=8)
    failing = _SlowRecorder(2, len(study_checkpoints(study, digits).epochs), digits, fail_on="test")
    with pytest.raises(StoreError, match="disk full"):
        with BackgroundRecorder(failing, depth=1) as background:
            train_population(
                study,
                None,
                RunOptions(device="cpu", quiet=True),
                dataset=digits,
                recorder=background,
            )
    # Nothing after the failed write was marked: checkpoint 1 never completed.
    assert (failing.completed <= 1).all()


def test_background_writer_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth"):
        BackgroundRecorder(
            MemoryRecorder(1, 1, load_dataset(DataConfig("gaussian", samples=40))), depth=0
        )


def test_background_writes_into_a_store_equal_writes_in_line(tmp_path):
    import engine

    study = study_from_flags(
        dataset="digits", arch="mlp", networks=4, epochs=2, width=16, subset_fraction=0.5
    )
    stores = {}
    for background in (False, True):
        store = tmp_path / f"background-{background}.zarr"
        options = RunOptions(
            device="cpu", quiet=True, group_size=2, extra={"background_writes": background}
        )
        train_population(study, store, options)
        assert not (tmp_path / f".{store.name}.train-state").exists()  # removed after the writes
        stores[background] = engine.open_population(store)
    inline, background = stores[False], stores[True]
    assert (background.checkpoints_completed() == background.num_checkpoints).all()
    for split in inline.splits:
        np.testing.assert_array_equal(
            background.predictions(split).compute(), inline.predictions(split).compute()
        )
    np.testing.assert_array_equal(background.train_loss().compute(), inline.train_loss().compute())
    np.testing.assert_array_equal(background.membership().compute(), inline.membership().compute())


def test_background_writes_save_states_a_rerun_resumes_from(tmp_path):
    """States written from the writer's thread are whole and follow their marks: a rerun of a
    finished study with kept states finds every state valid and trains nothing again."""
    study = study_from_flags(dataset="digits", arch="mlp", networks=2, epochs=2, width=8)
    store = tmp_path / "kept.zarr"
    options = RunOptions(
        device="cpu", quiet=True, keep_state=True, extra={"background_writes": True}
    )
    train_population(study, store, options)
    states = sorted((tmp_path / ".kept.zarr.train-state").glob("*.pt"))
    assert [path.name for path in states] == ["mlp-0-2.pt"]
    state = torch.load(states[0], weights_only=True)
    assert state["checkpoint"] == 2 and state["step"] == 2 * 22
    rerun = train_population(study, store, options)
    assert rerun.trained_networks == 0 and rerun.skipped_networks == 2

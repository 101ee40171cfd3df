"""The batched trainer: architectures against plain PyTorch, randomness keyed by (seed, network),
grouping invariance, recording, subsets, studies, augmentation and schedules (in process)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

import engine
from engine.errors import ConfigError
from engine.train.augment import augment
from engine.train.config import GroupConfig, RunOptions
from engine.train.data import DataConfig, load_dataset
from engine.train.loop import train_population
from engine.train.models import BatchedModel, forward_precision
from engine.train.recorders import MemoryRecorder
from engine.train.seeds import (
    Checkpoints,
    epoch_order,
    learning_rate,
    network_seeds,
    study_checkpoints,
    study_seeds,
)
from engine.train.study import load_study, study_from_flags


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # Tiny networks: OpenMP's spinning threads cost more than they give on a shared 2-core box.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig("digits"))


def _train_memory(study, dataset, **options):
    recorder = MemoryRecorder(
        study.num_networks, len(study_checkpoints(study, dataset).epochs), dataset
    )
    train_population(
        study,
        None,
        RunOptions(device="cpu", quiet=True, **options),
        dataset=dataset,
        recorder=recorder,
    )
    return recorder


def test_batched_mlp_equals_plain_pytorch_modules():
    group = GroupConfig("mlp", "mlp", networks=3, width=16, depth=2)
    model = BatchedModel(group, "vector", (5,), 4)
    params, buffers = model.init_params([11, 12, 13], "cpu")
    inputs = torch.randn(7, 5)
    batched = model.forward(params, buffers, inputs, train=False, shared=True)
    for n in range(3):
        plain = nn.Sequential(
            nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)
        )
        with torch.no_grad():
            for layer, name in zip(plain[::2], ["hidden0", "hidden1", "fc"], strict=True):
                layer.weight.copy_(params[f"{name}.weight"][n].T)
                layer.bias.copy_(params[f"{name}.bias"][n])
        torch.testing.assert_close(batched[n], plain(inputs), rtol=1e-5, atol=1e-5)


def test_batched_cnn_with_batch_norm_equals_plain_pytorch_in_training_mode():
    group = GroupConfig("cnn", "cnn", networks=2, width=4, depth=2, batch_norm=True)
    model = BatchedModel(group, "image", (1, 8, 8), 3)
    params, buffers = model.init_params([1, 2], "cpu")
    inputs = torch.randn(2, 6, 1, 8, 8)  # each network its own batch
    batched = model.forward(params, buffers, inputs, train=True, shared=False)
    for n in range(2):
        plain = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1, bias=False),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32, 3),
        )
        with torch.no_grad():
            plain[0].weight.copy_(params["conv0.weight"][n])
            plain[4].weight.copy_(params["conv1.weight"][n])
            plain[9].weight.copy_(params["fc.weight"][n].T)
            plain[9].bias.copy_(params["fc.bias"][n])
        plain.train()
        torch.testing.assert_close(batched[n], plain(inputs[n]), rtol=1e-4, atol=1e-5)
        # Running statistics are kept per network.
        torch.testing.assert_close(buffers["conv0.bn.running_mean"][n], plain[1].running_mean)


@pytest.mark.parametrize(
    "arch,kind,shape",
    [
        ("linear", "image", (1, 8, 8)),
        ("cnn", "sequence", (1, 40)),
        ("resnet", "image", (3, 8, 8)),
        ("vgg", "sequence", (2, 16)),
        ("resnet", "sequence", (1, 12)),
        ("vgg", "image", (1, 8, 8)),
    ],
)
def test_every_architecture_is_per_network_and_group_invariant(arch, kind, shape):
    group = GroupConfig(arch, arch, networks=3, width=4, depth=2)
    model = BatchedModel(group, kind, shape, 5)
    params, buffers = model.init_params([4, 5, 6], "cpu")
    inputs = torch.randn(4, *shape)
    together = model.forward(params, buffers, inputs, train=False, shared=True)
    stacked = model.forward(
        params, buffers, inputs.expand(3, *inputs.shape).contiguous(), train=False, shared=False
    )
    torch.testing.assert_close(together, stacked, rtol=1e-5, atol=1e-5)
    alone_params, alone_buffers = model.init_params([5], "cpu")
    for name in params:
        assert torch.equal(alone_params[name][0], params[name][1])
    alone = model.forward(alone_params, alone_buffers, inputs, train=False, shared=True)
    torch.testing.assert_close(alone[0], together[1], rtol=1e-5, atol=1e-5)
    assert together.shape == (3, 4, 5)


def test_convolutional_architectures_need_images_or_sequences():
    with pytest.raises(ConfigError, match="needs images or sequences"):
        BatchedModel(GroupConfig("c", "cnn", 1), "vector", (5,), 3)


def test_seeds_and_orders_depend_on_seed_and_network_alone():
    ids = np.arange(10)
    seeds = network_seeds(0, ids, "order")
    assert len(set(seeds)) == 10
    np.testing.assert_array_equal(network_seeds(0, ids[3:5], "order"), seeds[3:5])
    assert (
        network_seeds(0, ids, "init", vary=False) == network_seeds(0, [0], "init", vary=False)[0]
    ).all()
    assert not np.array_equal(network_seeds(1, ids, "order"), seeds)
    assert not np.array_equal(network_seeds(0, ids, "init"), seeds)
    subset = np.arange(50)
    first, _ = epoch_order(seeds[2], 0, subset)
    again, _ = epoch_order(seeds[2], 0, subset)
    np.testing.assert_array_equal(first, again)
    assert sorted(first) == list(range(50))
    assert not np.array_equal(first, epoch_order(seeds[2], 1, subset)[0])
    assert not np.array_equal(first, epoch_order(seeds[3], 0, subset)[0])


def test_grouping_invariance_groups_of_8_and_of_1(digits):
    study = study_from_flags(dataset="digits", arch="mlp", networks=8, epochs=3, width=32)
    together = _train_memory(study, digits, group_size=8)
    alone = _train_memory(study, digits, group_size=1)
    for split in digits.splits:
        # Identical initial weights give identical initial verdicts.
        np.testing.assert_array_equal(
            together.predictions[split][:, 0], alone.predictions[split][:, 0]
        )
        agreement = together.predictions[split][:, -1] == alone.predictions[split][:, -1]
        assert agreement.mean() >= 0.999
    assert (together.completed == len(study_checkpoints(study, digits).epochs)).all()
    final = together.predictions["test"][:, -1]
    assert (final == digits.splits["test"].labels).mean() > 0.8
    # Networks differ from each other (their own init and order).
    assert not (final == final[0]).all()


PRODUCTS = ("aten.baddbmm", "aten.bmm", "aten.addmm", "aten.mm", "aten.convolution")


class _ProductDtypes(TorchDispatchMode):
    """Records the dtypes of the tensor arguments of every matrix product and convolution."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if name.startswith(PRODUCTS):
            self.calls.append((name, {a.dtype for a in args if isinstance(a, torch.Tensor)}))
        return func(*args, **(kwargs or {}))


def _check_bf16_products(device: str) -> None:
    cases = [
        ("mlp", "vector", (10,)),
        ("cnn", "image", (1, 8, 8)),
        ("cnn", "sequence", (1, 12)),
        ("resnet", "image", (2, 8, 8)),
        ("linear", "vector", (10,)),
    ]
    for arch, kind, shape in cases:
        group = GroupConfig(arch, arch, networks=3, width=4, depth=2)
        model = BatchedModel(group, kind, shape, 5)
        params, buffers = model.init_params([1, 2, 3], device)
        stacked = torch.randn(3, 6, *shape, device=device)
        with _ProductDtypes() as log:
            with forward_precision(device, "bf16"):
                logits = model.forward(params, buffers, stacked, train=True, shared=False)
            logits.float().sum().backward()
            with torch.no_grad(), forward_precision(device, "bf16"):
                model.forward(params, buffers, stacked[0], train=False, shared=True)
        kinds = {name.split(".")[1] for name, _ in log.calls}
        expected = {"baddbmm"} | ({"convolution"} if arch in ("cnn", "resnet") else set())
        assert expected <= kinds, (arch, kinds)
        # Forward products (and those of the backward pass) all run in bf16 ...
        assert all(dtypes == {torch.bfloat16} for _, dtypes in log.calls), (arch, log.calls)
        # ... while the master weights and their gradients stay fp32.
        assert all(
            p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in params.values()
        )
        assert all(b.dtype == torch.float32 for b in buffers.values())


def test_bf16_autocast_covers_every_batched_product_on_cpu():
    _check_bf16_products("cpu")


@pytest.mark.gpu
def test_bf16_autocast_covers_every_batched_product_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    _check_bf16_products("cuda")


def test_bf16_grouping_invariance_and_accuracy_close_to_fp32(digits):
    study = study_from_flags(
        dataset="digits", arch="mlp", networks=8, epochs=3, width=32, precision="bf16"
    )
    together = _train_memory(study, digits, group_size=8)
    alone = _train_memory(study, digits, group_size=1)
    for split in digits.splits:
        agreement = together.predictions[split][:, -1] == alone.predictions[split][:, -1]
        assert agreement.mean() >= 0.999
    fp32 = _train_memory(
        study_from_flags(dataset="digits", arch="mlp", networks=8, epochs=3, width=32), digits
    )
    labels = digits.splits["test"].labels
    accuracy_bf16 = (together.predictions["test"][:, -1] == labels).mean()
    accuracy_fp32 = (fp32.predictions["test"][:, -1] == labels).mean()
    assert accuracy_bf16 > 0.8 and abs(accuracy_bf16 - accuracy_fp32) < 0.03
    # The bf16 forward pass did run: some verdicts differ from fp32's.
    assert (together.predictions["train"] != fp32.predictions["train"]).any()


def test_vary_order_only_shares_the_initialisation(digits):
    study = study_from_flags(dataset="digits", arch="linear", networks=3, epochs=1, vary="order")
    seeds = study_seeds(study)
    assert len(set(seeds["init"])) == 1 and len(set(seeds["order"])) == 3
    recorder = _train_memory(study, digits)
    initial = recorder.predictions["test"][:, 0]
    assert (initial == initial[0]).all()
    assert not (recorder.predictions["train"][:, -1] == recorder.predictions["train"][0, -1]).all()


def test_record_every_adds_step_checkpoints():
    checkpoints = Checkpoints.build(epochs=2, steps_per_epoch=5, record_every=2)
    np.testing.assert_array_equal(checkpoints.steps, [0, 2, 4, 5, 6, 8, 10])
    np.testing.assert_allclose(checkpoints.epochs, [0, 0.4, 0.8, 1, 1.2, 1.6, 2])


def test_learning_rate_schedules():
    cosine = GroupConfig("g", "mlp", 1, lr=1.0, schedule="cosine")
    assert learning_rate(cosine, 0, 10, 2) == 1.0
    assert abs(learning_rate(cosine, 10, 10, 2) - 0.5) < 1e-12
    step = GroupConfig("g", "mlp", 1, lr=1.0, schedule="step", milestones=(1, 2), gamma=0.1)
    assert [round(learning_rate(step, s, 10, 3), 6) for s in (0, 9, 10, 25)] == [1, 1, 0.1, 0.01]
    assert learning_rate(GroupConfig("g", "mlp", 1, lr=0.3, schedule="constant"), 99, 10, 2) == 0.3


def test_augmentation_crops_and_flips_each_example_by_its_draw():
    images = torch.arange(2 * 3 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 3, 1, 4, 4)
    draws = torch.tensor([[[1, 1, 0], [0, 2, 1], [2, 0, 0]], [[1, 1, 1], [2, 2, 0], [0, 0, 1]]])
    out = augment(images, draws, crop=1)
    padded = np.pad(images.numpy(), ((0, 0), (0, 0), (0, 0), (1, 1), (1, 1)))
    for n in range(2):
        for b in range(3):
            row, column, flip = draws[n, b].tolist()
            expected = padded[n, b, :, row : row + 4, column : column + 4]
            if flip:
                expected = expected[..., ::-1]
            np.testing.assert_array_equal(out[n, b].numpy(), expected)


def test_store_records_every_split_checkpoint_and_membership(tmp_path):
    study = study_from_flags(
        dataset="digits",
        arch="mlp",
        networks=5,
        epochs=2,
        width=16,
        subset_fraction=0.5,
        record_every=7,
        data=DataConfig("digits", probes=("noise",), probe_examples=20, holdout_classes=(9,)),
    )
    store = tmp_path / "pop.zarr"
    summary = train_population(study, store, RunOptions(device="cpu", quiet=True, command="test"))
    assert summary.trained_networks == 5
    population = engine.open_population(store)
    assert population.splits == ["train", "test", "holdout", "probe_noise"]
    assert not population.has_labels("holdout") and not population.has_labels("probe_noise")
    assert (population.checkpoints_completed() == population.num_checkpoints).all()
    epochs = population.checkpoints["epoch"].to_numpy()
    assert epochs[0] == 0 and epochs[-1] == 2 and population.num_checkpoints > 3
    predictions = population.predictions("probe_noise").compute()
    assert (predictions >= 0).all() and predictions.max() < 9
    membership = population.membership().compute()
    train_count = population.num_examples("train")
    assert (membership.sum(axis=1) == round(0.5 * train_count)).all()
    assert not (membership == membership[0]).all()
    loss = population.train_loss().compute()
    assert np.isfinite(loss).all() and (loss[:, -1] < loss[:, 0]).all()
    assert population.attrs["extra"]["train_config"]["subset_fraction"] == 0.5
    assert population.attrs["groups"][0]["hyperparameters"]["width"] == 16
    # The training state is removed once the networks are complete.
    assert not (tmp_path / ".pop.zarr.train-state").exists()


def test_toml_study_makes_one_store_with_groups(tmp_path):
    study_file = tmp_path / "study.toml"
    study_file.write_text("""
epochs = 1
seed = 3
[data]
name = "gaussian"
samples = 200
[defaults]
batch_size = 32
[[groups]]
name = "lin"
arch = "linear"
networks = 3
[[groups]]
name = "deep"
arch = "mlp"
networks = 2
width = 8
optimizer = "adam"
lr = 0.01
schedule = "step"
milestones = [1]
precision = "bf16"
""")
    study = load_study(study_file)
    assert [g.name for g in study.groups] == ["lin", "deep"]
    assert study.groups[1].batch_size == 32 and study.groups[1].optimizer == "adam"
    train_population(study, tmp_path / "s.zarr", RunOptions(device="cpu", quiet=True))
    population = engine.open_population(tmp_path / "s.zarr")
    assert population.num_networks == 5
    assert list(population.network_groups()) == [0, 0, 0, 1, 1]
    assert population.networks["architecture"].tolist() == ["linear"] * 3 + ["mlp"] * 2
    precisions = [g["hyperparameters"]["precision"] for g in population.attrs["groups"]]
    assert precisions == ["fp32", "bf16"]
    study_file.write_text(study_file.read_text() + "\nlearning_speed = 3\n")
    with pytest.raises(ConfigError, match="unknown key 'learning_speed'"):
        load_study(study_file)


def test_bad_configuration_values():
    with pytest.raises(ConfigError, match="unknown architecture 'transformer'"):
        study_from_flags(dataset="digits", arch="transformer", networks=2, epochs=1)
    with pytest.raises(ConfigError, match="--vary"):
        study_from_flags(dataset="digits", arch="mlp", networks=2, epochs=1, vary="weights")
    with pytest.raises(ConfigError, match="subset-fraction"):
        study_from_flags(dataset="digits", arch="mlp", networks=2, epochs=1, subset_fraction=0)
    with pytest.raises(ConfigError, match="unknown optimizer"):
        study_from_flags(dataset="digits", arch="mlp", networks=2, epochs=1, optimizer="lbfgs")
    with pytest.raises(ConfigError, match="unknown schedule 'linear'.*one of constant, cosine"):
        study_from_flags(dataset="digits", arch="mlp", networks=2, epochs=1, schedule="linear")
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        study_from_flags(dataset="digits", arch="mlp", networks=2, epochs=1, precision="fp16")
    # The seed is checked with the rest of the study, so TOML studies and --cluster fail early.
    with pytest.raises(ConfigError, match="--seed must be >= 0"):
        study_from_flags(dataset="digits", arch="mlp", networks=2, epochs=1, seed=-1)
    with pytest.raises(ConfigError, match="--group-size must be >= 0"):
        RunOptions(group_size=-1).validate()


@pytest.mark.gpu
def test_cuda_training_matches_cpu_at_initialisation_and_learns(digits):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for arch in ("mlp", "cnn"):
        study = study_from_flags(dataset="digits", arch=arch, networks=16, epochs=2, width=16)
        on_gpu = MemoryRecorder(16, len(study_checkpoints(study, digits).epochs), digits)
        train_population(
            study, None, RunOptions(device="cuda", quiet=True), dataset=digits, recorder=on_gpu
        )
        on_cpu = _train_memory(study, digits)
        initial = on_gpu.predictions["test"][:, 0] == on_cpu.predictions["test"][:, 0]
        assert initial.mean() >= 0.99
        final = on_gpu.predictions["test"][:, -1] == digits.splits["test"].labels
        assert final.mean() > 0.8


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_resume_after_a_crash_between_mark_and_state_gives_the_uninterrupted_store(
    tmp_path, monkeypatch, digits, device
):
    """The worst moment to die: a checkpoint is marked but its state not saved, so the rerun
    starts from the state before it (weights, momentum, batch-norm statistics moved back onto the
    device) and redoes that stretch, augmentation draws included."""
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    import engine.train.loop as loop

    study = study_from_flags(
        dataset="digits",
        arch="cnn",
        networks=3,
        epochs=2,
        width=4,
        depth=1,
        record_every=9,
        augment=True,
        subset_fraction=0.9,
    )
    options = RunOptions(device=device, quiet=True)
    train_population(study, tmp_path / "whole.zarr", options, dataset=digits)
    save_state = loop.save_state

    def dies_saving_checkpoint_3(context, run):
        if run.checkpoint == 3:
            raise RuntimeError("killed")
        save_state(context, run)

    monkeypatch.setattr(loop, "save_state", dies_saving_checkpoint_3)
    with pytest.raises(RuntimeError, match="killed"):
        train_population(study, tmp_path / "crashed.zarr", options, dataset=digits)
    monkeypatch.undo()
    crashed = engine.open_population(tmp_path / "crashed.zarr")
    assert (crashed.checkpoints_completed() == 4).all()  # checkpoints 0..3 marked, state at 2
    summary = train_population(study, tmp_path / "crashed.zarr", options, dataset=digits)
    assert summary.trained_networks == 3
    whole = engine.open_population(tmp_path / "whole.zarr")
    for split in whole.splits:
        np.testing.assert_array_equal(
            crashed.predictions(split).compute(), whole.predictions(split).compute(), err_msg=split
        )
    np.testing.assert_array_equal(crashed.train_loss().compute(), whole.train_loss().compute())
    assert (crashed.checkpoints_completed() == whole.num_checkpoints).all()
    assert not (tmp_path / ".crashed.zarr.train-state").exists()

"""The trainer's soft verdicts (issue 9): true-class probability and margin computed on the
training device and encoded there, checked against an independent float64 NumPy computation from
the trained weights; the same verdicts with soft recording on or off; the flag, the study key and
a store that refuses to resume with the other setting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr

import engine
from cli.app import main
from engine.errors import ConfigError
from engine.store.format import (
    MARGIN_LIMIT,
    MARGIN_MISSING,
    MARGIN_SCALE,
    PROBABILITY_MISSING,
    PROBABILITY_SCALE,
    decode_margin,
    decode_probability,
    encode_margin,
    encode_probability,
)
from engine.store.soft import soft_verdicts
from engine.train.config import RunOptions
from engine.train.data import DataConfig, load_dataset
from engine.train.evaluation import encode_soft, soft_values
from engine.train.loop import train_population
from engine.train.models import BatchedModel
from engine.train.recorders import MemoryRecorder, NullRecorder
from engine.train.seeds import study_seeds
from engine.train.state import state_folder
from engine.train.study import load_study, study_from_flags

#: The stated quantisation errors (docs/store-format.md): half a code step.
PROBABILITY_ERROR = 1 / (2 * PROBABILITY_SCALE)
MARGIN_ERROR = 1 / (2 * MARGIN_SCALE)
MARGIN_RANGE = MARGIN_LIMIT / MARGIN_SCALE

SMALL = ["train-population", "--dataset", "digits", "--arch", "linear", "--networks", "2"]
SMALL += ["--epochs", "1", "--quiet"]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # Tiny networks: OpenMP's spinning threads cost more than they give on a shared 2-core box.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    # A probe split without labels, so that the missing codes are exercised too.
    return load_dataset(DataConfig("digits", probes=("noise",), probe_examples=24))


def _study(soft: bool = True):
    return study_from_flags(
        dataset="digits",
        arch="mlp",
        networks=3,
        epochs=2,
        width=16,
        data=DataConfig("digits", probes=("noise",), probe_examples=24),
        soft=soft,
    )


def _reference(model, params, buffers, dataset, split):
    """Probability and margin in float64 NumPy from the network's logits (float64 forward)."""
    params = {k: v.detach().cpu().double() for k, v in params.items()}
    buffers = {k: v.cpu().double() for k, v in buffers.items()}
    inputs = torch.from_numpy(dataset.splits[split].inputs).double()
    with torch.no_grad():
        logits = model.forward(params, buffers, inputs, train=False, shared=True).numpy()
    labels = dataset.splits[split].labels
    index = np.maximum(labels, 0)[None, :, None]
    shifted = logits - logits.max(axis=2, keepdims=True)
    softmax = np.exp(shifted) / np.exp(shifted).sum(axis=2, keepdims=True)
    probability = np.take_along_axis(softmax, index, axis=2)[..., 0]
    true_logit = np.take_along_axis(logits, index, axis=2)[..., 0]
    others = logits.copy()
    np.put_along_axis(others, np.broadcast_to(index, (*logits.shape[:2], 1)), -np.inf, axis=2)
    margin = true_logit - others.max(axis=2)
    unlabelled = labels[None, :] < 0
    return np.where(unlabelled, np.nan, probability), np.where(unlabelled, np.nan, margin)


def _check_against_reference(population, checkpoint, reference, split):
    expected_probability, expected_margin = reference
    probability = population.probability(split)[:, checkpoint].compute()
    margin = population.margin(split)[:, checkpoint].compute()
    labelled = ~np.isnan(expected_probability)
    assert (np.isnan(probability) == ~labelled).all() and (np.isnan(margin) == ~labelled).all()
    if not labelled.any():
        return
    assert np.abs(probability - expected_probability)[labelled].max() <= PROBABILITY_ERROR + 1e-6
    inside = labelled & (np.abs(expected_margin) <= MARGIN_RANGE)
    assert np.abs(margin - expected_margin)[inside].max() <= MARGIN_ERROR + 1e-5
    outside = labelled & ~inside
    assert (np.abs(margin[outside]) == MARGIN_RANGE).all()
    assert (np.sign(margin[outside]) == np.sign(expected_margin[outside])).all()
    # The codes are those of the formulas, but where a float32 rounding lands across a step.
    codes = np.rint(probability[labelled] * PROBABILITY_SCALE)
    assert np.abs(codes - encode_probability(expected_probability[labelled])).max() <= 1
    assert (codes == encode_probability(expected_probability[labelled])).mean() > 0.99


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_stored_soft_verdicts_equal_a_softmax_of_the_trained_networks_logits(
    tmp_path, digits, device
):
    """Checkpoint 0 against the initial weights, the last against the final weights kept with
    --keep-state: logits recomputed in float64 on the CPU, softmax and margin in NumPy."""
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    study = _study()
    store = tmp_path / "soft.zarr"
    options = RunOptions(device=device, quiet=True, keep_state=True)
    train_population(study, store, options, dataset=digits)
    population = engine.open_population(store)
    assert all(population.soft_arrays(s) == ["probability", "margin"] for s in population.splits)
    group = study.groups[0]
    model = BatchedModel(group, digits.kind, digits.input_shape, digits.num_classes)
    initial = model.init_params(study_seeds(study)["init"], "cpu")
    state = torch.load(state_folder(store) / "mlp-0-3.pt", map_location="cpu", weights_only=True)
    assert state["checkpoint"] == population.num_checkpoints - 1
    for split in population.splits:
        for checkpoint, (params, buffers) in (
            (0, initial),
            (population.num_checkpoints - 1, (state["params"], state["buffers"])),
        ):
            reference = _reference(model, params, buffers, digits, split)
            _check_against_reference(population, checkpoint, reference, split)
    assert np.isnan(population.probability("probe_noise").compute()).all()
    # The memory recorder keeps the same codes as the store (a second run: on CUDA, allow a
    # code step for reductions whose order may vary between runs).
    recorder = MemoryRecorder(3, population.num_checkpoints, digits)
    train_population(
        study, None, RunOptions(device=device, quiet=True), dataset=digits, recorder=recorder
    )
    steps = 0 if device == "cpu" else 1
    for split in population.splits:
        np.testing.assert_allclose(
            decode_probability(recorder.probability[split]),
            population.probability(split).compute(),
            rtol=0,
            atol=steps / PROBABILITY_SCALE + 1e-7,
        )
        np.testing.assert_allclose(
            decode_margin(recorder.margin[split]),
            population.margin(split).compute(),
            rtol=0,
            atol=steps / MARGIN_SCALE,
        )


def test_soft_recording_changes_no_prediction_correctness_or_loss(tmp_path, digits):
    stores = {}
    for soft in (False, True):
        stores[soft] = tmp_path / f"soft-{soft}.zarr"
        train_population(
            _study(soft), stores[soft], RunOptions(device="cpu", quiet=True), dataset=digits
        )
    off, on = (engine.open_population(stores[soft]) for soft in (False, True))
    assert off.soft_arrays("train") == [] and on.soft_arrays("train") == ["probability", "margin"]
    for split in off.splits:
        np.testing.assert_array_equal(
            on.predictions(split).compute(), off.predictions(split).compute()
        )
        np.testing.assert_array_equal(on.correct(split).compute(), off.correct(split).compute())
    np.testing.assert_array_equal(on.train_loss().compute(), off.train_loss().compute())
    # A memory recorder without soft verdicts keeps none; a null recorder takes them and drops them.
    recorder = MemoryRecorder(3, off.num_checkpoints, digits)
    options = RunOptions(device="cpu", quiet=True)
    train_population(_study(False), None, options, dataset=digits, recorder=recorder)
    assert recorder.probability == {} and recorder.margin == {}
    np.testing.assert_array_equal(recorder.predictions["test"], off.predictions("test").compute())
    train_population(_study(True), None, options, dataset=digits, recorder=NullRecorder())


def test_device_encoding_follows_the_store_formulas_exactly():
    """encode_soft against engine.store.format's NumPy encoders, halfway points included."""
    steps = np.arange(-2, PROBABILITY_SCALE + 3) / PROBABILITY_SCALE
    probability = np.concatenate(
        [steps, steps + 0.5 / PROBABILITY_SCALE, [np.nan, -0.1, 1.5, np.inf, -np.inf, 0.0, 1.0]]
    )
    codes = np.arange(-MARGIN_LIMIT - 3, MARGIN_LIMIT + 4)
    margin = np.concatenate(
        [codes / MARGIN_SCALE, (codes + 0.5) / MARGIN_SCALE, [np.nan, np.inf, -np.inf, 0.0]]
    )
    size = max(probability.size, margin.size)
    probability = np.resize(probability, size)[None]
    margin = np.resize(margin, size)[None]
    probability_code, margin_code = encode_soft(
        torch.from_numpy(probability), torch.from_numpy(margin)
    )
    assert probability_code.dtype == torch.uint8 and margin_code.dtype == torch.int8
    np.testing.assert_array_equal(probability_code.numpy(), encode_probability(probability))
    # encode_margin multiplies nan_to_num(inf), the largest float, by the scale: an overflow to
    # inf that its clip then handles.
    with np.errstate(over="ignore"):
        expected_margin = encode_margin(margin)
    np.testing.assert_array_equal(margin_code.numpy(), expected_margin)
    # float32 inputs give the codes NumPy gives the same float32 values.
    as_float32 = probability.astype(np.float32)
    code, _ = encode_soft(torch.from_numpy(as_float32), torch.from_numpy(margin.astype(np.float32)))
    np.testing.assert_array_equal(code.numpy(), encode_probability(as_float32))


def test_device_soft_values_equal_the_writers_derivation():
    """soft_values against engine.store.soft (what writer.record(logits=) derives), with ties,
    large logits and examples without a label."""
    generator = np.random.default_rng(4)
    logits = (5 * generator.standard_normal((3, 40, 6))).astype(np.float32)
    logits[0, :5] = 2.0  # every class tied
    logits[1, 5:10, :2] = 7.0  # the true class tied with another, for labels 0 and 1
    logits[2, 10:15] *= 40  # a probability of 0 or 1 in float32, margins beyond the code range
    labels = generator.integers(0, 6, 40)
    labels[5:10] = generator.integers(0, 2, 5)
    labels[30:] = -1
    probability, margin = soft_values(torch.from_numpy(logits), torch.from_numpy(labels))
    expected = soft_verdicts(logits, labels, 6, (3, 40), kind="logits")
    np.testing.assert_allclose(probability.numpy(), expected.probability, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(margin.numpy(), expected.margin, rtol=1e-6, atol=1e-5)
    codes = encode_soft(probability, margin)
    assert (codes[0].numpy()[:, 30:] == PROBABILITY_MISSING).all()
    assert (codes[1].numpy()[:, 30:] == MARGIN_MISSING).all()


def test_a_store_refuses_to_resume_with_the_other_soft_setting(tmp_path, capsys):
    store = tmp_path / "pop.zarr"
    assert main([*SMALL, "--soft", "--out", str(store)]) == 0
    assert engine.open_population(store).soft_arrays("test") == ["probability", "margin"]
    assert main([*SMALL, "--soft", "--out", str(store)]) == 0  # the same study: reused
    capsys.readouterr()
    assert main([*SMALL, "--out", str(store)]) == 1
    err = capsys.readouterr().err
    assert "different configuration: soft (True in the store, False now)" in err
    assert err.count("\n") == 1
    plain = tmp_path / "plain.zarr"
    assert main([*SMALL, "--no-soft", "--out", str(plain)]) == 0
    assert engine.open_population(plain).soft_arrays("test") == []
    assert main([*SMALL, "--soft", "--out", str(plain)]) == 1
    assert "soft (False in the store, True now)" in capsys.readouterr().err
    # A store made before the setting existed recorded no soft verdicts, and resumes without.
    root = zarr.open_group(plain, mode="r+")
    meta = dict(root.attrs["created_equal"])
    del meta["extra"]["train_config"]["soft"]
    root.attrs["created_equal"] = meta
    assert "soft" not in engine.open_population(plain).attrs["extra"]["train_config"]
    assert main([*SMALL, "--out", str(plain)]) == 0
    assert main([*SMALL, "--soft", "--out", str(plain)]) == 1


def test_the_study_key_records_soft_verdicts_and_is_checked(tmp_path, capsys):
    study_file = tmp_path / "study.toml"
    body = '[data]\nname = "digits"\n[[groups]]\narch = "linear"\nnetworks = 2\n'
    study_file.write_text("epochs = 1\nsoft = true\n" + body)
    assert load_study(study_file).soft
    store = tmp_path / "pop.zarr"
    assert (
        main(["train-population", "--study", str(study_file), "--quiet", "--out", str(store)]) == 0
    )
    population = engine.open_population(store)
    assert all(population.soft_arrays(s) == ["probability", "margin"] for s in population.splits)
    assert population.attrs["extra"]["train_config"]["soft"] is True
    # The study file defines the study: --soft beside it is refused, like every study flag.
    code = main(["train-population", "--study", str(study_file), "--soft", "--out", str(store)])
    assert code == 1 and "drop --soft" in capsys.readouterr().err
    study_file.write_text('epochs = 1\nsoft = "yes"\n' + body)
    with pytest.raises(ConfigError, match="soft must be true or false, got 'yes'"):
        load_study(study_file)
    other = tmp_path / "other.zarr"
    code = main(["train-population", "--study", str(study_file), "--quiet", "--out", str(other)])
    err = capsys.readouterr().err
    assert code == 1 and err == "error: soft must be true or false, got 'yes'\n"
    assert not other.exists()

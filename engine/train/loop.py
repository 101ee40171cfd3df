"""Train a population block by block, record every checkpoint, and resume after a crash.

The unit of work is a *block*: consecutive networks of one group that train as one batched
computation (:class:`engine.train.models.BatchedModel`). Per block:

1. the initial weights come from each network's init seed; each epoch's mini-batch order (and
   augmentation draws) from ``numpy.random.default_rng([order_seed, epoch])``: randomness is a
   pure function of (network seed, epoch), so a block of any size, a shard or a resumed run
   gives every network the same data in the same order;
2. at checkpoint 0 (initialisation), at each epoch end and every ``record_every`` steps, every
   split is evaluated with the data on the device, predictions and the training loss are
   written, the checkpoint is marked complete in the store, and only then the block's weights,
   batch-norm statistics and optimiser state are saved (temporary file and ``os.replace``) in the
   state folder ``<store parent>/.<store name>.train-state/``;
3. a rerun of the same command skips complete networks and resumes each block from its saved
   state (or from scratch where none was saved yet): work between the last saved checkpoint and
   the crash is redone identically and overwrites what the crash left half written.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.train.data import Dataset, load_dataset
from engine.errors import ConfigError, StoreError
from engine.train.config import GroupConfig, RunOptions, StudyConfig, config_differences

STATE_FORMAT = 1
STREAMS = {"init": 0, "order": 1, "subset": 2}
#: Floats of activations per evaluation batch (all networks together). On a CPU, batches whose
#: activations stay in cache (8 MB) evaluate fastest: 64 MLPs of width 128 on digits took 35 ms
#: per checkpoint at 256 examples per batch against 59 ms at 1,024, 32 small CNNs 166 ms against
#: 591 ms (copies between the batched layers dominate once activations spill). A GPU takes
#: batches as large as memory allows.
EVAL_ACTIVATION_BUDGET_CPU = 2 * 2**20
EVAL_ACTIVATION_BUDGET_CUDA = 512 * 2**20


# ----------------------------------------------------------------------------------------------
# Randomness


def network_seeds(seed: int, networks: np.ndarray, stream: str, vary: bool = True) -> np.ndarray:
    """Seed of one source of randomness for each network id, from (population seed, id) alone.

    With ``vary=False`` every network gets the same, shared seed of that stream.
    """
    tag = STREAMS[stream]
    out = np.empty(len(networks), np.int64)
    for position, network in enumerate(np.asarray(networks)):
        key = [int(seed), tag, int(network) + 1 if vary else 0]
        state = np.random.SeedSequence(key).generate_state(2, np.uint32)
        out[position] = ((int(state[0]) << 32) | int(state[1])) >> 1  # non-negative int64
    return out


def subset_indices(subset_seed: int, train_examples: int, fraction: float) -> np.ndarray:
    """Sorted training-example indices of one network's subset (all of them at fraction 1)."""
    if fraction >= 1:
        return np.arange(train_examples)
    count = subset_size(train_examples, fraction)
    rng = np.random.default_rng(int(subset_seed))
    return np.sort(rng.choice(train_examples, count, replace=False))


def subset_size(train_examples: int, fraction: float) -> int:
    return train_examples if fraction >= 1 else max(1, int(round(fraction * train_examples)))


def epoch_order(order_seed: int, epoch: int, subset: np.ndarray, crop: int = 0):
    """One network's training examples for one epoch, in order, and its augmentation draws.

    Returns
    -------
    order : ndarray of int64, dims (examples,)
        Indices into the training split.
    draws : ndarray of int64, dims (examples, 3), or None
        Crop offsets (row, column) in ``0..2*crop`` and a flip bit, where ``crop > 0``.
    """
    rng = np.random.default_rng([int(order_seed), int(epoch)])
    order = subset[rng.permutation(subset.size)]
    if not crop:
        return order, None
    draws = np.empty((subset.size, 3), np.int64)
    draws[:, :2] = rng.integers(0, 2 * crop + 1, size=(subset.size, 2))
    draws[:, 2] = rng.random(subset.size) < 0.5
    return order, draws


# ----------------------------------------------------------------------------------------------
# Schedules


@dataclass(frozen=True)
class Checkpoints:
    """The study's checkpoints: epoch (fractional for step checkpoints) and optimiser step."""

    epochs: np.ndarray  # float64 (checkpoints,)
    steps: np.ndarray  # int64 (checkpoints,), per group below where batch sizes differ

    @staticmethod
    def build(epochs: int, steps_per_epoch: int, record_every: int) -> Checkpoints:
        at_epochs, at_steps = [0.0], [0]
        for epoch in range(1, epochs + 1):
            if record_every:
                for step in range((epoch - 1) * steps_per_epoch + 1, epoch * steps_per_epoch):
                    if step % record_every == 0:
                        at_epochs.append(step / steps_per_epoch)
                        at_steps.append(step)
            at_epochs.append(float(epoch))
            at_steps.append(epoch * steps_per_epoch)
        return Checkpoints(np.asarray(at_epochs), np.asarray(at_steps, np.int64))


def learning_rate(group: GroupConfig, step: int, steps_per_epoch: int, epochs: int) -> float:
    """Learning rate of optimiser step ``step`` (counted from 0)."""
    if group.schedule == "cosine":
        return group.lr * 0.5 * (1 + math.cos(math.pi * step / (steps_per_epoch * epochs)))
    if group.schedule == "step":
        epoch = step // steps_per_epoch
        return group.lr * group.gamma ** sum(epoch >= m for m in group.milestones)
    return group.lr


# ----------------------------------------------------------------------------------------------
# Recording targets


class StoreRecorder:
    """Writes verdicts to a population store through a writer that owns the networks."""

    def __init__(self, writer):
        self.writer = writer

    def record(self, split, checkpoint, networks, predictions):
        self.writer.record(split, checkpoint, networks, predictions=predictions)

    def record_loss(self, checkpoint, networks, loss):
        self.writer.record_loss(checkpoint, networks, loss)

    def record_membership(self, networks, membership):
        self.writer.record_membership(networks, membership)

    def mark(self, checkpoint, networks):
        self.writer.mark_checkpoint(checkpoint, networks)


class MemoryRecorder:
    """Keeps verdicts in memory: for benchmarks and tests (``predictions[split]`` dims
    (networks, checkpoints, examples), int16, -1 where not recorded)."""

    def __init__(self, num_networks: int, num_checkpoints: int, dataset: Dataset):
        self.predictions = {name: np.full((num_networks, num_checkpoints, len(split)), -1,
                                          np.int16)
                            for name, split in dataset.splits.items()}
        self.loss = np.full((num_networks, num_checkpoints), np.nan, np.float32)
        self.completed = np.zeros(num_networks, np.int32)
        self.membership = None

    def record(self, split, checkpoint, networks, predictions):
        self.predictions[split][networks[0]:networks[1], checkpoint] = predictions

    def record_loss(self, checkpoint, networks, loss):
        self.loss[networks[0]:networks[1], checkpoint] = loss

    def record_membership(self, networks, membership):
        if self.membership is None:
            self.membership = np.ones((self.loss.shape[0], membership.shape[1]), bool)
        self.membership[networks[0]:networks[1]] = membership

    def mark(self, checkpoint, networks):
        done = self.completed[networks[0]:networks[1]]
        self.completed[networks[0]:networks[1]] = np.maximum(done, checkpoint + 1)


class NullRecorder(MemoryRecorder):
    """Records nothing (to time training alone)."""

    def __init__(self):
        pass

    def record(self, *args):
        pass

    def record_loss(self, *args):
        pass

    def record_membership(self, *args):
        pass

    def mark(self, *args):
        pass


# ----------------------------------------------------------------------------------------------
# Device and data


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was requested but CUDA is not available on this "
                              "machine (use --device cpu or auto)")
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ConfigError(f"--device {name}: not a device; use cuda or cuda:N") from None
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: this machine has "
                              f"{torch.cuda.device_count()} CUDA devices")
        return device
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"unknown device {name!r}; choose auto, cpu or cuda")


@dataclass
class DeviceData:
    """The data set's splits as tensors on the training device."""

    inputs: dict  # split -> Tensor (examples, *input_shape) float32
    labels: dict  # split -> Tensor (examples,) int64

    @staticmethod
    def build(dataset: Dataset, device) -> DeviceData:
        import torch

        inputs = {n: torch.from_numpy(s.inputs).to(device) for n, s in dataset.splits.items()}
        labels = {n: torch.from_numpy(s.labels).to(device) for n, s in dataset.splits.items()}
        return DeviceData(inputs, labels)


# ----------------------------------------------------------------------------------------------
# One block


@dataclass
class Block:
    """Networks ``[start, stop)`` of group ``group_index``, trained together."""

    group_index: int
    group: GroupConfig
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def key(self) -> str:
        return f"{self.group.name}-{self.start}-{self.stop}"


@dataclass
class TrainContext:
    study: StudyConfig
    dataset: Dataset
    data: DeviceData
    device: object
    checkpoints: Checkpoints
    init_seeds: np.ndarray  # (networks,) int64, all networks of the study
    order_seeds: np.ndarray
    subset_seeds: np.ndarray
    recorder: object
    state_dir: Path | None
    eval_batch: int = 1024
    keep_state: bool = False
    progress: object = None
    config_json: str = ""
    timings: dict = field(default_factory=lambda: {"train": 0.0, "record": 0.0,
                                                   "network_epochs": 0})


def steps_per_epoch(study: StudyConfig, group: GroupConfig, train_examples: int) -> int:
    return math.ceil(subset_size(train_examples, study.subset_fraction) / group.batch_size)


def _crop_padding(dataset: Dataset, group: GroupConfig) -> int:
    if not group.augment or dataset.kind != "image":
        return 0
    return max(1, min(dataset.input_shape[1:]) // 8)


def _augment(batch, draws, crop: int):
    """Random crop (zero padding ``crop``) and horizontal flip of ``(N, B, C, H, W)`` images,
    one draw per (network, example): ``draws`` (N, B, 3) = row offset, column offset, flip."""
    import torch
    import torch.nn.functional as F

    networks, size, channels, height, width = batch.shape
    flat = F.pad(batch.reshape(networks * size, channels, height, width), (crop,) * 4)
    draws = draws.reshape(networks * size, 3)
    rows = draws[:, 0:1] + torch.arange(height, device=batch.device)
    columns = torch.arange(width, device=batch.device)
    columns = torch.where(draws[:, 2:3].bool(), width - 1 - columns, columns) + draws[:, 1:2]
    index = torch.arange(networks * size, device=batch.device)
    out = flat[index[:, None, None], :, rows[:, :, None], columns[:, None, :]]
    return out.permute(0, 3, 1, 2).reshape(networks, size, channels, height, width)


def _state_path(context: TrainContext, block: Block) -> Path | None:
    return context.state_dir / f"{block.key}.pt" if context.state_dir else None


def _save_state(context, block, params, buffers, optimizer, checkpoint, step) -> None:
    import torch

    path = _state_path(context, block)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": STATE_FORMAT,
        "config": context.config_json,
        "block": [block.start, block.stop],
        "checkpoint": checkpoint,
        "step": step,
        "params": {k: v.detach().cpu() for k, v in params.items()},
        "buffers": {k: v.cpu() for k, v in buffers.items()},
        "optimizer": optimizer.state_dict(),
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def _load_state(context, block, completed: np.ndarray) -> dict | None:
    import torch

    path = _state_path(context, block)
    if path is None or not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a foreign or damaged file: start the block afresh
        return None
    if (state.get("format") != STATE_FORMAT or state.get("config") != context.config_json
            or state.get("block") != [block.start, block.stop]):
        return None
    # The state is saved after its checkpoint is marked; a store that says otherwise was made
    # anew since, so the state does not belong to it.
    if (completed < state["checkpoint"] + 1).any():
        return None
    return state


def evaluate(model, params, buffers, data: DeviceData, split: str, eval_batch: int,
             members=None):
    """Predictions of every network on a split, and mean loss over each network's members.

    The forward pass runs in the group's precision (bf16 autocast or fp32); the predictions
    are the argmax of those logits, the loss is computed from them in fp32.

    Returns
    -------
    predictions : ndarray of int16, dims (networks, examples)
    loss : ndarray of float32, dims (networks,), or None where the split has no labels
    """
    import torch
    import torch.nn.functional as F

    from engine.train.models import forward_precision

    inputs, labels = data.inputs[split], data.labels[split]
    networks = next(iter(params.values())).shape[0]
    count = inputs.shape[0]
    predictions = torch.empty((networks, count), dtype=torch.int16, device=inputs.device)
    loss_sum = torch.zeros(networks, dtype=torch.float64, device=inputs.device)
    with torch.no_grad():
        for start in range(0, count, eval_batch):
            stop = min(start + eval_batch, count)
            with forward_precision(inputs.device, model.group.precision):
                logits = model.forward(params, buffers, inputs[start:stop], train=False,
                                       shared=True)
            logits = logits.float()
            predictions[:, start:stop] = logits.argmax(dim=2).to(torch.int16)
            batch_labels = labels[start:stop]
            if split == "train":
                log_probabilities = F.log_softmax(logits, dim=2)
                target = batch_labels.clamp(min=0).view(1, -1, 1).expand(networks, -1, 1)
                per_example = -log_probabilities.gather(2, target).squeeze(2)
                if members is not None:
                    per_example = per_example * members[:, start:stop]
                loss_sum += per_example.sum(dim=1, dtype=torch.float64)
    loss = None
    if split == "train":
        total = members.sum(dim=1) if members is not None else torch.full_like(loss_sum, count)
        loss = (loss_sum / total.clamp(min=1)).float().cpu().numpy()
    return predictions.cpu().numpy(), loss


def _record(context, block, model, params, buffers, checkpoint, members) -> tuple[float, float]:
    """Evaluate and write every split at a checkpoint, then mark it; return loss and accuracy."""
    started = time.perf_counter()
    networks = (block.start, block.stop)
    budget = (EVAL_ACTIVATION_BUDGET_CUDA if context.device.type == "cuda"
              else EVAL_ACTIVATION_BUDGET_CPU)
    batch = max(16, min(context.eval_batch,
                        budget // max(1, block.size * model.activation_size)))
    loss = accuracy = float("nan")
    for split in context.dataset.splits:
        predictions, split_loss = evaluate(model, params, buffers, context.data, split, batch,
                                           members)
        context.recorder.record(split, checkpoint, networks, predictions)
        if split == "train":
            context.recorder.record_loss(checkpoint, networks, split_loss)
            loss = float(np.nanmean(split_loss))
        if split == "test":
            labels = context.dataset.splits["test"].labels
            accuracy = float((predictions == labels[None]).mean()) if labels.size else accuracy
    context.recorder.mark(checkpoint, networks)
    context.timings["record"] += time.perf_counter() - started
    return loss, accuracy


def make_optimizer(group: GroupConfig, params: list):
    """SGD with momentum or Adam over stacked parameters: both act element by element, so each
    network is optimised exactly as alone. The fused kernels make one pass over memory."""
    import torch

    if group.optimizer == "sgd":
        return torch.optim.SGD(params, lr=group.lr, momentum=group.momentum,
                               weight_decay=group.weight_decay, fused=True)
    return torch.optim.Adam(params, lr=group.lr, betas=(group.momentum, 0.999),
                            weight_decay=group.weight_decay, fused=True)


def train_block(context: TrainContext, block: Block, completed: np.ndarray) -> None:
    """Train one block to the end, recording and saving state at every checkpoint."""
    import torch
    import torch.nn.functional as F

    from engine.train.models import BatchedModel, forward_precision

    study, dataset, device = context.study, context.dataset, context.device
    group = block.group
    model = BatchedModel(group, dataset.kind, dataset.input_shape, dataset.num_classes)
    ids = np.arange(block.start, block.stop)
    train_count = len(dataset.splits["train"])
    subsets = [subset_indices(context.subset_seeds[i], train_count, study.subset_fraction)
               for i in ids]
    members = None
    if study.subset_fraction < 1:
        membership = np.zeros((block.size, train_count), bool)
        for row, subset in enumerate(subsets):
            membership[row, subset] = True
        context.recorder.record_membership((block.start, block.stop), membership)
        members = torch.from_numpy(membership).to(device=device, dtype=torch.float32)
    params, buffers = model.init_params(context.init_seeds[ids], device)
    optimizer = make_optimizer(group, list(params.values()))
    per_epoch = steps_per_epoch(study, group, train_count)
    checkpoint_steps = [int(s) for s in Checkpoints.build(study.epochs, per_epoch,
                                                          study.record_every).steps]
    state = _load_state(context, block, completed)
    if state is not None:
        with torch.no_grad():
            for name, value in state["params"].items():
                params[name].copy_(value)
            for name, value in state["buffers"].items():
                buffers[name].copy_(value)
        optimizer.load_state_dict(state["optimizer"])
        checkpoint, step = int(state["checkpoint"]), int(state["step"])
    else:
        checkpoint, step = 0, 0
        loss, accuracy = _record(context, block, model, params, buffers, 0, members)
        _save_state(context, block, params, buffers, optimizer, 0, 0)
    crop = _crop_padding(dataset, group)
    inputs, train_labels = context.data.inputs["train"], context.data.labels["train"]
    first_epoch = step / per_epoch
    task = context.progress.start_block(block, first_epoch) if context.progress else None
    while checkpoint + 1 < len(checkpoint_steps):
        epoch, position = divmod(step, per_epoch)
        started = time.perf_counter()
        orders, draws = zip(*(epoch_order(context.order_seeds[i], epoch, subsets[row], crop)
                              for row, i in enumerate(ids)), strict=True)
        order = torch.from_numpy(np.stack(orders)).to(device)
        draws = torch.from_numpy(np.stack(draws)).to(device) if crop else None
        for batch_start in range(position * group.batch_size, order.shape[1], group.batch_size):
            lr = learning_rate(group, step, per_epoch, study.epochs)
            for param_group in optimizer.param_groups:
                param_group["lr"] = lr
            index = order[:, batch_start:batch_start + group.batch_size]
            batch = inputs[index]  # (networks, batch, *input_shape)
            if crop:
                batch = _augment(batch, draws[:, batch_start:batch_start + group.batch_size],
                                 crop)
            with forward_precision(device, group.precision):
                logits = model.forward(params, buffers, batch, train=True, shared=False)
            logits = logits.float()  # the loss and its reduction in fp32
            loss_value = F.cross_entropy(logits.reshape(-1, logits.shape[2]),
                                         train_labels[index].reshape(-1), reduction="sum")
            optimizer.zero_grad(set_to_none=True)
            (loss_value / index.shape[1]).backward()
            optimizer.step()
            step += 1
            if step == checkpoint_steps[checkpoint + 1]:
                context.timings["train"] += time.perf_counter() - started
                checkpoint += 1
                loss, accuracy = _record(context, block, model, params, buffers, checkpoint,
                                         members)
                _save_state(context, block, params, buffers, optimizer, checkpoint, step)
                started = time.perf_counter()
                if task is not None:
                    context.progress.update_block(task, step / per_epoch, loss, accuracy)
                if checkpoint + 1 == len(checkpoint_steps):
                    break
        context.timings["train"] += time.perf_counter() - started
    context.timings["network_epochs"] += block.size * (study.epochs - first_epoch)
    if task is not None:
        context.progress.finish_block(task, block)
    path = _state_path(context, block)
    if path is not None and not context.keep_state:
        path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------
# The population


def plan_blocks(study: StudyConfig, owned: tuple[int, int], group_size: int,
                completed: np.ndarray, num_checkpoints: int) -> list[Block]:
    """Blocks of unfinished networks in ``owned``: runs of one group, cut every ``group_size``
    networks counted from the group's first network (so the cut does not depend on progress)."""
    blocks = []
    for index, (group, (start, stop)) in enumerate(zip(study.groups, study.group_ranges(),
                                                      strict=True)):
        size = group_size or group.networks
        for cut in range(start, stop, size):
            lo, hi = max(cut, owned[0]), min(cut + size, stop, owned[1])
            if lo >= hi:
                continue
            unfinished = completed[lo - owned[0]:hi - owned[0]] < num_checkpoints
            if unfinished.all():
                blocks.append(Block(index, group, lo, hi))
                continue
            # Split around finished networks, which are never trained again.
            run_start = None
            for offset, todo in enumerate([*unfinished, False]):
                if todo and run_start is None:
                    run_start = offset
                elif not todo and run_start is not None:
                    blocks.append(Block(index, group, lo + run_start, lo + offset))
                    run_start = None
    return blocks


def owned_range(study: StudyConfig, options: RunOptions) -> tuple[int, int]:
    """The network ids this process trains, from ``--networks`` or ``--shard``."""
    total, block = study.num_networks, study.network_block
    if options.networks is not None and options.shard is not None:
        raise ConfigError("give --networks or --shard, not both")
    if options.shard is not None:
        index, count = options.shard
        if count < 1 or not 0 <= index < count:
            raise ConfigError(f"--shard {index}/{count}: need 0 <= I < K and K >= 1")
        blocks = math.ceil(total / block)
        if count > blocks:
            raise ConfigError(f"--shard {index}/{count}: only {blocks} blocks of {block} "
                              "networks to share out")
        first, last = index * blocks // count, (index + 1) * blocks // count
        return first * block, min(last * block, total)
    if options.networks is not None:
        start, stop = options.networks
        if not 0 <= start < stop <= total:
            raise ConfigError(f"--networks {start}:{stop} is outside 0:{total}")
        if start % block or (stop % block and stop != total):
            raise ConfigError(f"--networks {start}:{stop} must start and end on blocks of "
                              f"{block} networks (or at the end, {total})")
        return start, stop
    return 0, total


def state_folder(store: Path) -> Path:
    """Where a store's training state lives: beside it, so the store holds only Zarr data."""
    return store.parent / f".{store.name}.train-state"


def create_or_open(study, dataset, path: Path, checkpoints, seeds, command) -> None:
    """Create the store once; where several shards start together, the losers open it."""
    from engine.store import GroupSpec, SplitSpec, create_population

    fingerprints = dataset.fingerprints()
    config_json = study.to_json()
    if not path.exists():
        splits = {name: SplitSpec(labels=split.labels, example_ids=split.example_ids,
                                  predictions=True, fingerprint=fingerprints[name])
                  for name, split in dataset.splits.items()}
        groups = [GroupSpec(g.name, g.arch, g.networks, g.hyperparameters())
                  for g in study.groups]
        try:
            create_population(
                path, dataset_name=dataset.name, splits=splits, groups=groups,
                checkpoint_epochs=checkpoints.epochs, checkpoint_steps=checkpoints.steps,
                class_names=dataset.class_names, init_seeds=seeds["init"],
                order_seeds=seeds["order"],
                membership_split="train" if study.subset_fraction < 1 else None,
                network_block=study.network_block, command=command,
                extra_attrs={"train_config": config_json,
                             "state_folder": state_folder(path).name},
            )
        except (StoreError, OSError):
            # Another shard made it first (create_population removed its staging folder).
            if not path.exists():
                raise
    _check_existing(study, dataset, path, fingerprints, config_json)


def _check_existing(study, dataset, path, fingerprints, config_json) -> None:
    from engine.store import dataset_fingerprint, open_population

    population = open_population(path)
    saved = population.attrs.get("extra", {}).get("train_config")
    if saved is None:
        raise ConfigError(f"{path} exists but was not made by engine train-population; choose "
                          "another --out")
    for group in saved.get("groups", []):
        group.setdefault("precision", "fp32")  # stores made before the option trained in fp32
    differences = config_differences(saved, json.loads(json.dumps(config_json)))
    if differences:
        raise ConfigError(f"{path} was made with a different configuration: "
                          + "; ".join(differences[:3])
                          + (f" (and {len(differences) - 3} more)" if len(differences) > 3
                             else ""))
    if population.dataset_fingerprint != dataset_fingerprint(fingerprints):
        raise ConfigError(f"{path} was made from different data (fingerprint "
                          f"{population.dataset_fingerprint[:12]}); same settings, other files?")


@dataclass
class TrainSummary:
    store: Path | None
    networks: tuple[int, int]
    trained_networks: int
    skipped_networks: int
    seconds: float
    timings: dict
    device: str


def study_seeds(study: StudyConfig) -> dict[str, np.ndarray]:
    ids = np.arange(study.num_networks)
    return {
        "init": network_seeds(study.seed, ids, "init", "init" in study.vary),
        "order": network_seeds(study.seed, ids, "order", "order" in study.vary),
        "subset": network_seeds(study.seed, ids, "subset", True),
    }


def study_checkpoints(study: StudyConfig, dataset: Dataset) -> Checkpoints:
    """The store's checkpoints; steps are -1 where groups differ in steps per epoch."""
    train_count = len(dataset.splits["train"])
    per_epoch = {steps_per_epoch(study, g, train_count) for g in study.groups}
    checkpoints = Checkpoints.build(study.epochs, min(per_epoch), study.record_every)
    if len(per_epoch) > 1:
        return Checkpoints(checkpoints.epochs, np.full_like(checkpoints.steps, -1))
    return checkpoints


def train_population(study: StudyConfig, out: str | os.PathLike | None,
                     options: RunOptions | None = None, *, dataset: Dataset | None = None,
                     recorder=None) -> TrainSummary:
    """Train (or resume) a population study and record it in the store at ``out``.

    Parameters
    ----------
    study : StudyConfig
    out : path or None
        The store; created if missing, resumed if it holds the same study. ``None`` with a
        ``recorder`` trains without a store (benchmarks).
    options : RunOptions
        Device, network range or shard, block size, progress.
    dataset : Dataset, optional
        The data set already loaded (else built from ``study.data``).
    recorder : optional
        A :class:`MemoryRecorder` or :class:`NullRecorder` instead of the store.

    Raises
    ------
    ConfigError
        For bad input: unknown data set or architecture, missing files, a store made with another
        configuration, inconsistent shards, CUDA unavailable.
    """
    import torch

    options = options or RunOptions()
    study.validate()
    options.validate()
    device = resolve_device(options.device)
    owned = owned_range(study, options)
    dataset = dataset if dataset is not None else load_dataset(study.data)
    for group in study.groups:  # fail on an architecture that cannot take this data, early
        from engine.train.models import BatchedModel

        BatchedModel(group, dataset.kind, dataset.input_shape, dataset.num_classes)
    seeds = study_seeds(study)
    checkpoints = study_checkpoints(study, dataset)
    store = Path(out) if out is not None else None
    if store is not None:
        create_or_open(study, dataset, store, checkpoints, seeds, options.command)
        from engine.store import open_writer

        writer = open_writer(store, networks=owned)
        completed = writer.checkpoints_completed()
        recorder = StoreRecorder(writer)
    else:
        completed = np.zeros(owned[1] - owned[0], np.int32)
    num_checkpoints = len(checkpoints.epochs)
    blocks = plan_blocks(study, owned, options.group_size, completed, num_checkpoints)
    context = TrainContext(
        study=study, dataset=dataset, data=DeviceData.build(dataset, device), device=device,
        checkpoints=checkpoints, init_seeds=seeds["init"], order_seeds=seeds["order"],
        subset_seeds=seeds["subset"], recorder=recorder,
        state_dir=state_folder(store) if store is not None else None,
        eval_batch=options.eval_batch, keep_state=options.keep_state,
        config_json=study.fingerprint_json(),
    )
    trained = sum(b.size for b in blocks)
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        if options.quiet:
            for block in blocks:
                train_block(context, block, _block_completed(completed, owned, block))
        else:
            from engine.train.progress import TrainProgress

            with TrainProgress(trained, study.epochs) as progress:
                context.progress = progress
                for block in blocks:
                    train_block(context, block, _block_completed(completed, owned, block))
    if store is not None and not options.keep_state:
        folder = state_folder(store)
        try:
            folder.rmdir()  # only when empty: other shards may still be saving there
        except OSError:
            pass
    return TrainSummary(store, owned, trained, (owned[1] - owned[0]) - trained,
                        time.perf_counter() - started, context.timings, str(device))


def _block_completed(completed, owned, block) -> np.ndarray:
    return completed[block.start - owned[0]:block.stop - owned[0]]

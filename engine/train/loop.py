"""Train a population block by block, record every checkpoint, and resume after a crash.

The unit of work is a *block*: consecutive networks of one group that train as one batched
computation (:class:`engine.train.models.BatchedModel`). Per block:

1. the initial weights come from each network's init seed; each epoch's mini-batch order (and
   augmentation draws) from ``numpy.random.default_rng([order_seed, epoch])``: randomness is a
   pure function of (network seed, epoch) (:mod:`engine.train.seeds`), so a block of any size,
   a shard or a resumed run gives every network the same data in the same order;
2. at checkpoint 0 (initialisation), at each epoch end and every ``record_every`` steps, every
   split is evaluated with the data on the device, predictions and the training loss are
   written, the checkpoint is marked complete in the store (:mod:`engine.train.evaluation`), and
   only then the block's weights, batch-norm statistics and optimiser state are saved in the
   state folder (:mod:`engine.train.state`);
3. a rerun of the same command skips complete networks and resumes each block from its saved
   state (or from scratch where none was saved yet): work between the last saved checkpoint and
   the crash is redone identically and overwrites what the crash left half written.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import ConfigError
from engine.train.augment import augment, crop_padding
from engine.train.block import Block, BlockRun, TrainContext
from engine.train.config import GroupConfig, RunOptions, StudyConfig
from engine.train.data import Dataset, load_dataset
from engine.train.device import DeviceData, resolve_device, torch_threads
from engine.train.evaluation import record_checkpoint
from engine.train.population import create_or_open
from engine.train.recorders import BackgroundRecorder, Recorder, StoreRecorder
from engine.train.seeds import (
    Checkpoints,
    epoch_order,
    learning_rate,
    steps_per_epoch,
    study_checkpoints,
    study_seeds,
    subset_indices,
)
from engine.train.state import (
    load_state,
    remove_state,
    remove_state_folder,
    restore_state,
    save_state,
    state_folder,
)

if TYPE_CHECKING:
    import torch
    from rich.progress import TaskID

    from engine.train.progress import TrainProgress

# ----------------------------------------------------------------------------------------------
# One block

#: Linear stacks in fp32 train with their hand-written backward pass
#: (:meth:`engine.train.models.BatchedModel.linear_stack_gradients`), which skips autograd's
#: graph; False takes autograd everywhere (tests compare the two).
HAND_GRADIENTS = True


def make_optimizer(group: GroupConfig, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    """SGD with momentum or Adam over stacked parameters: both act element by element, so each
    network is optimised exactly as alone. The fused kernels make one pass over memory."""
    import torch

    if group.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=group.lr,
            momentum=group.momentum,
            weight_decay=group.weight_decay,
            fused=True,
        )
    return torch.optim.Adam(
        params,
        lr=group.lr,
        betas=(group.momentum, 0.999),
        weight_decay=group.weight_decay,
        fused=True,
    )


def _start_block(context: TrainContext, block: Block) -> BlockRun:
    """The block's model, initial weights and optimiser, and each network's training subset."""
    from engine.train.models import BatchedModel

    study, dataset, group = context.study, context.dataset, block.group
    model = BatchedModel(group, dataset.kind, dataset.input_shape, dataset.num_classes)
    ids = np.arange(block.start, block.stop)
    train_count = len(dataset.splits["train"])
    subsets = [
        subset_indices(context.subset_seeds[i], train_count, study.subset_fraction) for i in ids
    ]
    members = _record_membership(context, block, subsets, train_count)
    params, buffers = model.init_params(context.init_seeds[ids], context.device)
    optimizer = make_optimizer(group, list(params.values()))
    per_epoch = steps_per_epoch(study, group, train_count)
    checkpoints = Checkpoints.build(study.epochs, per_epoch, study.record_every)
    return BlockRun(
        block=block,
        model=model,
        params=params,
        buffers=buffers,
        optimizer=optimizer,
        subsets=subsets,
        members=members,
        steps_per_epoch=per_epoch,
        checkpoint_steps=[int(step) for step in checkpoints.steps],
        crop=crop_padding(dataset, group),
    )


def _record_membership(
    context: TrainContext, block: Block, subsets: list[np.ndarray], train_count: int
) -> torch.Tensor | None:
    """Record each network's training subset; return it as loss weights on the device."""
    import torch

    if context.study.subset_fraction >= 1:
        return None
    membership = np.zeros((block.size, train_count), bool)
    for row, subset in enumerate(subsets):
        membership[row, subset] = True
    context.recorder.record_membership(block.networks, membership)
    return torch.from_numpy(membership).to(device=context.device, dtype=torch.float32)


def _resume_or_record_start(context: TrainContext, run: BlockRun, completed: np.ndarray) -> None:
    """Resume from the block's saved state, or record and save checkpoint 0 (initialisation)."""
    state = load_state(context, run.block, completed)
    if state is not None:
        restore_state(run, state)
        return
    record_checkpoint(context, run)
    save_state(context, run)


def _epoch_orders(
    context: TrainContext, run: BlockRun, epoch: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each network's example order in one epoch, dims (networks, examples), and augmentation
    draws, dims (networks, examples, 3) (None without augmentation), on the device."""
    import torch

    drawn = [
        epoch_order(context.order_seeds[network], epoch, run.subsets[row], run.crop)
        for row, network in enumerate(range(run.block.start, run.block.stop))
    ]
    order = torch.from_numpy(np.stack([network_order for network_order, _ in drawn]))
    if not run.crop:
        return order.to(context.device), None
    draws = np.stack([network_draws for _, network_draws in drawn if network_draws is not None])
    return order.to(context.device), torch.from_numpy(draws).to(context.device)


def _train_step(
    context: TrainContext, run: BlockRun, index: torch.Tensor, draws: torch.Tensor | None
) -> None:
    """One optimiser step of every network, on its examples ``index`` (networks, batch)."""
    import torch
    import torch.nn.functional as F

    from engine.train.models import forward_precision

    group = run.block.group
    lr = learning_rate(group, run.step, run.steps_per_epoch, context.study.epochs)
    for param_group in run.optimizer.param_groups:
        param_group["lr"] = lr
    inputs = context.data.inputs["train"]
    # One gather of the block's examples (index_select is faster than advanced indexing), into
    # a reused buffer on the CPU (see BatchedModel.scratch), of rows of the examples seen as a
    # matrix: whole rows are copied at once (0.031 ms against 0.049 ms for (1, 8, 8) images).
    flat = index.reshape(-1)
    rows = inputs.view(inputs.shape[0], -1)
    batch = run.model.scratch("batch", (flat.shape[0], rows.shape[1]), rows)
    batch = torch.index_select(rows, 0, flat, out=batch).view(*index.shape, *inputs.shape[1:])
    if draws is not None:
        batch = augment(batch, draws, run.crop)
    labels = context.data.labels["train"].index_select(0, flat).view(index.shape)
    if HAND_GRADIENTS and run.model.linear_stack and group.precision == "fp32":
        run.model.linear_stack_gradients(run.params, batch, labels)
        run.optimizer.step()
        run.step += 1
        return
    with forward_precision(context.device, group.precision):
        logits = run.model.forward(run.params, run.buffers, batch, train=True, shared=False)
    logits = logits.float()  # the loss and its reduction in fp32
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[2]),
        labels.reshape(-1),
        reduction="sum",
    )
    run.optimizer.zero_grad(set_to_none=True)
    (loss / index.shape[1]).backward()
    run.optimizer.step()
    run.step += 1


def _reach_checkpoint(context: TrainContext, run: BlockRun, task: TaskID | None) -> None:
    """Record the next checkpoint, then save the state that resumes from it."""
    run.checkpoint += 1
    loss, accuracy = record_checkpoint(context, run)
    save_state(context, run)
    if context.progress is not None and task is not None:
        context.progress.update_block(task, run.step / run.steps_per_epoch, loss, accuracy)


def _train_epoch(context: TrainContext, run: BlockRun, task: TaskID | None) -> None:
    """Train from the current step to the end of its epoch (or to the last checkpoint)."""
    epoch, position = divmod(run.step, run.steps_per_epoch)
    started = time.perf_counter()
    order, draws = _epoch_orders(context, run, epoch)
    size = run.block.group.batch_size
    for batch_start in range(position * size, order.shape[1], size):
        batch = slice(batch_start, batch_start + size)
        _train_step(context, run, order[:, batch], None if draws is None else draws[:, batch])
        if run.step == run.checkpoint_steps[run.checkpoint + 1]:
            context.timings["train"] += time.perf_counter() - started
            _reach_checkpoint(context, run, task)
            started = time.perf_counter()
            if run.finished:
                break
    context.timings["train"] += time.perf_counter() - started


def train_block(context: TrainContext, block: Block, completed: np.ndarray) -> None:
    """Train one block to the end, recording and saving state at every checkpoint.

    Parameters
    ----------
    completed : ndarray of int32, dims (block networks,)
        Checkpoints the store has marked complete for each of the block's networks.
    """
    run = _start_block(context, block)
    _resume_or_record_start(context, run, completed)
    first_epoch = run.step / run.steps_per_epoch
    task = context.progress.start_block(block, first_epoch) if context.progress else None
    while not run.finished:
        _train_epoch(context, run, task)
    context.timings["network_epochs"] += block.size * (context.study.epochs - first_epoch)
    if context.progress is not None and task is not None:
        context.progress.finish_block(task, block)
    remove_state(context, block)


# ----------------------------------------------------------------------------------------------
# The population


def plan_blocks(
    study: StudyConfig,
    owned: tuple[int, int],
    group_size: int,
    completed: np.ndarray,
    num_checkpoints: int,
) -> list[Block]:
    """Blocks of unfinished networks in ``owned``: runs of one group, cut every ``group_size``
    networks counted from the group's first network (so the cut does not depend on progress).

    ``completed`` (int32, dims (owned networks,)) counts each network's complete checkpoints.
    """
    blocks = []
    for index, (group, (start, stop)) in enumerate(
        zip(study.groups, study.group_ranges(), strict=True)
    ):
        size = group_size or group.networks
        for cut in range(start, stop, size):
            lo, hi = max(cut, owned[0]), min(cut + size, stop, owned[1])
            if lo >= hi:
                continue
            unfinished = completed[lo - owned[0] : hi - owned[0]] < num_checkpoints
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
            raise ConfigError(
                f"--shard {index}/{count}: only {blocks} blocks of {block} networks to share out"
            )
        first, last = index * blocks // count, (index + 1) * blocks // count
        return first * block, min(last * block, total)
    if options.networks is not None:
        start, stop = options.networks
        if not 0 <= start < stop <= total:
            raise ConfigError(f"--networks {start}:{stop} is outside 0:{total}")
        if start % block or (stop % block and stop != total):
            raise ConfigError(
                f"--networks {start}:{stop} must start and end on blocks of "
                f"{block} networks (or at the end, {total})"
            )
        return start, stop
    return 0, total


@dataclass(frozen=True)
class TrainSummary:
    """What one run trained: the store, its network range, counts, seconds and device."""

    store: Path | None
    networks: tuple[int, int]
    trained_networks: int
    skipped_networks: int
    seconds: float
    timings: dict[str, float]
    device: str


def _check_architectures(study: StudyConfig, dataset: Dataset) -> None:
    """Fail early on an architecture that cannot take this data."""
    from engine.train.models import BatchedModel

    for group in study.groups:
        BatchedModel(group, dataset.kind, dataset.input_shape, dataset.num_classes)


def _recording(
    store: Path | None, owned: tuple[int, int], recorder: Recorder | None
) -> tuple[Recorder, np.ndarray, StoreRecorder | None]:
    """The recorder (the store's writer where there is a store), each owned network's
    completed checkpoints (int32, dims (owned networks,)) and the store's recorder, if any."""
    if store is None:
        if recorder is None:
            raise ConfigError("train_population needs a store path or a recorder")
        return recorder, np.zeros(owned[1] - owned[0], np.int32), None
    from engine.store import open_writer

    writer = open_writer(store, networks=owned)
    # Claimed before any training, so that a second trainer of these networks stops at once.
    writer.claim()
    stored = StoreRecorder(writer)
    return stored, writer.checkpoints_completed(), stored


def background_writes(options: RunOptions, device: torch.device, store: Path | None) -> bool:
    """Whether verdicts and states are written from a thread of their own
    (:class:`engine.train.recorders.BackgroundRecorder`): ``options.extra["background_writes"]``
    where given, else on CUDA with a store (the GPU trains on while the host compresses and
    writes; on a CPU the writer would take cores from training)."""
    chosen = options.extra.get("background_writes")
    if chosen is not None:
        return bool(chosen)
    return device.type == "cuda" and store is not None


def _train_blocks(
    context: TrainContext,
    blocks: list[Block],
    completed: np.ndarray,
    owned: tuple[int, int],
    quiet: bool,
) -> None:
    """Train the blocks in order, with progress bars unless ``quiet``."""
    import torch

    from engine.train.progress import TrainProgress

    bars: contextlib.AbstractContextManager[TrainProgress | None] = (
        contextlib.nullcontext()
        if quiet
        else TrainProgress(sum(b.size for b in blocks), context.study.epochs)
    )
    # Whatever torch randomness training draws, the caller's generator is left as it was.
    with torch.random.fork_rng(devices=[]), bars as progress:
        context.progress = progress
        for block in blocks:
            train_block(context, block, completed[block.start - owned[0] : block.stop - owned[0]])


def train_population(
    study: StudyConfig,
    out: str | os.PathLike | None,
    options: RunOptions | None = None,
    *,
    dataset: Dataset | None = None,
    recorder: Recorder | None = None,
) -> TrainSummary:
    """Train (or resume) a population study and record it in the store at ``out``.

    Parameters
    ----------
    study : StudyConfig
    out : path or None
        The store; created if missing, resumed if it holds the same study. ``None`` with a
        ``recorder`` trains without a store (benchmarks).
    options : RunOptions
        Device, network range or shard, block size, torch's CPU threads, progress.
    dataset : Dataset, optional
        The data set already loaded (else built from ``study.data``).
    recorder : optional
        A :class:`~engine.train.recorders.MemoryRecorder` or
        :class:`~engine.train.recorders.NullRecorder` instead of the store.

    Raises
    ------
    ConfigError
        For bad input: unknown data set or architecture, missing files, a store made with another
        configuration, inconsistent shards, CUDA unavailable.
    """
    options = options or RunOptions()
    study.validate()
    options.validate()
    device = resolve_device(options.device)
    owned = owned_range(study, options)
    dataset = dataset if dataset is not None else load_dataset(study.data)
    _check_architectures(study, dataset)
    checkpoints, seeds = study_checkpoints(study, dataset), study_seeds(study)
    store = Path(out) if out is not None else None
    if store is not None:
        create_or_open(study, dataset, store, checkpoints, seeds, options.command)
    recorder, completed, stored = _recording(store, owned, recorder)
    background = None
    if background_writes(options, device, store):
        recorder = background = BackgroundRecorder(recorder)
    blocks = plan_blocks(study, owned, options.group_size, completed, len(checkpoints.epochs))
    context = TrainContext(
        study=study,
        dataset=dataset,
        data=DeviceData.build(dataset, device),
        device=device,
        checkpoints=checkpoints,
        init_seeds=seeds["init"],
        order_seeds=seeds["order"],
        subset_seeds=seeds["subset"],
        recorder=recorder,
        state_dir=state_folder(store) if store is not None else None,
        eval_batch=options.eval_batch,
        keep_state=options.keep_state,
        config_json=study.fingerprint_json(),
    )
    trained = sum(b.size for b in blocks)
    started = time.perf_counter()
    try:
        with torch_threads(options.threads):
            _train_blocks(context, blocks, completed, owned, options.quiet)
        if background is not None:
            background.close()  # what is queued is written, and a failed write raised, here
    finally:
        if background is not None:
            with contextlib.suppress(Exception):  # an error on its way wins
                background.close()
        if stored is not None:
            stored.writer.close()  # the claims: a rerun after a failure takes them over
    if store is not None and not options.keep_state:
        remove_state_folder(store)
    return TrainSummary(
        store,
        owned,
        trained,
        (owned[1] - owned[0]) - trained,
        time.perf_counter() - started,
        context.timings,
        str(device),
    )

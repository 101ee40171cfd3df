"""One epoch's training steps and one checkpoint's evaluation, in CPU seconds: the batched
trainer (hand-written gradients, and autograd) against the vmap ensemble, in one process.

A shared machine's other jobs slow wall-clock timings by a factor that changes from second to
second; the CPU time of a one-thread process is much steadier (what is left is the cache and
memory bandwidth the others take). Each side is timed ``--repeats`` times, interleaved, and the
smallest time kept; the minor page faults of each side's last run are counted too (fresh
multi-megabyte tensors fault on first touch). Same data, widths, batch size, mini-batch order
and initial weights on every side; the ensemble is bench_train's (``vmap`` over
``functional_call``, one fused SGD over the stacked parameters).

    python benchmarks/profile_train_step.py --networks 64 --repeats 7

``--profile`` also prints the torch profiler's table of the batched step's operations.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import _ensemble_modules  # noqa: E402

from engine.train import loop  # noqa: E402
from engine.train.block import Block, TrainContext  # noqa: E402
from engine.train.data import DataConfig, load_dataset  # noqa: E402
from engine.train.device import DeviceData  # noqa: E402
from engine.train.evaluation import eval_batch_size, evaluate  # noqa: E402
from engine.train.recorders import NullRecorder  # noqa: E402
from engine.train.seeds import study_checkpoints, study_seeds  # noqa: E402
from engine.train.study import study_from_flags  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--networks", type=int, default=64)
    parser.add_argument("--width", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="4 networks of width 8, 2 repeats")
    args = parser.parse_args()
    if args.smoke:
        args.networks, args.width, args.repeats = 4, 8, 2
    torch.set_num_threads(1)
    data = DataConfig(args.dataset)
    dataset = load_dataset(data)
    hyper = {"width": args.width} if args.width else {}
    study = study_from_flags(
        dataset=args.dataset,
        arch="mlp",
        networks=args.networks,
        epochs=1,
        data=data,
        batch_size=args.batch_size,
        **hyper,
    )
    seeds = study_seeds(study)
    device = torch.device("cpu")
    context = TrainContext(
        study=study,
        dataset=dataset,
        data=DeviceData.build(dataset, device),
        device=device,
        checkpoints=study_checkpoints(study, dataset),
        init_seeds=seeds["init"],
        order_seeds=seeds["order"],
        subset_seeds=seeds["subset"],
        recorder=NullRecorder(),
        state_dir=None,
    )
    run = loop._start_block(context, Block(0, study.groups[0], 0, args.networks))
    order, _ = loop._epoch_orders(context, run, 0)
    size = args.batch_size
    steps = range(0, order.shape[1] - size + 1, size)  # the epoch's full batches

    def batched_steps(hand: bool):
        loop.HAND_GRADIENTS = hand
        for start in steps:
            loop._train_step(context, run, order[:, start : start + size], None)
        loop.HAND_GRADIENTS = True

    def batched_eval():
        batch = eval_batch_size(context, run)
        for split in dataset.splits:
            evaluate(run.model, run.params, run.buffers, context.data, split, batch)

    modules = _ensemble_modules(study, dataset, device)
    params, buffers = stack_module_state(modules)  # type: ignore[arg-type]
    base = copy.deepcopy(modules[0]).to("meta")

    def forward(p, b, x):
        return functional_call(base, (p, b), (x,))

    own, shared = torch.vmap(forward, in_dims=(0, 0, 0)), torch.vmap(forward, in_dims=(0, 0, None))
    group = study.groups[0]
    optimizer = torch.optim.SGD(
        list(params.values()),
        lr=group.lr,
        momentum=group.momentum,
        weight_decay=group.weight_decay,
        fused=True,
    )
    inputs, labels = context.data.inputs["train"], context.data.labels["train"]

    def vmap_steps():
        for start in steps:
            index = order[:, start : start + size]
            logits = own(params, buffers, inputs[index])
            flat = logits.reshape(-1, logits.shape[2])
            loss = F.cross_entropy(flat, labels[index].reshape(-1), reduction="sum") / size
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    def vmap_eval():
        with torch.no_grad():
            for split in dataset.splits:
                x = context.data.inputs[split]
                for start in range(0, len(x), 1024):
                    shared(params, buffers, x[start : start + 1024]).argmax(2)

    sides = {
        "batched_steps_hand": lambda: batched_steps(True),
        "batched_steps_autograd": lambda: batched_steps(False),
        "vmap_steps": vmap_steps,
        "batched_eval": batched_eval,
        "vmap_eval": vmap_eval,
    }
    best = dict.fromkeys(sides, float("inf"))
    faults = dict.fromkeys(sides, 0)
    for side in sides.values():  # warm up
        side()
    for _ in range(args.repeats):
        for name, side in sides.items():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            started = time.process_time()
            side()
            best[name] = min(best[name], time.process_time() - started)
            faults[name] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    result = {
        "benchmark": "train_step_cpu_seconds",
        "networks": args.networks,
        "width": group.resolved_width,
        "batch_size": size,
        "steps": len(steps),
        "repeats": args.repeats,
        "cpu_seconds": best,
        "page_faults": faults,
        "step_ratio_vs_vmap": best["vmap_steps"] / best["batched_steps_hand"],
        "step_ratio_hand_vs_autograd": best["batched_steps_autograd"] / best["batched_steps_hand"],
        "eval_ratio_vs_vmap": best["vmap_eval"] / best["batched_eval"],
    }
    print(json.dumps(result))
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as profiler:
            batched_steps(True)
        table = profiler.key_averages(group_by_input_shape=True)
        print(table.table(sort_by="self_cpu_time_total", row_limit=20))


if __name__ == "__main__":
    main()

"""Batched population training against a plain one-network-at-a-time PyTorch loop and a
``torch.func`` (vmap) ensemble of the same MLPs.

All three do the same work: the same architecture, data (resident on the device), epochs,
batch size, per-network mini-batch order, SGD with momentum and a cosine schedule, and the same
recording (predictions on every split and the training loss at initialisation and after every
epoch, kept in memory), in the same precision (``--precision bf16``: both sides run their
forward passes under ``torch.autocast(dtype=bfloat16)`` and compute the loss in fp32).
The vmap ensemble (:func:`vmap_ensemble`: ``stack_module_state`` + ``functional_call`` +
``vmap``, one fused SGD over the stacked parameters) starts from the batched trainer's initial
weights, so its final test predictions are compared with the batched trainer's too.
Throughput is in network-epochs per second; the ratios compare the sides timed in this run
(``ratio``: batched over loop; ``ratio_vs_vmap``: batched over the vmap ensemble). The
batched trainer's recording time (evaluation and writes) is reported apart, in memory and into
a real Zarr store; ``--soft`` also times the batched trainer recording soft verdicts (true-class
probability and margin, computed on the device; the loop has no counterpart), interleaved with
the runs without, in memory and into a store, and reports the ratios.

The baseline may be timed on a subset of the networks (``--baseline-networks``) and extrapolated
per network: each network in the loop costs the same.

CPU (this machine)::

    python benchmarks/bench_train.py --dataset digits --arch mlp --networks 64 --epochs 5

GPU (H100/H200; benchmarks/gpu_checks.sh runs this and the CNN population below)::

    python benchmarks/bench_train.py --dataset mnist1d --arch mlp --networks 512 --epochs 5 \\
        --device cuda --baseline-networks 16
    python benchmarks/bench_train.py --cnn-only --device cuda --cnn-networks 256 \\
        --cnn-epochs 1 --cnn-dataset npz --cnn-data-dir images.npz

It prints one JSON line with the results. ``--smoke`` runs every step (baseline subset, repeats,
store, soft verdicts, CNN population) on two tiny digits MLPs for one epoch, for
tests/test_benchmarks.py; flags given with it still win.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.train.config import RunOptions  # noqa: E402
from engine.train.data import DataConfig, load_dataset  # noqa: E402
from engine.train.device import DeviceData  # noqa: E402
from engine.train.loop import train_population  # noqa: E402
from engine.train.models import BatchedModel, forward_precision  # noqa: E402
from engine.train.recorders import MemoryRecorder  # noqa: E402
from engine.train.seeds import (  # noqa: E402
    epoch_order,
    learning_rate,
    study_checkpoints,
    study_seeds,
)
from engine.train.study import study_from_flags  # noqa: E402


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_network(arch: str, group, input_shape, classes: int) -> nn.Module:
    """The same architecture as an ordinary PyTorch module."""
    features = math.prod(input_shape)
    if arch == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(features, classes))
    if arch == "mlp":
        layers, width = [nn.Flatten()], group.resolved_width
        for _ in range(group.resolved_depth):
            layers += [nn.Linear(features, width), nn.ReLU()]
            features = width
        return nn.Sequential(*layers, nn.Linear(features, classes))
    if arch == "cnn":
        dim = len(input_shape) - 1
        conv = nn.Conv2d if dim == 2 else nn.Conv1d
        norm = nn.BatchNorm2d if dim == 2 else nn.BatchNorm1d
        pool = nn.MaxPool2d if dim == 2 else nn.MaxPool1d
        channels, spatial, layers = input_shape[0], list(input_shape[1:]), []
        for stage in range(group.resolved_depth):
            out = group.resolved_width * 2**stage
            layers += [conv(channels, out, 3, padding=1, bias=not group.batch_norm)]
            layers += [norm(out)] if group.batch_norm else []
            layers += [nn.ReLU()]
            if min(spatial) >= 2:
                layers += [pool(2)]
                spatial = [s // 2 for s in spatial]
            channels = out
        return nn.Sequential(
            *layers, nn.Flatten(), nn.Linear(channels * math.prod(spatial), classes)
        )
    raise SystemExit(f"the baseline loop supports linear, mlp and cnn, not {arch}")


def baseline(study, dataset, device, count: int) -> dict:
    """Train ``count`` networks one at a time with the same work; return seconds."""
    group = study.groups[0]
    data = DeviceData.build(dataset, device)
    seeds = study_seeds(study)
    train_count = len(dataset.splits["train"])
    per_epoch = math.ceil(train_count / group.batch_size)
    predictions = {
        s: np.empty((study.epochs + 1, len(split)), np.int16) for s, split in dataset.splits.items()
    }
    train_seconds = record_seconds = 0.0

    def record(net):
        net.eval()
        with torch.no_grad():
            for split in dataset.splits:
                with forward_precision(device, group.precision):
                    logits = net(data.inputs[split])
                logits = logits.float()
                predictions[split][0] = logits.argmax(1).cpu().numpy()
                if split == "train":
                    float(F.cross_entropy(logits, data.labels[split]))
        net.train()

    for network in range(count):
        torch.manual_seed(int(seeds["init"][network]))
        net = plain_network(group.arch, group, dataset.input_shape, dataset.num_classes).to(device)
        optimizer = torch.optim.SGD(
            net.parameters(),
            lr=group.lr,
            momentum=group.momentum,
            weight_decay=group.weight_decay,
            fused=True,
        )
        _sync(device)
        started = time.perf_counter()
        record(net)
        _sync(device)
        record_seconds += time.perf_counter() - started
        step = 0
        for epoch in range(study.epochs):
            started = time.perf_counter()
            order, _ = epoch_order(seeds["order"][network], epoch, np.arange(train_count))
            order = torch.from_numpy(order).to(device)
            for start in range(0, train_count, group.batch_size):
                for param_group in optimizer.param_groups:
                    param_group["lr"] = learning_rate(group, step, per_epoch, study.epochs)
                index = order[start : start + group.batch_size]
                with forward_precision(device, group.precision):
                    logits = net(data.inputs["train"][index])
                loss = F.cross_entropy(logits.float(), data.labels["train"][index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
            _sync(device)
            train_seconds += time.perf_counter() - started
            started = time.perf_counter()
            record(net)
            _sync(device)
            record_seconds += time.perf_counter() - started
    return {"train_seconds": train_seconds, "record_seconds": record_seconds, "networks": count}


def _ensemble_modules(study, dataset, device) -> list[nn.Module]:
    """The study's MLPs as plain modules holding the batched trainer's initial weights, so that
    the vmap ensemble starts where the batched trainer starts (its predictions can be compared)."""
    group = study.groups[0]
    model = BatchedModel(group, dataset.kind, dataset.input_shape, dataset.num_classes)
    params, _ = model.init_params(study_seeds(study)["init"], "cpu")
    names = [name for kind, name, _ in (op for op in model.plan if op[0] == "linear")]
    modules = []
    for network in range(study.num_networks):
        net = plain_network(group.arch, group, dataset.input_shape, dataset.num_classes)
        linears = [layer for layer in net if isinstance(layer, nn.Linear)]
        with torch.no_grad():
            for layer, name in zip(linears, names, strict=True):
                layer.weight.copy_(params[f"{name}.weight"][network].T)
                layer.bias.copy_(params[f"{name}.bias"][network])
        modules.append(net.to(device))
    return modules


def vmap_ensemble(study, dataset, device) -> dict:
    """The peer users reach for: ``torch.func`` over the same MLPs, doing the same work.

    ``stack_module_state`` stacks the networks' parameters (leaves, one tensor per parameter
    kind), ``vmap(functional_call)`` runs every network on its own mini-batch (the same
    per-network order as the batched trainer), the summed per-network mean losses are
    back-propagated once, and one fused SGD over the stacked tensors steps every network (SGD
    acts element by element, so each network is optimised exactly as alone). Recording: the
    predictions on every split and the training loss at initialisation and after every epoch,
    in memory, as the loop and the batched trainer (``vmap`` over the networks, each split fed
    to all of them in chunks of 1,024 examples). Module set-up is not timed.
    """
    if study.groups[0].arch != "mlp":
        raise SystemExit("the vmap ensemble is timed for MLPs only")
    group = study.groups[0]
    data = DeviceData.build(dataset, device)
    seeds = study_seeds(study)
    modules = _ensemble_modules(study, dataset, device)
    params, buffers = stack_module_state(modules)  # type: ignore[arg-type]
    base = copy.deepcopy(modules[0]).to("meta")

    def forward(p, b, x):
        return functional_call(base, (p, b), (x,))

    train_count = len(dataset.splits["train"])
    per_epoch = math.ceil(train_count / group.batch_size)
    optimizer = torch.optim.SGD(
        list(params.values()),
        lr=group.lr,
        momentum=group.momentum,
        weight_decay=group.weight_decay,
        fused=True,
    )
    on_own_batches = torch.vmap(forward, in_dims=(0, 0, 0))
    on_shared_inputs = torch.vmap(forward, in_dims=(0, 0, None))
    networks = study.num_networks
    predictions = {}

    def record():
        with torch.no_grad():
            for split in dataset.splits:
                inputs, labels = data.inputs[split], data.labels[split]
                chunks = []
                for start in range(0, len(inputs), 1024):
                    with forward_precision(device, group.precision):
                        logits = on_shared_inputs(params, buffers, inputs[start : start + 1024])
                    chunks.append(logits.float())
                logits = torch.cat(chunks, dim=1)
                predictions[split] = logits.argmax(2).to(torch.int16).cpu().numpy()
                if split == "train":
                    target = labels.expand(networks, -1).reshape(-1)
                    flat = logits.reshape(-1, logits.shape[2])
                    F.cross_entropy(flat, target, reduction="none").view(networks, -1).mean(1).cpu()

    _sync(device)
    started = time.perf_counter()
    record()
    _sync(device)
    record_seconds, train_seconds, step = time.perf_counter() - started, 0.0, 0
    for epoch in range(study.epochs):
        started = time.perf_counter()
        orders = [
            epoch_order(seeds["order"][n], epoch, np.arange(train_count))[0]
            for n in range(networks)
        ]
        order = torch.from_numpy(np.stack(orders)).to(device)
        for start in range(0, train_count, group.batch_size):
            for param_group in optimizer.param_groups:
                param_group["lr"] = learning_rate(group, step, per_epoch, study.epochs)
            index = order[:, start : start + group.batch_size]
            with forward_precision(device, group.precision):
                logits = on_own_batches(params, buffers, data.inputs["train"][index])
            logits = logits.float()
            loss = (
                F.cross_entropy(
                    logits.reshape(-1, logits.shape[2]),
                    data.labels["train"][index].reshape(-1),
                    reduction="sum",
                )
                / index.shape[1]
            )  # the sum over networks of each network's mean loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        _sync(device)
        train_seconds += time.perf_counter() - started
        started = time.perf_counter()
        record()
        _sync(device)
        record_seconds += time.perf_counter() - started
    return {
        "train_seconds": train_seconds,
        "record_seconds": record_seconds,
        "final_test_predictions": predictions["test"],
    }


#: ``--group-size``: networks per batched computation in the batched trainer's runs (0: all).
GROUP_SIZE = 0


def batched(study, dataset, device, store: Path | None = None) -> dict:
    recorder = None
    if store is None:
        recorder = MemoryRecorder(
            study.num_networks, len(study_checkpoints(study, dataset).epochs), dataset
        )
    _sync(device)
    started = time.perf_counter()
    summary = train_population(
        study,
        store,
        RunOptions(device=str(device), quiet=True, group_size=GROUP_SIZE),
        dataset=dataset,
        recorder=recorder,
    )
    _sync(device)
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "train_seconds": summary.timings["train"],
        "record_seconds": summary.timings["record"],
    }
    if recorder is not None:
        test = recorder.predictions["test"][:, -1]
        result["final_test_predictions"] = test
        result["final_test_accuracy"] = float((test == dataset.splits["test"].labels).mean())
    return result


def cnn_population(args, device) -> dict:
    """Time a population of small CNNs (throughput only: no baseline), recording included.

    On ``--cnn-dataset`` (default: ``--dataset``) from ``--cnn-data-dir``; warmed up on one
    epoch of ``--cnn-warm-data-dir`` (a small file of the same shapes) where given, else of the
    data set itself. ``cnn_seconds_per_network_epoch`` counts every second of the run (set-up,
    training and the recording of every split at every epoch) per network and epoch.
    """
    name = args.cnn_dataset or args.dataset
    data = DataConfig(name, samples=args.samples, data_dir=args.cnn_data_dir or args.data_dir)
    dataset = load_dataset(data)
    hyper = dict(
        batch_size=args.batch_size,
        precision=args.precision,
        **({"width": args.cnn_width} if args.cnn_width else {}),
    )
    epochs = args.cnn_epochs or args.epochs
    if args.cnn_warm_data_dir:
        warm_data = replace(data, data_dir=args.cnn_warm_data_dir)
        warm_set = load_dataset(warm_data)
    else:
        warm_data, warm_set = data, dataset
    warm = study_from_flags(
        dataset=name, arch="cnn", networks=args.cnn_networks, epochs=1, data=warm_data, **hyper
    )
    batched(warm, warm_set, device)
    cnn = study_from_flags(
        dataset=name, arch="cnn", networks=args.cnn_networks, epochs=epochs, data=data, **hyper
    )
    timed = batched(cnn, dataset, device)
    network_epochs = args.cnn_networks * epochs
    return {
        "cnn_dataset": name,
        "cnn_networks": args.cnn_networks,
        "cnn_epochs": epochs,
        "cnn_width": cnn.groups[0].resolved_width,
        "cnn_train_examples": len(dataset.splits["train"]),
        "cnn_recorded_examples_per_checkpoint": sum(len(s) for s in dataset.splits.values()),
        "cnn_network_epochs_per_s": network_epochs / timed["seconds"],
        "cnn_train_network_epochs_per_s": network_epochs / timed["train_seconds"],
        "cnn_seconds_per_network_epoch": timed["seconds"] / network_epochs,
        "cnn_seconds": timed["seconds"],
        "cnn_train_seconds": timed["train_seconds"],
        "cnn_record_seconds": timed["record_seconds"],
        "cnn_final_test_accuracy": timed["final_test_accuracy"],
    }


def _collect(runs: dict[str, list[float]], timed: dict) -> None:
    """Add one repeat's timings to ``runs`` (seconds and recording seconds)."""
    for key in ("seconds", "record_seconds"):
        runs.setdefault(key, []).append(timed[key])


def _median_of(runs: dict[str, list[float]]) -> dict[str, float]:
    """The median of each timing collected by :func:`_collect`."""
    return {key: float(np.median(values)) for key, values in runs.items()}


def _medians(runs: list[dict]) -> dict:
    """One side's repeats as one: the median of each timing (a shared machine's other jobs
    slow some repeats down a lot; the median of interleaved repeats is what the brief asks),
    the last repeat's predictions."""
    merged = dict(runs[-1])
    for key in ("seconds", "train_seconds", "record_seconds"):
        merged[key] = float(np.median([run[key] for run in runs]))
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--samples", type=int, default=0, help="mnist1d examples (0: 5000)")
    parser.add_argument("--arch", default="mlp")
    parser.add_argument("--networks", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--width", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--group-size",
        type=int,
        default=0,
        help="networks per batched computation of the batched trainer (0: all; the CLI's "
        "--group-size)",
    )
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16"),
        help="forward passes of both sides in fp32 or bf16 autocast",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads for both sides (0: torch's default)",
    )
    parser.add_argument(
        "--baseline-networks",
        type=int,
        default=0,
        help="networks timed in the loop (0: all), extrapolated per network",
    )
    parser.add_argument(
        "--cnn-networks",
        type=int,
        default=0,
        help="also time a population of small CNNs (throughput only)",
    )
    parser.add_argument("--data-dir", default=None, help="file data sets (npz, cifar10, ...)")
    parser.add_argument("--cnn-dataset", default=None, help="the CNNs' data set (--dataset)")
    parser.add_argument("--cnn-data-dir", default=None, help="the CNNs' data (--data-dir)")
    parser.add_argument(
        "--cnn-warm-data-dir", default=None, help="a small file of the same shapes to warm up on"
    )
    parser.add_argument("--cnn-width", type=int, default=0, help="0: the default width")
    parser.add_argument("--cnn-epochs", type=int, default=0, help="0: --epochs")
    parser.add_argument(
        "--cnn-only", action="store_true", help="time the CNN population alone (no MLP sides)"
    )
    parser.add_argument("--no-store", action="store_true", help="skip the Zarr store run")
    parser.add_argument(
        "--no-vmap", action="store_true", help="skip the torch.func (vmap) ensemble"
    )
    parser.add_argument(
        "--soft",
        action="store_true",
        help="also time the batched runs recording soft verdicts (memory and store)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="time each side this many times, interleaved; report the medians "
        "and each repeat's ratios",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="two networks, one epoch, every step: a test that every step runs",
    )
    args = parser.parse_args()
    if args.smoke:
        parser.set_defaults(
            networks=2,
            epochs=1,
            width=8,
            threads=1,
            baseline_networks=1,
            cnn_networks=2,
            repeats=2,
            soft=True,
        )
        args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    global GROUP_SIZE
    GROUP_SIZE = args.group_size
    device = torch.device(args.device)
    if args.cnn_only:
        if not args.cnn_networks:
            raise SystemExit("--cnn-only needs --cnn-networks")
        result = {
            "benchmark": "train_cnn",
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(),
            "batch_size": args.batch_size,
            "precision": args.precision,
            **cnn_population(args, device),
            "load_average_1min": os.getloadavg()[0],
        }
        print(json.dumps(result))
        return
    data = DataConfig(args.dataset, samples=args.samples, data_dir=args.data_dir)
    dataset = load_dataset(data)
    hyper = dict(
        batch_size=args.batch_size,
        precision=args.precision,
        **({"width": args.width} if args.width else {}),
    )
    study = study_from_flags(
        dataset=args.dataset,
        arch=args.arch,
        networks=args.networks,
        epochs=args.epochs,
        data=data,
        **hyper,
    )
    # Warm up both paths (allocator, kernels, lazy initialisation) on a short run.
    warm = study_from_flags(
        dataset=args.dataset, arch=args.arch, networks=args.networks, epochs=1, data=data, **hyper
    )
    batched(warm, dataset, device)
    if args.soft:
        batched(replace(warm, soft=True), dataset, device)
    baseline(warm, dataset, device, 1)
    ensemble = args.arch == "mlp" and not args.no_vmap
    if ensemble:
        vmap_ensemble(warm, dataset, device)

    count = args.baseline_networks or args.networks
    ours_runs: list[dict] = []
    loop_runs: list[dict] = []
    peer_runs: list[dict] = []
    loads: list[float] = []
    plain_memory: dict[str, list[float]] = {}
    soft_memory: dict[str, list[float]] = {}
    for _ in range(max(1, args.repeats)):  # interleaved: batched, loop, ensemble, batched, ...
        loads.append(os.getloadavg()[0])
        timed = batched(study, dataset, device)
        ours_runs.append(timed)
        _collect(plain_memory, timed)
        if args.soft:
            _collect(soft_memory, batched(replace(study, soft=True), dataset, device))
        timed = baseline(study, dataset, device, count)
        timed["seconds"] = (timed["train_seconds"] + timed["record_seconds"]) / count
        timed["seconds"] *= args.networks  # extrapolated to the whole population
        timed["train_seconds"] *= args.networks / count
        timed["record_seconds"] *= args.networks / count
        loop_runs.append(timed)
        if ensemble:
            timed = vmap_ensemble(study, dataset, device)
            timed["seconds"] = timed["train_seconds"] + timed["record_seconds"]
            peer_runs.append(timed)
    ours, loop = _medians(ours_runs), _medians(loop_runs)
    peer = _medians(peer_runs) if peer_runs else None
    network_epochs = args.networks * args.epochs
    loop_per_network = loop["seconds"] / args.networks
    loop_train_per_network = loop["train_seconds"] / args.networks
    result = {
        "benchmark": "train",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "dataset": args.dataset,
        "arch": args.arch,
        "networks": args.networks,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "width": study.groups[0].resolved_width,
        "precision": args.precision,
        "group_size": args.group_size,
        "batched_network_epochs_per_s": network_epochs / ours["seconds"],
        "baseline_network_epochs_per_s": args.epochs / loop_per_network,
        "baseline_networks_timed": count,
        "ratio": (network_epochs / ours["seconds"]) / (args.epochs / loop_per_network),
        "train_only_ratio": (network_epochs / ours["train_seconds"])
        / (args.epochs / loop_train_per_network),
        "batched_seconds": ours["seconds"],
        "batched_train_seconds": ours["train_seconds"],
        "batched_record_seconds_memory": ours["record_seconds"],
        "baseline_seconds_extrapolated": loop["seconds"],
        "baseline_record_seconds_extrapolated": loop["record_seconds"],
        "final_test_accuracy": ours["final_test_accuracy"],
        "statistic": "median of interleaved repeats",
        # Each repeat's sides ran back to back: their ratio is the least disturbed by the load.
        "ratio_per_repeat": [
            round(run["seconds"] / mine["seconds"], 3)
            for mine, run in zip(ours_runs, loop_runs, strict=True)
        ],
        "load_average_1min_per_repeat": [round(load, 2) for load in loads],
        "load_average_1min": os.getloadavg()[0],
    }
    if peer is not None:
        peer_seconds = peer["train_seconds"] + peer["record_seconds"]
        result["vmap_network_epochs_per_s"] = network_epochs / peer_seconds
        result["vmap_seconds"] = peer_seconds
        result["vmap_train_seconds"] = peer["train_seconds"]
        result["vmap_record_seconds"] = peer["record_seconds"]
        result["ratio_vs_vmap"] = peer_seconds / ours["seconds"]
        result["ratio_vs_vmap_per_repeat"] = [
            round(run["seconds"] / mine["seconds"], 3)
            for mine, run in zip(ours_runs, peer_runs, strict=True)
        ]
        result["train_only_ratio_vs_vmap"] = peer["train_seconds"] / ours["train_seconds"]
        # Same initial weights, data order and optimiser: the two should mostly agree (fp32
        # sums in another order drift apart over training; bf16 more so).
        result["vmap_final_test_agreement"] = float(
            (peer["final_test_predictions"] == ours["final_test_predictions"]).mean()
        )
    if args.soft:
        soft_m, plain_m = _median_of(soft_memory), _median_of(plain_memory)
        result["batched_seconds_soft"] = soft_m["seconds"]
        result["batched_record_seconds_memory_soft"] = soft_m["record_seconds"]
        result["soft_record_ratio_memory"] = soft_m["record_seconds"] / plain_m["record_seconds"]
        result["soft_total_ratio_memory"] = soft_m["seconds"] / plain_m["seconds"]
    if not args.no_store:
        # Interleaved with the soft runs where asked; each figure the median of the repeats.
        stored_runs: dict[str, list[float]] = {}
        soft_runs: dict[str, list[float]] = {}
        folder = Path(tempfile.mkdtemp(prefix="bench-train-"))
        try:
            for repeat in range(max(1, args.repeats) if args.soft else 1):
                _collect(stored_runs, batched(study, dataset, device, folder / f"{repeat}.zarr"))
                if args.soft:
                    soft_study = replace(study, soft=True)
                    store = folder / f"soft-{repeat}.zarr"
                    _collect(soft_runs, batched(soft_study, dataset, device, store))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        stored, soft_stored = _median_of(stored_runs), _median_of(soft_runs)
        result["batched_record_seconds_store"] = stored["record_seconds"]
        result["store_write_overhead_seconds"] = stored["record_seconds"] - ours["record_seconds"]
        result["batched_network_epochs_per_s_with_store"] = network_epochs / stored["seconds"]
        if args.soft:
            result["batched_seconds_store"] = stored["seconds"]
            result["batched_seconds_store_soft"] = soft_stored["seconds"]
            result["batched_record_seconds_store_soft"] = soft_stored["record_seconds"]
            result["soft_record_ratio_store"] = (
                soft_stored["record_seconds"] / stored["record_seconds"]
            )
            result["soft_total_ratio_store"] = soft_stored["seconds"] / stored["seconds"]
    if args.cnn_networks:
        result.update(cnn_population(args, device))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

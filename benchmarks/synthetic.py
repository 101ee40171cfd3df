"""Large synthetic population stores with a realistic structure, for benchmarks and tests.

The structure is planted so that the measures have something to find:

- every example has a difficulty: the checkpoint (in units of training progress) at which a
  typical network learns it; hard examples are never learned by most networks;
- every network has a skill (it learns everything a little earlier or later) and its own noise
  around the example's learning time, so the learning order is shared but not identical;
- near its learning time an entry flips between right and wrong (forgetting events);
- probe examples (no label) have a class the networks favour, with a planted strength;
- with ``membership``, each network trains on a random half of the training split, and examples
  it did not train on are learned later (so hold-out consistency differs from accessibility).

Stores are written through :func:`engine.create_population` and the writer (whole blocks of
networks, every checkpoint, then :meth:`~engine.PopulationWriter.mark_checkpoint`), so they are real
stores in the current format.

    python benchmarks/synthetic.py /tmp/big.zarr --networks 2000 --checkpoints 50 --examples 10000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def planted_correct(
    rng: np.random.Generator,
    example_difficulty: np.ndarray,
    network_skill: np.ndarray,
    num_checkpoints: int,
    *,
    noise: float = 0.12,
    flip_width: float = 0.06,
    flip_rate: float = 0.25,
    delay: np.ndarray | None = None,
) -> np.ndarray:
    """Correctness of a block of networks, dims (networks, checkpoints, examples), bool.

    ``example_difficulty`` (examples,) and ``network_skill`` (networks,) are in units of the
    training run (0 = start, 1 = last checkpoint); ``delay`` (networks, examples) adds to the
    learning time (examples a network did not train on).
    """
    networks, examples = network_skill.size, example_difficulty.size
    learn_time = (
        example_difficulty[None, :]
        + network_skill[:, None]
        + noise * rng.standard_normal((networks, examples), dtype=np.float32)
    )
    if delay is not None:
        learn_time = learn_time + delay
    progress = np.linspace(0.0, 1.0, num_checkpoints, dtype=np.float32)
    distance = progress[None, :, None] - learn_time[:, None, :]
    correct = distance >= 0
    near = np.abs(distance) < flip_width
    flips = near & (rng.random(correct.shape, dtype=np.float32) < flip_rate)
    return correct ^ flips


def make_store(
    path: str | Path,
    *,
    networks: int = 256,
    checkpoints: int = 20,
    examples: int = 2000,
    test_examples: int | None = None,
    probe_examples: int = 0,
    classes: int = 10,
    groups: int = 1,
    membership: bool = False,
    predictions: bool = False,
    seed: int = 0,
    network_block: int = 32,
    checkpoint_block: int = 16,
    example_block: int = 65536,
    complete: int | None = None,
    progress: bool = False,
):
    """Write a synthetic store and return it opened (:class:`engine.Population`).

    Parameters
    ----------
    networks, checkpoints, examples : int
        Size of the ``train`` split; ``test_examples`` (default: none) adds a ``test`` split and
        ``probe_examples`` a ``probe`` split without labels (always with predictions).
    groups : int
        Networks are divided into this many groups of different strength (architectures).
    membership : bool
        Record training-subset membership on ``train`` (each network trains on a random half).
    predictions : bool
        Store predicted classes on the labelled splits too (wrong answers get a random class).
    complete : int, optional
        Mark only the first ``complete`` networks complete (the rest lack their last checkpoint).
    """
    import engine

    rng = np.random.default_rng(seed)
    split_sizes = {"train": examples}
    if test_examples:
        split_sizes["test"] = test_examples
    if probe_examples:
        split_sizes["probe"] = probe_examples
    labels = {name: rng.integers(0, classes, size) for name, size in split_sizes.items()}
    if probe_examples:
        labels["probe"] = np.full(probe_examples, -1)
    difficulty = {
        name: np.clip(rng.gamma(2.0, 0.3, size) - 0.1, 0.0, None)
        for name, size in split_sizes.items()
    }
    favourite = rng.integers(0, classes, probe_examples)
    favourite_strength = rng.beta(2.0, 2.0, probe_examples)
    sizes = [networks // groups + (g < networks % groups) for g in range(groups)]
    group_skill = np.linspace(0.0, 0.25, groups)
    specs = [
        engine.GroupSpec(f"group{g}", f"synthetic{g}", sizes[g], {"skill": float(s)})
        for g, s in enumerate(group_skill)
    ]
    network_group = np.repeat(np.arange(groups), sizes)
    network_skill = group_skill[network_group] + 0.05 * rng.standard_normal(networks)
    splits = {
        name: engine.SplitSpec(
            labels=labels[name],
            predictions=predictions or name == "probe",
            fingerprint=engine.split_fingerprint(np.asarray([seed, size]), labels[name]),
        )
        for name, size in split_sizes.items()
    }
    writer = engine.create_population(
        path,
        dataset_name=f"synthetic-{seed}",
        splits=splits,
        groups=specs,
        checkpoint_epochs=np.arange(checkpoints, dtype=float),
        class_names=[str(c) for c in range(classes)],
        init_seeds=np.arange(networks),
        order_seeds=np.arange(networks) + 10**6,
        membership_split="train" if membership else None,
        network_block=network_block,
        checkpoint_block=checkpoint_block,
        example_block=example_block,
        command="benchmarks/synthetic.py",
    )
    complete = networks if complete is None else complete
    started = time.perf_counter()
    for start in range(0, networks, network_block):
        stop = min(start + network_block, networks)
        block_rng = np.random.default_rng([seed, start])
        skill = network_skill[start:stop]
        delay = None
        if membership:
            member = block_rng.random((stop - start, examples)) < 0.5
            writer.record_membership((start, stop), member)
            delay = np.where(member, 0.0, 0.15).astype(np.float32)
        for name, size in split_sizes.items():
            if name == "probe":
                chosen = block_rng.random((stop - start, checkpoints, size)) < (
                    favourite_strength[None, None, :]
                    * np.linspace(0.3, 1.0, checkpoints)[None, :, None]
                )
                other = block_rng.integers(0, classes, chosen.shape)
                verdicts = np.where(chosen, favourite[None, None, :], other)
                for checkpoint in range(checkpoints):
                    writer.record(
                        name, checkpoint, (start, stop), predictions=verdicts[:, checkpoint]
                    )
                continue
            correct = planted_correct(
                block_rng,
                difficulty[name],
                skill,
                checkpoints,
                delay=delay if name == "train" else None,
            )
            _write_block(
                writer,
                name,
                (start, stop),
                correct,
                labels[name],
                block_rng if splits[name].predictions else None,
                classes,
            )
        for checkpoint in range(checkpoints):
            if checkpoint < checkpoints - 1:
                writer.mark_checkpoint(checkpoint, (start, stop))
            elif start < complete:
                writer.mark_checkpoint(checkpoint, (start, min(stop, complete)))
        if progress and (start // network_block) % 8 == 0:
            elapsed = time.perf_counter() - started
            print(f"  networks {stop}/{networks} written in {elapsed:.0f} s", flush=True)
    return engine.open_population(path)


def _write_block(writer, split, networks, correct, labels, rng, classes) -> None:
    """Write every checkpoint of one block of networks.

    Without predictions the verdicts go in as whole stored objects (all checkpoints of one block
    of networks at once), so that generating a 1e9-entry store does not rewrite each chunk once
    per checkpoint as a trainer must; the bytes are those :meth:`PopulationWriter.record` writes.
    """
    start, stop = networks
    if rng is None:
        writer._check_networks(networks)
        writer._root[f"splits/{split}/correct_packed"][start:stop] = np.packbits(
            correct, axis=2, bitorder="little"
        )
        accuracy = correct[:, -1, :].mean(axis=1).astype(np.float32)
        writer._root[f"splits/{split}/final_accuracy"][start:stop] = accuracy
        return
    wrong_class = (labels[None, None, :] + rng.integers(1, classes, correct.shape)) % classes
    predictions = np.where(correct, labels[None, None, :], wrong_class)
    for checkpoint in range(correct.shape[1]):
        writer.record(split, checkpoint, networks, predictions=predictions[:, checkpoint])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--networks", type=int, default=2000)
    parser.add_argument("--checkpoints", type=int, default=50)
    parser.add_argument("--examples", type=int, default=10000)
    parser.add_argument("--test-examples", type=int, default=0)
    parser.add_argument("--probe-examples", type=int, default=0)
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--membership", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    population = make_store(
        args.path,
        networks=args.networks,
        checkpoints=args.checkpoints,
        examples=args.examples,
        test_examples=args.test_examples,
        probe_examples=args.probe_examples,
        groups=args.groups,
        membership=args.membership,
        seed=args.seed,
        progress=True,
    )
    print(
        f"wrote {population} in {time.perf_counter() - started:.0f} s, "
        f"{population.stored_bytes() / 2**20:.0f} MiB on disk"
    )


if __name__ == "__main__":
    main()

"""The one simulator of population stores, for tests, benchmarks and examples.

Stores are real: written through :func:`engine.create_population` and its writer, in the current
format. The structure is planted so that the measures have something to find:

- every example has a difficulty: the point of training (0 = start, 1 = last checkpoint) at which
  a typical network learns it; hard examples are never learned by most networks;
- every network has a skill (it learns everything a little earlier or later; each group of
  networks is weaker than the one before) and its own noise around the example's learning time,
  so the learning order is shared but not identical;
- near its learning time an entry flips between right and wrong (forgetting events);
- a wrong prediction is, half of the time, the example's own confusing class, so that networks
  also agree on their mistakes;
- probe examples (no label) have a class the networks favour, with a planted strength;
- with ``membership``, each network trains on a random half of the training split, and examples
  it did not train on are learned later (so hold-out consistency differs from accessibility).

    python -m engine.testing /tmp/big.zarr --networks 2000 --checkpoints 50 --examples 10000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.store import Population, PopulationWriter

#: The split that takes training-subset membership, where there is one.
MEMBERSHIP_SPLIT = "train"
#: The unlabelled split of probe examples.
PROBE_SPLIT = "probe"


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

    Parameters
    ----------
    example_difficulty : ndarray, dims (examples,), float
        When a typical network learns each example, in units of the run (0 = start, 1 = end).
    network_skill : ndarray, dims (networks,), float
        How much later than typical each network learns everything.
    delay : ndarray, dims (networks, examples), float, optional
        Added to the learning time (examples a network did not train on).
    """
    networks, examples = network_skill.size, example_difficulty.size
    learn_time = (
        example_difficulty[None, :]
        + network_skill[:, None]
        + noise * rng.standard_normal((networks, examples), dtype=np.float32)
    )
    if delay is not None:
        learn_time = learn_time + delay
    # One checkpoint stands for the trained networks (the end of the run), not the start.
    start = 0.0 if num_checkpoints > 1 else 1.0
    progress = np.linspace(start, 1.0, num_checkpoints, dtype=np.float32)
    distance = progress[None, :, None] - learn_time[:, None, :]
    correct = distance >= 0
    near = np.abs(distance) < flip_width
    flips = near & (rng.random(correct.shape, dtype=np.float32) < flip_rate)
    return correct ^ flips


def planted_margin(correct: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Margins consistent with the verdicts, dims (networks, checkpoints, examples), float32:
    positive exactly where right, growing in size through training (networks grow confident).
    """
    checkpoints = correct.shape[1]
    progress = np.linspace(0.0, 1.0, checkpoints, dtype=np.float32)[None, :, None]
    size = 0.25 + 10.0 * progress * rng.uniform(0.5, 1.5, correct.shape).astype(np.float32)
    return np.where(correct, size, -size).astype(np.float32)


def simulate_population(
    path: str | Path,
    *,
    networks: int = 256,
    checkpoints: int = 20,
    splits: Mapping[str, int] | None = None,
    probe_examples: int = 0,
    classes: int = 10,
    groups: int | Sequence[int] = 1,
    membership: bool = False,
    predictions: bool = False,
    soft: bool = False,
    seed: int = 0,
    network_block: int = 32,
    checkpoint_block: int = 16,
    example_block: int = 65536,
    complete: int | None = None,
    progress: bool = False,
) -> Population:
    """Write a store with planted structure and return it opened.

    Parameters
    ----------
    networks, checkpoints : int
    splits : mapping of str to int, optional
        Labelled splits and their numbers of examples; default ``{"train": 2000}``.
    probe_examples : int
        Adds a ``probe`` split of that many examples without labels (always with predictions).
    groups : int or sequence of int
        A number of groups of (nearly) equal size, or the size of each; each group is a little
        weaker than the one before, like architectures of different strength.
    membership : bool
        Record training-subset membership on ``train`` (each network trains on a random half).
    predictions : bool
        Store predicted classes on the labelled splits too.
    soft : bool
        Store soft verdicts (with predictions) on every split: margins from
        :func:`planted_margin`, the true-class probability their logistic.
    seed : int
        Fixes the examples (labels, difficulty, fingerprints) and the networks.
    complete : int, optional
        Mark only the first ``complete`` networks complete (the rest lack their last checkpoint).
    progress : bool
        Print the progress of large stores.
    """
    import engine

    split_sizes = dict(splits) if splits is not None else {MEMBERSHIP_SPLIT: 2000}
    if PROBE_SPLIT in split_sizes:
        raise ConfigError(f"{PROBE_SPLIT!r} is the unlabelled split: give probe_examples")
    if membership and MEMBERSHIP_SPLIT not in split_sizes:
        raise ConfigError(f"membership needs a {MEMBERSHIP_SPLIT!r} split")
    if probe_examples:
        split_sizes[PROBE_SPLIT] = probe_examples
    rng = np.random.default_rng(seed)
    world = _Examples.draw(rng, split_sizes, classes)
    sizes = _group_sizes(networks, groups)
    group_skill = np.linspace(0.0, 0.25, len(sizes))
    network_skill = np.repeat(group_skill, sizes) + 0.05 * rng.standard_normal(networks)
    writer = engine.create_population(
        path,
        dataset_name=f"synthetic-{seed}",
        splits={
            name: engine.SplitSpec(
                labels=world.labels[name],
                predictions=predictions or soft or name == PROBE_SPLIT,
                soft=soft,
                fingerprint=engine.split_fingerprint(np.asarray([seed, size]), world.labels[name]),
            )
            for name, size in split_sizes.items()
        },
        groups=[
            engine.GroupSpec(f"group{g}", f"synthetic{g}", size, {"skill": float(group_skill[g])})
            for g, size in enumerate(sizes)
        ],
        checkpoint_epochs=np.arange(checkpoints, dtype=float),
        class_names=[str(c) for c in range(classes)],
        init_seeds=np.arange(networks),
        order_seeds=np.arange(networks) + 10**6,
        membership_split=MEMBERSHIP_SPLIT if membership else None,
        network_block=network_block,
        checkpoint_block=checkpoint_block,
        example_block=example_block,
        command="engine.testing.simulate_population",
    )
    complete = networks if complete is None else complete
    started = time.perf_counter()
    for start in range(0, networks, network_block):
        stop = min(start + network_block, networks)
        block_rng = np.random.default_rng([seed, start])
        _write_networks(
            writer,
            world,
            (start, stop),
            network_skill[start:stop],
            checkpoints,
            _Recording(predictions or soft, soft, membership),
            block_rng,
        )
        for checkpoint in range(checkpoints):
            last = min(stop, complete) if checkpoint == checkpoints - 1 else stop
            if last > start:
                writer.mark_checkpoint(checkpoint, (start, last))
        if progress and (start // network_block) % 8 == 0:
            elapsed = time.perf_counter() - started
            print(f"  networks {stop}/{networks} written in {elapsed:.0f} s", flush=True)
    return engine.open_population(path)


def _group_sizes(networks: int, groups: int | Sequence[int]) -> list[int]:
    if isinstance(groups, int):
        if groups < 1:
            raise ConfigError(f"groups must be at least 1, got {groups}")
        return [networks // groups + (g < networks % groups) for g in range(groups)]
    sizes = [int(size) for size in groups]
    if sum(sizes) != networks:
        raise ConfigError("group sizes must add up to the number of networks")
    return sizes


class _Examples:
    """What the simulator fixes about the examples of every split."""

    def __init__(self, labels, difficulty, confusing, favourite, favourite_strength, classes):
        self.labels: dict[str, np.ndarray] = labels
        self.difficulty: dict[str, np.ndarray] = difficulty
        self.confusing: dict[str, np.ndarray] = confusing
        self.favourite: np.ndarray = favourite
        self.favourite_strength: np.ndarray = favourite_strength
        self.classes = classes

    @staticmethod
    def draw(rng: np.random.Generator, split_sizes: dict[str, int], classes: int) -> _Examples:
        labels = {name: rng.integers(0, classes, size) for name, size in split_sizes.items()}
        probes = split_sizes.get(PROBE_SPLIT, 0)
        if probes:
            labels[PROBE_SPLIT] = np.full(probes, -1)
        difficulty = {
            name: np.clip(rng.gamma(2.0, 0.3, size) - 0.1, 0.0, None)
            for name, size in split_sizes.items()
        }
        shift = max(classes - 1, 1)
        confusing = {
            name: (labels[name] + 1 + rng.integers(0, shift, size)) % max(classes, 2)
            for name, size in split_sizes.items()
        }
        favourite = rng.integers(0, classes, probes)
        favourite_strength = rng.beta(2.0, 2.0, probes)
        return _Examples(labels, difficulty, confusing, favourite, favourite_strength, classes)


@dataclass(frozen=True)
class _Recording:
    """What the simulated networks record besides their correctness."""

    predictions: bool
    soft: bool
    membership: bool


def _write_networks(
    writer: PopulationWriter,
    world: _Examples,
    networks: tuple[int, int],
    skill: np.ndarray,
    checkpoints: int,
    recording: _Recording,
    rng: np.random.Generator,
) -> None:
    """Record every split at every checkpoint for one block of networks (no marks)."""
    start, stop = networks
    delay = None
    if recording.membership:
        member = rng.random((stop - start, world.labels[MEMBERSHIP_SPLIT].size)) < 0.5
        writer.record_membership(networks, member)
        delay = np.where(member, 0.0, 0.15).astype(np.float32)
    for name, labels in world.labels.items():
        if name == PROBE_SPLIT:
            verdicts = _probe_predictions(world, stop - start, checkpoints, rng)
            none = np.full(verdicts.shape[::2], np.nan, np.float32) if recording.soft else None
            for checkpoint in range(checkpoints):
                writer.record(
                    name,
                    checkpoint,
                    networks,
                    predictions=verdicts[:, checkpoint],
                    probability=none,
                    margin=none,
                )
            continue
        correct = planted_correct(
            rng,
            world.difficulty[name],
            skill,
            checkpoints,
            delay=delay if name == MEMBERSHIP_SPLIT else None,
        )
        if recording.soft:
            margin = planted_margin(correct, rng)
            probability = 1.0 / (1.0 + np.exp(-margin))
        if recording.predictions:
            chosen = _predictions_from(correct, labels, world.confusing[name], world.classes, rng)
            for checkpoint in range(checkpoints):
                soft = (
                    {"probability": probability[:, checkpoint], "margin": margin[:, checkpoint]}
                    if recording.soft
                    else {}
                )
                writer.record(name, checkpoint, networks, predictions=chosen[:, checkpoint], **soft)
        else:
            writer.record_every_checkpoint(name, networks, correct)


def _probe_predictions(world: _Examples, networks: int, checkpoints: int, rng) -> np.ndarray:
    """Predictions on the probes, dims (networks, checkpoints, examples), int: the favourite
    class with a strength that grows through training, else a random class."""
    growth = np.linspace(0.3, 1.0, checkpoints)[None, :, None]
    shape = (networks, checkpoints, world.favourite.size)
    chosen = rng.random(shape) < world.favourite_strength[None, None, :] * growth
    return np.where(chosen, world.favourite[None, None, :], rng.integers(0, world.classes, shape))


def _predictions_from(correct, labels, confusing, classes: int, rng) -> np.ndarray:
    """The class each verdict stands for: the label where right, else the example's confusing
    class half of the time and another wrong class otherwise."""
    other = (labels[None, None, :] + rng.integers(1, max(classes, 2), correct.shape)) % max(
        classes, 2
    )
    wrong = np.where(rng.random(correct.shape) < 0.5, confusing[None, None, :], other)
    return np.where(correct, labels[None, None, :], wrong)


def main(argv: Sequence[str] | None = None) -> None:
    """Write a large simulated store from the command line (for benchmarks)."""
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
    args = parser.parse_args(argv)
    splits = {"train": args.examples}
    if args.test_examples:
        splits["test"] = args.test_examples
    started = time.perf_counter()
    population = simulate_population(
        args.path,
        networks=args.networks,
        checkpoints=args.checkpoints,
        splits=splits,
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

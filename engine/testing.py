"""The simulator of population stores for tests, benchmarks and examples.

Stores are real: written through :func:`engine.create_population` and its writer, with planted
structure (shared example difficulty, per-network and per-group skill) so that the measures have
something to find.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.errors import ConfigError


def synthetic_population(
    path,
    *,
    networks: int,
    examples: int,
    checkpoints: int = 1,
    groups: Sequence[int] | None = None,
    predictions: bool = False,
    num_classes: int = 10,
    seed: int = 0,
    batch: int = 1024,
    checkpoint_block: int | None = None,
):
    """A store with random but correlated verdicts, as real populations have.

    Network n at checkpoint t is right on example x with probability
    sigmoid(skill_n + 1.5 t / T - difficulty_x), difficulty shared by all networks; a wrong
    prediction is the example's own confusing class half of the time. Each group gets its own
    skill offset. Store chunks hold ``checkpoint_block`` checkpoints, by default
    ``min(16, checkpoints)`` (a chunk longer than the store only adds padding to decode: reading
    one checkpoint of a 16-checkpoint chunk decodes 16).

    Parameters
    ----------
    path : str or Path
        Where the store is created.
    networks, examples, checkpoints : int
        Sizes of the store (one split, ``test``).
    groups : sequence of int, optional
        Networks per group, adding up to ``networks``; default one group.
    predictions : bool
        Store predicted classes (else correctness only).
    num_classes : int
    seed : int
        Seed of every random draw (the same seed gives the same store).
    batch : int
        Networks written per call of the writer (rounded down to a multiple of 32).
    checkpoint_block : int, optional

    Returns
    -------
    Population
        The opened :class:`~engine.store.Population`.
    """
    import engine
    from engine.store import SplitSpec

    rng = np.random.default_rng(seed)
    sizes = list(groups) if groups is not None else [networks]
    if sum(sizes) != networks:
        raise ConfigError("group sizes must add up to the number of networks")
    labels = rng.integers(0, num_classes, examples).astype(np.int64)
    confusing = (labels + rng.integers(1, max(num_classes, 2), examples)) % max(num_classes, 2)
    difficulty = rng.normal(0, 2, examples).astype(np.float32)
    group_specs = [
        engine.GroupSpec(f"group{g}", f"arch{g}", size, {"offset": 0.5 * g})
        for g, size in enumerate(sizes)
    ]
    offsets = np.repeat(0.5 * np.arange(len(sizes)), sizes).astype(np.float32)
    skill = rng.normal(1.0, 0.3, networks).astype(np.float32) + offsets
    writer = engine.create_population(
        path,
        dataset_name="synthetic",
        splits={
            "test": SplitSpec(
                labels=labels, predictions=predictions, fingerprint=f"synthetic-{examples}-{seed}"
            )
        },
        groups=group_specs,
        checkpoint_epochs=list(range(checkpoints)),
        class_names=[str(k) for k in range(num_classes)],
        command="synthetic_population",
        checkpoint_block=checkpoint_block or min(16, checkpoints),
    )
    step = max(32, batch - batch % 32)
    for start in range(0, networks, step):
        stop = min(networks, start + step)
        for t in range(checkpoints):
            logits = skill[start:stop, None] + 1.5 * t / max(checkpoints, 1) - difficulty[None]
            chance = 1 / (1 + np.exp(-logits))
            correct = rng.random((stop - start, examples), dtype=np.float32) < chance
            if predictions:
                wrong = np.where(
                    rng.random((stop - start, examples)) < 0.5,
                    confusing[None],
                    rng.integers(0, num_classes, (stop - start, examples)),
                )
                wrong = np.where(wrong == labels[None], confusing[None], wrong)
                chosen = np.where(correct, labels[None], wrong)
                writer.record("test", t, (start, stop), predictions=chosen)
            else:
                writer.record("test", t, (start, stop), correct=correct)
            writer.mark_checkpoint(t, (start, stop))
    return engine.open_population(path)


__all__ = ["synthetic_population"]

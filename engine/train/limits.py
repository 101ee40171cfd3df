"""The ranges every number of a study and a run must lie in, and the one checker of them.

The largest study and the longest training anyone runs lie far inside these limits; they turn a
typo (a few zeros too many, ``nan`` for a number) into a one-line :class:`ConfigError` before any
file is created, instead of a hang, an exhausted machine or a store that no rerun accepts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.errors import ConfigError

MAX_NETWORKS = 10_000_000
MAX_EPOCHS = 100_000
#: A stored block of 1024 networks is already a 128 MiB chunk of packed verdicts (2 GiB of
#: predictions) at 16 checkpoints and 65,536 examples, and zarr decodes a whole chunk to write
#: one checkpoint of it.
MAX_NETWORK_BLOCK = 1024
MAX_WIDTH = 65_536
MAX_DEPTH = 64
MAX_BATCH_SIZE = 1_000_000
#: Seeds are stored as int64.
MAX_SEED = 2**63 - 1
#: Generated and probe data sets: examples, classes, input dimensions, image side in pixels,
#: and the values (examples x dimensions) a generated set may hold (1 GiB of float32).
MAX_SAMPLES = 1_000_000
MAX_CLASSES = 1000
MAX_DIMS = 4096
MAX_PROBE_EXAMPLES = 100_000
MAX_IMAGE_SIZE = 1024
MAX_GENERATED_VALUES = 2**28


@dataclass(frozen=True)
class Bound:
    """The range a number must lie in, checked with a one-line error naming it.

    ``low`` and ``high`` are included unless ``low_open`` or ``high_open``; a float must also be
    finite (NaN and infinities are never in range).

    >>> Bound(0.0, 1.0, high_open=True).check("momentum", 1.5)
    Traceback (most recent call last):
    ...
    engine.errors.ConfigError: momentum must lie in [0, 1), got 1.5
    >>> Bound(1, 100_000).check("epochs", 10**23)
    Traceback (most recent call last):
    ...
    engine.errors.ConfigError: epochs must be <= 100,000, got 100000000000000000000000
    """

    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def check(self, name: str, value: float) -> None:
        """Raise ConfigError ``<name> must ..., got <value>`` where ``value`` is out of range."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
        below = value <= self.low if self.low_open else value < self.low
        above = value >= self.high if self.high_open else value > self.high
        if not (below or above):
            return
        if isinstance(value, float) and math.isfinite(self.high):
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            raise ConfigError(
                f"{name} must lie in {left}{_number(self.low)}, {_number(self.high)}{right}, "
                f"got {value!r}"
            )
        if below:
            relation = ">" if self.low_open else ">="
            raise ConfigError(f"{name} must be {relation} {_number(self.low)}, got {value!r}")
        relation = "<" if self.high_open else "<="
        raise ConfigError(f"{name} must be {relation} {_number(self.high)}, got {value!r}")


def _number(value: float) -> str:
    """``100,000`` for large integers, ``0.5`` for fractions."""
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else f"{value:g}"

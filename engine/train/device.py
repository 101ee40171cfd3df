"""The training device: which one, the data set resident on it, and torch's CPU threads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.errors import ConfigError
from engine.train.data import Dataset

if TYPE_CHECKING:
    import torch


def resolve_device(name: str) -> torch.device:
    """The torch device of ``--device``: ``auto`` (CUDA when available), ``cpu``, ``cuda[:N]``.

    Raises
    ------
    ConfigError
        For an unknown name, or CUDA asked for where there is none.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(
                "--device cuda was requested but CUDA is not available on this "
                "machine (use --device cpu or auto)"
            )
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ConfigError(f"--device {name}: not a device; use cuda or cuda:N") from None
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {name}: this machine has {torch.cuda.device_count()} CUDA devices"
            )
        return device
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"unknown device {name!r}; choose auto, cpu or cuda")


@dataclass(frozen=True)
class DeviceData:
    """The data set's splits as tensors on the training device.

    Attributes
    ----------
    inputs : dict of str to Tensor of float32, dims (examples, *input_shape)
    labels : dict of str to Tensor of int64, dims (examples,)
    """

    inputs: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]

    @staticmethod
    def build(dataset: Dataset, device: torch.device) -> DeviceData:
        import torch

        inputs = {n: torch.from_numpy(s.inputs).to(device) for n, s in dataset.splits.items()}
        labels = {n: torch.from_numpy(s.labels).to(device) for n, s in dataset.splits.items()}
        return DeviceData(inputs, labels)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the enclosed code with ``threads`` CPU threads in torch (0: leave torch's setting)."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)

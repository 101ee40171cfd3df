"""Data augmentation of image batches on the device: random crop and horizontal flip.

The draws come from each network's epoch order (:func:`engine.train.seeds.epoch_order`), so a
network's augmented examples do not depend on the block it trains in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.train.config import GroupConfig
from engine.train.data import Dataset

if TYPE_CHECKING:
    import torch


def crop_padding(dataset: Dataset, group: GroupConfig) -> int:
    """Zero padding of the random crop (1/8 of the shorter side), 0 without augmentation."""
    if not group.augment or dataset.kind != "image":
        return 0
    return max(1, min(dataset.input_shape[1:]) // 8)


def augment(batch: torch.Tensor, draws: torch.Tensor, crop: int) -> torch.Tensor:
    """Random crop (zero padding ``crop``) and horizontal flip, one draw per (network, example).

    Parameters
    ----------
    batch : Tensor of float32, dims (networks, batch, channels, height, width)
    draws : Tensor of int64, dims (networks, batch, 3)
        Row offset, column offset (both in ``0..2*crop``) and flip bit.
    crop : int

    Returns
    -------
    Tensor of float32, dims (networks, batch, channels, height, width)
    """
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

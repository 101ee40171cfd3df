"""Tile counts on a GPU: the only module of :mod:`engine.pairwise` that imports torch (lazily)."""

from __future__ import annotations

import numpy as np

from engine.errors import ConfigError


def require_cuda() -> None:
    """Raise ConfigError unless torch is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError as error:
        raise ConfigError("--device cuda needs torch, which is not installed") from error
    if not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda: no CUDA device is available (torch.cuda.is_available() is False)"
        )


def cuda_co_counts(words_0: np.ndarray, words_1: np.ndarray) -> np.ndarray:
    """popcount(AND) counts of two packed blocks by an int8 (or float64) product on the GPU.

    Bits are unpacked on the device; 0/1 products summed in int32 (``torch._int_mm``) or float64
    are exact, so the counts equal the CPU kernel's. Words are taken in slices that keep the
    unpacked operands near 1 GiB.

    Parameters
    ----------
    words_0 : ndarray of uint64, dims (networks_0, words)
    words_1 : ndarray of uint64, dims (networks_1, words)

    Returns
    -------
    ndarray of int32, dims (networks_0, networks_1)
        As :func:`kernels.pairwise.co_correct_counts`.
    """
    import torch

    device = torch.device("cuda")
    n0, num_words = words_0.shape
    n1 = words_1.shape[0]
    counts = torch.zeros((n0, n1), dtype=torch.int32, device=device)
    if num_words == 0 or n0 == 0 or n1 == 0:
        return counts.cpu().numpy()
    shifts = torch.arange(8, dtype=torch.uint8, device=device)
    step = max(1, (1 << 30) // (64 * max(n0, n1, 1)))

    def unpack(words: np.ndarray, rows: int) -> torch.Tensor:
        as_bytes = torch.from_numpy(np.ascontiguousarray(words).view(np.uint8)).to(device)
        bits = ((as_bytes.unsqueeze(-1) >> shifts) & 1).reshape(as_bytes.shape[0], -1)
        # _int_mm wants more than 16 rows and multiples of 8; zero rows add nothing.
        padded = torch.zeros((rows, bits.shape[1]), dtype=torch.int8, device=device)
        padded[: bits.shape[0]] = bits.to(torch.int8)
        return padded

    rows_0 = max(24, -(-n0 // 8) * 8)
    rows_1 = max(24, -(-n1 // 8) * 8)
    for start in range(0, num_words, step):
        stop = min(num_words, start + step)
        a = unpack(words_0[:, start:stop], rows_0)
        b = unpack(words_1[:, start:stop], rows_1)
        try:
            product = torch._int_mm(a, b.t())
        except (RuntimeError, AttributeError):
            product = (a.double() @ b.double().t()).round().to(torch.int32)
        counts += product[:n0, :n1]
    return counts.cpu().numpy()

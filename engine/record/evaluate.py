"""A model's outputs on one split: batched, without gradients, in evaluation mode.

The callbacks evaluate the model they are given on the splits the user names; a plain loop can
do the same with :func:`model_outputs`. Inputs are a tensor (or array) of examples, or a mapping
of tensors with examples along the first axis (a tokenised batch for a Hugging Face model).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


def model_outputs(
    model: torch.nn.Module,
    inputs: Any,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Logits of ``model`` on every example of ``inputs``, float32 on the CPU.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(batch)``, or ``model(**batch)`` for mapping inputs; its output is a
        tensor, an object with ``logits`` (Hugging Face), a mapping with ``"logits"`` or a tuple
        whose first item is the logits.
    inputs : tensor, ndarray or mapping of str to tensor
        Examples along the first axis.
    batch_size : int
    device : torch.device or str, optional
        Where to evaluate; the model's own device by default.

    Returns
    -------
    torch.Tensor, float32, dims (examples, classes)
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if device is None:
        parameter = next(iter(model.parameters()), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
    size = _num_examples(inputs)
    # Each module's own mode, not only the top one's: a user may hold parts in eval mode while
    # training (a frozen encoder, frozen batch norm), and training must go on as it was.
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    outputs = []
    try:
        with torch.no_grad():
            for start in range(0, size, batch_size):
                batch = _batch(inputs, start, min(start + batch_size, size), device)
                result = model(**batch) if isinstance(batch, Mapping) else model(batch)
                outputs.append(_logits(result).float().cpu())
    finally:
        for module, training in modes:
            module.training = training
    if not outputs:
        return torch.zeros((0, 0))
    return torch.cat(outputs)


def _num_examples(inputs: Any) -> int:
    if isinstance(inputs, Mapping):
        sizes = {len(value) for value in inputs.values()}
        if len(sizes) != 1:
            raise ValueError(f"the input tensors hold different numbers of examples: {sizes}")
        return sizes.pop()
    return len(inputs)


def _batch(inputs: Any, start: int, stop: int, device: Any) -> Any:
    if isinstance(inputs, Mapping):
        return {name: _tensor(value[start:stop], device) for name, value in inputs.items()}
    return _tensor(inputs[start:stop], device)


def _tensor(value: Any, device: Any) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    elif not isinstance(value, torch.Tensor):  # lists from a tokenizer without return_tensors
        value = torch.as_tensor(value)
    return value.to(device)


def _logits(result: Any) -> torch.Tensor:
    if isinstance(result, torch.Tensor):
        return result
    if isinstance(result, Mapping) and "logits" in result:
        return result["logits"]
    if hasattr(result, "logits"):
        return result.logits
    if isinstance(result, tuple | list) and result and isinstance(result[0], torch.Tensor):
        return result[0]
    raise TypeError(f"cannot find logits in a model output of type {type(result).__name__}")

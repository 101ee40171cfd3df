"""Batched architectures: N networks of one architecture computed as one set of tensor operations.

Every parameter is stacked along a leading ``networks`` dimension. Two activation layouts:

- flat ``(networks, batch, features)``: linear layers are one ``baddbmm``;
- channels ``(batch, networks * channels, *spatial)``: network n owns channels
  ``[n*C, (n+1)*C)``, so a convolution is one grouped convolution (``groups = networks``), and
  batch norm, ReLU and pooling, which act per channel, are the ordinary functions: batch norm
  keeps its running statistics per network for free.

Plain linear stacks (``linear`` and ``mlp``) run *feature-major*, activations
``(networks, features, batch)``: every product is then ``W^T h`` on contiguous activations, the
narrow output layer (10 classes) is a short-and-wide product that the BLAS runs 5-6x faster than
the tall-and-narrow ``h W`` (measured on this project's CPU), and the shared first layer's
output needs no copy into the stacked layout. They also have a hand-written backward pass
(:meth:`BatchedModel.linear_stack_gradients`, fp32): the gradients of every network's mean
cross-entropy straight into the parameters' ``.grad``, with no autograd graph.

Evaluation feeds the same examples to every network (``shared=True``): the first layer is then
one dense product (a matrix product against all networks' weights side by side, or an ungrouped
convolution with ``networks * channels`` output channels), so the input is never copied per
network. Training feeds each network its own mini-batch ``(networks, batch, *input_shape)``.

Initialisation follows PyTorch's defaults (uniform with bound 1/sqrt(fan_in) for weights and
biases of linear and convolution layers, ones and zeros for batch norm), drawn per network from a
``torch.Generator`` seeded with that network's init seed, on the CPU, in a fixed parameter order:
network i's initial weights are the same whatever the group it is trained in.

Mixed precision (``precision = "bf16"``): the caller runs :meth:`BatchedModel.forward` inside
:func:`forward_precision`, ``torch.autocast(dtype=bfloat16)``, whose lists cover every product
used here on CPU and CUDA (``baddbmm``, ``addmm``, grouped and ungrouped ``convolution``; checked
by a test); batch norm takes bf16 activations with fp32 parameters and statistics. The
parameters stay fp32 (master weights), and the caller computes losses on ``logits.float()``.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.errors import ConfigError
from engine.train.config import GroupConfig

BATCH_NORM_MOMENTUM = 0.1
BATCH_NORM_EPS = 1e-5


def forward_precision(device, precision: str):
    """Context for forward passes in ``precision``: bf16 autocast, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    raise ConfigError(f"unknown precision {precision!r}; choose fp32 or bf16")


@dataclass(frozen=True)
class ParamSpec:
    shape: tuple[int, ...]  # one network's shape
    fan_in: int  # 0: batch-norm scale (ones) or shift (zeros), see ``fill``
    fill: float = 0.0


class BatchedModel:
    """A plan of batched operations for one architecture, and its per-network initialisation.

    Parameters
    ----------
    group : GroupConfig
    kind : str
        Data kind: ``image`` (C, H, W), ``sequence`` (C, L) or ``vector`` (D,).
    input_shape : tuple of int
    num_classes : int
    """

    def __init__(
        self, group: GroupConfig, kind: str, input_shape: tuple[int, ...], num_classes: int
    ):
        self.group = group
        self.kind = kind
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.params: dict[str, ParamSpec] = {}
        self.buffers: dict[str, tuple[int, ...]] = {}
        self.plan: list[tuple] = []
        #: Largest activation of one network on one example (floats), for sizing batches.
        self.activation_size = int(math.prod(input_shape))
        arch = group.arch
        if arch in ("cnn", "resnet", "vgg") and kind not in ("image", "sequence"):
            raise ConfigError(
                f"architecture {arch!r} needs images or sequences; data set kind "
                f"is {kind!r} (use linear or mlp)"
            )
        self.dim = len(input_shape) - 1 if kind in ("image", "sequence") else 0
        getattr(self, f"_build_{arch}")()
        #: A flatten then linear layers only: runs feature-major (see the module's docstring).
        self.linear_stack = all(op[0] in ("flatten", "linear") for op in self.plan)
        self._workspace: dict[tuple, torch.Tensor] = {}

    # -- building ---------------------------------------------------------------------------

    def _track(self, *shape: int) -> None:
        self.activation_size = max(self.activation_size, int(math.prod(shape)))

    def _linear(self, name: str, features_in: int, features_out: int, relu: bool) -> None:
        self.params[f"{name}.weight"] = ParamSpec((features_in, features_out), features_in)
        self.params[f"{name}.bias"] = ParamSpec((features_out,), features_in)
        self.plan.append(("linear", name, relu))
        self._track(features_out)

    def _conv(
        self,
        name: str,
        channels_in: int,
        channels_out: int,
        spatial: tuple[int, ...],
        kernel: int = 3,
    ) -> None:
        fan_in = channels_in * kernel**self.dim
        bn = self.group.batch_norm
        self.params[f"{name}.weight"] = ParamSpec(
            (channels_out, channels_in) + (kernel,) * self.dim, fan_in
        )
        if not bn:
            self.params[f"{name}.bias"] = ParamSpec((channels_out,), fan_in)
        self.plan.append(("conv", name, kernel))
        if bn:
            self.params[f"{name}.bn.weight"] = ParamSpec((channels_out,), 0, 1.0)
            self.params[f"{name}.bn.bias"] = ParamSpec((channels_out,), 0, 0.0)
            self.buffers[f"{name}.bn.running_mean"] = (channels_out,)
            self.buffers[f"{name}.bn.running_var"] = (channels_out,)
            self.plan.append(("bn", name))
        self._track(channels_out, *spatial)

    def _pool(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        if min(spatial) >= 2:
            self.plan.append(("pool",))
            return tuple(s // 2 for s in spatial)
        return spatial

    def _build_linear(self) -> None:
        self.plan.append(("flatten",))
        self._linear("fc", int(math.prod(self.input_shape)), self.num_classes, relu=False)

    def _build_mlp(self) -> None:
        self.plan.append(("flatten",))
        features = int(math.prod(self.input_shape))
        width = self.group.resolved_width
        for layer in range(self.group.resolved_depth):
            self._linear(f"hidden{layer}", features, width, relu=True)
            features = width
        self._linear("fc", features, self.num_classes, relu=False)

    def _build_cnn(self) -> None:
        channels, spatial = self.input_shape[0], self.input_shape[1:]
        for stage in range(self.group.resolved_depth):
            out = self.group.resolved_width * 2**stage
            self._conv(f"conv{stage}", channels, out, spatial)
            self.plan.append(("relu",))
            spatial = self._pool(spatial)
            channels = out
        self.plan.append(("flatten",))
        self._linear("fc", channels * int(math.prod(spatial)), self.num_classes, relu=False)

    def _build_vgg(self) -> None:
        channels, spatial = self.input_shape[0], self.input_shape[1:]
        for stage in range(self.group.resolved_depth):
            out = self.group.resolved_width * 2**stage
            for layer in range(2):
                self._conv(f"conv{stage}_{layer}", channels, out, spatial)
                self.plan.append(("relu",))
                channels = out
            spatial = self._pool(spatial)
        self.plan.append(("global_pool",))
        self._linear("fc", channels, self.num_classes, relu=False)

    def _build_resnet(self) -> None:
        channels, spatial = self.input_shape[0], self.input_shape[1:]
        width = self.group.resolved_width
        self._conv("stem", channels, width, spatial)
        self.plan.append(("relu",))
        channels = width
        for stage in range(self.group.resolved_depth):
            out = width * 2**stage
            if stage:
                self._conv(f"down{stage}", channels, out, spatial)
                self.plan.append(("relu",))
                spatial = self._pool(spatial)
                channels = out
            # A basic block: relu(x + bn(conv(relu(bn(conv(x)))))).
            self.plan.append(("save",))
            self._conv(f"block{stage}_0", channels, channels, spatial)
            self.plan.append(("relu",))
            self._conv(f"block{stage}_1", channels, channels, spatial)
            self.plan.append(("add_saved",))
            self.plan.append(("relu",))
        self.plan.append(("global_pool",))
        self._linear("fc", channels, self.num_classes, relu=False)

    # -- parameters -------------------------------------------------------------------------

    def init_params(self, init_seeds, device) -> tuple[dict, dict]:
        """Stacked initial parameters and batch-norm buffers of the networks whose init seeds
        are given (one per network, in order).

        Returns
        -------
        params : dict of str to Tensor, dims (networks, *shape), requiring grad
        buffers : dict of str to Tensor, dims (networks, *shape)
        """
        per_network: dict[str, list[torch.Tensor]] = {name: [] for name in self.params}
        for seed in init_seeds:
            generator = torch.Generator().manual_seed(int(seed))
            for name, spec in self.params.items():
                if spec.fan_in:
                    bound = 1.0 / math.sqrt(spec.fan_in)
                    values = (torch.rand(spec.shape, generator=generator) * 2 - 1) * bound
                else:
                    values = torch.full(spec.shape, spec.fill)
                per_network[name].append(values)
        params = {
            name: torch.stack(values).to(device).requires_grad_(True)
            for name, values in per_network.items()
        }
        count = len(init_seeds)
        buffers = {}
        for name, shape in self.buffers.items():
            fill = 1.0 if name.endswith("running_var") else 0.0
            buffers[name] = torch.full((count, *shape), fill, device=device)
        return params, buffers

    # -- forward ----------------------------------------------------------------------------

    def forward(
        self, params: dict, buffers: dict, inputs: torch.Tensor, *, train: bool, shared: bool
    ) -> torch.Tensor:
        """Logits of every network, dims (networks, batch, classes).

        Parameters
        ----------
        inputs : Tensor
            ``(networks, batch, *input_shape)`` (each network its own examples) or, with
            ``shared``, ``(batch, *input_shape)`` fed to every network.
        train : bool
            Batch norm uses batch statistics and updates its running statistics.
        """
        if self.linear_stack:
            return self._forward_feature_major(params, inputs, shared=shared)
        networks = next(iter(params.values())).shape[0]
        batch = inputs.shape[0] if shared else inputs.shape[1]
        h = inputs
        layout = "shared" if shared else "stacked"  # -> "channels" or "flat"
        saved: torch.Tensor | None = None  # a residual stage's input, for its "add_saved"
        pool = F.max_pool2d if self.dim == 2 else F.max_pool1d
        for op in self.plan:
            kind = op[0]
            if kind == "flatten":
                if layout == "channels":
                    h = h.reshape(batch, networks, -1).transpose(0, 1)
                elif layout == "shared":
                    h = h.reshape(batch, -1)
                else:
                    h = h.reshape(networks, batch, -1)
                layout = "flat" if layout != "shared" else "flat_shared"
            elif kind == "linear":
                h, layout = self._apply_linear(params, op[1], op[2], h, layout, networks, batch)
            elif kind == "conv":
                h = self._apply_conv(params, op[1], op[2], h, layout, networks, batch)
                layout = "channels"
            elif kind == "bn":
                name = op[1]
                h = F.batch_norm(
                    h,
                    buffers[f"{name}.bn.running_mean"].view(-1),
                    buffers[f"{name}.bn.running_var"].view(-1),
                    params[f"{name}.bn.weight"].reshape(-1),
                    params[f"{name}.bn.bias"].reshape(-1),
                    training=train,
                    momentum=BATCH_NORM_MOMENTUM,
                    eps=BATCH_NORM_EPS,
                )
            elif kind == "relu":
                h = F.relu(h, inplace=saved is not h)
            elif kind == "pool":
                h = pool(h, 2)
            elif kind == "global_pool":
                h = h.mean(dim=tuple(range(2, h.dim())))
                h = h.reshape(batch, networks, -1).transpose(0, 1)
                layout = "flat"
            elif kind == "save":
                saved = h
            elif kind == "add_saved":
                assert saved is not None, "the plan saves before it adds"
                h = h + saved
            else:  # pragma: no cover - the plan is built above
                raise AssertionError(kind)
        return h

    def scratch(self, role: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """A reusable buffer for ``role`` (uninitialised), on the CPU; a fresh tensor elsewhere.

        Why: on the CPU a fresh multi-megabyte tensor is a fresh ``mmap`` whose pages fault on
        first touch, which on this project's VM cost as much as the step's matrix products
        (2,000 page faults per step of 64 MLPs of width 128). CUDA's caching allocator reuses
        memory already, and there a cache of every shape seen could pin a lot of memory.
        One buffer per (role, shape): the shapes of one run are few (full and last batches).
        """
        if like.device.type != "cpu":
            return torch.empty(shape, dtype=like.dtype, device=like.device)
        key = (role, tuple(shape), like.dtype)
        buffer = self._workspace.get(key)
        if buffer is None:
            buffer = self._workspace[key] = torch.empty(shape, dtype=like.dtype)
        return buffer

    def _linears(self) -> list[tuple[str, bool]]:
        """(name, relu) of each linear layer of the plan, in order."""
        return [(op[1], op[2]) for op in self.plan if op[0] == "linear"]

    def _forward_feature_major(
        self, params: dict, inputs: torch.Tensor, *, shared: bool
    ) -> torch.Tensor:
        """A linear stack's logits, computed feature-major; dims (networks, batch, classes), a
        transposed view of the ``(networks, classes, batch)`` result."""
        layers = self._linears()
        # Without autograd, the hidden activations go to reused buffers (see :meth:`scratch`),
        # never the logits returned: a caller may keep those. Not under autocast, which does not
        # cast into a given ``out``.
        reuse = not torch.is_grad_enabled() and not torch.is_autocast_enabled(inputs.device.type)
        if shared:
            # One dense product of every network's first layer: (networks * out, in) @ (in, batch).
            name, relu = layers[0]
            weight, bias = params[f"{name}.weight"], params[f"{name}.bias"]
            networks, _, features_out = weight.shape
            batch = inputs.shape[0]
            stacked = weight.transpose(1, 2).reshape(networks * features_out, -1)
            x = inputs.reshape(batch, -1).T
            if reuse and len(layers) > 1:
                h = self.scratch(f"{name}.eval", (networks * features_out, batch), stacked)
                torch.addmm(bias.reshape(-1, 1), stacked, x, out=h)
            else:
                h = torch.addmm(bias.reshape(-1, 1), stacked, x)
            h = h.view(networks, features_out, batch)
            if relu:
                h = F.relu(h, inplace=True)
            layers = layers[1:]
        else:
            h = inputs.reshape(inputs.shape[0], inputs.shape[1], -1).transpose(1, 2)
        for index, (name, relu) in enumerate(layers):
            weight, bias = params[f"{name}.weight"], params[f"{name}.bias"]
            if reuse and index + 1 < len(layers):
                size = (weight.shape[0], weight.shape[2], h.shape[2])
                out = self.scratch(f"{name}.eval", size, weight)
                h = torch.baddbmm(bias[:, :, None], weight.transpose(1, 2), h, out=out)
            else:
                h = torch.baddbmm(bias[:, :, None], weight.transpose(1, 2), h)
            if relu:
                h = F.relu(h, inplace=True)
        return h.transpose(1, 2)

    def linear_stack_gradients(
        self, params: dict[str, torch.Tensor], inputs: torch.Tensor, labels: torch.Tensor
    ) -> None:
        """Gradients of each network's mean cross-entropy on its own batch, by hand (fp32).

        The same values autograd gives through :meth:`forward` and ``cross_entropy`` (up to the
        order of float sums; checked by tests/test_train_speed_paths.py), without a graph:
        ``d loss / d logits = (softmax - onehot) / batch``, then per layer ``dW = h g^T``,
        ``db = sum g``, ``g <- (W g) * (h > 0)``. Written into each parameter's ``.grad`` (made
        on the first call, then overwritten in place, so no zeroing is needed).

        Parameters
        ----------
        params : dict of str to Tensor of float32, dims (networks, *shape)
        inputs : Tensor of float32, dims (networks, batch, *input_shape)
        labels : Tensor of int64, dims (networks, batch)
            Classes ``0..K-1`` (every training example has one).
        """
        if not self.linear_stack:
            raise AssertionError("hand-written gradients exist for linear stacks only")
        layers = self._linears()
        networks, batch = labels.shape
        with torch.no_grad():
            h = inputs.reshape(networks, batch, -1).transpose(1, 2)
            activations = [h]  # the input of each layer, feature-major
            for name, relu in layers:
                weight, bias = params[f"{name}.weight"], params[f"{name}.bias"]
                out = self.scratch(f"{name}.out", (networks, weight.shape[2], batch), weight)
                h = torch.baddbmm(bias[:, :, None], weight.transpose(1, 2), h, out=out)
                if relu:
                    h.clamp_(min=0)
                activations.append(h)
            logits = activations.pop()  # (networks, classes, batch)
            g = torch.softmax(logits, dim=1, out=self.scratch("softmax", logits.shape, logits))
            g.scatter_add_(1, labels[:, None, :], g.new_full((networks, 1, batch), -1.0))
            g.mul_(1.0 / batch)
            for layer in range(len(layers) - 1, -1, -1):
                name = layers[layer][0]
                weight, bias = params[f"{name}.weight"], params[f"{name}.bias"]
                h = activations[layer]
                if weight.grad is None or bias.grad is None:
                    weight.grad, bias.grad = torch.empty_like(weight), torch.empty_like(bias)
                torch.bmm(h, g.transpose(1, 2), out=weight.grad)
                torch.sum(g, dim=2, out=bias.grad)
                if layer:
                    g = torch.bmm(weight, g, out=self.scratch(f"{name}.grad_in", h.shape, h))
                    if layers[layer - 1][1]:
                        # The layer below's ReLU output is positive exactly where it passed;
                        # autograd's ReLU backward is this very kernel, one pass, in place.
                        torch.ops.aten.threshold_backward.grad_input(g, h, 0.0, grad_input=g)

    @staticmethod
    def _apply_linear(
        params: dict,
        name: str,
        relu: bool,
        h: torch.Tensor,
        layout: str,
        networks: int,
        batch: int,
    ) -> tuple[torch.Tensor, str]:
        """A linear layer (and its ReLU) of every network; returns the output and its layout."""
        weight, bias = params[f"{name}.weight"], params[f"{name}.bias"]
        if layout == "flat_shared":
            # One dense product against every network's weights side by side.
            features_in, features_out = weight.shape[1], weight.shape[2]
            stacked = weight.permute(1, 0, 2).reshape(features_in, networks * features_out)
            h = torch.addmm(bias.reshape(1, -1), h, stacked)
            h = h.reshape(batch, networks, features_out).transpose(0, 1)
            layout = "flat"
        else:
            h = torch.baddbmm(bias[:, None, :], h, weight)
        if relu:
            h = F.relu(h, inplace=True)
        return h, layout

    def _apply_conv(
        self,
        params: dict,
        name: str,
        kernel: int,
        h: torch.Tensor,
        layout: str,
        networks: int,
        batch: int,
    ) -> torch.Tensor:
        """A convolution of every network; the output has the channels layout."""
        conv = F.conv2d if self.dim == 2 else F.conv1d
        weight = params[f"{name}.weight"]
        out_channels = weight.shape[1]
        weight = weight.reshape(networks * out_channels, *weight.shape[2:])
        bias = params.get(f"{name}.bias")
        bias = bias.reshape(-1) if bias is not None else None
        if layout == "shared":
            return conv(h, weight, bias, padding=kernel // 2)
        if layout == "stacked":
            h = h.transpose(0, 1).reshape(batch, -1, *h.shape[3:])
        return conv(h, weight, bias, padding=kernel // 2, groups=networks)

    def parameter_count(self) -> int:
        """Parameters of one network."""
        return sum(math.prod(spec.shape) for spec in self.params.values())

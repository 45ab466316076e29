"""Prepare a ``torch.nn.Module`` for quantization-aware training.

The model is traced with ``torch.fx`` and rewritten so that its forward pass computes what the
converter's integer model will compute (convert/converter.py):

- Conv2d (+ BatchNorm2d) becomes QuantConv2d (batch norm folded, folded weights fake-quantized
  per output channel, symmetric, narrow range); Linear becomes QuantLinear; both put their
  bias on the int32 grid of their input's scale times the weight scale;
- an activation FakeQuantize (moving-average range) follows every graph input and every op whose
  output the converter quantizes with its own parameters: Conv/Linear/add/sub/mul, after the
  ReLU/ReLU6 that the converter fuses into them, global average pooling, and any other
  value-computing op;
- max pooling, flatten/reshape and dropout add nothing (the converter gives their outputs their
  input's parameters); an average pool's output is rounded onto its input's grid as the
  integer kernel rounds it (SharedFakeQuantize).
"""

from __future__ import annotations

import copy
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import UnsupportedOpError
from .torch_ops import FakeQuantize, QuantConv2d, QuantLinear, SharedFakeQuantize

RELU_FUNCTIONS = (F.relu, torch.relu, F.relu6)
ADD_FUNCTIONS = (operator.add, torch.add, operator.sub, torch.sub, operator.mul, torch.mul)
RESHAPE_FUNCTIONS = (torch.flatten, torch.reshape)
RESHAPE_METHODS = ("view", "reshape", "flatten", "contiguous")
PASS_MODULES = (nn.MaxPool2d, nn.Flatten, nn.Dropout, nn.Identity, nn.Unflatten)
PASS_FUNCTIONS = (F.max_pool2d, F.dropout) + RESHAPE_FUNCTIONS
SHAPE_METHODS = ("size", "dim")


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def is_activation(gm: fx.GraphModule, node: fx.Node) -> bool:
    """ReLU or ReLU6 (module, function or method), which the converter fuses into producers."""
    mod = _module(gm, node)
    if mod is not None:
        return isinstance(mod, (nn.ReLU, nn.ReLU6)) or (
            isinstance(mod, nn.Hardtanh) and mod.min_val == 0.0 and mod.max_val == 6.0)
    if node.op == "call_function":
        return node.target in RELU_FUNCTIONS
    return node.op == "call_method" and node.target in ("relu", "relu_")


def _is_fusable_producer(gm: fx.GraphModule, node: fx.Node) -> bool:
    mod = _module(gm, node)
    if mod is not None:
        return isinstance(mod, (QuantConv2d, QuantLinear))
    return node.op == "call_function" and node.target in ADD_FUNCTIONS


def _passes_grid(gm: fx.GraphModule, node: fx.Node) -> bool:
    """Ops whose output keeps the input's parameters (nothing to insert after them)."""
    mod = _module(gm, node)
    if mod is not None:
        return isinstance(mod, PASS_MODULES)
    if node.op == "call_function":
        return node.target in PASS_FUNCTIONS or node.target is operator.getitem
    if node.op == "call_method":
        return node.target in RESHAPE_METHODS or node.target in SHAPE_METHODS
    return node.op in ("get_attr", "output")


def _is_avg_pool(gm: fx.GraphModule, node: fx.Node) -> bool:
    mod = _module(gm, node)
    if isinstance(mod, nn.AvgPool2d):
        return True
    return node.op == "call_function" and node.target is F.avg_pool2d


def _window_size(gm: fx.GraphModule, node: fx.Node) -> int:
    mod = _module(gm, node)
    if mod is not None:
        kernel = mod.kernel_size
    else:
        kernel = node.args[1] if len(node.args) > 1 else node.kwargs["kernel_size"]
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return int(kh) * int(kw)


def _fold_modules(gm: fx.GraphModule, num_bits: int, freeze_bn_after: int | None) -> None:
    """Conv2d(+BatchNorm2d) -> QuantConv2d, Linear -> QuantLinear, in place."""
    erased: set[fx.Node] = set()
    for node in list(gm.graph.nodes):
        if node in erased:
            continue
        mod = _module(gm, node)
        if isinstance(mod, nn.Conv2d):
            bn = None
            users = list(node.users)
            if len(users) == 1 and isinstance(_module(gm, users[0]), nn.BatchNorm2d):
                bn_node = users[0]
                bn = _module(gm, bn_node)
                bn_node.replace_all_uses_with(node)
                gm.graph.erase_node(bn_node)
                erased.add(bn_node)
            gm.add_submodule(node.target, QuantConv2d(mod, bn, num_bits, freeze_bn_after))
        elif isinstance(mod, nn.Linear):
            gm.add_submodule(node.target, QuantLinear(mod, num_bits))
        elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            raise UnsupportedOpError(
                f"node {node.name!r}: batch norm that does not follow a Conv2d cannot be folded"
            )
        elif mod is not None and not list(mod.children()) and list(mod.parameters(False)) and \
                not isinstance(mod, (QuantConv2d, QuantLinear)):
            raise UnsupportedOpError(
                f"node {node.name!r}: module {type(mod).__name__} has weights gpuquant cannot "
                "quantize (Conv2d, Linear, BatchNorm2d after Conv2d only)"
            )


def _insert_after(gm: fx.GraphModule, node: fx.Node, name: str, module: nn.Module) -> fx.Node:
    gm.add_submodule(name, module)
    with gm.graph.inserting_after(node):
        new = gm.graph.call_module(name, (node,))
    node.replace_all_uses_with(new, delete_user_cb=lambda user: user is not new)
    return new


def prepare(
    model: nn.Module,
    example_input: torch.Tensor,
    num_bits: int = 8,
    *,
    weight_bits: int | None = None,
    decay: float = 0.99,
    freeze_ranges_after: int | None = None,
    freeze_bn_after: int | None = None,
) -> fx.GraphModule:
    """A copy of ``model`` with fake quantization where the converter quantizes (module doc).

    ``num_bits`` (2-8) is the activation bit width, ``weight_bits`` the weights' (default
    ``num_bits``). Activation ranges are moving averages with ``decay``, frozen after
    ``freeze_ranges_after`` training steps; batch norm uses batch statistics until
    ``freeze_bn_after`` steps. ``example_input`` (one batch, NCHW) fixes the input shape used
    by export. The model is traced, so its forward must be free of data-dependent control flow.
    """
    gm = fx.symbolic_trace(copy.deepcopy(model))
    _fold_modules(gm, weight_bits or num_bits, freeze_bn_after)
    gm.graph.lint()
    gm.recompile()

    def act_fq() -> FakeQuantize:
        return FakeQuantize(num_bits, mode="ema", decay=decay, freeze_after=freeze_ranges_after)

    grids: dict[fx.Node, FakeQuantize] = {}  # node -> the quantizer whose grid its output is on
    count = 0
    for node in list(gm.graph.nodes):  # a snapshot: the inserted nodes are not visited
        if node.op in ("output", "get_attr"):
            continue
        users = list(node.users)
        layer = _module(gm, node)
        if isinstance(layer, (QuantConv2d, QuantLinear)) and node.args[0] in grids:
            layer.input_fq[:] = [grids[node.args[0]]]
        if node.op != "placeholder" and _passes_grid(gm, node):
            src = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
            if src is not None and src in grids:
                grids[node] = grids[src]
            continue
        if _is_avg_pool(gm, node):
            src = node.args[0]
            if src not in grids:
                raise UnsupportedOpError(
                    f"node {node.name!r}: average pool of an unquantized input")
            shared = SharedFakeQuantize(grids[src], _window_size(gm, node))
            new = _insert_after(gm, node, f"gq_fq_{count}", shared)
            grids[node] = grids[new] = grids[src]
            count += 1
            continue
        if _is_fusable_producer(gm, node) and len(users) == 1 and is_activation(gm, users[0]):
            continue  # fused into this producer, the activation's output carries the fake quant
        fq = act_fq()
        new = _insert_after(gm, node, f"gq_fq_{count}", fq)
        grids[node] = grids[new] = fq
        count += 1
    gm.graph.lint()
    gm.recompile()
    gm.gq_example_shape = tuple(example_input.shape)
    _propagate_shapes(gm, example_input)
    return gm


def fake_quant_modules(gm: nn.Module) -> list[FakeQuantize]:
    """Every FakeQuantize of a prepared model (activations and weights)."""
    return [m for m in gm.modules() if isinstance(m, FakeQuantize)]


def _propagate_shapes(gm: fx.GraphModule, example_input: torch.Tensor) -> None:
    """Record each node's output shape (``node.meta["tensor_meta"]``) with fake quant off."""
    modules = fake_quant_modules(gm)
    state: list[Any] = [(m.enabled, m.training) for m in modules]
    was_training = gm.training
    gm.eval()
    for m in modules:
        m.enabled = False
    steps = [m.steps.clone() for m in modules]
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example_input)
    finally:
        for m, (enabled, _), s in zip(modules, state, steps):
            m.enabled = enabled
            m.steps.copy_(s)
        gm.train(was_training)

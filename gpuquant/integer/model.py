"""The integer model: what the converter and the int8-model importers produce, what the model
file stores and what the runtime executes.

Each node names a backend op (backends/base.py) and carries that op's frozen params struct
(ops/). Besides the backend ops there are:

- ``"float"``: a float-graph node (graph/ir.py ``Node``, ONNX semantics, NCHW) that has no
  integer kernel or was excluded by the user; its inputs and outputs are float32 tensors, and the
  converter puts dequantize/quantize nodes around it; its ``IntegerNode`` inputs/outputs are the
  ``Node``'s own, and constant inputs (weights, Clip bounds, shapes) are in ``constants``;
- ``"transpose"`` (params ``{"perm": [...]}``), ``"reshape"`` (``{"shape": [...]}``, -1 allowed,
  0 copies the input dimension as in ONNX) and ``"pad"`` (``{"pads": [[b, e], ...],
  "value": int}``) on integer tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..quant.params import QuantParams

BACKEND_OPS = (
    "gemm", "matmul", "conv2d", "max_pool2d", "avg_pool2d", "mean", "add", "mul", "concat",
    "lookup", "quantize", "dequantize", "transpose", "reshape", "pad", "pair_lookup",
    "avg_pool2d_float", "softmax", "softmax_float",
)
NODE_OPS = BACKEND_OPS + ("float",)


@dataclass
class TensorSpec:
    """A named tensor: shape (None for dynamic), dtype name, layout and 8-bit parameters.

    ``layout`` is "NCHW", "NHWC" or None (no spatial meaning). ``qparams`` is set for every
    int8/uint8 tensor; ``float_name`` is the tensor of the source float graph it approximates
    (used for per-layer error reports), if any.
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    layout: str | None = None
    qparams: QuantParams | None = None
    float_name: str | None = None


@dataclass
class IntegerNode:
    """One op of the integer model (module docstring)."""

    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: Any


@dataclass
class IntegerModel:
    """Nodes in execution order, the model's inputs/outputs, and every tensor's spec.

    ``constants`` are tensors loaded before the first node (float inputs of ``"float"`` nodes,
    8-bit constant operands of integer ops), by name.

    ``metadata`` holds plain JSON values: source file and format, converter settings,
    ``float_nodes`` (names of nodes left in float and why), op counts, and ``fixed_batch``.

    The leading dimension of every input is the batch. A model runs at any batch unless
    ``metadata["fixed_batch"]`` is set: then it runs only at the leading dimensions its inputs
    declare, and that string says why (the node that does not keep the batch as its output's
    leading axis). Importers mark a batch-agnostic model by a None leading dimension on every
    tensor that follows the batch (frontends/batch.py).
    """

    name: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    nodes: list[IntegerNode]
    tensors: dict[str, TensorSpec]
    metadata: dict[str, Any] = field(default_factory=dict)
    constants: dict[str, np.ndarray] = field(default_factory=dict)

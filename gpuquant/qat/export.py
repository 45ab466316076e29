"""Export a prepared model (prepare.py) to ONNX in QDQ form.

Each activation FakeQuantize becomes a QuantizeLinear/DequantizeLinear pair carrying its nudged
scale and zero point (fake_quant.nudged_qparams); each layer's weights become an int8
initializer (the fake-quantized codes, per output channel, zero point 0) read through a
per-axis DequantizeLinear; biases stay float (the converter makes them int32 at
``s_in * s_w``). Batch norm is already folded (QuantConv2d.folded). Bit widths below 8 are
stored in 8-bit containers: the model's ``metadata_props`` entry ``gpuquant.num_bits`` maps
each such tensor (the float tensor before its QuantizeLinear, or the weight initializer) to
its width, as JSON, since ONNX's 8-bit types cannot say it.

Ops written: Conv, Gemm, Relu, Clip (ReLU6), Add/Sub/Mul, MaxPool, AveragePool,
GlobalAveragePool, Flatten, Reshape; anything else is an UnsupportedOpError naming the node.
"""

from __future__ import annotations

import json
import operator
import os

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import fx, nn

from ..errors import UnsupportedOpError
from .prepare import RESHAPE_FUNCTIONS, RESHAPE_METHODS, SHAPE_METHODS, is_activation
from .torch_ops import FakeQuantize, QuantConv2d, QuantLinear, SharedFakeQuantize

OPSET = 13
NUM_BITS_KEY = "gpuquant.num_bits"
ONNX_DTYPES = {"int8": TensorProto.INT8, "uint8": TensorProto.UINT8}
BINARY_OPS = {operator.add: "Add", torch.add: "Add", operator.sub: "Sub", torch.sub: "Sub",
              operator.mul: "Mul", torch.mul: "Mul"}


def _pair(v) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(a) for a in v]


class _Writer:
    def __init__(self, gm: fx.GraphModule, activation_dtype: str) -> None:
        self.gm, self.dtype = gm, activation_dtype
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.env: dict[fx.Node, str] = {}
        self.num_bits: dict[str, int] = {}

    def init(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def add(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def qdq(self, node: fx.Node, src: str, fq: FakeQuantize) -> str:
        qp = fq.qparams(self.dtype)
        scale = self.init(f"{node.name}.scale", qp.scale.reshape(()))
        zp = self.init(f"{node.name}.zero_point",
                       qp.zero_point.reshape(()).astype(np.dtype(self.dtype)))
        q = self.add("QuantizeLinear", [src, scale, zp], f"{node.name}.q")
        if fq.num_bits < 8:
            self.num_bits[src] = fq.num_bits
        return self.add("DequantizeLinear", [q, scale, zp], node.name)

    def weight(self, node: fx.Node, mod: QuantConv2d | QuantLinear) -> tuple[str, str]:
        w, b = (t.detach() for t in mod.folded())
        fq = mod.weight_fq
        was = fq.enabled
        fq.enabled = True
        wq = fq(w).detach().cpu().numpy()
        fq.enabled = was
        qp = fq.qparams("int8")
        scale = qp.scale.reshape((-1,) + (1,) * (wq.ndim - 1))
        codes = np.rint(wq / scale).astype(np.int8)
        name = f"{node.name}.weight"
        self.init(f"{name}_q", codes)
        self.init(f"{name}.scale", qp.scale)
        self.init(f"{name}.zero_point", np.zeros(qp.scale.size, np.int8))
        if fq.num_bits < 8:
            self.num_bits[f"{name}_q"] = fq.num_bits
        self.add("DequantizeLinear", [f"{name}_q", f"{name}.scale", f"{name}.zero_point"], name,
                 axis=0)
        bias = self.init(f"{node.name}.bias", b.cpu().numpy().astype(np.float32))
        return name, bias

    def arg(self, node: fx.Node, value) -> str:
        if isinstance(value, fx.Node):
            return self.env[value]
        if isinstance(value, (int, float)):
            return self.init(f"{node.name}.const", np.array(value, np.float32))
        raise UnsupportedOpError(f"node {node.name!r}: operand {value!r} cannot be exported")

    def shape(self, node: fx.Node) -> tuple[int, ...]:
        meta = node.meta.get("tensor_meta")
        if meta is None:
            raise UnsupportedOpError(f"node {node.name!r}: no recorded shape (run prepare again)")
        return tuple(meta.shape)

    def reshape(self, node: fx.Node, src: str) -> str:
        out = self.shape(node)
        if len(out) == 2 and out[0] == self.shape(node.args[0])[0]:
            return self.add("Flatten", [src], node.name, axis=1)
        target = self.init(f"{node.name}.shape", np.array((0,) + out[1:], np.int64))
        return self.add("Reshape", [src, target], node.name)

    def module(self, node: fx.Node, mod: nn.Module) -> str:
        x = self.env[node.args[0]]
        if isinstance(mod, FakeQuantize):
            return self.qdq(node, x, mod)
        if isinstance(mod, SharedFakeQuantize):
            return self.qdq(node, x, mod.source[0])
        if isinstance(mod, QuantConv2d):
            c = mod.conv
            w, b = self.weight(node, mod)
            pad = _pair(c.padding)
            return self.add("Conv", [x, w, b], node.name, kernel_shape=_pair(c.kernel_size),
                            strides=_pair(c.stride), dilations=_pair(c.dilation),
                            pads=[pad[0], pad[1], pad[0], pad[1]], group=int(c.groups))
        if isinstance(mod, QuantLinear):
            w, b = self.weight(node, mod)
            return self.add("Gemm", [x, w, b], node.name, transB=1)
        if is_activation(self.gm, node):
            return self.activation(node, x, isinstance(mod, nn.ReLU))
        if isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
            return self.pool(node, x, type(mod) is nn.MaxPool2d, mod.kernel_size, mod.stride,
                             mod.padding, mod.ceil_mode, getattr(mod, "count_include_pad", True))
        if isinstance(mod, nn.AdaptiveAvgPool2d) and _pair(mod.output_size) == [1, 1]:
            return self.add("GlobalAveragePool", [x], node.name)
        if isinstance(mod, (nn.Flatten, nn.Unflatten)):
            return self.reshape(node, x)
        if isinstance(mod, (nn.Dropout, nn.Identity)):
            return x
        raise UnsupportedOpError(f"node {node.name!r}: module {type(mod).__name__} not exportable")

    def activation(self, node: fx.Node, x: str, relu: bool) -> str:
        if relu:
            return self.add("Relu", [x], node.name)
        lo = self.init(f"{node.name}.min", np.array(0.0, np.float32))
        hi = self.init(f"{node.name}.max", np.array(6.0, np.float32))
        return self.add("Clip", [x, lo, hi], node.name)

    def pool(self, node, x, is_max, kernel, stride, padding, ceil_mode, count_include_pad) -> str:
        pad = _pair(padding)
        attrs = dict(kernel_shape=_pair(kernel), strides=_pair(stride or kernel),
                     pads=[pad[0], pad[1], pad[0], pad[1]], ceil_mode=int(ceil_mode))
        if is_max:
            return self.add("MaxPool", [x], node.name, **attrs)
        return self.add("AveragePool", [x], node.name, count_include_pad=int(count_include_pad),
                        **attrs)

    def function(self, node: fx.Node) -> str:
        t = node.target
        if t in BINARY_OPS:
            a, b = (self.arg(node, v) for v in node.args[:2])
            return self.add(BINARY_OPS[t], [a, b], node.name)
        x = self.env[node.args[0]]
        if is_activation(self.gm, node):
            return self.activation(node, x, t is not F.relu6)
        if t in RESHAPE_FUNCTIONS:
            return self.reshape(node, x)
        if t in (F.max_pool2d, F.avg_pool2d):
            kw = dict(zip(("kernel_size", "stride", "padding"), node.args[1:]), **node.kwargs)
            return self.pool(node, x, t is F.max_pool2d, kw["kernel_size"], kw.get("stride"),
                             kw.get("padding", 0), kw.get("ceil_mode", False),
                             kw.get("count_include_pad", True))
        if t is F.adaptive_avg_pool2d and _pair(node.args[1]) == [1, 1]:
            return self.add("GlobalAveragePool", [x], node.name)
        if t is F.dropout:
            return x
        raise UnsupportedOpError(f"node {node.name!r}: function {t} not exportable")

    def method(self, node: fx.Node) -> str | None:
        if node.target in SHAPE_METHODS:
            return None
        x = self.env[node.args[0]]
        if node.target in RESHAPE_METHODS:
            return x if node.target == "contiguous" else self.reshape(node, x)
        if is_activation(self.gm, node):
            return self.activation(node, x, True)
        raise UnsupportedOpError(f"node {node.name!r}: method {node.target!r} not exportable")


def export_qdq(
    gm: fx.GraphModule,
    path: str | os.PathLike | None = None,
    activation_dtype: str = "int8",
) -> onnx.ModelProto:
    """The QDQ ONNX model (opset 13, dynamic batch) of a prepared model; saved if ``path``."""
    if activation_dtype not in ONNX_DTYPES:
        raise ValueError(f"activation_dtype must be one of {tuple(ONNX_DTYPES)}")
    w = _Writer(gm, activation_dtype)
    inputs, outputs = [], []
    example = gm.gq_example_shape
    with torch.no_grad():
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                w.env[node] = node.target
                inputs.append(helper.make_tensor_value_info(
                    node.target, TensorProto.FLOAT, ["N", *example[1:]]))
            elif node.op == "call_module":
                w.env[node] = w.module(node, gm.get_submodule(node.target))
            elif node.op == "call_function":
                w.env[node] = w.function(node)
            elif node.op == "call_method":
                name = w.method(node)
                if name is not None:
                    w.env[node] = name
            elif node.op == "output":
                results = node.args[0]
                if not isinstance(results, (tuple, list)):
                    results = [results]
                for r in results:
                    outputs.append(helper.make_tensor_value_info(
                        w.env[r], TensorProto.FLOAT, ["N", *w.shape(r)[1:]]))
            else:
                raise UnsupportedOpError(f"node {node.name!r}: {node.op} not exportable")
    graph = helper.make_graph(w.nodes, "gpuquant_qat", inputs, outputs, w.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="gpuquant.qat")
    model.ir_version = 8
    if w.num_bits:
        helper.set_model_props(model, {NUM_BITS_KEY: json.dumps(w.num_bits, sort_keys=True)})
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save(model, os.fspath(path))
    return model

"""One lowering per float-graph op: check, build the op's params, emit its integer node.

Each function takes the builder, the float node and its fused activation (or None). It raises
KeepFloat (before emitting anything) when the node has no exact integer form here; the
converter then keeps it as a float node.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..graph.ir import Node
from ..ops import (
    ADD_LEFT_SHIFT,
    AddParams,
    ConcatParams,
    Conv2DParams,
    GemmParams,
    LookupParams,
    MatMulParams,
    MeanParams,
    MulParams,
    PoolParams,
    build_table,
    conv_output_hw,
)
from ..ops.lut import FUNCTIONS
from ..quant.fixedpoint import quantize_multiplier
from ..quant.params import QuantParams, dtype_bounds
from .builder import NHWC, ONNX, Alias, Builder, KeepFloat
from .fuse import Activation
from .layout import nhwc_axis, nhwc_flatten_columns, nhwc_pads
from .weights import quantize_layer


def _scale(qp: QuantParams) -> float:
    return float(qp.scale[0])


def _zp(qp: QuantParams) -> int:
    return int(qp.zero_point[0])


def _same(a: QuantParams, b: QuantParams) -> bool:
    return a.dtype == b.dtype and _scale(a) == _scale(b) and _zp(a) == _zp(b)


def _rank(b: Builder, name: str) -> int:
    return len(b.shape(name))


def _box(pads: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """ONNX 2-D pads (top, left, bottom, right) as (top, bottom, left, right)."""
    top, left, bottom, right = (int(p) for p in pads)
    return top, bottom, left, right


def _conv_input_mean(b: Builder, x: str, w: np.ndarray, groups: int) -> np.ndarray | None:
    """The mean input each weight ``w[o, c, :, :]`` multiplies, shape (O, C/groups, 1, 1):
    output channel ``o`` of group ``g`` reads input channel ``g * C/groups + c`` (depthwise:
    its own). The means average the float input's positions; the conv's own padding
    positions (zeros) are not counted."""
    out_channels, per_group = w.shape[:2]
    mean = b.input_mean(x, per_group * groups)
    if mean is None:
        return None
    by_group = mean.reshape(groups, 1, per_group)
    return np.repeat(by_group, out_channels // groups, axis=1).reshape(out_channels, per_group,
                                                                       1, 1)


def lower_conv(b: Builder, node: Node, act: Activation | None) -> None:
    """Conv: OIHW weights -> OHWI int8, NHWC activations (ops/conv.py)."""
    x, out = node.inputs[0], node.outputs[0]
    w = b.constant(node.inputs[1], "weight").astype(np.float32)
    bias_name = node.inputs[2] if len(node.inputs) > 2 else ""
    bias = b.constant(bias_name, "bias") if bias_name else None
    if w.ndim != 4:
        raise KeepFloat(f"{w.ndim - 2}-D convolution has no integer kernel (2-D only)")
    in_qp, out_qp = b.qparams(x), b.qparams(out)
    groups = int(node.attrs.get("group", 1))
    layer = quantize_layer(node.name, w, bias, _scale(in_qp), b.per_channel,
                           b.weight_qparams(node.inputs[1], 0), _conv_input_mean(b, x, w, groups),
                           b.bias_qparams(bias_name) if bias_name else None,
                           b.bias_codes(bias_name, w.shape[0]) if bias_name else None,
                           bias_name)
    requant = b.requant(_scale(in_qp) * layer.weight_scales(w.shape[0]) / _scale(out_qp),
                        out_qp, act)
    params = Conv2DParams(
        name=node.name,
        weight=layer.weight.transpose(0, 2, 3, 1),
        weight_zero_point=layer.weight_qparams.zero_point,
        input_zero_point=_zp(in_qp),
        input_dtype=b.dtype,
        bias=layer.bias,
        requant=requant,
        stride=tuple(node.attrs.get("strides", (1, 1))),
        dilation=tuple(node.attrs.get("dilations", (1, 1))),
        padding=_box(node.attrs.get("pads", (0, 0, 0, 0))),
        groups=groups,
    )
    b.warnings.extend(layer.warnings)
    src = b.need_int(x, nhwc=True)
    b.emit("conv2d", node.name, [src], [b.produce(out, NHWC)], params)


def _emit_fully_connected(
    b: Builder, node: Node, act: Activation | None, x: str, w: np.ndarray, bias: np.ndarray | None,
    given: QuantParams | None = None, given_bias: QuantParams | None = None,
    bias_codes: np.ndarray | None = None, bias_name: str = "",
) -> None:
    """``y = x @ w.T + bias`` with w (N, K) float; a flattened NHWC input permutes w's columns.

    ``given``, ``given_bias``, ``bias_codes``: the weight's and bias's parameters and the bias's
    stated codes from the model (Builder.weight_qparams, bias_qparams, bias_codes), if any, of
    the bias initializer ``bias_name``.
    """
    out = node.outputs[0]
    if _rank(b, x) != 2:
        raise KeepFloat(f"fully connected input {x!r} must be 2-D, has shape {b.shape(x)}")
    in_qp, out_qp = b.qparams(x), b.qparams(out)
    layer = quantize_layer(node.name, w, bias, _scale(in_qp), b.per_channel, given,
                           b.input_mean(x, w.shape[1]), given_bias, bias_codes, bias_name)
    alias = b.flat_source(x)
    weight = layer.weight
    if alias is not None:
        weight = nhwc_flatten_columns(weight, b.shape(alias.source)[1:])
    params = GemmParams(
        name=node.name,
        weight=weight,
        weight_zero_point=layer.weight_qparams.zero_point,
        input_zero_point=_zp(in_qp),
        input_dtype=b.dtype,
        bias=layer.bias,
        requant=b.requant(
            _scale(in_qp) * layer.weight_scales(w.shape[0]) / _scale(out_qp), out_qp, act
        ),
    )
    b.warnings.extend(layer.warnings)
    src = b.need_flat_nhwc(x) if alias is not None else b.need_int(x, nhwc=False)
    b.emit("gemm", node.name, [src], [b.produce(out, ONNX)], params)


def lower_gemm(b: Builder, node: Node, act: Activation | None) -> None:
    """Gemm ``alpha * A @ op(B) + beta * C`` with constant B and C (C one value per column)."""
    if node.attrs.get("transA", 0):
        raise KeepFloat("Gemm with transA has no integer kernel")
    w = b.constant(node.inputs[1], "weight").astype(np.float64)
    w = w if node.attrs.get("transB", 0) else w.T
    w = w * float(node.attrs.get("alpha", 1.0))
    bias_name = node.inputs[2] if len(node.inputs) > 2 else ""
    bias, given_bias, bias_codes = None, None, None
    if bias_name:
        beta = float(node.attrs.get("beta", 1.0))
        c = b.constant(bias_name, "bias").astype(np.float64) * beta
        if c.size not in (1, w.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
            raise KeepFloat(f"Gemm bias of shape {c.shape} is not one value per output column")
        bias = np.broadcast_to(c.reshape(-1), (w.shape[0],))
        given_bias = b.bias_qparams(bias_name, beta)
        bias_codes = b.bias_codes(bias_name, w.shape[0])
    given = b.weight_qparams(node.inputs[1], 0 if node.attrs.get("transB", 0) else 1,
                             float(node.attrs.get("alpha", 1.0)))
    _emit_fully_connected(b, node, act, node.inputs[0], w.astype(np.float32), bias, given,
                          given_bias, bias_codes, bias_name)


def lower_matmul(b: Builder, node: Node, act: Activation | None) -> None:
    """MatMul by a constant 2-D matrix -> gemm; of two activations -> matmul."""
    a_name, b_name = node.inputs[:2]
    if b_name in b.graph.initializers:
        w = b.constant(b_name, "weight")
        if w.ndim != 2:
            raise KeepFloat(f"MatMul by a constant of shape {w.shape} (2-D only)")
        _emit_fully_connected(b, node, act, a_name, np.ascontiguousarray(w.T), None,
                              b.weight_qparams(b_name, 1))
        return
    if a_name in b.graph.initializers:
        raise KeepFloat("MatMul with a constant left operand has no integer kernel")
    out = node.outputs[0]
    k = b.shape(a_name)[-1]
    if k is None:
        raise KeepFloat(f"reduction length of {a_name!r} is not static")
    qa, qb, qy = b.qparams(a_name), b.qparams(b_name), b.qparams(out)
    params = MatMulParams(
        name=node.name, k=int(k), a_zero_point=_zp(qa), a_dtype=b.dtype,
        b_zero_point=qb.zero_point, b_dtype=b.dtype,
        requant=b.requant(_scale(qa) * _scale(qb) / _scale(qy), qy, act),
    )
    srcs = [b.need_int(a_name, nhwc=False), b.need_int(b_name, nhwc=False)]
    b.emit("matmul", node.name, srcs, [b.produce(out, ONNX)], params)


def _binary_inputs(b: Builder, node: Node) -> tuple[bool, list[str]]:
    """Both operands of a broadcasting op, NHWC when the output is 4-D."""
    out = node.outputs[0]
    nhwc = _rank(b, out) == 4
    for name in node.inputs:
        if nhwc and name not in b.graph.initializers and _rank(b, name) != 4:
            raise KeepFloat(f"operand {name!r} of shape {b.shape(name)} broadcast to 4-D")
    return nhwc, [b.need_int(name, nhwc) for name in node.inputs]


def lower_add(b: Builder, node: Node, act: Activation | None) -> None:
    """Add/Sub, TFLite's method (ops/elementwise.py): both operands to ``2 * max(s_a, s_b)``."""
    qa, qb, qy = (b.qparams(n) for n in (*node.inputs[:2], node.outputs[0]))
    twice = 2.0 * max(_scale(qa), _scale(qb))
    ma, sa = quantize_multiplier(_scale(qa) / twice)
    mb, sb = quantize_multiplier(_scale(qb) / twice)
    params = AddParams(
        name=node.name, a_zero_point=_zp(qa), b_zero_point=_zp(qb),
        a_multiplier=ma, a_shift=sa, b_multiplier=mb, b_shift=sb,
        b_negate=node.op_type == "Sub", left_shift=ADD_LEFT_SHIFT,
        requant=b.requant(twice / (2**ADD_LEFT_SHIFT * _scale(qy)), qy, act),
    )
    nhwc, srcs = _binary_inputs(b, node)
    b.emit("add", node.name, srcs, [b.produce(node.outputs[0], NHWC if nhwc else ONNX)], params)


def lower_mul(b: Builder, node: Node, act: Activation | None) -> None:
    """Mul: ``requant((a - za)(b - zb))`` with multiplier ``s_a * s_b / s_y``."""
    qa, qb, qy = (b.qparams(n) for n in (*node.inputs[:2], node.outputs[0]))
    params = MulParams(
        name=node.name, a_zero_point=_zp(qa), b_zero_point=_zp(qb),
        requant=b.requant(_scale(qa) * _scale(qb) / _scale(qy), qy, act),
    )
    nhwc, srcs = _binary_inputs(b, node)
    b.emit("mul", node.name, srcs, [b.produce(node.outputs[0], NHWC if nhwc else ONNX)], params)


def _pool_params(b: Builder, node: Node) -> PoolParams:
    x, out = node.inputs[0], node.outputs[0]
    if _rank(b, x) != 4:
        raise KeepFloat(f"{node.op_type} on a {_rank(b, x)}-D tensor (2-D pooling only)")
    if len([o for o in node.outputs if o]) != 1:
        raise KeepFloat(f"{node.op_type} with an indices output")
    if any(int(d) != 1 for d in node.attrs.get("dilations", (1, 1))):
        raise KeepFloat(f"{node.op_type} with dilations")
    kernel = tuple(int(k) for k in node.attrs["kernel_shape"])
    stride = tuple(int(s) for s in node.attrs.get("strides", (1, 1)))
    padding = _box(node.attrs.get("pads", (0, 0, 0, 0)))
    expected = conv_output_hw(b.shape(x)[2:], kernel, stride, (1, 1), padding)
    if tuple(b.shape(out)[2:]) != expected:
        raise KeepFloat(f"ceil_mode output {b.shape(out)[2:]} differs from floor {expected}")
    qmin, qmax = dtype_bounds(b.dtype)
    return PoolParams(node.name, kernel, stride, padding, b.dtype, qmin, qmax)


def lower_max_pool(b: Builder, node: Node, act: Activation | None) -> None:
    """MaxPool on NHWC; the output keeps the input's parameters."""
    params = _pool_params(b, node)
    src = b.need_int(node.inputs[0], nhwc=True)
    b.share_qparams(node.outputs[0], node.inputs[0])
    b.emit("max_pool2d", node.name, [src], [b.produce(node.outputs[0], NHWC)], params)


def lower_average_pool(b: Builder, node: Node, act: Activation | None) -> None:
    """AveragePool over valid positions (TFLite: the output keeps the input's parameters)."""
    params = _pool_params(b, node)
    if node.attrs.get("count_include_pad", 0) and any(params.padding):
        raise KeepFloat("count_include_pad=1 with padding is not exact on integer codes")
    src = b.need_int(node.inputs[0], nhwc=True)
    b.share_qparams(node.outputs[0], node.inputs[0])
    b.emit("avg_pool2d", node.name, [src], [b.produce(node.outputs[0], NHWC)], params)


def _emit_mean(b: Builder, node: Node, axes: tuple[int, ...], keepdims: bool) -> None:
    x, out = node.inputs[0], node.outputs[0]
    shape = b.shape(x)
    count = math.prod(shape[a] for a in axes) if all(shape[a] for a in axes) else None
    if count is None:
        raise KeepFloat(f"mean over dynamic dimensions {axes} of {shape}")
    spatial = _rank(b, x) == 4 and sorted(axes) == [2, 3]
    qx, qy = b.qparams(x), b.qparams(out)
    params = MeanParams(
        name=node.name,
        axes=(1, 2) if spatial else axes,
        keepdims=keepdims,
        input_zero_point=_zp(qx),
        input_dtype=b.dtype,
        requant=b.requant(_scale(qx) / (_scale(qy) * count), qy),
    )
    src = b.need_int(x, nhwc=spatial)
    form = NHWC if spatial and keepdims else ONNX
    b.emit("mean", node.name, [src], [b.produce(out, form)], params)


def lower_global_average_pool(b: Builder, node: Node, act: Activation | None) -> None:
    """GlobalAveragePool: requantized mean over H and W of NHWC, kept as 1x1."""
    if _rank(b, node.inputs[0]) != 4:
        raise KeepFloat("GlobalAveragePool on a tensor that is not 4-D")
    _emit_mean(b, node, (2, 3), True)


def lower_reduce_mean(b: Builder, node: Node, act: Activation | None) -> None:
    """ReduceMean over constant axes."""
    rank = _rank(b, node.inputs[0])
    axes = node.attrs.get("axes")
    if axes is None:
        if node.attrs.get("noop_with_empty_axes", 0):
            raise KeepFloat("ReduceMean without axes and noop_with_empty_axes")
        axes = range(rank)
    _emit_mean(b, node, tuple(sorted(int(a) % rank for a in axes)),
               bool(node.attrs.get("keepdims", 1)))


def _lookup_function(node: Node) -> Callable[[np.ndarray], np.ndarray]:
    attrs = node.attrs
    if node.op_type == "Clip":
        lo, hi = attrs.get("min", -np.inf), attrs.get("max", np.inf)
        return lambda x: np.clip(x, lo, hi)
    if node.op_type == "HardSigmoid":
        alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
        return lambda x: np.clip(alpha * x + beta, 0.0, 1.0)
    if node.op_type == "LeakyRelu":
        alpha = float(attrs.get("alpha", 0.01))
        return lambda x: np.where(x >= 0, x, alpha * x)
    return FUNCTIONS[LOOKUP_FUNCTIONS[node.op_type]]


LOOKUP_FUNCTIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh",
                    "HardSwish": "hard_swish"}


def lower_lookup(b: Builder, node: Node, act: Activation | None) -> None:
    """A one-input element-wise function as a 256-entry table (ops/lut.py), in the input's layout."""
    x, out = node.inputs[0], node.outputs[0]
    table = build_table(_lookup_function(node), b.qparams(x), b.qparams(out))
    params = LookupParams(node.name, b.dtype, table)
    nhwc = b.has(x, NHWC)
    src = b.need_int(x, nhwc)
    b.emit("lookup", node.name, [src], [b.produce(out, NHWC if nhwc else ONNX)], params)


def lower_concat(b: Builder, node: Node, act: Activation | None) -> None:
    """Concat: inputs with other parameters than the output's go through a requant table."""
    out = node.outputs[0]
    inputs = [n for n in node.inputs if n]
    qy = b.qparams(out)
    tables = []
    for i, name in enumerate(inputs):
        qx = b.qparams(name)
        tables.append(None if _same(qx, qy) else LookupParams(
            f"{node.name}/input{i}", b.dtype, build_table("identity", qx, qy)))
    nhwc = _rank(b, out) == 4
    axis = int(node.attrs["axis"])
    params = ConcatParams(node.name, nhwc_axis(axis) if nhwc else axis % _rank(b, out),
                          tuple(tables))
    srcs = [b.need_int(name, nhwc) for name in inputs]
    b.emit("concat", node.name, srcs, [b.produce(out, NHWC if nhwc else ONNX)], params)


def lower_pad(b: Builder, node: Node, act: Activation | None) -> None:
    """Constant Pad whose value is exactly a code (real 0 -> the zero point)."""
    x, out = node.inputs[0], node.outputs[0]
    pads = [int(p) for p in node.attrs["pads"]]
    if node.attrs.get("mode", "constant") != "constant" or min(pads) < 0:
        raise KeepFloat(f"Pad mode {node.attrs.get('mode')!r} with pads {pads}")
    qp = b.qparams(x)
    code = float(node.attrs.get("value", 0.0)) / _scale(qp)
    lo, hi = dtype_bounds(b.dtype)
    value = _zp(qp) + round(code)
    if code != round(code) or not lo <= value <= hi:
        raise KeepFloat(f"pad value {node.attrs.get('value')} is not a {b.dtype} code")
    b.share_qparams(out, x)
    rank = len(pads) // 2
    nhwc = rank == 4 and b.has(x, NHWC)
    pairs = nhwc_pads(pads) if nhwc else list(zip(pads[:rank], pads[rank:]))
    src = b.need_int(x, nhwc)
    b.emit("pad", node.name, [src], [b.produce(out, NHWC if nhwc else ONNX)],
           {"pads": [list(p) for p in pairs], "value": value})


def lower_transpose(b: Builder, node: Node, act: Activation | None) -> None:
    """Transpose of an 8-bit tensor in ONNX order; parameters unchanged."""
    _check_integer_input(b, node)
    x, out = node.inputs[0], node.outputs[0]
    perm = node.attrs.get("perm") or list(reversed(range(_rank(b, x))))
    b.share_qparams(out, x)
    src = b.need_int(x, nhwc=False)
    b.emit("transpose", node.name, [src], [b.produce(out, ONNX)], {"perm": [int(p) for p in perm]})


def _check_integer_input(b: Builder, node: Node) -> None:
    x = node.inputs[0]
    if not (b.has(x, ONNX) or b.has(x, NHWC) or x in b.aliases):
        raise KeepFloat(f"input {x!r} is float; a layout op on it stays in float")


def _static_target(b: Builder, x: str, out: str) -> tuple[int, ...]:
    """The output shape as a Reshape target: 0 keeps a dynamic leading dimension."""
    shape = b.shape(out)
    target = [0 if d is None and i == 0 and b.shape(x)[0] is None else d
              for i, d in enumerate(shape)]
    if any(d is None for d in target):
        raise KeepFloat(f"output shape {shape} is not static")
    return tuple(int(d) for d in target)


def lower_reshape(b: Builder, node: Node, act: Activation | None) -> None:
    """Flatten/Reshape/Squeeze/Unsqueeze/Identity: an alias of the 8-bit input, read on demand."""
    _check_integer_input(b, node)
    x, out = node.inputs[0], node.outputs[0]
    if node.op_type == "Reshape" and node.attrs.get("allowzero", 0) and 0 in node.attrs["shape"]:
        raise KeepFloat("Reshape with allowzero and a 0 dimension")
    target = _static_target(b, x, out)
    in_shape, out_shape = b.shape(x), b.shape(out)
    flat = (
        len(in_shape) == 4 and len(out_shape) == 2 and out_shape[0] == in_shape[0]
        and all(in_shape[1:]) and out_shape[1] == math.prod(in_shape[1:])
    )
    b.share_qparams(out, x)
    b.aliases[out] = Alias(x, target, flat)


LOWERINGS: dict[str, Callable[[Builder, Node, Activation | None], None]] = {
    "Conv": lower_conv,
    "Gemm": lower_gemm,
    "MatMul": lower_matmul,
    "Add": lower_add,
    "Sub": lower_add,
    "Mul": lower_mul,
    "MaxPool": lower_max_pool,
    "AveragePool": lower_average_pool,
    "GlobalAveragePool": lower_global_average_pool,
    "ReduceMean": lower_reduce_mean,
    "Relu": lower_lookup,
    "Clip": lower_lookup,
    "Sigmoid": lower_lookup,
    "Tanh": lower_lookup,
    "HardSigmoid": lower_lookup,
    "HardSwish": lower_lookup,
    "LeakyRelu": lower_lookup,
    "Concat": lower_concat,
    "Pad": lower_pad,
    "Transpose": lower_transpose,
    "Flatten": lower_reshape,
    "Reshape": lower_reshape,
    "Squeeze": lower_reshape,
    "Unsqueeze": lower_reshape,
    "Identity": lower_reshape,
}

"""ONNX's own operator test cases, generated at test time, and their translation to our params.

``collect(op_type)`` runs every ``export*`` generator of ``onnx.backend.test.case.node.<module>``
with ``expect`` replaced by a recorder, so each case is (name, node, inputs, outputs) exactly as
the onnx package defines it. ``run_case`` translates the node into gpuquant params (ONNX
semantics: QLinear ops requantize with the float32 multiplier ``a_scale * b_scale / y_scale``
and round half to even, i.e. the ``float32_half_even`` mode; QuantizeLinear rounds half to even
and saturates), moves NCHW/OIHW to NHWC/OHWI, and runs it on a backend.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from dataclasses import dataclass
from unittest import mock

import numpy as np
import onnx
from onnx.backend.test.case.base import Base

from gpuquant.ops import Conv2DParams, MatMulParams, QuantizeParams, Requant
from gpuquant.quant.fixedpoint import quantize_multiplier
from gpuquant.quant.params import QuantParams, dtype_bounds

MODULES = {
    "QuantizeLinear": "quantizelinear",
    "DequantizeLinear": "dequantizelinear",
    "QLinearMatMul": "qlinearmatmul",
    "QLinearConv": "qlinearconv",
    "MatMulInteger": "matmulinteger",
    "ConvInteger": "convinteger",
    "DynamicQuantizeLinear": "dynamicquantizelinear",
}
EIGHT_BIT = ("int8", "uint8")


@dataclass(frozen=True)
class NodeCase:
    name: str
    node: onnx.NodeProto
    inputs: tuple
    outputs: tuple

    @property
    def attrs(self) -> dict:
        return {a.name: onnx.helper.get_attribute_value(a) for a in self.node.attribute}


def collect(op_type: str) -> list[NodeCase]:
    """Every test case the installed onnx package generates for ``op_type``."""
    module = importlib.import_module(f"onnx.backend.test.case.node.{MODULES[op_type]}")
    cases: list[NodeCase] = []

    def record(node, inputs, outputs, name, **kwargs):
        if node.op_type == op_type:
            cases.append(NodeCase(name, node, tuple(inputs), tuple(outputs)))

    with mock.patch.object(module, "expect", record):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Base) and cls is not Base:
                for attr, fn in inspect.getmembers(cls, inspect.isfunction):
                    if attr.startswith("export"):
                        fn()
    return sorted(cases, key=lambda c: c.name)


def skip_reason(case: NodeCase) -> str | None:
    """Why a case is outside the 8-bit integer ops, or None when it is in scope."""
    if "block_size" in case.attrs:
        return "blocked quantization (block_size) is not an 8-bit per-tensor/per-axis scheme"
    if "output_dtype" in case.attrs:
        return "output_dtype attribute selects a non-8-bit type"
    for arr in case.inputs + case.outputs:
        if not isinstance(arr, (np.ndarray, np.generic)):
            return "packed sub-byte or float8 tensor (TensorProto), not 8-bit"
        if arr.dtype.kind in "iu" and arr.dtype.name not in EIGHT_BIT + ("int32",):
            return f"{arr.dtype.name} quantized data, not 8-bit"
    return None


def _input(case: NodeCase, index: int):
    """The value of the node's input ``index``, or None when absent."""
    names = list(case.node.input)
    if index >= len(names) or names[index] == "":
        return None
    present = [n for n in names if n != ""]
    return case.inputs[present.index(names[index])]


def _zero_point(value) -> int:
    return int(np.asarray(value).reshape(-1)[0])


def _requant(real: np.ndarray, y_zero_point: np.ndarray) -> Requant:
    """float32_half_even requantization by the float32 multipliers ``real`` into y's dtype."""
    pairs = [quantize_multiplier(float(r)) for r in np.atleast_1d(real)]
    dtype = y_zero_point.dtype.name
    qmin, qmax = dtype_bounds(dtype)
    return Requant(
        multiplier=np.array([m for m, _ in pairs]),
        shift=np.array([s for _, s in pairs]),
        rounding="float32_half_even",
        zero_point=_zero_point(y_zero_point),
        qmin=qmin,
        qmax=qmax,
        dtype=dtype,
    )


def _f32(value) -> np.ndarray:
    return np.asarray(value).astype(np.float32).reshape(-1)


def _matmul(backend, case: NodeCase, a, za, b, zb, requant):
    k = a.shape[-1]
    za = np.zeros(1, a.dtype) if za is None else za
    zb = np.zeros(1, b.dtype) if zb is None else zb
    p = MatMulParams(
        case.name, k, _zero_point(za), a.dtype.name, np.asarray(zb).reshape(-1), b.dtype.name,
        requant,
    )
    return backend.to_numpy(backend.matmul(backend.asarray(a), backend.asarray(b), p))


def _conv(backend, case: NodeCase, x, zx, w, zw, bias, requant):
    attrs = case.attrs
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError(f"{case.name}: auto_pad {attrs['auto_pad']!r}")
    pads = attrs.get("pads", [0, 0, 0, 0])
    p = Conv2DParams(
        name=case.name,
        weight=np.ascontiguousarray(w.transpose(0, 2, 3, 1)),  # OIHW -> OHWI
        weight_zero_point=np.zeros(1) if zw is None else np.asarray(zw).reshape(-1),
        input_zero_point=0 if zx is None else _zero_point(zx),
        input_dtype=x.dtype.name,
        bias=bias,
        requant=requant,
        stride=tuple(attrs.get("strides", (1, 1))),
        dilation=tuple(attrs.get("dilations", (1, 1))),
        padding=(pads[0], pads[2], pads[1], pads[3]),  # ONNX begins then ends -> t, b, l, r
        groups=attrs.get("group", 1),
    )
    nhwc = backend.asarray(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    return backend.to_numpy(backend.conv2d(nhwc, p)).transpose(0, 3, 1, 2)


def _quantize(backend, x, scale, zero_point, axis):
    zp = np.zeros(1, np.uint8) if zero_point is None else np.asarray(zero_point)
    per_axis = np.asarray(scale).size > 1
    params = QuantParams(_f32(scale), zp.reshape(-1), zp.dtype.name, axis if per_axis else None)
    return backend.to_numpy(backend.quantize(backend.asarray(x), QuantizeParams("q", params)))


def run_case(backend, case: NodeCase) -> tuple[np.ndarray, ...]:
    """The outputs of ``case`` computed by ``backend`` through gpuquant params."""
    op = case.node.op_type
    i = functools.partial(_input, case)
    if op == "QLinearMatMul":
        real = _f32(i(1)) * _f32(i(4)) / _f32(i(6))
        return (_matmul(backend, case, i(0), i(2), i(3), i(5), _requant(real, i(7))),)
    if op == "MatMulInteger":
        return (_matmul(backend, case, i(0), i(2), i(1), i(3), None),)
    if op == "QLinearConv":
        real = _f32(i(1)) * _f32(i(4)) / _f32(i(6))
        bias = np.zeros(1, np.int32) if i(8) is None else i(8)
        return (_conv(backend, case, i(0), i(2), i(3), i(5), bias, _requant(real, i(7))),)
    if op == "ConvInteger":
        return (_conv(backend, case, i(0), i(2), i(1), i(3), np.zeros(1, np.int32), None),)
    if op == "QuantizeLinear":
        return (_quantize(backend, i(0), i(1), i(2), case.attrs.get("axis", 1)),)
    if op == "DequantizeLinear":
        zp = np.zeros(1, i(0).dtype) if i(2) is None else np.asarray(i(2))
        per_axis = np.asarray(i(1)).size > 1
        axis = case.attrs.get("axis", 1) if per_axis else None
        params = QuantParams(_f32(i(1)), zp.reshape(-1), zp.dtype.name, axis)
        return (backend.to_numpy(backend.dequantize(backend.asarray(i(0)), params)),)
    if op == "DynamicQuantizeLinear":
        x = np.asarray(i(0), dtype=np.float32)
        # ONNX: uint8, range widened to include 0, zero point rounded half to even, saturated.
        lo, hi = np.minimum(np.float32(0), x.min()), np.maximum(np.float32(0), x.max())
        scale = np.float32((hi - lo) / np.float32(255))
        zp = np.uint8(np.clip(np.rint((np.float32(0) - lo) / scale), 0, 255))
        return (_quantize(backend, x, scale, zp, None), scale, zp)
    raise NotImplementedError(f"{case.name}: no translation for {op}")

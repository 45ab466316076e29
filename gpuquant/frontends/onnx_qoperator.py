"""Import an ONNX model in QOperator format (int8/uint8 operators, as onnxruntime's
``quantize_static`` writes them) as an IntegerModel, bit-exact with ONNX Runtime on x86-64.

Inputs and outputs keep ONNX's layout (NCHW); 4-D activations are moved to NHWC inside the
model where an op needs it (conv, pooling) and back where the ONNX layout matters (reshape,
flatten, transpose, graph outputs). How each op is computed (frontends/ort_arith.py,
docs/runtimes.md):

- QuantizeLinear: ``round_half_to_even(float32(x / s)) + z``; DequantizeLinear:
  ``float32(q - z) * s``;
- QLinearConv, QLinearMatMul, QGemm: int32 accumulators, then ``float32(acc) * M`` rounded half
  to even, ``M = float32(float32(s_x * s_w[c]) / s_y)`` (QGemm: ``alpha * s_a`` first);
  ConvInteger, MatMulInteger: the int32 accumulators;
- QLinearAdd, QLinearMul: 256 x 256 tables of MLAS's float32 arithmetic (ops/pair_lookup.py);
- QLinearSigmoid, QLinearLeakyRelu, and inputs of QLinearConcat whose scale differs from the
  output's: 256-entry tables (dequantize, function in float32, MlasQuantizeLinear);
- QLinearSoftmax: float32 exponentials from a table, a float32 row sum, one float32 division
  per entry (ops/float_softmax.py);
- QLinearAveragePool: float32 sums (ops/float_pool.py), or the integer global path when the
  window covers the whole image without padding, as ONNX Runtime does;
- QLinearGlobalAveragePool: ``sum(q - z_x)`` requantized by
  ``float32(s_x / (s_y * float32(count)))``, rounded half to even;
- MaxPool on 8-bit data, and the shape ops Reshape, Flatten, Transpose, Squeeze, Unsqueeze,
  Identity.

The model is traced at the batch its inputs declare (a dynamic leading dimension at 1); where
each op provably keeps the batch as the leading axis, the model runs at any batch
(frontends/batch.py), else only at the declared one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import GpuquantError, ModelFormatError, UnsupportedOpError
from ..graph.float_ops import pool_output_size
from ..integer.model import IntegerModel, IntegerNode, TensorSpec
from ..ops import (
    ConcatParams,
    Conv2DParams,
    GemmParams,
    LookupParams,
    MatMulParams,
    MeanParams,
    PoolParams,
    QuantizeParams,
    make_requant,
    resolve_padding,
)
from ..ops.float_pool import FloatAvgPoolParams
from ..ops.float_softmax import FloatSoftmaxParams
from ..ops.pair_lookup import PairLookupParams
from ..quant.params import QuantParams, dequantize, dtype_bounds
from . import ort_arith
from .batch import BatchTrace, broadcast_factor, reshape_target, squeeze_shape

f32 = np.float32
_NCHW_TO_NHWC = (0, 2, 3, 1)
_NHWC_TO_NCHW = (0, 3, 1, 2)
_ONNX_DTYPES = {
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.INT64: "int64",
}


class _Node:
    """One ONNX node with its attributes, for the converters below."""

    def __init__(self, index: int, node: onnx.NodeProto):
        self.index = index
        self.op_type = node.op_type
        self.name = node.name or f"{node.op_type}_{index}"
        self.inputs = list(node.input)
        self.outputs = list(node.output)
        self.attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def fail(self, why: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"node {self.index} {self.name!r} ({self.op_type}): {why}")


class _Tensor:
    """What the converter knows of a tensor: logical (ONNX) shape, dtype, layout, params, and
    the factor with which it follows the batch (frontends/batch.py; None: it does not)."""

    def __init__(self, shape, dtype, nhwc=False, qparams=None, per=None):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.nhwc = nhwc
        self.qparams = qparams
        self.per = per

    @property
    def stored_shape(self) -> tuple:
        if self.nhwc:
            return tuple(self.shape[i] for i in _NCHW_TO_NHWC)
        return self.shape


class _Converter:
    def __init__(self, graph: onnx.GraphProto, inputs: list[TensorSpec]):
        self.init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.tensors: dict[str, _Tensor] = {}
        self.nodes: list[IntegerNode] = []
        self.constants: dict[str, np.ndarray] = {}
        self.views: dict[tuple[str, bool], str] = {}
        self.batch = BatchTrace([(s.name, s.shape) for s in inputs])
        for spec in inputs:
            self.tensors[spec.name] = _Tensor(spec.shape, spec.dtype, per=self.batch.get(spec.name))
        self.where = "the graph inputs"

    # Helpers ---------------------------------------------------------------------------

    def const(self, node: _Node, i: int, what: str) -> np.ndarray:
        name = node.inputs[i] if i < len(node.inputs) else ""
        if name not in self.init:
            raise node.fail(f"{what} (input {i}) must be a constant initializer")
        return self.init[name]

    def opt_const(self, node: _Node, i: int, what: str) -> np.ndarray | None:
        if i >= len(node.inputs) or not node.inputs[i]:
            return None
        return self.const(node, i, what)

    def scale_zp(self, node: _Node, i: int, what: str, dtype: str | None = None):
        """(scale, zero point, dtype) of per-tensor parameters at inputs i, i + 1."""
        s = self.const(node, i, f"{what} scale")
        z = self.opt_const(node, i + 1, f"{what} zero point")
        if s.size != 1 or (z is not None and z.size != 1):
            raise node.fail(f"{what} needs per-tensor scale and zero point")
        zdtype = dtype or (z.dtype.name if z is not None else "uint8")
        return float(f32(s.ravel()[0])), int(0 if z is None else z.ravel()[0]), zdtype

    def tensor(self, node: _Node, i: int) -> _Tensor:
        name = node.inputs[i]
        if name in self.init and name not in self.tensors:
            a = self.init[name]
            self.constants[name] = a
            self.tensors[name] = _Tensor(a.shape, a.dtype.name)
        if name not in self.tensors:
            raise node.fail(f"input {name!r} is not computed by any earlier node")
        return self.tensors[name]

    def emit(self, op: str, name: str, inputs: list[str], output: str, params,
             spec: _Tensor) -> None:
        self.nodes.append(IntegerNode(op, name, inputs, [output], params))
        self.batch.record(self.where, [(n, self.tensors[n].shape) for n in inputs], output,
                          spec.shape, spec.per)
        spec.per = self.batch.get(output)
        self.tensors[output] = spec

    def view(self, name: str, nhwc: bool) -> str:
        """``name`` in the requested layout, adding a transpose the first time it is needed."""
        t = self.tensors[name]
        if t.nhwc == nhwc or len(t.shape) != 4:
            return name
        key = (name, nhwc)
        if key not in self.views:
            out = f"{name}/{'nhwc' if nhwc else 'nchw'}"
            perm = _NCHW_TO_NHWC if nhwc else _NHWC_TO_NCHW
            self.emit("transpose", f"{out}/transpose", [name], out, {"perm": list(perm)},
                      _Tensor(t.shape, t.dtype, nhwc, t.qparams, t.per))
            self.views[key] = out
        return self.views[key]

    def eight_bit(self, node: _Node, i: int, dtype: str) -> _Tensor:
        t = self.tensor(node, i)
        if t.dtype != dtype:
            raise node.fail(f"input {node.inputs[i]!r} is {t.dtype}, expected {dtype}")
        return t

    # Quantize / dequantize -------------------------------------------------------------

    def quantize_linear(self, node: _Node) -> None:
        x = self.tensor(node, 0)
        s, z, dtype = self.scale_zp(node, 1, "y")
        qp = QuantParams(np.array([s], f32), np.array([z]), dtype)
        params = QuantizeParams(node.name, qp, "half_to_even")
        self.emit("quantize", node.name, [node.inputs[0]], node.outputs[0], params,
                  _Tensor(x.shape, dtype, x.nhwc, qp, x.per))

    def dequantize_linear(self, node: _Node) -> None:
        name = node.inputs[0]
        s = self.const(node, 1, "x scale")
        z = self.opt_const(node, 2, "x zero point")
        if name in self.init:
            a = self.init[name]
            axis = node.attrs.get("axis", 1) if s.size > 1 else None
            qp = QuantParams(s.ravel(), (np.zeros(s.size) if z is None else z).ravel(),
                             a.dtype.name, axis)
            self.init[node.outputs[0]] = dequantize(a, qp)
            return
        x = self.tensor(node, 0)
        sc, zp, dtype = self.scale_zp(node, 1, "x", x.dtype)
        qp = QuantParams(np.array([sc], f32), np.array([zp]), dtype)
        self.emit("dequantize", node.name, [name], node.outputs[0], qp,
                  _Tensor(x.shape, "float32", x.nhwc, per=x.per))

    # Convolution and matrix products ---------------------------------------------------

    def _conv_geometry(self, node: _Node, in_hw, kernel):
        if len(kernel) != 2:
            raise node.fail("only 2-D convolutions are supported")
        stride = tuple(node.attrs.get("strides", [1, 1]))
        dilation = tuple(node.attrs.get("dilations", [1, 1]))
        pads = _pads(node, in_hw, kernel, stride, dilation)
        return stride, dilation, pads

    def qlinear_conv(self, node: _Node, integer_only: bool = False) -> None:
        x = self.tensor(node, 0)
        if integer_only:
            w = self.const(node, 1, "weight")
            zx = self.opt_const(node, 2, "x zero point")
            zw = self.opt_const(node, 3, "w zero point")
            zx = 0 if zx is None else int(zx.ravel()[0])
            bias = None
        else:
            sx, zx, _ = self.scale_zp(node, 1, "x", x.dtype)
            w = self.const(node, 3, "weight")
            sw = self.const(node, 4, "w scale").astype(f32).ravel()
            zw = self.opt_const(node, 5, "w zero point")
            sy, zy, ydtype = self.scale_zp(node, 6, "y")
            bias = self.opt_const(node, 8, "bias")
        if x.dtype not in ("int8", "uint8") or len(x.shape) != 4 or w.ndim != 4:
            raise node.fail(f"needs a 4-D int8/uint8 input and weight, got {x.dtype} {x.shape}")
        c_out = w.shape[0]
        zw = np.zeros(c_out, np.int32) if zw is None else np.broadcast_to(zw.ravel(), (c_out,))
        group = int(node.attrs.get("group", 1))
        stride, dilation, pads = self._conv_geometry(node, x.shape[2:], w.shape[2:])
        weight = np.ascontiguousarray(np.transpose(w, (0, 2, 3, 1)))
        if integer_only:
            requant, out_dtype, qp = None, "int32", None
        else:
            reals = (f32(sx) * sw).astype(f32) / f32(sy)
            qp = QuantParams(np.array([sy], f32), np.array([zy]), ydtype)
            requant = make_requant(np.broadcast_to(reals.astype(np.float64), (c_out,)), qp,
                                   "float32_half_even")
            out_dtype = ydtype
        params = Conv2DParams(node.name, weight, zw.astype(np.int32), zx, x.dtype,
                              np.zeros(c_out, np.int32) if bias is None else bias.astype(np.int32),
                              requant, stride, dilation, pads, group)
        oh, ow = params.output_shape((x.shape[0], x.shape[2], x.shape[3], x.shape[1]))[1:3]
        self.emit("conv2d", node.name, [self.view(node.inputs[0], True)], node.outputs[0],
                  params, _Tensor((x.shape[0], c_out, oh, ow), out_dtype, True, qp, x.per))

    def _gemm_like(self, node: _Node, a_idx: int, b: np.ndarray, bias, requant, zx: int,
                   zw: np.ndarray, out_dtype: str, qp) -> None:
        """``y = a @ b (+ bias)`` for a constant (K, N) ``b``; leading dims of ``a`` kept."""
        a = self.tensor(node, a_idx)
        k, n = b.shape
        if a.shape[-1] != k:
            raise node.fail(f"inner dimensions differ: {a.shape} @ {b.shape}")
        zw = np.broadcast_to(np.asarray(zw).ravel(), (n,)).astype(np.int32)
        params = GemmParams(node.name, np.ascontiguousarray(b.T), zw, zx, a.dtype,
                            np.zeros(n, np.int32) if bias is None else bias.astype(np.int32),
                            requant)
        src = self.view(node.inputs[a_idx], False)
        rows = math.prod(a.shape[:-1])
        # Rows of a (B, ..., K) input are B times the product of its middle dimensions.
        per = a.per if len(a.shape) >= 2 else None
        rows_per = None if per is None else per * math.prod(a.shape[1:-1])
        flat = f"{node.outputs[0]}/rows"
        self.emit("reshape", f"{flat}/reshape", [src], flat,
                  {"shape": reshape_target((rows, k), per, rows_per)},
                  _Tensor((rows, k), a.dtype, per=rows_per))
        out2d = f"{node.outputs[0]}/gemm"
        self.emit("gemm", node.name, [flat], out2d, params,
                  _Tensor((rows, n), out_dtype, per=rows_per))
        out_shape = a.shape[:-1] + (n,)
        self.emit("reshape", f"{out2d}/reshape", [out2d], node.outputs[0],
                  {"shape": reshape_target(out_shape, rows_per, per)},
                  _Tensor(out_shape, out_dtype, False, qp, per))

    def qlinear_matmul(self, node: _Node) -> None:
        a = self.tensor(node, 0)
        sa, za, _ = self.scale_zp(node, 1, "a", a.dtype)
        sb = self.const(node, 4, "b scale").astype(f32).ravel()
        zb = self.opt_const(node, 5, "b zero point")
        zb = np.zeros(1, np.int32) if zb is None else zb.ravel().astype(np.int32)
        sy, zy, ydtype = self.scale_zp(node, 6, "y")
        qp = QuantParams(np.array([sy], f32), np.array([zy]), ydtype)
        reals = ((f32(sa) * sb).astype(f32) / f32(sy)).astype(np.float64)
        if node.inputs[3] in self.init and self.init[node.inputs[3]].ndim == 2:
            b = self.init[node.inputs[3]]
            requant = make_requant(np.broadcast_to(reals, (b.shape[1],)), qp, "float32_half_even")
            self._gemm_like(node, 0, b, None, requant, za, zb, ydtype, qp)
            return
        bt = self.tensor(node, 3)
        if reals.size != 1 or zb.size != 1:
            raise node.fail("per-column parameters need a constant 2-D b")
        requant = make_requant(reals, qp, "float32_half_even")
        params = MatMulParams(node.name, a.shape[-1], za, a.dtype, zb, bt.dtype, requant)
        self._matmul(node, 3, params, ydtype, qp)

    def _matmul(self, node: _Node, b_idx: int, params: MatMulParams, out_dtype: str,
                qp) -> None:
        a, b = self.tensor(node, 0), self.tensor(node, b_idx)
        b_name = node.inputs[b_idx]
        shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
        if len(a.shape) == len(b.shape) == 2:
            per = a.per if b.per is None else None  # b's leading axis is summed over
        else:
            per = broadcast_factor([(a.shape, a.per), (b.shape, b.per)])
        self.emit("matmul", node.name, [self.view(node.inputs[0], False), self.view(b_name, False)],
                  node.outputs[0], params, _Tensor(shape, out_dtype, False, qp, per))

    def matmul_integer(self, node: _Node) -> None:
        a = self.tensor(node, 0)
        za = self.opt_const(node, 2, "a zero point")
        zb = self.opt_const(node, 3, "b zero point")
        za = 0 if za is None else int(za.ravel()[0])
        zb = np.zeros(1, np.int32) if zb is None else zb.ravel().astype(np.int32)
        if node.inputs[1] in self.init and self.init[node.inputs[1]].ndim == 2:
            self._gemm_like(node, 0, self.init[node.inputs[1]], None, None, za, zb, "int32", None)
            return
        b = self.tensor(node, 1)
        params = MatMulParams(node.name, a.shape[-1], za, a.dtype, zb, b.dtype, None)
        self._matmul(node, 1, params, "int32", None)

    def qgemm(self, node: _Node) -> None:
        if node.attrs.get("transA", 0):
            raise node.fail("transA=1 is not supported")
        a = self.tensor(node, 0)
        sa, za, _ = self.scale_zp(node, 1, "a", a.dtype)
        b = self.const(node, 3, "b")
        if node.attrs.get("transB", 0):
            b = b.T
        sb = self.const(node, 4, "b scale").astype(f32).ravel()
        zb = self.opt_const(node, 5, "b zero point")
        zb = np.zeros(1, np.int32) if zb is None else zb.ravel()
        bias = self.opt_const(node, 6, "C")
        if len(node.inputs) < 8 or not node.inputs[7]:
            raise node.fail("float output (no y_scale) is not supported")
        sy, zy, ydtype = self.scale_zp(node, 7, "y")
        if bias is not None and (bias.dtype != np.int32 or node.attrs.get("beta", 1.0) != 1.0):
            raise node.fail("C must be an int32 bias with beta = 1")
        alpha = f32(node.attrs.get("alpha", 1.0))
        reals = ((f32(alpha * f32(sa)) * sb).astype(f32) / f32(sy)).astype(np.float64)
        qp = QuantParams(np.array([sy], f32), np.array([zy]), ydtype)
        requant = make_requant(np.broadcast_to(reals, (b.shape[1],)), qp, "float32_half_even")
        self._gemm_like(node, 0, b, None if bias is None else bias.ravel(), requant, za, zb,
                        ydtype, qp)

    # Element-wise ----------------------------------------------------------------------------

    def qlinear_binary(self, node: _Node, kind: str) -> None:
        a, b = self.tensor(node, 0), self.tensor(node, 3)
        if a.dtype != b.dtype or a.dtype not in ("int8", "uint8"):
            raise node.fail(f"inputs must share an 8-bit dtype, got {a.dtype} and {b.dtype}")
        pa = self.scale_zp(node, 1, "a", a.dtype)[:2]
        pb = self.scale_zp(node, 4, "b", b.dtype)[:2]
        sc, zc, _ = self.scale_zp(node, 6, "c", a.dtype)
        if kind == "add":
            table = ort_arith.qlinear_add_table(pa, pb, (sc, zc), a.dtype,
                                                _broadcast_mode(a.shape, b.shape))
        else:
            table = ort_arith.qlinear_mul_table(pa, pb, (sc, zc), a.dtype)
        params = PairLookupParams(node.name, a.dtype, b.dtype, table)
        inputs, nhwc = self._same_layout(node, [0, 3])
        shape = np.broadcast_shapes(a.shape, b.shape)
        qp = QuantParams(np.array([sc], f32), np.array([zc]), a.dtype)
        per = broadcast_factor([(a.shape, a.per), (b.shape, b.per)])
        if kind == "add" and per is not None and len({
                _broadcast_mode(_at_batch(a, n), _at_batch(b, n)) == "a_scalar" for n in (1, 2)
        }) > 1:
            self.batch.lose(f"{self.where}: onnxruntime picks its QLinearAdd kernel, and so "
                            f"its rounding, by the batch (input shapes {a.shape}, {b.shape})")
            per = None
        self.emit("pair_lookup", node.name, inputs, node.outputs[0], params,
                  _Tensor(shape, a.dtype, nhwc, qp, per))

    def _same_layout(self, node: _Node, idx: list[int]) -> tuple[list[str], bool]:
        """Inputs in one layout: NHWC when some input is NHWC and every other is 4-D or a
        constant (constants of lower rank are padded to 4-D and transposed)."""
        ts = [self.tensor(node, i) for i in idx]
        names = [node.inputs[i] for i in idx]
        nhwc = any(t.nhwc for t in ts) and all(
            len(t.shape) == 4 or n in self.init for t, n in zip(ts, names))
        if not nhwc:
            return [self.view(n, False) for n in names], False
        out = []
        for t, n in zip(ts, names):
            if n in self.init and not t.nhwc:
                a = self.init[n].reshape((1,) * (4 - self.init[n].ndim) + self.init[n].shape)
                view = f"{n}/nhwc"
                self.constants[view] = np.ascontiguousarray(np.transpose(a, _NCHW_TO_NHWC))
                self.tensors[view] = _Tensor(a.shape, t.dtype, True)
                out.append(view)
            else:
                out.append(self.view(n, True))
        return out, True

    def qlinear_table(self, node: _Node, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        x = self.tensor(node, 0)
        sx, zx, _ = self.scale_zp(node, 1, "x", x.dtype)
        sy, zy, _ = self.scale_zp(node, 3, "y", x.dtype)
        table = ort_arith.lookup_table(fn, (sx, zx), (sy, zy), x.dtype, x.dtype)
        qp = QuantParams(np.array([sy], f32), np.array([zy]), x.dtype)
        self.emit("lookup", node.name, [node.inputs[0]], node.outputs[0],
                  LookupParams(node.name, x.dtype, table),
                  _Tensor(x.shape, x.dtype, x.nhwc, qp, x.per))

    def qlinear_concat(self, node: _Node) -> None:
        sy, zy, _ = self.scale_zp(node, 0, "y")
        idx = list(range(2, len(node.inputs), 3))
        first = self.tensor(node, idx[0])
        dtype = first.dtype
        tables = []
        for i in idx:
            self.eight_bit(node, i, dtype)
            sx, zx, _ = self.scale_zp(node, i + 1, f"input {i}", dtype)
            if (f32(sx), zx) == (f32(sy), zy):
                tables.append(None)
            else:
                table = ort_arith.lookup_table(lambda v: v, (sx, zx), (sy, zy), dtype, dtype)
                tables.append(LookupParams(f"{node.name}/{i}", dtype, table))
        inputs, nhwc = self._same_layout(node, idx)
        rank = len(first.shape)
        axis = int(node.attrs["axis"]) % rank
        stored_axis = _NCHW_TO_NHWC.index(axis) if nhwc else axis
        shape = list(first.shape)
        shape[axis] = sum(self.tensors[node.inputs[i]].shape[axis] for i in idx)
        qp = QuantParams(np.array([sy], f32), np.array([zy]), dtype)
        same = {self.tensors[node.inputs[i]].per for i in idx}
        per = first.per if axis != 0 and len(same) == 1 else None
        self.emit("concat", node.name, inputs, node.outputs[0],
                  ConcatParams(node.name, stored_axis, tuple(tables)),
                  _Tensor(shape, dtype, nhwc, qp, per))

    def qlinear_softmax(self, node: _Node) -> None:
        x = self.tensor(node, 0)
        if x.dtype not in ("int8", "uint8"):
            raise node.fail(f"input must be int8/uint8, got {x.dtype}")
        sx, _, _ = self.scale_zp(node, 1, "x", x.dtype)
        sy, zy, _ = self.scale_zp(node, 3, "y", x.dtype)
        opset = int(node.attrs.get("opset", 13))
        rank = len(x.shape)
        axis = int(node.attrs.get("axis", 1 if opset < 13 else -1)) % rank
        length = math.prod(x.shape[axis:]) if opset < 13 else x.shape[axis]
        params = FloatSoftmaxParams(node.name, x.dtype, ort_arith.softmax_exp_table(sx, length),
                                    float(np.floor(f32(1.0) / f32(sy))), zy)
        qp = QuantParams(np.array([sy], f32), np.array([zy]), x.dtype)
        src, out = self.view(node.inputs[0], False), node.outputs[0]
        per = x.per if axis != 0 else None  # a softmax over axis 0 mixes the samples
        if opset < 13 and axis != rank - 1:
            rows = f"{out}/rows"
            rows_shape = (math.prod(x.shape[:axis]), length)
            rows_per = None if per is None else per * math.prod(x.shape[1:axis])
            self.emit("reshape", f"{rows}/reshape", [src], rows,
                      {"shape": reshape_target(rows_shape, x.per, rows_per)},
                      _Tensor(rows_shape, x.dtype, per=rows_per))
            inner = f"{out}/softmax"
            self.emit("softmax_float", node.name, [rows], inner, params,
                      _Tensor(rows_shape, x.dtype, False, qp, rows_per))
            self.emit("reshape", f"{inner}/reshape", [inner], out,
                      {"shape": reshape_target(x.shape, rows_per, per)},
                      _Tensor(x.shape, x.dtype, False, qp, per))
        elif axis != rank - 1:
            perm = list(range(rank))
            perm[axis], perm[-1] = rank - 1, axis
            swapped = tuple(x.shape[p] for p in perm)
            moved, inner = f"{out}/moved", f"{out}/softmax"
            self.emit("transpose", f"{moved}/transpose", [src], moved, {"perm": perm},
                      _Tensor(swapped, x.dtype, per=per))
            self.emit("softmax_float", node.name, [moved], inner, params,
                      _Tensor(swapped, x.dtype, False, qp, per))
            self.emit("transpose", f"{inner}/transpose", [inner], out, {"perm": perm},
                      _Tensor(x.shape, x.dtype, False, qp, per))
        else:
            self.emit("softmax_float", node.name, [src], out, params,
                      _Tensor(x.shape, x.dtype, False, qp, per))

    # Pooling ---------------------------------------------------------------------------------

    def qlinear_average_pool(self, node: _Node) -> None:
        if node.attrs.get("channels_last", 0):
            raise node.fail("channels_last=1 is not supported")
        x = self.tensor(node, 0)
        sx, zx, _ = self.scale_zp(node, 1, "x", x.dtype)
        sy, zy, _ = self.scale_zp(node, 3, "y", x.dtype)
        kernel = tuple(node.attrs["kernel_shape"])
        if len(x.shape) != 4 or len(kernel) != 2:
            raise node.fail("only 2-D pooling of 4-D inputs is supported")
        stride = tuple(node.attrs.get("strides", [1, 1]))
        pads = _pads(node, x.shape[2:], kernel, stride, (1, 1))
        if kernel == tuple(x.shape[2:]) and not any(pads):
            self._global_average(node, x, (sx, zx), (sy, zy), keepdims=True)
            return
        oh, ow = [(n + p0 + p1 - k) // s + 1 for n, p0, p1, k, s in
                  zip(x.shape[2:], pads[0::2], pads[1::2], kernel, stride)]
        if node.attrs.get("ceil_mode", 0):
            ceil = [pool_output_size(n, k, s, p0, p1, 1, 1) for n, p0, p1, k, s in
                    zip(x.shape[2:], pads[0::2], pads[1::2], kernel, stride)]
            extra = [(c - 1) * s + k - (n + p0 + p1) for c, s, k, n, p0, p1 in
                     zip(ceil, stride, kernel, x.shape[2:], pads[0::2], pads[1::2])]
            pads = (pads[0], pads[1] + max(extra[0], 0), pads[2], pads[3] + max(extra[1], 0))
            oh, ow = ceil
        params = FloatAvgPoolParams(
            node.name, kernel, stride, pads, bool(node.attrs.get("count_include_pad", 0)),
            x.dtype, ort_arith.dequantize_codes(sx, zx, x.dtype), sy, zy, x.dtype,
        )
        qp = QuantParams(np.array([sy], f32), np.array([zy]), x.dtype)
        self.emit("avg_pool2d_float", node.name, [self.view(node.inputs[0], True)],
                  node.outputs[0], params, _Tensor((x.shape[0], x.shape[1], oh, ow), x.dtype,
                                                   True, qp, x.per))

    def qlinear_global_average_pool(self, node: _Node) -> None:
        if node.attrs.get("channels_last", 0):
            raise node.fail("channels_last=1 is not supported")
        x = self.tensor(node, 0)
        sx, zx, _ = self.scale_zp(node, 1, "x", x.dtype)
        sy, zy, _ = self.scale_zp(node, 3, "y", x.dtype)
        if len(x.shape) != 4:
            raise node.fail("only 4-D inputs are supported")
        self._global_average(node, x, (sx, zx), (sy, zy), keepdims=True)

    def _global_average(self, node: _Node, x: _Tensor, px, py, keepdims: bool) -> None:
        count = x.shape[2] * x.shape[3]
        real = f32(f32(px[0]) / f32(f32(py[0]) * f32(count)))
        qp = QuantParams(np.array([py[0]], f32), np.array([py[1]]), x.dtype)
        requant = make_requant(float(real), qp, "float32_half_even")
        params = MeanParams(node.name, (1, 2), keepdims, px[1], x.dtype, requant)
        self.emit("mean", node.name, [self.view(node.inputs[0], True)], node.outputs[0], params,
                  _Tensor((x.shape[0], x.shape[1], 1, 1), x.dtype, True, qp, x.per))

    def max_pool(self, node: _Node) -> None:
        x = self.tensor(node, 0)
        if x.dtype not in ("int8", "uint8") or len(x.shape) != 4:
            raise node.fail(f"only 4-D int8/uint8 inputs are supported, got {x.dtype} {x.shape}")
        if len(node.outputs) > 1 or node.attrs.get("ceil_mode", 0) or any(
                d != 1 for d in node.attrs.get("dilations", [1, 1])):
            raise node.fail("indices output, ceil_mode and dilations are not supported")
        kernel = tuple(node.attrs["kernel_shape"])
        stride = tuple(node.attrs.get("strides", [1, 1]))
        pads = _pads(node, x.shape[2:], kernel, stride, (1, 1))
        lo, hi = dtype_bounds(x.dtype)
        params = PoolParams(node.name, kernel, stride, pads, x.dtype, lo, hi)
        oh, ow = params.output_hw(x.shape[2:])
        self.emit("max_pool2d", node.name, [self.view(node.inputs[0], True)], node.outputs[0],
                  params, _Tensor((x.shape[0], x.shape[1], oh, ow), x.dtype, True, x.qparams,
                                  x.per))

    # Shape ops (on the ONNX layout) ----------------------------------------------------------

    def _reshape_to(self, node: _Node, shape: tuple[int, ...], per: int | None) -> None:
        """Reshape input 0 to ``shape``, which follows the batch with factor ``per``."""
        x = self.tensor(node, 0)
        if math.prod(shape) != math.prod(x.shape):
            raise node.fail(f"cannot reshape {x.shape} to {shape}")
        self.emit("reshape", node.name, [self.view(node.inputs[0], False)], node.outputs[0],
                  {"shape": reshape_target(shape, x.per, per)},
                  _Tensor(shape, x.dtype, False, x.qparams, per))

    def reshape(self, node: _Node) -> None:
        """A reshape that keeps the leading dimension keeps the batch (each sample's elements
        stay in its own leading row); any other is traced at the declared batch only."""
        x = self.tensor(node, 0)
        target = [int(v) for v in self.const(node, 1, "shape").ravel()]
        shape = [x.shape[i] if v == 0 and not node.attrs.get("allowzero", 0) else v
                 for i, v in enumerate(target)]
        if -1 in shape:
            known = math.prod(v for v in shape if v != -1)
            shape[shape.index(-1)] = math.prod(x.shape) // known
        keeps = bool(shape) and bool(x.shape) and shape[0] == x.shape[0]
        self._reshape_to(node, tuple(shape), x.per if keeps else None)

    def flatten(self, node: _Node) -> None:
        x = self.tensor(node, 0)
        axis = int(node.attrs.get("axis", 1)) % (len(x.shape) + 1)
        per = None if axis == 0 or x.per is None else x.per * math.prod(x.shape[1:axis])
        self._reshape_to(node, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])), per)

    def squeeze(self, node: _Node, unsqueeze: bool) -> None:
        """Squeeze or Unsqueeze as a reshape; one at axis 0 loses the batch (frontends/batch.py)."""
        x = self.tensor(node, 0)
        axes = node.attrs.get("axes")
        if axes is None and len(node.inputs) > 1 and node.inputs[1]:
            axes = self.const(node, 1, "axes").ravel().tolist()
        if axes is None and unsqueeze:
            raise node.fail("axes are required")
        try:
            shape, moved = squeeze_shape(x.shape, axes, unsqueeze)
        except ValueError as e:
            raise node.fail(str(e)) from None
        self._reshape_to(node, shape,
                         self.batch.squeeze_factor(self.where, x.shape, x.per, moved, unsqueeze))

    def transpose(self, node: _Node) -> None:
        x = self.tensor(node, 0)
        perm = [int(p) for p in node.attrs.get("perm", range(len(x.shape) - 1, -1, -1))]
        self.emit("transpose", node.name, [self.view(node.inputs[0], False)], node.outputs[0],
                  {"perm": perm},
                  _Tensor(tuple(x.shape[p] for p in perm), x.dtype, False, x.qparams,
                          x.per if perm[0] == 0 else None))

    def identity(self, node: _Node) -> None:
        x = self.tensor(node, 0)
        self._reshape_to(node, x.shape, x.per)


def _pads(node: _Node, in_hw, kernel, stride, dilation) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from ONNX ``pads`` (begins then ends) or ``auto_pad``."""
    auto = node.attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return resolve_padding(auto, tuple(in_hw), tuple(kernel), tuple(stride), tuple(dilation))
    if auto not in ("NOTSET", "VALID"):
        raise node.fail(f"auto_pad {auto!r} is not supported")
    p = [int(v) for v in node.attrs.get("pads", [0, 0, 0, 0])] if auto == "NOTSET" else [0] * 4
    return (p[0], p[2], p[1], p[3])


def _at_batch(t: _Tensor, n: int) -> tuple[int, ...]:
    """The shape of ``t`` when the inputs hold ``n`` samples."""
    return t.shape if t.per is None else (t.per * n,) + t.shape[1:]


def _broadcast_mode(a: tuple[int, ...], b: tuple[int, ...]) -> str:
    """Which MLAS QLinearAdd kernel ONNX Runtime's broadcaster calls: a whole input of one
    element, or an innermost dimension broadcast on one side, makes that side a scalar."""
    if math.prod(b) == 1 and math.prod(a) > 1:
        return "b_scalar"
    if math.prod(a) == 1 and math.prod(b) > 1:
        return "a_scalar"
    rank = max(len(a), len(b))
    pa = (1,) * (rank - len(a)) + tuple(a)
    pb = (1,) * (rank - len(b)) + tuple(b)
    for da, db in zip(reversed(pa), reversed(pb)):
        if da == db == 1:
            continue
        if da == db:
            return "general"
        return "b_scalar" if db == 1 else "a_scalar"
    return "general"


_HANDLERS: dict[str, Callable[[_Converter, _Node], None]] = {
    "QuantizeLinear": _Converter.quantize_linear,
    "DequantizeLinear": _Converter.dequantize_linear,
    "QLinearConv": _Converter.qlinear_conv,
    "ConvInteger": lambda c, n: c.qlinear_conv(n, integer_only=True),
    "QLinearMatMul": _Converter.qlinear_matmul,
    "MatMulInteger": _Converter.matmul_integer,
    "QGemm": _Converter.qgemm,
    "QLinearAdd": lambda c, n: c.qlinear_binary(n, "add"),
    "QLinearMul": lambda c, n: c.qlinear_binary(n, "mul"),
    "QLinearSigmoid": lambda c, n: c.qlinear_table(n, ort_arith.mlas_logistic),
    "QLinearLeakyRelu": lambda c, n: c.qlinear_table(
        n, ort_arith.leaky_relu(n.attrs.get("alpha", 0.01))),
    "QLinearConcat": _Converter.qlinear_concat,
    "QLinearSoftmax": _Converter.qlinear_softmax,
    "QLinearAveragePool": _Converter.qlinear_average_pool,
    "QLinearGlobalAveragePool": _Converter.qlinear_global_average_pool,
    "MaxPool": _Converter.max_pool,
    "Reshape": _Converter.reshape,
    "Flatten": _Converter.flatten,
    "Squeeze": lambda c, n: c.squeeze(n, unsqueeze=False),
    "Unsqueeze": lambda c, n: c.squeeze(n, unsqueeze=True),
    "Transpose": _Converter.transpose,
    "Identity": _Converter.identity,
}
SUPPORTED_OPS = tuple(_HANDLERS)
# Op types that only occur in QOperator models: one of them marks an .onnx file for this importer.
QOPERATOR_OPS = frozenset({
    "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QGemm", "QLinearAdd",
    "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearConcat", "QLinearSoftmax",
    "QLinearAveragePool", "QLinearGlobalAveragePool",
})


def is_qoperator_onnx(model: onnx.ModelProto) -> bool:
    """True if some node of ``model`` is a QOperator op (``QOPERATOR_OPS``)."""
    return any(node.op_type in QOPERATOR_OPS for node in model.graph.node)


def _load(path: str | Path) -> onnx.ModelProto:
    try:
        model = onnx.load(str(path))
    except FileNotFoundError as e:
        raise ModelFormatError(f"cannot read ONNX model {str(path)!r}: {e}") from e
    except Exception as e:
        raise ModelFormatError(f"{str(path)!r} is not a readable ONNX model ({e})") from e
    if not model.graph.node:
        raise ModelFormatError(f"{str(path)!r}: ONNX model has no nodes")
    return model


def _input_spec(vi: onnx.ValueInfoProto) -> TensorSpec:
    tt = vi.type.tensor_type
    dtype = _ONNX_DTYPES.get(tt.elem_type)
    if dtype is None:
        raise ModelFormatError(f"input {vi.name!r}: unsupported element type {tt.elem_type}")
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
    if any(d is None for d in shape[1:]):
        raise ModelFormatError(f"input {vi.name!r}: dynamic shape {shape} is not supported; "
                               "give the model static input dimensions after the batch")
    if shape and shape[0] is None:
        shape = (1,) + shape[1:]  # a dynamic batch is traced at 1 (frontends/batch.py)
    return TensorSpec(vi.name, shape, dtype, "NCHW" if len(shape) == 4 else None)


def load_qoperator_onnx(path: str | Path) -> IntegerModel:
    """The IntegerModel of the QOperator ONNX file ``path`` (module docstring).

    Raises ModelFormatError for a file that is not a readable ONNX model and UnsupportedOpError
    naming the first node (index, name, op type) that cannot be imported.
    """
    model = _load(path)
    try:
        return _convert(model, path)
    except GpuquantError:
        raise
    except (IndexError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise ModelFormatError(
            f"{str(path)!r}: inconsistent ONNX model ({type(e).__name__}: {e})"
        ) from e


def _convert(model: onnx.ModelProto, path: str | Path) -> IntegerModel:
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [_input_spec(vi) for vi in graph.input if vi.name not in initializers]
    conv = _Converter(graph, inputs)
    ops = Counter(n.op_type for n in graph.node)
    for i, proto in enumerate(graph.node):
        node = _Node(i, proto)
        handler = _HANDLERS.get(node.op_type)
        if handler is None or proto.domain not in ("", "ai.onnx", "com.microsoft"):
            raise UnsupportedOpError(
                f"node {i} {node.name!r} ({proto.domain or 'ai.onnx'}:{node.op_type}) is not "
                f"supported; supported: {', '.join(SUPPORTED_OPS)}"
            )
        conv.where = f"node {i} {node.name!r} ({node.op_type})"
        handler(conv, node)
    outputs = []
    for vi in graph.output:
        if vi.name not in conv.tensors:
            raise ModelFormatError(f"graph output {vi.name!r} is not computed by any node")
        _to_onnx_layout(conv, vi.name)
        t = conv.tensors[vi.name]
        outputs.append(TensorSpec(vi.name, t.shape, t.dtype,
                                  "NCHW" if len(t.shape) == 4 else None, t.qparams))
    tensors = {
        name: TensorSpec(name, t.stored_shape, t.dtype,
                         ("NHWC" if t.nhwc else "NCHW") if len(t.shape) == 4 else None,
                         t.qparams)
        for name, t in conv.tensors.items()
    }
    integer = IntegerModel(
        name=Path(path).stem,
        inputs=inputs,
        outputs=outputs,
        nodes=conv.nodes,
        tensors=tensors,
        metadata={"source": str(path), "format": "onnx-qoperator", "ops": dict(ops)},
        constants=conv.constants,
    )
    conv.batch.finish(integer)
    return integer


def _to_onnx_layout(conv: _Converter, name: str) -> None:
    """Make graph output ``name`` NCHW: its NHWC producer writes ``name/nhwc`` instead."""
    t = conv.tensors[name]
    if not t.nhwc or len(t.shape) != 4:
        return
    inner = f"{name}/nhwc"
    for node in conv.nodes:
        node.inputs = [inner if n == name else n for n in node.inputs]
        node.outputs = [inner if n == name else n for n in node.outputs]
    conv.tensors[inner] = t
    conv.batch.factors[inner] = t.per
    conv.nodes.append(IntegerNode("transpose", f"{name}/transpose", [inner], [name],
                                  {"perm": list(_NHWC_TO_NCHW)}))
    conv.tensors[name] = _Tensor(t.shape, t.dtype, False, t.qparams, t.per)

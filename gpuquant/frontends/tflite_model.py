"""Import a fully integer TFLite model (.tflite flatbuffer) as an IntegerModel.

Read with the ``tflite`` flatbuffer package (no TensorFlow). Tensors keep TFLite's NHWC layout, so
inputs and outputs are NHWC as in the TFLite interpreter. Each operator maps to backend ops with
the arithmetic of TFLite's reference kernels (``rounding="reference"``):

- CONV_2D, DEPTHWISE_CONV_2D: per-channel multiplier ``double(s_x) * double(s_w[c]) /
  double(s_y)`` (PopulateConvolutionQuantizationParams; uint8 per-tensor models:
  ``double(float32(s_x * s_w)) / double(s_y)``), gemmlowp two-step rounding;
- FULLY_CONNECTED: the same per-channel multipliers (per-tensor weights:
  ``double(float32(s_x * s_w)) / double(s_y)``), rounded once, half away from zero ("single");
- AVERAGE_POOL_2D: integer mean of raw codes, half away from zero; MAX_POOL_2D;
- ADD/SUB (left shift 20, three multipliers), MUL, MEAN over H and W, QUANTIZE between 8-bit
  types: gemmlowp rounding; SOFTMAX: the fixed-point reference softmax (ops/softmax.py);
- LOGISTIC, TANH, HARD_SWISH: 256-entry tables of the float function, rounded half away from
  zero, as TFLite's optimized (table) kernels do; its reference kernels for these use other
  fixed-point approximations that are not reproduced; QUANTIZE from float: half away from
  zero; DEQUANTIZE;
- CONCATENATION, RESHAPE, SQUEEZE, PAD, PADV2: layout ops (uint8 concatenation rescales
  through tables).

``rounding="xnnpack"`` reproduces the XNNPACK delegate for CONV_2D, DEPTHWISE_CONV_2D and
FULLY_CONNECTED: multiplier ``float32(float32(s_x * s_w[c]) / s_y)`` applied in float32 and
rounded half to even; other operators stay as the reference kernels.

The opcode of an operator is ``max(builtin_code, deprecated_builtin_code)``.

The model is traced at the batch its inputs declare; where each operator provably keeps the batch
as the leading axis (as TFLite's ResizeInputTensor would resize it), the model runs at any batch
(frontends/batch.py), else only at the declared one.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite

from ..errors import (
    GpuquantError,
    ModelFormatError,
    QuantizationError,
    UnsupportedOpError,
)
from ..integer.model import IntegerModel, IntegerNode, TensorSpec
from ..ops import (
    ADD_LEFT_SHIFT,
    AddParams,
    ConcatParams,
    Conv2DParams,
    GemmParams,
    LookupParams,
    MeanParams,
    MulParams,
    PoolParams,
    QuantizeParams,
    Requant,
    activation_bounds,
    make_requant,
    resolve_padding,
)
from ..ops.softmax import tflite_softmax_params
from ..quant.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from ..quant.params import DTYPES, QuantParams, dtype_bounds
from .batch import BatchTrace, broadcast_factor, reshape_target, squeeze_shape

ROUNDINGS = ("reference", "xnnpack")

_TYPES = {
    tflite.TensorType.FLOAT32: "float32",
    tflite.TensorType.INT32: "int32",
    tflite.TensorType.UINT8: "uint8",
    tflite.TensorType.INT64: "int64",
    tflite.TensorType.INT8: "int8",
}
_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_ACTIVATIONS = {
    tflite.ActivationFunctionType.NONE: None,
    tflite.ActivationFunctionType.RELU: "relu",
    tflite.ActivationFunctionType.RELU6: "relu6",
    tflite.ActivationFunctionType.RELU_N1_TO_1: "relu_n1_to_1",
}


@dataclass
class _Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    qparams: QuantParams | None
    data: np.ndarray | None


class _Operator:
    """One TFLite operator with its resolved tensors, for the converters below."""

    def __init__(self, index: int, opname: str, op: tflite.Operator, tensors: list[_Tensor]):
        self.index = index
        self.opname = opname
        self.op = op
        self.name = f"{index}:{opname}"
        self.where = f"operator {index} ({opname})"
        self.inputs = [None if i < 0 else tensors[i] for i in op.InputsAsNumpy()]
        self.outputs = [tensors[i] for i in op.OutputsAsNumpy()]

    def options(self, cls):
        table = self.op.BuiltinOptions()
        if table is None:
            return None
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        return opts

    def fail(self, why: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self.where}: {why}")


def _read(path: str | Path) -> tuple[tflite.Model, bytes]:
    try:
        buf = Path(path).read_bytes()
    except OSError as e:
        raise ModelFormatError(f"cannot read TFLite model {str(path)!r}: {e}") from e
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelFormatError(f"{str(path)!r} is not a TFLite flatbuffer (no 'TFL3' identifier)")
    try:
        model = tflite.Model.GetRootAsModel(buf, 0)
        if model.SubgraphsLength() < 1:
            raise ModelFormatError(f"{str(path)!r}: TFLite model has no subgraph")
        model.Subgraphs(0).TensorsLength()
    except ModelFormatError:
        raise
    except Exception as e:
        raise ModelFormatError(f"{str(path)!r}: corrupt TFLite flatbuffer ({e})") from e
    return model, buf


def _tensors(model: tflite.Model, graph: tflite.SubGraph) -> list[_Tensor]:
    out: list[_Tensor] = []
    seen: set[str] = set()
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        raw_name = (t.Name() or b"").decode("utf-8", "replace")
        name = raw_name if raw_name and raw_name not in seen else f"t{i}:{raw_name}"
        seen.add(name)
        dtype = _TYPES.get(t.Type(), f"tflite_type_{t.Type()}")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        data = None
        buf = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
        if buf is not None and buf.DataLength() and dtype in _TYPES.values():
            np_dtype = np.dtype(dtype)
            raw = buf.DataAsNumpy().tobytes()
            if len(raw) != np_dtype.itemsize * math.prod(shape):
                raise ModelFormatError(
                    f"tensor {i} ({raw_name!r}): buffer of {len(raw)} bytes for shape {shape} "
                    f"of {dtype}"
                )
            data = np.frombuffer(raw, dtype=np_dtype).reshape(shape)
        out.append(_Tensor(i, name, shape, dtype, _qparams(t, dtype, i), data))
    return out


def _qparams(t: tflite.Tensor, dtype: str, index: int) -> QuantParams | None:
    q = t.Quantization()
    if q is None or q.ScaleLength() == 0 or dtype not in ("int8", "uint8", "int32"):
        return None
    scale = q.ScaleAsNumpy().astype(np.float32)
    zp = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(scale.size)
    axis = int(q.QuantizedDimension()) if scale.size > 1 else None
    try:
        return QuantParams(scale, zp, dtype, axis)
    except QuantizationError as e:
        raise ModelFormatError(f"tensor {index}: bad quantization parameters ({e})") from e


def _spec(t: _Tensor) -> TensorSpec:
    layout = "NHWC" if len(t.shape) == 4 else None
    return TensorSpec(t.name, t.shape, t.dtype, layout, t.qparams)


def _per_tensor(op: _Operator, t: _Tensor, what: str) -> tuple[float, int]:
    if t.qparams is None or t.qparams.per_axis:
        raise op.fail(f"{what} tensor {t.name!r} needs per-tensor quantization parameters")
    return float(t.qparams.scale[0]), int(t.qparams.zero_point[0])


def _eight_bit(op: _Operator, t: _Tensor, what: str) -> None:
    if t.dtype not in ("int8", "uint8") or t.qparams is None:
        raise op.fail(f"{what} tensor {t.name!r} is {t.dtype}, not quantized int8/uint8")


def _bounds(op: _Operator, out: _Tensor, code: int) -> tuple[int, int]:
    if code not in _ACTIVATIONS:
        raise op.fail(f"fused activation {code} is not supported")
    act = _ACTIVATIONS[code]
    if act == "relu_n1_to_1":
        return activation_bounds(out.qparams, "clip", -1.0, 1.0)
    return activation_bounds(out.qparams, act)


class _Converter:
    def __init__(self, rounding: str, inputs: list[_Tensor]):
        self.rounding = rounding
        self.nodes: list[IntegerNode] = []
        self.constants: dict[str, np.ndarray] = {}
        self.specs: dict[str, TensorSpec] = {}
        self.batch = BatchTrace([(t.name, t.shape) for t in inputs])

    def emit(self, op: str, name: str, inputs: list[str], outputs: list[str], params) -> None:
        self.nodes.append(IntegerNode(op, name, inputs, outputs, params))

    def per(self, t: _Tensor) -> int | None:
        """The factor with which ``t`` follows the batch (frontends/batch.py)."""
        return self.batch.get(t.name)

    def follow(self, op: _Operator, name: str, shape: tuple[int, ...],
               per: int | None) -> None:
        """Tensor ``name`` of ``op`` follows the batch with factor ``per`` (None: it does not)."""
        inputs = [(t.name, t.shape) for t in op.inputs if t is not None]
        self.batch.record(op.where, inputs, name, shape, per)

    def use(self, t: _Tensor) -> str:
        """The name of ``t`` as a node input; a constant operand joins ``constants``."""
        if t.data is not None:
            self.constants[t.name] = t.data
        return t.name

    # Convolutions and fully connected ------------------------------------------------------

    def _multipliers(self, x: _Tensor, w: _Tensor, y: _Tensor, channels: int,
                     float_product: bool) -> list[float]:
        s_x, s_y = float(x.qparams.scale[0]), float(y.qparams.scale[0])
        s_w = np.broadcast_to(w.qparams.scale, (channels,))
        if self.rounding == "xnnpack":
            return [float(np.float32(np.float32(s_x) * s) / np.float32(s_y)) for s in s_w]
        if float_product and not w.qparams.per_axis:
            # GetQuantizedConvolutionMultipler: double(float32(s_x * s_w)) / double(s_y).
            return [float(np.float32(np.float32(s_x) * s_w[0])) / s_y] * channels
        return [s_x * float(s) / s_y for s in s_w]

    def _requant(self, op: _Operator, x, w, y, channels: int, act: int, default: str) -> Requant:
        float_product = op.opname == "FULLY_CONNECTED" or x.dtype == "uint8"
        reals = self._multipliers(x, w, y, channels, float_product)
        rounding = "float32_half_even" if self.rounding == "xnnpack" else default
        return make_requant(np.array(reals), y.qparams, rounding, _bounds(op, y, act))

    def _weights(self, op: _Operator, w: _Tensor, b: _Tensor | None, axis: int, channels: int):
        if w.data is None or w.dtype not in ("int8", "uint8") or w.qparams is None:
            raise op.fail(f"filter {w.name!r} must be a constant int8/uint8 tensor")
        if w.qparams.per_axis and (w.qparams.axis % w.data.ndim != axis
                                   or w.qparams.scale.size != channels):
            raise op.fail(f"filter {w.name!r} is quantized along axis {w.qparams.axis}, "
                          f"expected {channels} channels on axis {axis}")
        zw = np.broadcast_to(w.qparams.zero_point, (channels,)).astype(np.int32)
        if b is None:
            bias = np.zeros(channels, np.int32)
        elif b.data is None or b.dtype != "int32":
            raise op.fail(f"bias {b.name!r} must be a constant int32 tensor")
        else:
            bias = b.data.astype(np.int32).reshape(channels)
        return zw, bias

    def conv(self, op: _Operator, depthwise: bool) -> None:
        x, w = op.inputs[0], op.inputs[1]
        b = op.inputs[2] if len(op.inputs) > 2 else None
        y = op.outputs[0]
        _eight_bit(op, x, "input")
        _eight_bit(op, y, "output")
        opts = op.options(tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
        if w.data is None or w.data.ndim != 4:
            raise op.fail(f"filter {w.name!r} must be a constant 4-D tensor")
        c_in = x.shape[3]
        if depthwise:
            c_out = w.shape[3]
            weight = np.ascontiguousarray(np.transpose(w.data, (3, 1, 2, 0)))
            groups, axis = c_in, 3
        else:
            c_out = w.shape[0]
            weight = w.data
            if c_in % w.shape[3]:
                raise op.fail(f"input channels {c_in} not a multiple of filter depth {w.shape[3]}")
            groups, axis = c_in // w.shape[3], 0
        zw, bias = self._weights(op, w, b, axis, c_out)
        stride = (opts.StrideH(), opts.StrideW())
        dilation = (opts.DilationHFactor(), opts.DilationWFactor())
        mode = "SAME_UPPER" if opts.Padding() == tflite.Padding.SAME else "VALID"
        padding = resolve_padding(mode, x.shape[1:3], weight.shape[1:3], stride, dilation)
        requant = self._requant(op, x, w, y, c_out, opts.FusedActivationFunction(), "gemmlowp")
        params = Conv2DParams(
            op.name, weight, zw, int(x.qparams.zero_point[0]), x.dtype, bias, requant,
            stride, dilation, padding, groups,
        )
        self.emit("conv2d", op.name, [self.use(x)], [y.name], params)
        self.follow(op, y.name, y.shape, self.per(x))

    def fully_connected(self, op: _Operator) -> None:
        x, w = op.inputs[0], op.inputs[1]
        b = op.inputs[2] if len(op.inputs) > 2 else None
        y = op.outputs[0]
        _eight_bit(op, x, "input")
        _eight_bit(op, y, "output")
        opts = op.options(tflite.FullyConnectedOptions)
        if opts is not None and opts.WeightsFormat() != 0:
            raise op.fail("shuffled weights format is not supported")
        if w.data is None or w.data.ndim != 2:
            raise op.fail(f"weights {w.name!r} must be a constant 2-D tensor")
        n, k = w.shape
        zw, bias = self._weights(op, w, b, 0, n)
        act = opts.FusedActivationFunction() if opts is not None else 0
        requant = self._requant(op, x, w, y, n, act, "single")
        params = GemmParams(op.name, w.data, zw, int(x.qparams.zero_point[0]), x.dtype, bias,
                            requant)
        flat, gemm_out = f"{op.name}/flat", f"{op.name}/gemm"
        rows = math.prod(x.shape) // k
        # Each sample of x holds prod(x.shape[1:]) / k rows, unless k spans samples.
        per, per_sample = self.per(x), math.prod(x.shape[1:])
        rows_per = None if per is None or per_sample % k else per * per_sample // k
        keep_dims = opts is not None and opts.KeepNumDims() and len(x.shape) >= 2
        y_per = per if keep_dims else rows_per
        self.specs[flat] = TensorSpec(flat, (rows, k), x.dtype, None, x.qparams)
        self.specs[gemm_out] = TensorSpec(gemm_out, (rows, n), y.dtype, None, y.qparams)
        self.emit("reshape", f"{op.name}/reshape_in", [self.use(x)], [flat],
                  {"shape": reshape_target((rows, k), per, rows_per)})
        self.follow(op, flat, (rows, k), rows_per)
        self.emit("gemm", op.name, [flat], [gemm_out], params)
        self.follow(op, gemm_out, (rows, n), rows_per)
        self.emit("reshape", f"{op.name}/reshape_out", [gemm_out], [y.name],
                  {"shape": reshape_target(y.shape, rows_per, y_per)})
        self.follow(op, y.name, y.shape, y_per)

    # Pooling and reductions ---------------------------------------------------------------

    def pool(self, op: _Operator, kind: str) -> None:
        x, y = op.inputs[0], op.outputs[0]
        _eight_bit(op, x, "input")
        s_x, z_x = _per_tensor(op, x, "input")
        s_y, z_y = _per_tensor(op, y, "output")
        if (s_x, z_x) != (s_y, z_y) or x.dtype != y.dtype:
            raise op.fail("input and output quantization parameters differ")
        opts = op.options(tflite.Pool2DOptions)
        kernel = (opts.FilterHeight(), opts.FilterWidth())
        stride = (opts.StrideH(), opts.StrideW())
        mode = "SAME_UPPER" if opts.Padding() == tflite.Padding.SAME else "VALID"
        padding = resolve_padding(mode, x.shape[1:3], kernel, stride)
        lo, hi = _bounds(op, y, opts.FusedActivationFunction())
        params = PoolParams(op.name, kernel, stride, padding, x.dtype, lo, hi)
        self.emit(kind, op.name, [self.use(x)], [y.name], params)
        self.follow(op, y.name, y.shape, self.per(x))

    def mean(self, op: _Operator) -> None:
        x, axes_t, y = op.inputs[0], op.inputs[1], op.outputs[0]
        _eight_bit(op, x, "input")
        opts = op.options(tflite.ReducerOptions)
        axes = sorted({int(a) % len(x.shape) for a in np.ravel(axes_t.data)})
        if len(x.shape) != 4 or axes != [1, 2]:
            raise op.fail(f"MEAN over axes {axes} of a {len(x.shape)}-D tensor is not supported "
                          "(only the spatial axes 1, 2 of NHWC)")
        s_x, z_x = _per_tensor(op, x, "input")
        s_y, z_y = _per_tensor(op, y, "output")
        count = x.shape[1] * x.shape[2]
        multiplier, shift = quantize_multiplier(s_x / s_y)
        # reference_integer_ops::Mean folds 1/count into the multiplier with extra precision.
        extra = min(count.bit_length() - 1, 32, 31 + shift)
        multiplier = (multiplier << extra) // count
        shift -= extra
        lo, hi = dtype_bounds(y.dtype)
        requant = Requant(np.array([multiplier]), np.array([shift]), "gemmlowp", z_y, lo, hi,
                          y.dtype)
        keep = bool(opts.KeepDims()) if opts is not None else False
        params = MeanParams(op.name, (1, 2), keep, z_x, x.dtype, requant)
        self.emit("mean", op.name, [self.use(x)], [y.name], params)
        self.follow(op, y.name, y.shape, self.per(x))

    # Element-wise ---------------------------------------------------------------------------

    def add(self, op: _Operator, negate: bool) -> None:
        a, b, y = op.inputs[0], op.inputs[1], op.outputs[0]
        for t, what in ((a, "input 1"), (b, "input 2"), (y, "output")):
            _eight_bit(op, t, what)
        s_a, z_a = _per_tensor(op, a, "input 1")
        s_b, z_b = _per_tensor(op, b, "input 2")
        s_y, _ = _per_tensor(op, y, "output")
        twice_max = 2.0 * max(s_a, s_b)
        m_a, e_a = quantize_multiplier(s_a / twice_max)
        m_b, e_b = quantize_multiplier(s_b / twice_max)
        opts = op.options(tflite.SubOptions if negate else tflite.AddOptions)
        act = opts.FusedActivationFunction() if opts is not None else 0
        requant = make_requant(twice_max / ((1 << ADD_LEFT_SHIFT) * s_y), y.qparams, "gemmlowp",
                               _bounds(op, y, act))
        params = AddParams(op.name, z_a, z_b, m_a, e_a, m_b, e_b, negate, ADD_LEFT_SHIFT, requant)
        inputs = [self.use(a), self.use(b)]
        self.emit("add", op.name, inputs, [y.name], params)
        self.follow(op, y.name, y.shape,
                    broadcast_factor([(a.shape, self.per(a)), (b.shape, self.per(b))]))

    def mul(self, op: _Operator) -> None:
        a, b, y = op.inputs[0], op.inputs[1], op.outputs[0]
        for t, what in ((a, "input 1"), (b, "input 2"), (y, "output")):
            _eight_bit(op, t, what)
        s_a, z_a = _per_tensor(op, a, "input 1")
        s_b, z_b = _per_tensor(op, b, "input 2")
        s_y, _ = _per_tensor(op, y, "output")
        opts = op.options(tflite.MulOptions)
        act = opts.FusedActivationFunction() if opts is not None else 0
        requant = make_requant(s_a * s_b / s_y, y.qparams, "gemmlowp", _bounds(op, y, act))
        inputs = [self.use(a), self.use(b)]
        self.emit("mul", op.name, inputs, [y.name], MulParams(op.name, z_a, z_b, requant))
        self.follow(op, y.name, y.shape,
                    broadcast_factor([(a.shape, self.per(a)), (b.shape, self.per(b))]))

    def table(self, op: _Operator, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        x, y = op.inputs[0], op.outputs[0]
        _eight_bit(op, x, "input")
        _eight_bit(op, y, "output")
        s_x, z_x = _per_tensor(op, x, "input")
        s_y, z_y = _per_tensor(op, y, "output")
        qmin, qmax = dtype_bounds(x.dtype)
        codes = np.arange(qmin, qmax + 1)
        real = (np.float32(s_x) * (codes - z_x).astype(np.float32)).astype(np.float32)
        value = fn(real.astype(np.float64)).astype(np.float32)
        scaled = (value * (np.float32(1.0) / np.float32(s_y))).astype(np.float64)
        rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
        np_dtype, lo, hi = DTYPES[y.dtype]
        table = np.clip(rounded + z_y, lo, hi).astype(np_dtype)
        params = LookupParams(op.name, x.dtype, table)
        self.emit("lookup", op.name, [self.use(x)], [y.name], params)
        self.follow(op, y.name, y.shape, self.per(x))

    def softmax(self, op: _Operator) -> None:
        x, y = op.inputs[0], op.outputs[0]
        _eight_bit(op, x, "input")
        _eight_bit(op, y, "output")
        s_x, _ = _per_tensor(op, x, "input")
        s_y, z_y = _per_tensor(op, y, "output")
        if s_y != 1.0 / 256 or z_y != dtype_bounds(y.dtype)[0]:
            raise op.fail(f"output scale {s_y} / zero point {z_y}: TFLite requires 1/256 and "
                          f"{dtype_bounds(y.dtype)[0]}")
        opts = op.options(tflite.SoftmaxOptions)
        beta = opts.Beta() if opts is not None else 1.0
        params = tflite_softmax_params(op.name, s_x, beta, x.dtype, y.dtype)
        self.emit("softmax", op.name, [self.use(x)], [y.name], params)
        # over the last axis: a 1-D input's is the batch axis
        self.follow(op, y.name, y.shape, self.per(x) if len(x.shape) >= 2 else None)

    def quantize(self, op: _Operator) -> None:
        x, y = op.inputs[0], op.outputs[0]
        _eight_bit(op, y, "output")
        if x.dtype == "float32":
            params = QuantizeParams(op.name, y.qparams, "half_away_from_zero")
            self.emit("quantize", op.name, [self.use(x)], [y.name], params)
            self.follow(op, y.name, y.shape, self.per(x))
            return
        _eight_bit(op, x, "input")
        s_x, z_x = _per_tensor(op, x, "input")
        s_y, z_y = _per_tensor(op, y, "output")
        multiplier, shift = quantize_multiplier(s_x / s_y)
        qmin, qmax = dtype_bounds(x.dtype)
        codes = np.arange(qmin, qmax + 1, dtype=np.int32) - z_x
        scaled = multiply_by_quantized_multiplier(codes, multiplier, shift, "gemmlowp")
        np_dtype, lo, hi = DTYPES[y.dtype]
        table = np.clip(scaled.astype(np.int64) + z_y, lo, hi).astype(np_dtype)
        params = LookupParams(op.name, x.dtype, table)
        self.emit("lookup", op.name, [self.use(x)], [y.name], params)
        self.follow(op, y.name, y.shape, self.per(x))

    def dequantize(self, op: _Operator) -> None:
        x, y = op.inputs[0], op.outputs[0]
        _eight_bit(op, x, "input")
        self.emit("dequantize", op.name, [self.use(x)], [y.name], x.qparams)
        self.follow(op, y.name, y.shape, self.per(x))

    # Layout ------------------------------------------------------------------------------------

    def reshape(self, op: _Operator) -> None:
        """A reshape that keeps the leading dimension keeps the batch (each sample's elements
        stay in its own leading row); any other is traced at the declared batch only."""
        x, y = op.inputs[0], op.outputs[0]
        keeps = bool(x.shape) and bool(y.shape) and x.shape[0] == y.shape[0]
        per = self.per(x) if keeps else None
        self.emit("reshape", op.name, [self.use(x)], [y.name],
                  {"shape": reshape_target(y.shape, self.per(x), per)})
        self.follow(op, y.name, y.shape, per)

    def squeeze(self, op: _Operator) -> None:
        """SQUEEZE as a reshape; one of axis 0 loses the batch (frontends/batch.py)."""
        x, y = op.inputs[0], op.outputs[0]
        opts = op.options(tflite.SqueezeOptions)
        dims = None if opts is None else opts.SqueezeDimsAsNumpy()
        axes = dims.tolist() if isinstance(dims, np.ndarray) and dims.size else None
        try:
            shape, moved = squeeze_shape(x.shape, axes, unsqueeze=False)
        except ValueError as e:
            raise op.fail(str(e)) from None
        if shape != tuple(y.shape):
            raise op.fail(f"output shape {tuple(y.shape)} is not {shape}, the input shape "
                          f"{tuple(x.shape)} squeezed at axes {moved}")
        per = self.batch.squeeze_factor(op.where, x.shape, self.per(x), moved, unsqueeze=False)
        self.emit("reshape", op.name, [self.use(x)], [y.name],
                  {"shape": reshape_target(y.shape, self.per(x), per)})
        self.follow(op, y.name, y.shape, per)

    def concat(self, op: _Operator) -> None:
        y = op.outputs[0]
        _eight_bit(op, y, "output")
        opts = op.options(tflite.ConcatenationOptions)
        if opts.FusedActivationFunction() != 0:
            raise op.fail("a fused activation on CONCATENATION is not supported")
        s_y, z_y = _per_tensor(op, y, "output")
        tables = []
        for i, x in enumerate(op.inputs):
            _eight_bit(op, x, f"input {i}")
            s_x, z_x = _per_tensor(op, x, f"input {i}")
            if (s_x, z_x, x.dtype) == (s_y, z_y, y.dtype):
                tables.append(None)
            elif x.dtype == y.dtype == "uint8":
                tables.append(LookupParams(f"{op.name}/{i}", "uint8",
                                           _rescale_table(s_x, z_x, s_y, z_y)))
            else:
                raise op.fail(f"int8 input {i} has scale/zero point ({s_x}, {z_x}) unlike the "
                              f"output ({s_y}, {z_y}); TFLite rejects this")
        params = ConcatParams(op.name, opts.Axis() % len(y.shape), tuple(tables))
        inputs = [self.use(x) for x in op.inputs]
        self.emit("concat", op.name, inputs, [y.name], params)
        pers = {self.per(x) for x in op.inputs}
        self.follow(op, y.name, y.shape,
                    pers.pop() if params.axis != 0 and len(pers) == 1 else None)

    def pad(self, op: _Operator) -> None:
        x, pads_t, y = op.inputs[0], op.inputs[1], op.outputs[0]
        _eight_bit(op, x, "input")
        if pads_t.data is None:
            raise op.fail("paddings must be a constant tensor")
        value = int(y.qparams.zero_point[0])
        if len(op.inputs) > 2 and op.inputs[2] is not None:
            if op.inputs[2].data is None:
                raise op.fail("the pad value must be a constant")
            value = int(np.ravel(op.inputs[2].data)[0])
        pads = [[int(b), int(e)] for b, e in pads_t.data.reshape(-1, 2)]
        self.emit("pad", op.name, [self.use(x)], [y.name],
                  {"pads": pads, "value": value})
        self.follow(op, y.name, y.shape, self.per(x) if pads and pads[0] == [0, 0] else None)


def _rescale_table(s_x: float, z_x: int, s_y: float, z_y: int) -> np.ndarray:
    """TFLite's ConcatenationWithScaling for uint8: ``round_half_away(q * scale + bias) + z_y``
    with ``scale = s_x * (1 / s_y)`` and ``bias = -z_x * scale`` in float32."""
    scale = np.float32(s_x) * (np.float32(1.0) / np.float32(s_y))
    bias = np.float32(-z_x) * scale
    codes = np.arange(256, dtype=np.float32)
    value = (codes * scale + bias).astype(np.float64)
    rounded = np.sign(value) * np.floor(np.abs(value) + 0.5)
    return np.clip(rounded + z_y, 0, 255).astype(np.uint8)


def _hard_swish(x: np.ndarray) -> np.ndarray:
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


_HANDLERS: dict[str, Callable[[_Converter, _Operator], None]] = {
    "CONV_2D": lambda c, op: c.conv(op, depthwise=False),
    "DEPTHWISE_CONV_2D": lambda c, op: c.conv(op, depthwise=True),
    "FULLY_CONNECTED": _Converter.fully_connected,
    "AVERAGE_POOL_2D": lambda c, op: c.pool(op, "avg_pool2d"),
    "MAX_POOL_2D": lambda c, op: c.pool(op, "max_pool2d"),
    "MEAN": _Converter.mean,
    "ADD": lambda c, op: c.add(op, negate=False),
    "SUB": lambda c, op: c.add(op, negate=True),
    "MUL": _Converter.mul,
    "CONCATENATION": _Converter.concat,
    "RESHAPE": _Converter.reshape,
    "SQUEEZE": _Converter.squeeze,
    "PAD": _Converter.pad,
    "PADV2": _Converter.pad,
    "SOFTMAX": _Converter.softmax,
    "LOGISTIC": lambda c, op: c.table(op, lambda x: 1.0 / (1.0 + np.exp(-x))),
    "TANH": lambda c, op: c.table(op, np.tanh),
    "HARD_SWISH": lambda c, op: c.table(op, _hard_swish),
    "QUANTIZE": _Converter.quantize,
    "DEQUANTIZE": _Converter.dequantize,
}
SUPPORTED_OPS = tuple(_HANDLERS)


def load_tflite(path: str | Path, rounding: str = "reference") -> IntegerModel:
    """The IntegerModel of the .tflite file ``path`` (module docstring).

    ``rounding`` is "reference" (TFLite's reference kernels) or "xnnpack". Raises
    ModelFormatError for a file that is not a readable TFLite model and UnsupportedOpError
    naming the first operator (index and opcode) that cannot be imported.
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    model, _ = _read(path)
    try:
        return _convert(model, path, rounding)
    except GpuquantError:
        raise
    except (struct.error, IndexError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise ModelFormatError(
            f"{str(path)!r}: corrupt or inconsistent TFLite model ({type(e).__name__}: {e})"
        ) from e


def _convert(model: tflite.Model, path: str | Path, rounding: str) -> IntegerModel:
    graph = model.Subgraphs(0)
    tensors = _tensors(model, graph)
    opnames = []
    for i in range(graph.OperatorsLength()):
        code = model.OperatorCodes(graph.Operators(i).OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        opnames.append(_OP_NAMES.get(builtin, f"BUILTIN_{builtin}"))
    inputs = [tensors[i] for i in graph.InputsAsNumpy()]
    converter = _Converter(rounding, inputs)
    for i, opname in enumerate(opnames):
        op = _Operator(i, opname, graph.Operators(i), tensors)
        handler = _HANDLERS.get(opname)
        if handler is None:
            raise UnsupportedOpError(
                f"operator {i} ({opname}) is not supported; supported: {', '.join(SUPPORTED_OPS)}"
            )
        handler(converter, op)
    used = {name for node in converter.nodes for name in node.inputs + node.outputs}
    specs = {t.name: _spec(t) for t in tensors if t.name in used}
    specs.update(converter.specs)
    outputs = [_spec(tensors[i]) for i in graph.OutputsAsNumpy()]
    integer = IntegerModel(
        name=Path(path).stem,
        inputs=[_spec(t) for t in inputs],
        outputs=outputs,
        nodes=converter.nodes,
        tensors=specs,
        metadata={
            "source": str(path),
            "format": "tflite",
            "rounding": rounding,
            "ops": dict(Counter(opnames)),
            "tensor_names": [t.name for t in tensors],
        },
        constants=converter.constants,
    )
    converter.batch.finish(integer)
    return integer

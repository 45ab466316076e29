"""CupyBackend: every op of backends/base.py as a launch of a kernel from cuda_src/.

Each method checks the input's dtype and shape (ShapeError naming the layer), makes it
C-contiguous, computes the grid and block in plain code and launches. Constant operands
(weights, zero-point terms, multipliers, tables) are prepared in NumPy (operands.py) and
uploaded once per params object; the cache entry goes when the params object does.
The tensor-core GEMM path is taken on devices of compute capability 8.0 and newer.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...errors import QuantizationError, ShapeError
from ...ops import (
    AddParams,
    ConcatParams,
    Conv2DParams,
    GemmParams,
    LookupParams,
    MatMulParams,
    MeanParams,
    MulParams,
    PoolParams,
    QuantizeParams,
)
from ...ops.float_pool import FloatAvgPoolParams
from ...ops.float_softmax import FloatSoftmaxParams
from ...ops.pair_lookup import PairLookupParams
from ...ops.softmax import SoftmaxParams
from ...quant.fixedpoint import multiplier_to_float32
from ...quant.params import DTYPES, QuantParams
from .kernels import MMA_MIN_CC, conv_name, depthwise_name, gemm_name, matmul_name
from .operands import (
    RequantOperands,
    gemm_operands,
    requant_operands,
    to_int8_image,
    zero_point_image,
)

THREADS = 128
TILE = 64
CONV_GEOMETRY = np.dtype([(f, "<i4") for f in (
    "H", "W", "C", "OH", "OW", "KH", "KW", "sh", "sw", "dh", "dw", "pad_top", "pad_left")])
POOL_GEOMETRY = np.dtype([(f, "<i4") for f in (
    "H", "W", "C", "OH", "OW", "KH", "KW", "sh", "sw", "pad_top", "pad_left")])
FLOAT_POOL_GEOMETRY = np.dtype([(f, "<i4") for f in (
    "H", "W", "C", "OH", "OW", "KH", "KW", "sh", "sw", "pad_top", "pad_left",
    "count_include_pad")])
QUANTIZE_ROUNDING_CODES = {"half_to_even": 0, "half_away_from_zero": 1}

i32 = np.int32


def _struct(dtype: np.dtype, *values: int) -> np.ndarray:
    """A C struct kernel argument: a one-element structured host array (passed by value)."""
    return np.array([tuple(int(v) for v in values)], dtype=dtype)


def _blocks(n: int, tile: int) -> int:
    return max(1, -(-n // tile))


class _Uploads:
    """Device copies of per-params constants, keyed by ``id(params)`` while the params live."""

    def __init__(self) -> None:
        self._items: dict[int, Any] = {}

    def get(self, params: object, build: Callable[[], Any]) -> Any:
        key = id(params)
        if key not in self._items:
            self._items[key] = build()
            weakref.finalize(params, self._items.pop, key, None)
        return self._items[key]


class CupyBackend:
    """Backend protocol on CuPy arrays, computed by the kernels of cuda_src/."""

    name = "cupy"

    def __init__(self, kernels: Any = None) -> None:
        if kernels is None:
            from .device import CudaKernels

            kernels = CudaKernels()
        self.k = kernels
        self.xp = kernels.xp
        self._uploads = _Uploads()

    # ---- helpers ---------------------------------------------------------------------------

    def _input(self, layer: str, what: str, x: Any, dtypes: Sequence[str], ndim: int | None = None):
        x = self.k.asarray(x)
        if x.dtype.name not in dtypes:
            raise ShapeError(
                f"layer {layer!r}: {what} must be {' or '.join(dtypes)}, got {x.dtype} of shape "
                f"{tuple(x.shape)}"
            )
        if ndim is not None and x.ndim != ndim:
            raise ShapeError(
                f"layer {layer!r}: {what} must be {ndim}-D, got shape {tuple(x.shape)}")
        return self.xp.ascontiguousarray(x)

    def _grid1d(self, n: int) -> tuple[int]:
        return (max(1, min(_blocks(n, THREADS), self.k.max_blocks)),)

    def _upload(self, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return self.xp.asarray(value)
        return value

    def _requant_args(self, r: RequantOperands) -> tuple:
        up = self._upload
        return (up(r.multiplier), up(r.shift), up(r.multiplier_f32), i32(r.zero_point),
                i32(r.qmin), i32(r.qmax), i32(r.rounding))

    def _requant(self, params: object, rq, channels: int) -> tuple[RequantOperands, tuple]:
        def build():
            ops = requant_operands(rq, channels)
            return ops, self._requant_args(ops)

        return self._uploads.get(params, build)

    def _mma(self) -> bool:
        return self.k.cc >= MMA_MIN_CC

    # ---- protocol ----------------------------------------------------------------------------

    def asarray(self, x: Any) -> Any:
        return self.k.asarray(x)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.array(self.k.to_numpy(x), copy=True)

    def gemm(self, x: Any, p: GemmParams) -> Any:
        x = self._input(p.name, "input", x, (p.input_dtype,), 2)
        n, k = p.weight.shape
        if x.shape[1] != k:
            raise ShapeError(f"layer {p.name!r}: input {tuple(x.shape)} does not have K = {k}")

        def build():
            ops = gemm_operands(p.weight, p.weight_zero_point, p.bias, p.input_zero_point,
                                p.input_dtype, p.requant)
            return ops, tuple(self._upload(a) for a in (
                ops.weight_words, ops.weight_zero_point, ops.folded_bias)), \
                self._requant_args(ops.requant)

        ops, (w, zw, folded), rq_args = self._uploads.get(p, build)
        m = x.shape[0]
        y = self.xp.empty((m, n), dtype=ops.requant.out_dtype)
        if m == 0:
            return y
        aligned = k % 4 == 0 and self.k.pointer(x) % 4 == 0
        fn = self.k.function("gemm.cu", gemm_name(ops.requant.out_int32, self._mma()))
        fn((_blocks(m, TILE), _blocks(n, TILE)), (THREADS,),
           (x, i32(p.input_dtype == "uint8"), i32(m), i32(k), i32(aligned), w, i32(n),
            i32(w.shape[1]), zw, folded, *rq_args, y))
        return y

    def conv2d(self, x: Any, p: Conv2DParams) -> Any:
        x = self._input(p.name, "input", x, (p.input_dtype,), 4)
        batch, oh, ow, c_out = p.output_shape(tuple(x.shape))
        _, h, w_, c = x.shape
        kh, kw = p.kernel
        geo = _struct(CONV_GEOMETRY, h, w_, c, oh, ow, kh, kw, *p.stride, *p.dilation,
                      p.padding[0], p.padding[2])
        x_uint8 = p.input_dtype == "uint8"
        if p.is_depthwise:
            return self._depthwise(x, p, geo, (batch, oh, ow, c_out), x_uint8)

        def build():
            ops = gemm_operands(p.weight.reshape(c_out, -1), p.weight_zero_point, p.bias,
                                p.input_zero_point, p.input_dtype, p.requant)
            return ops, tuple(self._upload(a) for a in (
                ops.weight_words, ops.weight_zero_point, ops.folded_bias)), \
                self._requant_args(ops.requant)

        ops, (w, zw, folded), rq_args = self._uploads.get(p, build)
        y = self.xp.empty((batch, oh, ow, c_out), dtype=ops.requant.out_dtype)
        if y.size == 0:
            return y
        cg = p.weight.shape[3]
        n_per_group = c_out // p.groups
        pixel_words = cg % 4 == 0 and c % 4 == 0 and self.k.pointer(x) % 4 == 0
        zx8 = int(zero_point_image(p.input_zero_point, p.input_dtype))
        fn = self.k.function("conv.cu", conv_name(ops.requant.out_int32, self._mma()))
        fn((_blocks(batch * oh * ow, TILE), _blocks(n_per_group, TILE), p.groups), (THREADS,),
           (x, i32(x_uint8), i32(batch), geo, i32(cg), i32(zx8), i32(pixel_words), w,
            i32(n_per_group),            i32(w.shape[1]), zw, folded, *rq_args, y, i32(c_out)))
        return y

    def _depthwise(self, x, p: Conv2DParams, geo, out_shape, x_uint8: bool):
        c_out = out_shape[3]

        def build():
            w8 = to_int8_image(p.weight).reshape(c_out, -1)
            zw = zero_point_image(p.weight_zero_point, p.weight.dtype.name).astype(np.int32)
            rq = requant_operands(p.requant, c_out)
            return rq, tuple(self._upload(np.ascontiguousarray(a)) for a in (w8, zw, p.bias)), \
                self._requant_args(rq)

        rq, (w, zw, bias), rq_args = self._uploads.get(p, build)
        y = self.xp.empty(out_shape, dtype=rq.out_dtype)
        if y.size == 0:
            return y
        fn = self.k.function("conv.cu", depthwise_name(rq.out_int32))
        fn(self._grid1d(y.size), (THREADS,),
           (x, i32(x_uint8), i32(out_shape[0]), geo, i32(c_out // p.in_channels),
            i32(p.input_zero_point),            w, zw, bias, *rq_args, y))
        return y

    def matmul(self, a: Any, b: Any, p: MatMulParams) -> Any:
        a = self._input(p.name, "a", a, (p.a_dtype,))
        b = self._input(p.name, "b", b, (p.b_dtype,))
        if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != p.k or b.shape[-2] != p.k:
            raise ShapeError(
                f"layer {p.name!r}: expected (..., M, {p.k}) @ (..., {p.k}, N), "
                f"got {tuple(a.shape)} @ {tuple(b.shape)}"
            )
        m, n = a.shape[-2], b.shape[-1]
        batch_shape = np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
        batch = math.prod(batch_shape)
        xp = self.xp
        a3 = xp.ascontiguousarray(xp.broadcast_to(a, (*batch_shape, m, p.k))).reshape(batch, m, p.k)
        b3 = xp.ascontiguousarray(xp.broadcast_to(b, (*batch_shape, p.k, n))).reshape(batch, p.k, n)

        def build():
            zb = np.broadcast_to(p.b_zero_point, (n,)).astype(np.int32)
            rq = requant_operands(p.requant, n)
            return rq, self._upload(np.ascontiguousarray(zb)), self._requant_args(rq)

        rq, zb, rq_args = self._uploads.get(p, build)
        y = xp.empty((*batch_shape, m, n), dtype=rq.out_dtype)
        if y.size == 0:
            return y
        fn = self.k.function("matmul.cu", matmul_name(rq.out_int32))
        fn(self._grid1d(y.size), (THREADS,),
           (a3, i32(p.a_dtype == "uint8"), b3, i32(p.b_dtype == "uint8"), i32(batch), i32(m),
            i32(p.k), i32(n), i32(p.a_zero_point), zb, *rq_args, y))
        return y

    def _pool(self, kernel: str, x: Any, p: PoolParams) -> Any:
        x = self._input(p.name, "input", x, (p.dtype,), 4)
        batch, h, w, c = x.shape
        oh, ow = p.output_hw((h, w))
        y = self.xp.empty((batch, oh, ow, c), dtype=x.dtype)
        if y.size == 0:
            return y
        geo = _struct(POOL_GEOMETRY, h, w, c, oh, ow, *p.kernel, *p.stride, p.padding[0],
                      p.padding[2])
        self.k.function("pool.cu", kernel)(
            self._grid1d(y.size), (THREADS,),
            (x, i32(p.dtype == "uint8"), i32(batch), geo, i32(p.qmin), i32(p.qmax), y))
        return y

    def max_pool2d(self, x: Any, p: PoolParams) -> Any:
        return self._pool("gq_max_pool2d", x, p)

    def avg_pool2d(self, x: Any, p: PoolParams) -> Any:
        return self._pool("gq_avg_pool2d", x, p)

    def mean(self, x: Any, p: MeanParams) -> Any:
        x = self._input(p.name, "input", x, (p.input_dtype,))
        axes = sorted({a % x.ndim for a in p.axes})
        kept = [d for d in range(x.ndim) if d not in axes]
        rows = math.prod(x.shape[d] for d in kept)
        r = math.prod(x.shape[d] for d in axes)
        xt = self.xp.ascontiguousarray(x.transpose(kept + axes))
        rq, rq_args = self._requant(p, p.requant, 1)
        out_shape = tuple(1 if d in axes else x.shape[d] for d in range(x.ndim)) if p.keepdims \
            else tuple(x.shape[d] for d in kept)
        y = self.xp.empty(out_shape, dtype=rq.out_dtype)
        if rows == 0:
            return y
        self.k.function("pool.cu", "gq_mean")(
            (max(1, min(_blocks(rows, THREADS // 32), self.k.max_blocks)),), (THREADS,),
            (xt, i32(p.input_dtype == "uint8"), np.int64(rows), i32(r), i32(p.input_zero_point),
             *rq_args, y))
        return y

    def _binary_inputs(self, layer: str, a: Any, b: Any):
        a = self._input(layer, "input a", a, ("int8", "uint8"))
        b = self._input(layer, "input b", b, ("int8", "uint8"))
        shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
        xp = self.xp
        return (xp.ascontiguousarray(xp.broadcast_to(a, shape)),
                xp.ascontiguousarray(xp.broadcast_to(b, shape)), shape)

    def add(self, a: Any, b: Any, p: AddParams) -> Any:
        a, b, shape = self._binary_inputs(p.name, a, b)
        rq, rq_args = self._requant(p, p.requant, 1)
        y = self.xp.empty(shape, dtype=rq.out_dtype)
        if y.size == 0:
            return y
        fa = multiplier_to_float32(p.a_multiplier, p.a_shift)
        fb = multiplier_to_float32(p.b_multiplier, p.b_shift)
        self.k.function("elementwise.cu", "gq_add")(
            self._grid1d(y.size), (THREADS,),
            (a, i32(a.dtype == np.uint8), b, i32(b.dtype == np.uint8), np.int64(y.size),
             i32(p.a_zero_point), i32(p.b_zero_point), i32(p.a_multiplier), i32(p.a_shift),
             np.float32(fa), i32(p.b_multiplier), i32(p.b_shift), np.float32(fb),
             i32(p.b_negate), i32(p.left_shift), *rq_args, y))
        return y

    def mul(self, a: Any, b: Any, p: MulParams) -> Any:
        a, b, shape = self._binary_inputs(p.name, a, b)
        rq, rq_args = self._requant(p, p.requant, 1)
        y = self.xp.empty(shape, dtype=rq.out_dtype)
        if y.size == 0:
            return y
        self.k.function("elementwise.cu", "gq_mul")(
            self._grid1d(y.size), (THREADS,),
            (a, i32(a.dtype == np.uint8), b, i32(b.dtype == np.uint8), np.int64(y.size),
             i32(p.a_zero_point), i32(p.b_zero_point), *rq_args, y))
        return y

    def lookup(self, x: Any, p: LookupParams) -> Any:
        x = self._input(p.name, "input", x, (p.input_dtype,))
        table = self._uploads.get(p, lambda: self._upload(np.ascontiguousarray(p.table)))
        y = self.xp.empty(x.shape, dtype=p.table.dtype)
        if y.size == 0:
            return y
        self.k.function("elementwise.cu", "gq_lookup")(
            self._grid1d(y.size), (THREADS,),
            (x, i32(p.input_dtype == "uint8"), np.int64(y.size), table, y))
        return y

    def concat(self, xs: Sequence[Any], p: ConcatParams) -> Any:
        if len(xs) != len(p.tables):
            raise ShapeError(f"layer {p.name!r}: {len(xs)} inputs for {len(p.tables)} tables")
        parts = [self.k.asarray(x) if t is None else self.lookup(x, t)
                 for x, t in zip(xs, p.tables)]
        dtypes = {part.dtype.name for part in parts}
        if len(dtypes) != 1:
            raise ShapeError(f"layer {p.name!r}: inputs join as mixed dtypes {sorted(dtypes)}")
        return self.xp.concatenate(parts, axis=p.axis)

    def _channels(self, shape: tuple[int, ...], q: QuantParams) -> tuple[int, int]:
        """``(inner, channels)``: element i has channel ``(i // inner) % channels``."""
        if q.axis is None:
            return 1, 1
        axis = q.axis % len(shape)
        return math.prod(shape[axis + 1:]), q.scale.size

    def quantize(self, x: Any, p: QuantizeParams) -> Any:
        x = self.xp.ascontiguousarray(self.k.asarray(x), dtype=np.float32)
        nans = int(self.xp.isnan(x).sum())
        if nans:
            raise QuantizationError(f"layer {p.name!r}: cannot quantize NaN ({nans} values)")
        q = p.params
        scale, zp = self._uploads.get(
            p, lambda: (self._upload(q.scale), self._upload(q.zero_point)))
        np_dtype = DTYPES[q.dtype][0]
        qmin, qmax = q.bounds
        y = self.xp.empty(x.shape, dtype=np_dtype)
        if y.size == 0:
            return y
        inner, channels = self._channels(tuple(x.shape), q)
        self.k.function("elementwise.cu", "gq_quantize")(
            self._grid1d(y.size), (THREADS,),
            (x, np.int64(y.size), scale, zp, np.int64(inner), i32(channels),
             i32(QUANTIZE_ROUNDING_CODES[p.rounding]), i32(qmin), i32(qmax), y))
        return y

    def dequantize(self, x: Any, p: QuantParams) -> Any:
        x = self._input("dequantize", "input", x, ("int8", "uint8"))
        scale, zp = self._uploads.get(
            p, lambda: (self._upload(p.scale), self._upload(p.zero_point)))
        y = self.xp.empty(x.shape, dtype=np.float32)
        if y.size == 0:
            return y
        inner, channels = self._channels(tuple(x.shape), p)
        self.k.function("elementwise.cu", "gq_dequantize")(
            self._grid1d(y.size), (THREADS,),
            (x, i32(x.dtype == np.uint8), np.int64(y.size), scale, zp, np.int64(inner),
             i32(channels), y))
        return y

    def transpose(self, x: Any, perm: Sequence[int]) -> Any:
        return self.xp.ascontiguousarray(self.k.asarray(x).transpose(tuple(perm)))

    def reshape(self, x: Any, shape: Sequence[int]) -> Any:
        return self.k.asarray(x).reshape(tuple(shape))

    def pad(self, x: Any, pads: Sequence[tuple[int, int]], value: int) -> Any:
        x = self.k.asarray(x)
        if x.dtype.kind in "iu":
            info = np.iinfo(x.dtype)
            if not info.min <= value <= info.max:
                raise ShapeError(f"pad value {value} does not fit {x.dtype}")
        return self.xp.pad(x, [tuple(q) for q in pads], mode="constant", constant_values=value)

    def pair_lookup(self, a: Any, b: Any, p: PairLookupParams) -> Any:
        a = self._input(p.name, "input a", a, (p.a_dtype,))
        b = self._input(p.name, "input b", b, (p.b_dtype,))
        try:
            shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
        except ValueError:
            raise ShapeError(
                f"layer {p.name!r}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast"
            ) from None
        xp = self.xp
        a = xp.ascontiguousarray(xp.broadcast_to(a, shape))
        b = xp.ascontiguousarray(xp.broadcast_to(b, shape))
        table = self._uploads.get(p, lambda: self._upload(np.ascontiguousarray(p.table)))
        y = xp.empty(shape, dtype=p.table.dtype)
        if y.size == 0:
            return y
        self.k.function("imported.cu", "gq_pair_lookup")(
            self._grid1d(y.size), (THREADS,),
            (a, i32(p.a_dtype == "uint8"), b, i32(p.b_dtype == "uint8"), np.int64(y.size), table,
             y))
        return y

    def avg_pool2d_float(self, x: Any, p: FloatAvgPoolParams) -> Any:
        x = self._input(p.name, "input", x, (p.input_dtype,), 4)
        batch, h, w, c = x.shape
        oh, ow = p.output_hw((h, w))
        np_dtype, lo, hi = DTYPES[p.output_dtype]
        y = self.xp.empty((batch, oh, ow, c), dtype=np_dtype)
        if y.size == 0:
            return y
        dequant = self._uploads.get(
            p, lambda: self._upload(np.ascontiguousarray(p.dequant, dtype=np.float32)))
        geo = _struct(FLOAT_POOL_GEOMETRY, h, w, c, oh, ow, *p.kernel, *p.stride, p.padding[0],
                      p.padding[2], p.count_include_pad)
        self.k.function("imported.cu", "gq_avg_pool2d_float")(
            self._grid1d(y.size), (THREADS,),
            (x, i32(p.input_dtype == "uint8"), i32(batch), geo, dequant,
             np.float32(p.output_scale), np.float32(p.output_zero_point), i32(lo), i32(hi), y))
        return y

    def _rows(self, layer: str, x: Any, dtype: str):
        x = self._input(layer, "input", x, (dtype,))
        if x.ndim == 0 or x.shape[-1] == 0:
            raise ShapeError(f"layer {layer!r}: softmax needs a non-empty last axis, got {x.shape}")
        return x, x.size // x.shape[-1], x.shape[-1]

    def softmax(self, x: Any, p: SoftmaxParams) -> Any:
        x, rows, d = self._rows(p.name, x, p.input_dtype)
        np_dtype, lo, hi = DTYPES[p.output_dtype]
        y = self.xp.empty(x.shape, dtype=np_dtype)
        if rows == 0:
            return y
        self.k.function("imported.cu", "gq_softmax")(
            self._grid1d(rows), (THREADS,),
            (x, i32(p.input_dtype == "uint8"), np.int64(rows), i32(d), i32(p.input_multiplier),
             i32(p.input_left_shift), i32(p.diff_min), i32(lo), i32(hi), y))
        return y

    def softmax_float(self, x: Any, p: FloatSoftmaxParams) -> Any:
        x, rows, d = self._rows(p.name, x, p.dtype)
        np_dtype, lo, hi = DTYPES[p.dtype]
        y = self.xp.empty(x.shape, dtype=np_dtype)
        if rows == 0:
            return y
        table = self._uploads.get(
            p, lambda: self._upload(np.ascontiguousarray(p.table, dtype=np.float32)))
        self.k.function("imported.cu", "gq_softmax_float")(
            self._grid1d(rows), (THREADS,),
            (x, i32(p.dtype == "uint8"), np.int64(rows), i32(d), table,
             np.float32(p.inverse_scale), i32(p.zero_point), i32(lo), i32(hi), y))
        return y

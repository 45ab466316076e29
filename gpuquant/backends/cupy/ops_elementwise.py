"""Launchers of the element-wise ops (elementwise.cu): add, mul, lookup (and concat through it),
quantize, dequantize."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import QuantizationError, ShapeError
from ...ops import AddParams, ConcatParams, LookupParams, MulParams, QuantizeParams
from ...quant.fixedpoint import multiplier_to_float32
from ...quant.params import DTYPES, QuantParams
from .launch import THREADS, Launcher, i32

QUANTIZE_ROUNDING_CODES = {"half_to_even": 0, "half_away_from_zero": 1}


class ElementwiseOps(Launcher):
    """add, mul, lookup, concat, quantize, dequantize (backends/base.py)."""

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
        """``(inner, channels)``: element i has channel ``(i // inner) % channels``; the tensor
        must have axis ``q.axis`` with one entry per channel (the NumPy backend broadcasts)."""
        if q.axis is None:
            return 1, 1
        q.broadcast_shape(len(shape))  # QuantizationError if the tensor lacks the axis
        axis = q.axis % len(shape)
        if q.scale.size not in (1, shape[axis]):
            raise ShapeError(f"{q.scale.size} per-axis parameters for axis {q.axis} of a tensor "
                             f"of shape {shape}")
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

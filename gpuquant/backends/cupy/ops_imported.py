"""Launchers of the ops that reproduce another runtime's arithmetic (imported.cu): pair_lookup,
avg_pool2d_float, softmax, softmax_float."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import ShapeError
from ...ops.float_pool import FloatAvgPoolParams
from ...ops.float_softmax import FloatSoftmaxParams
from ...ops.pair_lookup import PairLookupParams
from ...ops.softmax import SoftmaxParams
from ...quant.params import DTYPES
from .launch import THREADS, Launcher, i32, struct_arg

FLOAT_POOL_GEOMETRY = np.dtype([(f, "<i4") for f in (
    "H", "W", "C", "OH", "OW", "KH", "KW", "sh", "sw", "pad_top", "pad_left",
    "count_include_pad")])


class ImportedOps(Launcher):
    """pair_lookup, avg_pool2d_float, softmax, softmax_float (backends/base.py)."""

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
        geo = struct_arg(FLOAT_POOL_GEOMETRY, h, w, c, oh, ow, *p.kernel, *p.stride, p.padding[0],
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

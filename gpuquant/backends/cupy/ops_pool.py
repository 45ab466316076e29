"""Launchers of pooling and the requantized mean (pool.cu)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...ops import MeanParams, PoolParams
from .launch import THREADS, Launcher, blocks, i32, struct_arg

POOL_GEOMETRY = np.dtype([(f, "<i4") for f in (
    "H", "W", "C", "OH", "OW", "KH", "KW", "sh", "sw", "pad_top", "pad_left")])


class PoolOps(Launcher):
    """max_pool2d, avg_pool2d, mean (backends/base.py)."""

    def _pool(self, kernel: str, x: Any, p: PoolParams) -> Any:
        x = self._input(p.name, "input", x, (p.dtype,), 4)
        batch, h, w, c = x.shape
        oh, ow = p.output_hw((h, w))
        y = self.xp.empty((batch, oh, ow, c), dtype=x.dtype)
        if y.size == 0:
            return y
        geo = struct_arg(POOL_GEOMETRY, h, w, c, oh, ow, *p.kernel, *p.stride, p.padding[0],
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
            (max(1, min(blocks(rows, THREADS // 32), self.k.max_blocks)),), (THREADS,),
            (xt, i32(p.input_dtype == "uint8"), np.int64(rows), i32(r), i32(p.input_zero_point),
             *rq_args, y))
        return y

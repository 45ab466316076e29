"""Launchers of the accumulating products: fully connected (gemm.cu), conv2d and depthwise conv
(conv.cu), matmul of two activations (matmul.cu)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...errors import ShapeError
from ...ops import Conv2DParams, GemmParams, MatMulParams
from ..operands import gemm_operands, requant_operands, to_int8_image, zero_point_image
from .kernels import conv_name, depthwise_name, gemm_name, matmul_name
from .launch import THREADS, TILE, Launcher, blocks, i32, struct_arg

CONV_GEOMETRY = np.dtype([(f, "<i4") for f in (
    "H", "W", "C", "OH", "OW", "KH", "KW", "sh", "sw", "dh", "dw", "pad_top", "pad_left")])


class GemmOps(Launcher):
    """gemm, conv2d, matmul (backends/base.py)."""

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
        fn((blocks(m, TILE), blocks(n, TILE)), (THREADS,),
           (x, i32(p.input_dtype == "uint8"), i32(m), i32(k), i32(aligned), w, i32(n),
            i32(w.shape[1]), zw, folded, *rq_args, y))
        return y

    def conv2d(self, x: Any, p: Conv2DParams) -> Any:
        x = self._input(p.name, "input", x, (p.input_dtype,), 4)
        batch, oh, ow, c_out = p.output_shape(tuple(x.shape))
        _, h, w_, c = x.shape
        kh, kw = p.kernel
        geo = struct_arg(CONV_GEOMETRY, h, w_, c, oh, ow, kh, kw, *p.stride, *p.dilation,
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
        fn((blocks(batch * oh * ow, TILE), blocks(n_per_group, TILE), p.groups), (THREADS,),
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

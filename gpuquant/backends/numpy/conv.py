"""NHWC conv2d: im2col + exact GEMM, and a direct kernel for depthwise convolution.

Padding holds the input zero point (real 0), so every output is a GEMM row over
``K = KH*KW*C_in/groups`` values and ops/gemm.py's folding applies:
``acc = patch . w[o] - zw[o] * rowsum(patch) + folded_bias[o]`` (ops/conv.py). With
``native`` set ("vnni", "avx2") the GEMMs run on that native int8 core (native.py),
requantization fused.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ...ops import Conv2DParams
from ..operands import requant_operands
from .checks import check_input
from .gemm import exact_matmul
from .native import CACHES, NativeOperands, gemm_into, native_operands
from .requant import requantize

IM2COL_BUDGET = 1 << 24  # elements of one im2col block (16 MiB of 8-bit codes)


def windows(
    xp: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    out_hw: tuple[int, int],
) -> np.ndarray:
    """Read-only view (N, OH, OW, KH, KW, C) of the padded NHWC ``xp``: tap (i, j) of output
    (h, w) is ``xp[:, h*sh + i*dh, w*sw + j*dw, :]``."""
    sn, sh, sw, sc = xp.strides
    shape = (xp.shape[0], out_hw[0], out_hw[1], kernel[0], kernel[1], xp.shape[3])
    strides = (sn, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1], sc)
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)


def _pad_spatial(x: np.ndarray, padding: tuple[int, int, int, int], value: int) -> np.ndarray:
    top, bottom, left, right = padding
    if not any(padding):
        return x
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def conv2d(x: np.ndarray, p: Conv2DParams, native: str | None = None) -> np.ndarray:
    """``y[n,h,w,o] = requant(sum (x - zx)(w[o] - zw[o]) + bias[o])`` on NHWC ``x``."""
    check_input(p.name, "input", x, p.input_dtype, 4)
    _, oh, ow, _ = p.output_shape(x.shape)
    xp = _pad_spatial(x, p.padding, p.input_zero_point)
    if native and not p.is_depthwise:
        return _grouped_native(xp, p, (oh, ow), native)
    if p.is_depthwise:
        acc = _depthwise_acc(xp, p, (oh, ow))
    else:
        acc = _grouped_acc(xp, p, (oh, ow))
    return requantize(acc, p.requant)


def _group_operands(p: Conv2DParams, isa: str) -> tuple[NativeOperands, ...]:
    """Operands of native core ``isa`` for each group: its weights (C_out/groups, K), bias and
    requant slice."""
    c_out = p.weight.shape[0]
    cg_out = c_out // p.groups
    requant = requant_operands(p.requant, c_out)
    groups = []
    for g in range(p.groups):
        outs = slice(g * cg_out, (g + 1) * cg_out)
        sliced = dataclasses.replace(
            requant, multiplier=requant.multiplier[outs], shift=requant.shift[outs],
            multiplier_f32=requant.multiplier_f32[outs])
        groups.append(native_operands(
            p.weight[outs].reshape(cg_out, -1), p.weight_zero_point[outs], p.folded_bias[outs],
            p.input_dtype, sliced, isa))
    return tuple(groups)


def _grouped_native(xp: np.ndarray, p: Conv2DParams, out_hw: tuple[int, int], isa: str
                    ) -> np.ndarray:
    """Outputs (N, OH, OW, C_out) of each group's im2col rows on native core ``isa``."""
    groups = CACHES[isa].get(p, lambda: _group_operands(p, isa))
    n = xp.shape[0]
    c_out = p.weight.shape[0]
    cg_in, cg_out = p.weight.shape[3], c_out // p.groups
    k = p.kernel[0] * p.kernel[1] * cg_in
    view = windows(xp, p.kernel, p.stride, p.dilation, out_hw)
    pixels = out_hw[0] * out_hw[1]
    batch = max(1, IM2COL_BUDGET // max(pixels * k, 1))
    out = np.empty((n * pixels, c_out), dtype=groups[0].requant.out_dtype)
    for g, ops in enumerate(groups):
        for n0 in range(0, n, batch):
            cols = view[n0:n0 + batch, ..., g * cg_in:(g + 1) * cg_in].reshape(-1, k)
            gemm_into(cols, ops, out[n0 * pixels:(n0 + batch) * pixels,
                                     g * cg_out:(g + 1) * cg_out])
    return out.reshape(n, out_hw[0], out_hw[1], c_out)


def _grouped_acc(xp: np.ndarray, p: Conv2DParams, out_hw: tuple[int, int]) -> np.ndarray:
    """int64 accumulators (N, OH, OW, C_out): per group, an exact GEMM of the im2col rows."""
    n = xp.shape[0]
    c_out = p.weight.shape[0]
    cg_in = p.weight.shape[3]
    cg_out = c_out // p.groups
    k = p.kernel[0] * p.kernel[1] * cg_in
    view = windows(xp, p.kernel, p.stride, p.dilation, out_hw)
    per_image = out_hw[0] * out_hw[1] * k
    batch = max(1, IM2COL_BUDGET // max(per_image, 1))
    acc = np.empty((n, out_hw[0], out_hw[1], c_out), dtype=np.int64)
    has_zw = bool(np.any(p.weight_zero_point))
    for g in range(p.groups):
        outs = slice(g * cg_out, (g + 1) * cg_out)
        w = p.weight[outs].reshape(cg_out, k)
        zw = p.weight_zero_point[outs].astype(np.int64)
        for n0 in range(0, n, batch):
            cols = view[n0:n0 + batch, ..., g * cg_in:(g + 1) * cg_in].reshape(-1, k)
            part = exact_matmul(cols, w.T) + p.folded_bias[outs]
            if has_zw:
                part -= zw * cols.sum(axis=1, dtype=np.int64)[:, None]
            acc[n0:n0 + batch, ..., outs] = part.reshape(-1, out_hw[0], out_hw[1], cg_out)
    return acc


def _depthwise_acc(xp: np.ndarray, p: Conv2DParams, out_hw: tuple[int, int]) -> np.ndarray:
    """int32 accumulators (N, OH, OW, C_out) of a depthwise conv with depth multiplier m.

    Output channel o reads input channel ``o // m``:
    ``acc[..., o] = bias[o] + sum_{i,j} (x[.., i, j, o // m] - zx) * (w[o, i, j] - zw[o])``,
    one vectorised multiply-accumulate per tap. The static check of ops/accumulator.py bounds
    every partial sum by int32.
    """
    c_out = p.weight.shape[0]
    multiplier = c_out // xp.shape[3]
    centred = xp.astype(np.int32) - np.int32(p.input_zero_point)
    if multiplier > 1:
        centred = np.repeat(centred, multiplier, axis=3)
    w = p.weight[..., 0].astype(np.int32) - p.weight_zero_point[:, None, None]
    view = windows(centred, p.kernel, p.stride, p.dilation, out_hw)
    acc = np.broadcast_to(p.bias, (xp.shape[0], out_hw[0], out_hw[1], c_out)).copy()
    for i in range(p.kernel[0]):
        for j in range(p.kernel[1]):
            acc += view[:, :, :, i, j, :] * w[:, i, j]
    return acc

"""NHWC conv2d: im2col + exact GEMM, and a direct kernel for depthwise convolution.

Padding holds the input zero point (real 0), so every output is a GEMM row over
``K = KH*KW*C_in/groups`` values and ops/gemm.py's folding applies:
``acc = patch . w[o] - zw[o] * rowsum(patch) + folded_bias[o]`` (ops/conv.py). With
``native`` set ("vnni", "avx2") the GEMMs run on that native int8 core (native.py),
requantization fused.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ...ops import Conv2DParams
from ...quant.params import DTYPES
from ..operands import requant_operands
from .checks import check_input
from .gemm import exact_matmul
from .native import CACHES, PARALLEL_MIN_OPS, NativeOperands, gemm_into, native_operands
from .requant import CACHE_BLOCK, PARALLEL_MIN_SIZE, epilogue
from .threads import for_row_blocks

IM2COL_BUDGET = 1 << 24  # elements of one im2col block (16 MiB of 8-bit codes)
DEPTHWISE_BLOCK = 1 << 16  # int32 accumulators of one depthwise block (256 KiB, in L2 cache)


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
    if p.is_depthwise:
        return _depthwise(x, p, (oh, ow), native)
    xp = _pad_spatial(x, p.padding, p.input_zero_point)
    if native:
        return _grouped_native(xp, p, (oh, ow), native)
    return _grouped_blas(xp, p, (oh, ow))


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


def _grouped_blas(xp: np.ndarray, p: Conv2DParams, out_hw: tuple[int, int]) -> np.ndarray:
    """Outputs (N, OH, OW, C_out) of each group's im2col rows through ``exact_matmul``,
    requantized (int32 accumulators when ``p.requant`` is None).

    Output positions go through in blocks of whole images or of output rows of one image, each
    block's im2col rows, accumulators and epilogue in cache where they fit, the blocks split
    over the backend's threads. The accumulators are int32 throughout: ``exact_matmul`` gives
    ``patch . w[o]`` modulo 2**32, and adding ``folded_bias[o]`` and ``-zw[o] * rowsum(patch)``
    in int32 keeps the sum congruent to the final accumulator modulo 2**32, which it therefore
    equals, that accumulator lying in int32 by the bound checked when the params were built
    (ops/accumulator.py).
    """
    n = xp.shape[0]
    oh, ow = out_hw
    c_out, cg_in = p.weight.shape[0], p.weight.shape[3]
    cg_out = c_out // p.groups
    k = p.kernel[0] * p.kernel[1] * cg_in
    view = windows(xp, p.kernel, p.stride, p.dilation, out_hw)
    weights = [p.weight[g * cg_out:(g + 1) * cg_out].reshape(cg_out, k).T
               for g in range(p.groups)]
    bias = p.folded_bias.astype(np.int32)
    zw = p.weight_zero_point.astype(np.int32) if np.any(p.weight_zero_point) else None
    out = np.empty((n, oh, ow, c_out), dtype=np.int32 if p.requant is None else
                   DTYPES[p.requant.dtype][0])
    # Output positions of one block: at most CACHE_BLOCK accumulators and IM2COL_BUDGET codes.
    per_block = max(1, min(CACHE_BLOCK // c_out, IM2COL_BUDGET // k))
    if oh * ow <= per_block:  # whole images
        per = per_block // max(oh * ow, 1)
        pieces = [(slice(i, i + per), slice(None)) for i in range(0, n, per)]
    else:  # output rows of one image
        per = max(1, per_block // ow)
        pieces = [(slice(i, i + 1), slice(h, h + per)) for i in range(n) for h in range(0, oh, per)]

    def block(start: int, stop: int) -> None:
        for images, out_rows in pieces[start:stop]:
            win, dst = view[images, out_rows], out[images, out_rows]
            acc = np.empty((dst.size // c_out, c_out), dtype=np.int32)
            for g, w in enumerate(weights):
                outs = slice(g * cg_out, (g + 1) * cg_out)
                cols = win[..., g * cg_in:(g + 1) * cg_in].reshape(-1, k)
                acc[:, outs] = exact_matmul(cols, w, np.int32)
                if zw is not None:
                    acc[:, outs] -= zw[outs] * cols.sum(axis=1, dtype=np.int32)[:, None]
            acc += bias
            dst[...] = (acc if p.requant is None else epilogue(acc, p.requant)).reshape(dst.shape)

    if out.size:
        for_row_blocks(len(pieces), block, out.size >= PARALLEL_MIN_SIZE)
    return out


def _phase_rows(size: int, before: int, after: int, phase: int, stride: int
                ) -> tuple[int, int, slice]:
    """Along one axis padded by ``before``/``after``, the positions ``phase + q * stride``:
    their count, the first q that falls inside the unpadded input, and the input positions
    read from there on."""
    count = -(-(before + size + after - phase) // stride)
    first = max(0, -(-(before - phase) // stride))
    return count, first, slice(phase + first * stride - before, size, stride)


def stride_phases(
    x: np.ndarray,
    padding: tuple[int, int, int, int],
    stride: tuple[int, int],
    fill: int,
    offsets: set[tuple[int, int]],
    dtype: type,
) -> dict[tuple[int, int], np.ndarray]:
    """Stride phases (N, rows, pixels * C) in ``dtype`` of NHWC ``x`` padded with ``fill``: for
    each ``(a, b)`` in ``offsets``, ``phase[a, b][n, r, c * C + k] = xp[n, r*sh + a, c*sw + b, k]``
    with ``xp`` the padded input. A tap at padded offset ``(u, v)`` then reads
    ``phase[u % sh, v % sw]`` from row ``u // sh`` and pixel ``v // sw`` on, with unit strides
    along the output rows and along each row's pixels and channels (``tap_rows``)."""
    top, bottom, left, right = padding
    n, h, w, c = x.shape
    out = {}
    for a, b in offsets:
        rows, r0, r_in = _phase_rows(h, top, bottom, a, stride[0])
        pixels, c0, c_in = _phase_rows(w, left, right, b, stride[1])
        phase = np.full((n, rows, pixels, c), fill, dtype=dtype)
        inside = x[:, r_in, c_in]
        phase[:, r0:r0 + inside.shape[1], c0:c0 + inside.shape[2]] = inside
        out[a, b] = phase.reshape(n, rows, pixels * c)
    return out


def tap_rows(phases: dict[tuple[int, int], np.ndarray], tap: tuple[int, int],
             stride: tuple[int, int], out_hw: tuple[int, int], channels: int) -> np.ndarray:
    """View (N, OH, OW * C) of the padded input at padded offset ``tap`` from each output
    position: ``xp[n, h*sh + u, w*sw + v, k]`` at ``[n, h, w * C + k]`` (``stride_phases``)."""
    (u, v), (sh, sw) = tap, stride
    start = v // sw * channels
    return phases[u % sh, v % sw][:, u // sh:u // sh + out_hw[0],
                                  start:start + out_hw[1] * channels]


def _tap_grid(kernel: int, dilation: int, stride: int, phase: int) -> tuple[list[int], int, int]:
    """Along one axis, the taps ``i`` whose padded offset ``i * dilation`` falls on ``phase``
    (mod ``stride``), the first one's offset within that phase, and the step between them
    there: they are every ``stride / g``-th tap (``g = gcd(stride, dilation)``), so their
    offsets ``i * dilation // stride`` within the phase are ``dilation / g`` apart."""
    taps = [i for i in range(kernel) if i * dilation % stride == phase]
    step = dilation // math.gcd(stride, dilation)
    return taps, taps[0] * dilation // stride, step


def _depthwise(x: np.ndarray, p: Conv2DParams, out_hw: tuple[int, int], native: str | None
               ) -> np.ndarray:
    """Depthwise conv (depth multiplier m = C_out / C_in) of NHWC ``x``, requantized (int32
    accumulators when ``p.requant`` is None) on native core ``native``'s epilogue (None: NumPy).

    Output channel o reads input channel ``o // m``; with ``w'[o] = w[o] - zw[o]`` and the
    zero-point terms folded into ``folded_bias`` (ops/gemm.py, padding holding ``zx`` so every
    window has all its taps)::

        acc[n, h, w, o] = folded_bias[o]
                          + sum_{i,j} xp[n, h*sh + i*dh, w*sw + j*dw, o // m] * w'[o, i, j]

    with ``xp`` the input padded with ``zx``. The taps on one stride phase of ``xp``
    (``stride_phases``) form a grid there, so their sum is one int32 ``einsum`` over a strided view
    whose innermost axis runs with unit stride over the (OW * C_out) values of an output row.
    Images go through in blocks of about DEPTHWISE_BLOCK accumulators, their phases built and
    their outputs requantized while they are in cache, the blocks split over the backend's
    threads.
    """
    c_out = p.weight.shape[0]
    multiplier = c_out // x.shape[3]
    if multiplier > 1:
        x = np.repeat(x, multiplier, axis=3)
    (kh, kw), (sh, sw), (dh, dw) = p.kernel, p.stride, p.dilation
    n, (oh, ow) = x.shape[0], out_hw
    w = p.weight[..., 0].astype(np.int32) - p.weight_zero_point[:, None, None]
    # Headroom (ops/accumulator.py): the final acc[n, h, w, o] = sum (x - zx) * w'[o] + bias[o]
    # lies in int32 by the bound checked when the params were built. The partial sums here (raw
    # codes times w', folded_bias) need not: every one is an int32 array operation (astype,
    # einsum, +=), which NumPy computes modulo 2**32 without a warning, so the sum of all taps
    # is congruent to the final value modulo 2**32 and, that value being in int32, equal to it.
    row_weights = np.tile(w.transpose(1, 2, 0), (1, 1, ow))  # (KH, KW, OW * C_out)
    row_bias = np.tile(p.folded_bias.astype(np.int32), ow)
    row = ow * c_out
    grids = []
    for a in sorted({i * dh % sh for i in range(kh)}):
        rows, r0, dr = _tap_grid(kh, dh, sh, a)
        for b in sorted({j * dw % sw for j in range(kw)}):
            cols, c0, dc = _tap_grid(kw, dw, sw, b)
            grids.append(((a, b), r0, dr, c0, dc, row_weights[np.ix_(rows, cols)]))
    out = np.empty((n, oh, row), dtype=np.int32 if p.requant is None else
                   DTYPES[p.requant.dtype][0])
    images = max(1, DEPTHWISE_BLOCK // max(oh * row, 1))

    def block(start: int, stop: int) -> None:
        acc = np.empty((min(images, stop - start), oh, row), dtype=np.int32)
        for n0 in range(start, stop, images):
            part = acc[:min(stop, n0 + images) - n0]
            phases = stride_phases(x[n0:n0 + len(part)], p.padding, p.stride,
                                   p.input_zero_point, {g[0] for g in grids}, np.int32)
            np.copyto(part, row_bias)
            for key, r0, dr, c0, dc, weights in grids:
                phase = phases[key][:, r0:, c0 * c_out:]
                s_image, s_row, s_value = phase.strides
                taps = np.lib.stride_tricks.as_strided(
                    phase, (len(part),) + weights.shape[:2] + (oh, row),
                    (s_image, dr * s_row, dc * c_out * s_value, s_row, s_value), writeable=False)
                part += np.einsum("nijrc,ijc->nrc", taps, weights)
            span = slice(n0, n0 + len(part))
            if p.requant is None:
                out[span] = part
            else:
                out[span] = epilogue(part.reshape(-1, c_out), p.requant, native
                                     ).reshape(part.shape)

    for_row_blocks(n, block, n * oh * row * kh * kw >= PARALLEL_MIN_OPS)
    return out.reshape(n, oh, ow, c_out)

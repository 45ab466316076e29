"""NHWC pooling on 8-bit codes: max, TFLite average, and requantized mean (ops/pool.py)."""

from __future__ import annotations

import numpy as np

from ...ops import MeanParams, PoolParams
from ...quant.params import DTYPES
from .checks import check_input
from .conv import stride_phases, tap_rows, windows
from .requant import requantize


def _pad_hw(x: np.ndarray, padding: tuple[int, int, int, int], value: int) -> np.ndarray:
    top, bottom, left, right = padding
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def _tap_phases(x: np.ndarray, p: PoolParams, fill: int, dtype: type
                ) -> tuple[list[tuple[int, int]], dict[tuple[int, int], np.ndarray]]:
    """The window's taps (i, j) and the stride phases of ``x`` padded with ``fill`` they read."""
    taps = [(i, j) for i in range(p.kernel[0]) for j in range(p.kernel[1])]
    offsets = {(i % p.stride[0], j % p.stride[1]) for i, j in taps}
    return taps, stride_phases(x, p.padding, p.stride, fill, offsets, dtype)


def max_pool2d(x: np.ndarray, p: PoolParams) -> np.ndarray:
    """``clamp(max over the valid positions of each window, qmin, qmax)``.

    Padded positions hold the dtype's lowest code, which never exceeds a valid value.
    """
    check_input(p.name, "input", x, p.dtype, 4)
    out_hw = p.output_hw(x.shape[1:3])
    np_dtype, lowest, _ = DTYPES[p.dtype]
    taps, phases = _tap_phases(x, p, lowest, np_dtype)
    out = tap_rows(phases, taps[0], p.stride, out_hw, x.shape[3]).copy()
    for tap in taps[1:]:
        np.maximum(out, tap_rows(phases, tap, p.stride, out_hw, x.shape[3]), out=out)
    np.clip(out, p.qmin, p.qmax, out=out)
    return out.reshape(x.shape[0], *out_hw, x.shape[3])


def avg_pool2d(x: np.ndarray, p: PoolParams) -> np.ndarray:
    """TFLite average pool: ``clamp(round_half_away_from_zero(sum x / count))`` over raw codes.

    ``count`` is the number of valid (unpadded) positions of each window; the division is in
    integers: ``sign(s) * ((|s| + count // 2) // count)``.
    """
    check_input(p.name, "input", x, p.dtype, 4)
    out_hw = p.output_hw(x.shape[1:3])
    taps, phases = _tap_phases(x, p, 0, x.dtype)
    total = np.zeros((x.shape[0], out_hw[0], out_hw[1] * x.shape[3]), dtype=np.int32)
    for tap in taps:  # |total| <= KH*KW * 255: within int32 for windows under 2**23 taps
        np.add(total, tap_rows(phases, tap, p.stride, out_hw, x.shape[3]), out=total)
    total = total.reshape(x.shape[0], *out_hw, x.shape[3])
    ones = np.ones((1,) + x.shape[1:3] + (1,), dtype=np.int32)
    count = windows(_pad_hw(ones, p.padding, 0), p.kernel, p.stride, (1, 1), out_hw).sum(
        axis=(3, 4), dtype=np.int32
    )
    rounded = np.sign(total) * ((np.abs(total) + count // 2) // count)
    return np.clip(rounded, p.qmin, p.qmax).astype(DTYPES[p.dtype][0])


def mean(x: np.ndarray, p: MeanParams) -> np.ndarray:
    """``requant(sum over axes of (x - zx))``; the multiplier already divides by the count."""
    check_input(p.name, "input", x, p.input_dtype)
    axes = tuple(a % x.ndim for a in p.axes) if x.ndim else ()
    total = (x.astype(np.int64) - p.input_zero_point).sum(axis=axes, keepdims=p.keepdims)
    return requantize(total, p.requant)

"""NHWC pooling on 8-bit codes: max, TFLite average, and requantized mean (ops/pool.py)."""

from __future__ import annotations

import numpy as np

from ...ops import MeanParams, PoolParams
from ...quant.params import DTYPES
from .checks import check_input
from .conv import windows
from .requant import requantize


def _pad_hw(x: np.ndarray, padding: tuple[int, int, int, int], value: int) -> np.ndarray:
    top, bottom, left, right = padding
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def max_pool2d(x: np.ndarray, p: PoolParams) -> np.ndarray:
    """``clamp(max over the valid positions of each window, qmin, qmax)``.

    Padded positions hold the dtype's lowest code, which never exceeds a valid value.
    """
    check_input(p.name, "input", x, p.dtype, 4)
    out_hw = p.output_hw(x.shape[1:3])
    np_dtype, lowest, _ = DTYPES[p.dtype]
    view = windows(_pad_hw(x, p.padding, lowest), p.kernel, p.stride, (1, 1), out_hw)
    return np.clip(view.max(axis=(3, 4)), p.qmin, p.qmax).astype(np_dtype)


def avg_pool2d(x: np.ndarray, p: PoolParams) -> np.ndarray:
    """TFLite average pool: ``clamp(round_half_away_from_zero(sum x / count))`` over raw codes.

    ``count`` is the number of valid (unpadded) positions of each window; the division is in
    integers: ``sign(s) * ((|s| + count // 2) // count)``.
    """
    check_input(p.name, "input", x, p.dtype, 4)
    out_hw = p.output_hw(x.shape[1:3])
    view = windows(_pad_hw(x.astype(np.int32), p.padding, 0), p.kernel, p.stride, (1, 1), out_hw)
    total = view.sum(axis=(3, 4), dtype=np.int32)
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

"""Kernels of the ops that reproduce other runtimes' arithmetic (int8 model importers).

pair_lookup (ops/pair_lookup.py), avg_pool2d_float (ops/float_pool.py), softmax
(ops/softmax.py) and softmax_float (ops/float_softmax.py); ``ImportedOps`` gives them to
NumpyBackend.
"""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError
from ...ops.float_pool import FloatAvgPoolParams
from ...ops.float_softmax import FloatSoftmaxParams
from ...ops.pair_lookup import PairLookupParams
from ...ops.softmax import ACCUMULATION_INTEGER_BITS, SCALED_DIFF_INTEGER_BITS, SoftmaxParams
from ...quant.fixedpoint import rounding_divide_by_pot, saturating_rounding_doubling_high_mul
from ...quant.fixedpoint_exp import exp_on_negative_values, reciprocal
from ...quant.params import DTYPES, dtype_bounds
from .checks import check_input
from .conv import windows


def pair_lookup(a: np.ndarray, b: np.ndarray, p: PairLookupParams) -> np.ndarray:
    """``p.table[a - qmin_a, b - qmin_b]`` with ``a`` and ``b`` broadcast."""
    check_input(p.name, "input a", a, p.a_dtype)
    check_input(p.name, "input b", b, p.b_dtype)
    try:
        ia, ib = np.broadcast_arrays(
            a.astype(np.intp) - dtype_bounds(p.a_dtype)[0],
            b.astype(np.intp) - dtype_bounds(p.b_dtype)[0],
        )
    except ValueError:
        raise ShapeError(
            f"layer {p.name!r}: shapes {a.shape} and {b.shape} do not broadcast"
        ) from None
    return p.table[ia, ib]


def avg_pool2d_float(x: np.ndarray, p: FloatAvgPoolParams) -> np.ndarray:
    """ONNX Runtime's float32 average pool on NHWC codes, operation by operation."""
    check_input(p.name, "input", x, p.input_dtype, 4)
    out_hw = p.output_hw(x.shape[1:3])
    top, bottom, left, right = p.padding
    qmin = dtype_bounds(p.input_dtype)[0]
    values = np.asarray(p.dequant, dtype=np.float32)[x.astype(np.intp) - qmin]
    pad = ((0, 0), (top, bottom), (left, right), (0, 0))
    view = windows(np.pad(values, pad), p.kernel, p.stride, (1, 1), out_hw)
    total = np.zeros(view.shape[:3] + view.shape[5:], dtype=np.float32)
    for i in range(p.kernel[0]):
        for j in range(p.kernel[1]):
            # Padded taps add +0.0, which leaves a float32 sum unchanged.
            total = total + view[:, :, :, i, j, :]
    if p.count_include_pad:
        count = np.float32(p.kernel[0] * p.kernel[1])
    else:
        ones = np.pad(np.ones((1,) + x.shape[1:3] + (1,), dtype=np.int32), pad)
        count = windows(ones, p.kernel, p.stride, (1, 1), out_hw).sum(axis=(3, 4)).astype(
            np.float32
        )
    average = total / count
    shifted = average / np.float32(p.output_scale) + np.float32(p.output_zero_point)
    np_dtype, lo, hi = DTYPES[p.output_dtype]
    return np.clip(np.rint(shifted.astype(np.float64)), lo, hi).astype(np_dtype)


def softmax(x: np.ndarray, p: SoftmaxParams) -> np.ndarray:
    """TFLite's reference fixed-point softmax over the last axis (ops/softmax.py)."""
    check_input(p.name, "input", x, p.input_dtype)
    codes = x.astype(np.int64)
    diff = codes - codes.max(axis=-1, keepdims=True)
    inside = diff >= p.diff_min
    scaled = saturating_rounding_doubling_high_mul(diff << p.input_left_shift, p.input_multiplier)
    exps = exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS)
    terms = rounding_divide_by_pot(exps, ACCUMULATION_INTEGER_BITS)
    total = np.where(inside, terms, 0).sum(axis=-1, keepdims=True)
    scale, bits_over_unit = reciprocal(total, ACCUMULATION_INTEGER_BITS)
    np_dtype, lo, hi = DTYPES[p.output_dtype]
    unsaturated = rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(scale, exps), bits_over_unit + 31 - 8
    )
    return np.where(inside, np.clip(unsaturated + lo, lo, hi), lo).astype(np_dtype)


def softmax_float(x: np.ndarray, p: FloatSoftmaxParams) -> np.ndarray:
    """ONNX Runtime's QLinearSoftmax over the last axis (ops/float_softmax.py)."""
    check_input(p.name, "input", x, p.dtype)
    codes = x.astype(np.int64)
    exps = np.asarray(p.table, np.float32)[codes - codes.max(axis=-1, keepdims=True) + 255]
    # cumsum adds left to right in float32, the runtime's order; the last entry is the sum.
    total = np.cumsum(exps, axis=-1, dtype=np.float32)[..., -1:]
    ratio = (exps * np.float32(p.inverse_scale)) / total
    q = np.rint(ratio.astype(np.float64)) + p.zero_point
    np_dtype, lo, hi = DTYPES[p.dtype]
    return np.clip(q, lo, hi).astype(np_dtype)


class ImportedOps:
    """NumpyBackend methods for the ops above (backends/base.py)."""

    def pair_lookup(self, a: np.ndarray, b: np.ndarray, p: PairLookupParams) -> np.ndarray:
        return pair_lookup(a, b, p)

    def avg_pool2d_float(self, x: np.ndarray, p: FloatAvgPoolParams) -> np.ndarray:
        return avg_pool2d_float(x, p)

    def softmax(self, x: np.ndarray, p: SoftmaxParams) -> np.ndarray:
        return softmax(x, p)

    def softmax_float(self, x: np.ndarray, p: FloatSoftmaxParams) -> np.ndarray:
        return softmax_float(x, p)

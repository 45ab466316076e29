"""Max pool, TFLite average pool and requantized mean against loop references."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from gpuquant.backends.numpy import NumpyBackend
from gpuquant.errors import QuantizationError
from gpuquant.ops import MeanParams, PoolParams
from gpuquant.quant.fixedpoint import ROUNDING_MODES
from int_reference import NP_DTYPES, codes, random_requant, requant

nb = NumpyBackend()

WINDOWS = [((2, 2), (2, 2), (0, 0, 0, 0)), ((3, 3), (1, 1), (1, 1, 1, 1)),
           ((3, 2), (2, 3), (2, 1, 0, 1)), ((1, 1), (1, 1), (0, 0, 0, 0))]


def _valid_windows(x, kernel, stride, padding):
    """Yield (h, w, values (N, count, C)) over the valid positions of each output window."""
    _, hh, ww, _ = x.shape
    top, bottom, left, right = padding
    oh = (hh + top + bottom - kernel[0]) // stride[0] + 1
    ow = (ww + left + right - kernel[1]) // stride[1] + 1
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * stride[0] - top, j * stride[1] - left
            rows = [r for r in range(r0, r0 + kernel[0]) if 0 <= r < hh]
            cols = [c for c in range(c0, c0 + kernel[1]) if 0 <= c < ww]
            vals = x[:, rows][:, :, cols].reshape(x.shape[0], -1, x.shape[3]).astype(np.int64)
            yield i, j, oh, ow, vals


def pool_reference(x, kernel, stride, padding, qmin, qmax, average):
    out = None
    for i, j, oh, ow, vals in _valid_windows(x, kernel, stride, padding):
        if out is None:
            out = np.zeros((x.shape[0], oh, ow, x.shape[3]), np.int64)
        if average:
            for idx in np.ndindex(vals.shape[0], vals.shape[2]):
                v = vals[idx[0], :, idx[1]]
                q = Fraction(int(v.sum()), v.size)
                mag = int(abs(q) + Fraction(1, 2))  # half away from zero
                out[idx[0], i, j, idx[1]] = mag if q >= 0 else -mag
        else:
            out[:, i, j] = vals.max(axis=1)
    return np.clip(out, qmin, qmax).astype(x.dtype)


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("dtype,bounds", [("int8", (-128, 127)), ("int8", (-20, 60)),
                                          ("uint8", (0, 255)), ("uint8", (10, 200))])
@pytest.mark.parametrize("average", [False, True], ids=["max", "avg"])
def test_pool_matches_reference(window, dtype, bounds, average):
    kernel, stride, padding = window
    x = codes(np.random.default_rng(kernel[0] * 7 + stride[1]), (2, 7, 8, 3), dtype)
    p = PoolParams("pool", kernel, stride, padding, dtype, *bounds)
    got = (nb.avg_pool2d if average else nb.max_pool2d)(x, p)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, pool_reference(x, kernel, stride, padding, *bounds, average))


def test_avg_pool_divides_by_valid_count_and_rounds_half_away_from_zero():
    # Corner window with padding 1 covers 4 valid codes: (-1 -2 -2 -2) / 4 = -1.75 -> -2;
    # (1 + 2 + 0 + 0) / 4 = 0.75 -> 1; (-1 + -1 + 0 + 0) / 4 = -0.5 -> -1; 0.5 -> 1.
    x = np.zeros((4, 2, 2, 1), np.int8)
    x[0, :, :, 0] = [[-1, -2], [-2, -2]]
    x[1, :, :, 0] = [[1, 2], [0, 0]]
    x[2, :, :, 0] = [[-1, -1], [0, 0]]
    x[3, :, :, 0] = [[1, 1], [0, 0]]
    p = PoolParams("avg", (3, 3), (2, 2), (1, 1, 1, 1), "int8", -128, 127)
    np.testing.assert_array_equal(nb.avg_pool2d(x, p).reshape(-1), [-2, 1, -1, 1])


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("axes,keepdims", [((1, 2), True), ((1, 2), False), ((-1,), False)])
@pytest.mark.parametrize("dtype,zx", [("int8", -128), ("uint8", 255), ("int8", 3)])
def test_mean_matches_reference(rounding, axes, keepdims, dtype, zx):
    rng = np.random.default_rng(len(axes) + zx + 300)
    x = codes(rng, (2, 5, 3, 4), dtype)
    channels = 1 if -1 in axes else 4
    r = random_requant(rng, channels, "uint8", rounding)
    p = MeanParams("mean", axes, keepdims, zx, dtype, r)
    total = (x.astype(np.int64) - zx).sum(axis=axes, keepdims=keepdims)
    np.testing.assert_array_equal(nb.mean(x, p), requant(total, r))
    assert NP_DTYPES["uint8"] == nb.mean(x, p).dtype


@pytest.mark.parametrize("padding", [(2, 0, 0, 0), (0, 2, 0, 0), (0, 0, 2, 0), (0, 0, 0, 2)])
def test_pool_params_refuse_a_window_lying_in_padding(padding):
    # A 2x2 window, stride 2, on a 2x2 input: padding 2 on any side adds a window of padding only.
    with pytest.raises(QuantizationError, match="windows with no input"):
        PoolParams("pool", (2, 2), (2, 2), padding, "int8", -128, 127)


@pytest.mark.parametrize("field, value", [("input_zero_point", 0.5), ("input_zero_point", 300),
                                          ("axes", (1, 1)), ("axes", ([5], 2)),
                                          ("keepdims", 1)])
def test_mean_params_refuse_bad_fields(field, value):
    fields = {"name": "mean", "axes": (1, 2), "keepdims": True, "input_zero_point": 0,
              "input_dtype": "int8", "requant": random_requant(np.random.default_rng(0), 1,
                                                               "int8", "gemmlowp")}
    fields[field] = value
    with pytest.raises(QuantizationError, match="'mean'"):
        MeanParams(**fields)

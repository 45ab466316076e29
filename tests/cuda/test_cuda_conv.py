"""gq_conv2d / gq_depthwise_conv2d (cuda_src/conv.cu) on the CPU against the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

from gpuquant.ops import Conv2DParams, Requant
from gpuquant.quant.params import DTYPES

ROUNDINGS = ("gemmlowp", "single", "float32_half_even")


def _codes(rng, shape, dtype):
    _, lo, hi = DTYPES[dtype]
    return rng.integers(lo, hi + 1, shape).astype(DTYPES[dtype][0])


def _conv(rng, c_in, c_out, kernel, groups, x_dtype="int8", zx=3, rounding="gemmlowp",
          out="int8", w_dtype="int8", **geometry):
    w = _codes(rng, (c_out, *kernel, c_in // groups), w_dtype)
    zw = rng.integers(120, 136, c_out) if w_dtype == "uint8" else rng.integers(-2, 3, c_out)
    _, lo, hi = DTYPES[out]
    rq = Requant(rng.integers(2**30, 2**31, c_out), rng.integers(-11, -6, c_out), rounding,
                 int(rng.integers(lo, hi + 1)), lo, hi, out)
    return Conv2DParams("conv", w, zw, zx, x_dtype, rng.integers(-5000, 5000, c_out), rq,
                        groups=groups, **geometry)


CASES = [
    # c_in, c_out, kernel, groups, geometry
    (3, 8, (3, 3), 1, {}),
    (5, 7, (3, 2), 1, {"stride": (2, 1), "padding": (1, 0, 2, 1)}),
    (4, 6, (3, 3), 1, {"dilation": (2, 2), "padding": (2, 2, 2, 2)}),
    (8, 12, (1, 1), 1, {"stride": (2, 2)}),
    (6, 9, (3, 3), 3, {"padding": (1, 1, 1, 1)}),
    (8, 70, (2, 2), 2, {"stride": (1, 2), "padding": (0, 1, 1, 0)}),
    (4, 4, (3, 3), 4, {"padding": (1, 1, 1, 1)}),
    (3, 6, (5, 5), 3, {"stride": (2, 2), "padding": (2, 2, 2, 2), "dilation": (1, 2)}),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_conv_geometries(host_backend, reference, case, rounding):
    c_in, c_out, kernel, groups, geometry = CASES[case]
    rng = np.random.default_rng(case)
    p = _conv(rng, c_in, c_out, kernel, groups, rounding=rounding, **geometry)
    x = _codes(rng, (2, 9, 11, c_in), "int8")
    np.testing.assert_array_equal(host_backend.conv2d(x, p), reference.conv2d(x, p))


@pytest.mark.parametrize("x_dtype,zx",
                         [("uint8", 0), ("uint8", 255), ("int8", -128), ("int8", 127)])
@pytest.mark.parametrize("w_dtype", ["int8", "uint8"])
@pytest.mark.parametrize("case", [0, 4, 6])
def test_conv_dtypes_and_padding_zero_points(host_backend, reference, x_dtype, zx, w_dtype, case):
    c_in, c_out, kernel, groups, _ = CASES[case]
    rng = np.random.default_rng(zx + 300)
    p = _conv(rng, c_in, c_out, kernel, groups, x_dtype, zx, out="uint8", w_dtype=w_dtype,
              padding=(2, 1, 1, 2))
    x = _codes(rng, (1, 6, 5, c_in), x_dtype)
    np.testing.assert_array_equal(host_backend.conv2d(x, p), reference.conv2d(x, p))


def test_conv_int32_accumulators(host_backend, reference):
    rng = np.random.default_rng(11)
    p = _conv(rng, 4, 5, (3, 3), 1, padding=(1, 1, 1, 1))
    p = Conv2DParams("conv", p.weight, p.weight_zero_point, 3, "int8", p.bias, None,
                     padding=(1, 1, 1, 1))
    x = _codes(rng, (1, 5, 5, 4), "int8")
    y = host_backend.conv2d(x, p)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, reference.conv2d(x, p))


def test_conv_n7_padding_reads_the_input_zero_point(host_backend):
    """N7: input all 10 with zero point 10 (real 0), 3x3 ones, padding 1: every output is 0."""
    rq = Requant(np.array([2**30]), np.array([2]), "gemmlowp", 0, -128, 127, "int8")
    p = Conv2DParams("conv", np.ones((1, 3, 3, 1), np.int8), np.zeros(1), 10, "int8",
                     np.zeros(1), rq, padding=(1, 1, 1, 1))
    y = host_backend.conv2d(np.full((1, 3, 3, 1), 10, np.int8), p)
    np.testing.assert_array_equal(y, np.zeros((1, 3, 3, 1), np.int8))


def test_conv_depth_multiplier(host_backend, reference):
    rng = np.random.default_rng(4)
    p = _conv(rng, 3, 6, (3, 3), 3, "uint8", 77, stride=(2, 2), padding=(1, 1, 1, 1))
    assert p.is_depthwise
    x = _codes(rng, (2, 7, 7, 3), "uint8")
    np.testing.assert_array_equal(host_backend.conv2d(x, p), reference.conv2d(x, p))

"""gq_gemm (cuda_src/gemm.cu) on the CPU against the NumPy reference backend, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from host_kernels import HostKernels

from gpuquant.backends.cupy import CupyBackend
from gpuquant.ops import GemmParams, Requant
from gpuquant.quant.params import DTYPES

ROUNDINGS = ("gemmlowp", "single", "float32_half_even")


def _codes(rng, shape, dtype):
    _, lo, hi = DTYPES[dtype]
    return rng.integers(lo, hi + 1, shape).astype(DTYPES[dtype][0])


def _params(rng, n, k, x_dtype, zx, rounding, w_dtype="int8", out="int8", shift=(-12, -5),
            per_channel_zw=False):
    w = _codes(rng, (n, k), w_dtype)
    if w_dtype == "int8":
        w[w == -128] = -127
    zw = rng.integers(100, 156, n) if w_dtype == "uint8" else np.zeros(n, np.int64)
    if per_channel_zw and w_dtype == "int8":
        zw = rng.integers(-3, 4, n)
    bias = rng.integers(-20000, 20000, n)
    _, lo, hi = DTYPES[out]
    rq = Requant(rng.integers(2**30, 2**31, n), rng.integers(shift[0], shift[1], n), rounding,
                 int(rng.integers(lo, hi + 1)), lo, hi, out)
    return GemmParams("fc", w, zw, zx, x_dtype, bias, rq)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize(
    "m,n,k", [(1, 1, 1), (3, 5, 7), (70, 67, 101), (64, 64, 32), (65, 10, 130), (2, 130, 4)]
)
def test_gemm_odd_shapes(host_backend, reference, rounding, m, n, k):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    p = _params(rng, n, k, "int8", -7, rounding)
    x = _codes(rng, (m, k), "int8")
    np.testing.assert_array_equal(host_backend.gemm(x, p), reference.gemm(x, p))


@pytest.mark.parametrize("x_dtype,zx", [("int8", -128), ("int8", 127), ("uint8", 0),
                                        ("uint8", 255), ("uint8", 131)])
@pytest.mark.parametrize("w_dtype", ["int8", "uint8"])
@pytest.mark.parametrize("out", ["int8", "uint8"])
def test_gemm_dtypes_and_extreme_zero_points(host_backend, reference, x_dtype, zx, w_dtype, out):
    rng = np.random.default_rng(zx + 200)
    p = _params(rng, 37, 45, x_dtype, zx, "gemmlowp", w_dtype, out, per_channel_zw=True)
    x = _codes(rng, (33, 45), x_dtype)
    np.testing.assert_array_equal(host_backend.gemm(x, p), reference.gemm(x, p))


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_gemm_multipliers_above_one_saturate(host_backend, reference, rounding):
    rng = np.random.default_rng(5)
    p = _params(rng, 19, 23, "int8", 3, rounding, shift=(1, 4))
    x = _codes(rng, (21, 23), "int8")
    y = host_backend.gemm(x, p)
    np.testing.assert_array_equal(y, reference.gemm(x, p))
    assert (y == 127).any() and (y == -128).any()


def test_gemm_int32_accumulators(host_backend, reference):
    rng = np.random.default_rng(9)
    p = _params(rng, 9, 77, "uint8", 200, "gemmlowp")
    p = GemmParams("fc", p.weight, p.weight_zero_point, 200, "uint8", p.bias, None)
    x = _codes(rng, (11, 77), "uint8")
    y = host_backend.gemm(x, p)
    assert y.dtype == np.int32
    expected = (x.astype(np.int64) - 200) @ p.weight.astype(np.int64).T + p.bias
    np.testing.assert_array_equal(y, expected)


def test_gemm_wraps_inside_but_final_sum_is_exact():
    """w = zw = 127 and x = -128: sum x*w and zw*rowsum(x) pass int32 (K*16256 > 2**31) and wrap,
    yet acc = sum (x - zx)(w - zw) + bias = bias exactly. (dp4a path only: the emulated mma
    path takes ~30 s at this K; both share the epilogue.)"""
    host_backend = CupyBackend(HostKernels(75))
    k = 132200
    w = np.full((2, k), 127, np.int8)
    p = GemmParams("fc", w, np.full(2, 127), 0, "int8", np.array([5, -5]), None)
    x = np.full((1, k), -128, np.int8)
    np.testing.assert_array_equal(host_backend.gemm(x, p), [[5, -5]])


def test_gemm_n6_uint8_times_int8_pairs(host_backend):
    """N6: uint8 [255, 255] . int8 [127, 127] accumulates 64770 (no 16-bit saturation)."""
    w = np.array([[127, 127]], np.int8)
    p = GemmParams("fc", w, np.zeros(1), 0, "uint8", np.zeros(1), None)
    assert host_backend.gemm(np.array([[255, 255]], np.uint8), p)[0, 0] == 64770


def test_gemm_unaligned_rows_use_byte_loads(host_backend, reference):
    rng = np.random.default_rng(2)
    p = _params(rng, 8, 12, "int8", 1, "single")
    buf = _codes(rng, (5 * 12 + 1,), "int8")
    x = buf[1:].reshape(5, 12)
    assert x.ctypes.data % 4 != 0
    np.testing.assert_array_equal(host_backend.gemm(x, p), reference.gemm(x, p))

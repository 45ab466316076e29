"""pair_lookup, avg_pool2d_float, softmax and softmax_float (cuda_src/imported.cu) on host builds,
against the NumPy reference backend bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from gpuquant.frontends import ort_arith
from gpuquant.ops.float_pool import FloatAvgPoolParams
from gpuquant.ops.float_softmax import FloatSoftmaxParams
from gpuquant.ops.pair_lookup import PairLookupParams
from gpuquant.ops.softmax import tflite_softmax_params
from gpuquant.quant.params import DTYPES

DT = ("int8", "uint8")


def _codes(rng, shape, dtype):
    _, lo, hi = DTYPES[dtype]
    return rng.integers(lo, hi + 1, shape).astype(DTYPES[dtype][0])


@pytest.mark.parametrize("a_dtype,b_dtype", [("int8", "uint8"), ("uint8", "int8")])
def test_pair_lookup(host_backend, reference, a_dtype, b_dtype):
    rng = np.random.default_rng(1)
    p = PairLookupParams("pair", a_dtype, b_dtype, _codes(rng, (256, 256), "int8"))
    a, b = _codes(rng, (2, 3, 5), a_dtype), _codes(rng, (3, 1), b_dtype)
    np.testing.assert_array_equal(host_backend.pair_lookup(a, b, p), reference.pair_lookup(a, b, p))


@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("count_include_pad", [False, True])
def test_avg_pool2d_float(host_backend, reference, dtype, count_include_pad):
    rng = np.random.default_rng(2)
    zp = 3 if dtype == "int8" else 128
    p = FloatAvgPoolParams("pool", (3, 2), (2, 1), (1, 1, 1, 0), count_include_pad, dtype,
                           ort_arith.dequantize_codes(0.0371, zp, dtype), 0.0297, zp - 2, dtype)
    x = _codes(rng, (2, 7, 6, 5), dtype)
    np.testing.assert_array_equal(host_backend.avg_pool2d_float(x, p),
                                  reference.avg_pool2d_float(x, p))


@pytest.mark.parametrize("in_dtype,out_dtype", [("int8", "int8"), ("uint8", "uint8"),
                                                ("int8", "uint8")])
@pytest.mark.parametrize("scale,beta", [(0.1, 1.0), (0.02, 1.0), (0.5, 2.0)])
def test_softmax_fixed_point(host_backend, reference, in_dtype, out_dtype, scale, beta):
    rng = np.random.default_rng(3)
    p = tflite_softmax_params("sm", scale, beta, in_dtype, out_dtype)
    x = _codes(rng, (4, 3, 10), in_dtype)
    x[0, 0] = DTYPES[in_dtype][1]  # one row of equal maxima
    np.testing.assert_array_equal(host_backend.softmax(x, p), reference.softmax(x, p))


@pytest.mark.parametrize("dtype", DT)
def test_softmax_float(host_backend, reference, dtype):
    rng = np.random.default_rng(4)
    zp = -128 if dtype == "int8" else 0
    p = FloatSoftmaxParams("sm", dtype, ort_arith.softmax_exp_table(0.08, 10),
                           float(np.floor(np.float32(1.0) / np.float32(1 / 256))), zp)
    x = _codes(rng, (5, 2, 10), dtype)
    np.testing.assert_array_equal(host_backend.softmax_float(x, p), reference.softmax_float(x, p))

"""Pooling, mean, matmul, add/mul, lookup/concat, quantize/dequantize and layout ops of the CuPy
backend, on host builds of their kernels, against the NumPy reference backend bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from gpuquant.ops import (
    ADD_LEFT_SHIFT,
    AddParams,
    ConcatParams,
    LookupParams,
    MatMulParams,
    MeanParams,
    MulParams,
    PoolParams,
    QuantizeParams,
    Requant,
    build_table,
)
from gpuquant.quant.fixedpoint import ROUNDING_MODES, quantize_multiplier
from gpuquant.quant.params import DTYPES, QuantParams

DT = ("int8", "uint8")


def _codes(rng, shape, dtype):
    _, lo, hi = DTYPES[dtype]
    return rng.integers(lo, hi + 1, shape).astype(DTYPES[dtype][0])


def _requant(real, dtype, rounding, zp=3, channels=1):
    pairs = [quantize_multiplier(real * (1 + 0.1 * c)) for c in range(channels)]
    _, lo, hi = DTYPES[dtype]
    return Requant(np.array([m for m, _ in pairs]), np.array([s for _, s in pairs]), rounding,
                   zp if dtype == "int8" else zp + 128, lo, hi, dtype)


@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("geometry", [((2, 2), (2, 2), (0, 0, 0, 0)),
                                      ((3, 3), (2, 1), (1, 1, 1, 1)),
                                      ((3, 2), (1, 2), (2, 0, 1, 1))])
def test_pools(host_backend, reference, dtype, geometry):
    kernel, stride, padding = geometry
    rng = np.random.default_rng(len(dtype))
    _, lo, hi = DTYPES[dtype]
    p = PoolParams("pool", kernel, stride, padding, dtype, lo + 5, hi - 3)
    x = _codes(rng, (2, 7, 6, 5), dtype)
    np.testing.assert_array_equal(host_backend.max_pool2d(x, p), reference.max_pool2d(x, p))
    np.testing.assert_array_equal(host_backend.avg_pool2d(x, p), reference.avg_pool2d(x, p))


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("axes,keepdims", [((1, 2), True), ((1, 2), False), ((-1,), False),
                                           ((0, 3), True)])
def test_mean(host_backend, reference, rounding, axes, keepdims):
    rng = np.random.default_rng(3)
    x = _codes(rng, (2, 5, 7, 3), "uint8")
    count = int(np.prod([x.shape[a] for a in axes]))
    p = MeanParams("mean", axes, keepdims, 117, "uint8", _requant(0.9 / count, "int8", rounding))
    y = host_backend.mean(x, p)
    assert y.shape == reference.mean(x, p).shape
    np.testing.assert_array_equal(y, reference.mean(x, p))


def _add_params(s_a, s_b, s_y, za, zb, zy, dtype, rounding, negate):
    s = 2 * max(s_a, s_b)
    ma, sa = quantize_multiplier(s_a / s)
    mb, sb = quantize_multiplier(s_b / s)
    mo, so = quantize_multiplier(s / (2**ADD_LEFT_SHIFT * s_y))
    _, lo, hi = DTYPES[dtype]
    rq = Requant(np.array([mo]), np.array([so]), rounding, zy, lo, hi, dtype)
    return AddParams("add", za, zb, ma, sa, mb, sb, negate, ADD_LEFT_SHIFT, rq)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("negate", [False, True])
@pytest.mark.parametrize("dtypes", [("int8", "int8", "int8"), ("uint8", "int8", "uint8")])
def test_add_broadcasting(host_backend, reference, rounding, negate, dtypes):
    rng = np.random.default_rng(8)
    a = _codes(rng, (2, 3, 4, 5), dtypes[0])
    b = _codes(rng, (3, 1, 5), dtypes[1])
    za = 130 if dtypes[0] == "uint8" else -3
    zy = 100 if dtypes[2] == "uint8" else 7
    p = _add_params(0.05, 0.11, 0.07, za, 12, zy, dtypes[2], rounding, negate)
    np.testing.assert_array_equal(host_backend.add(a, b, p), reference.add(a, b, p))


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_mul_saturating(host_backend, reference, rounding):
    rng = np.random.default_rng(9)
    a = _codes(rng, (4, 1, 6), "int8")
    b = _codes(rng, (5, 1), "uint8")
    p = MulParams("mul", -128, 255, _requant(0.013, "int8", rounding))
    y = host_backend.mul(a, b, p)
    np.testing.assert_array_equal(y, reference.mul(a, b, p))
    assert (y == -128).any()


@pytest.mark.parametrize("dtypes", [("int8", "int8"), ("uint8", "int8"), ("uint8", "uint8")])
@pytest.mark.parametrize("requantized", [True, False])
def test_matmul_broadcast_batch(host_backend, reference, dtypes, requantized):
    rng = np.random.default_rng(10)
    a = _codes(rng, (2, 1, 5, 13), dtypes[0])
    b = _codes(rng, (3, 13, 6), dtypes[1])
    zb = rng.integers(0, 256, 6) if dtypes[1] == "uint8" else rng.integers(-128, 128, 6)
    rq = _requant(0.002, "int8", "single", channels=6) if requantized else None
    p = MatMulParams("mm", 13, 200 if dtypes[0] == "uint8" else -1, dtypes[0], zb, dtypes[1], rq)
    np.testing.assert_array_equal(host_backend.matmul(a, b, p), reference.matmul(a, b, p))


@pytest.mark.parametrize("in_dtype,out_dtype", [("int8", "uint8"), ("uint8", "int8")])
def test_lookup_and_concat(host_backend, reference, in_dtype, out_dtype):
    inp = QuantParams(np.float32(0.1), np.int32(-4 if in_dtype == "int8" else 120), in_dtype)
    out = QuantParams(np.float32(0.02), np.int32(130 if out_dtype == "uint8" else 0), out_dtype)
    t = LookupParams("lut", in_dtype, build_table("sigmoid", inp, out))
    rng = np.random.default_rng(12)
    x = _codes(rng, (3, 4, 5), in_dtype)
    np.testing.assert_array_equal(host_backend.lookup(x, t), reference.lookup(x, t))
    same = _codes(rng, (3, 2, 5), out_dtype)
    c = ConcatParams("cat", 1, (t, None))
    np.testing.assert_array_equal(host_backend.concat([x, same], c), reference.concat([x, same], c))


def test_concat_n8_different_scales(host_backend):
    """N8: A = [10, 20] (0.1, 0), B = [30, -10] (0.05, -10), output (0.1, 0): [10, 20, 20, 0]."""
    out = QuantParams(np.float32(0.1), np.int32(0), "int8")
    tb = LookupParams("b", "int8", build_table(
        "identity", QuantParams(np.float32(0.05), np.int32(-10), "int8"), out))
    y = host_backend.concat([np.array([10, 20], np.int8), np.array([30, -10], np.int8)],
                            ConcatParams("cat", 0, (None, tb)))
    np.testing.assert_array_equal(y, [10, 20, 20, 0])


@pytest.mark.parametrize("rounding", ["half_to_even", "half_away_from_zero"])
@pytest.mark.parametrize("dtype", DT)
def test_quantize_dequantize_per_tensor_and_per_axis(host_backend, reference, rounding, dtype):
    rng = np.random.default_rng(13)
    zp = 3 if dtype == "int8" else 131
    x = (rng.standard_normal((2, 3, 4)) * 4).astype(np.float32)
    x[0, 0, :3] = [0.25, -0.75, 1e30]  # ties at scale 0.5 and a value past the range
    x[1, 2, :2] = [-np.inf, np.inf]
    for q in (QuantParams(np.float32(0.5), np.int32(zp), dtype),
              QuantParams(np.array([0.5, 0.1, 0.03], np.float32), np.full(3, zp), dtype, axis=1)):
        p = QuantizeParams("q", q, rounding)
        y = host_backend.quantize(x, p)
        np.testing.assert_array_equal(y, reference.quantize(x, p))
        np.testing.assert_array_equal(host_backend.dequantize(y, q), reference.dequantize(y, q))


def test_quantize_rejects_nan(host_backend):
    p = QuantizeParams("q", QuantParams(np.float32(1.0), np.int32(0), "int8"))
    with pytest.raises(ValueError, match="NaN"):
        host_backend.quantize(np.array([1.0, np.nan], np.float32), p)


def test_layout_ops(host_backend, reference):
    x = np.arange(24, dtype=np.int8).reshape(2, 3, 4)
    np.testing.assert_array_equal(host_backend.transpose(x, (2, 0, 1)),
                                  reference.transpose(x, (2, 0, 1)))
    np.testing.assert_array_equal(host_backend.reshape(x, (4, 6)), reference.reshape(x, (4, 6)))
    pads = [(0, 0), (1, 2), (0, 1)]
    np.testing.assert_array_equal(host_backend.pad(x, pads, -5), reference.pad(x, pads, -5))


@pytest.mark.parametrize("dtype,narrow,bits", [("int8", True, 8), ("int8", False, 4),
                                               ("uint8", False, 3)])
def test_quantize_clamps_to_narrow_and_few_bit_bounds(host_backend, reference, dtype, narrow, bits):
    q = QuantParams(np.float32(0.05), np.int32(0), dtype, narrow_range=narrow, num_bits=bits)
    x = np.linspace(-20, 20, 41, dtype=np.float32)
    p = QuantizeParams("q", q)
    y = host_backend.quantize(x, p)
    np.testing.assert_array_equal(y, reference.quantize(x, p))
    assert (y.min(), y.max()) == q.bounds


def test_per_axis_parameters_must_fit_the_tensor(host_backend):
    # the kernels index channel (i // inner) % channels: a count that does not match the axis
    # used to give wrong codes silently where NumPy refuses to broadcast
    q = QuantParams(np.array([0.5, 0.1], np.float32), np.zeros(2), "int8", axis=1)
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="2 per-axis parameters for axis 1"):
        host_backend.quantize(x, QuantizeParams("q", q))
    with pytest.raises(ValueError, match="2 per-axis parameters for axis 1"):
        host_backend.dequantize(np.zeros((2, 3, 4), np.int8), q)

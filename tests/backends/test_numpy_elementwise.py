"""TFLite-style add/sub and mul against a Python-integer reference, with broadcasting."""

from __future__ import annotations

import numpy as np
import pytest

from gpuquant.backends.numpy import NumpyBackend
from gpuquant.errors import QuantizationError
from gpuquant.ops import ADD_LEFT_SHIFT, AddParams, MulParams, Requant
from gpuquant.quant.fixedpoint import ROUNDING_MODES, quantize_multiplier
from int_reference import NP_DTYPES, codes, random_requant, requant, scale_one

nb = NumpyBackend()


def add_params(s_a, s_b, s_y, za, zb, zy, dtype, rounding, negate=False):
    """AddParams from scales as ops/elementwise.py defines them (s = 2 * max(s_a, s_b))."""
    s = 2 * max(s_a, s_b)
    ma, sa = quantize_multiplier(s_a / s)
    mb, sb = quantize_multiplier(s_b / s)
    mo, so = quantize_multiplier(s / (2**ADD_LEFT_SHIFT * s_y))
    lo, hi = np.iinfo(NP_DTYPES[dtype]).min, np.iinfo(NP_DTYPES[dtype]).max
    r = Requant(np.array([mo]), np.array([so]), rounding, zy, int(lo), int(hi), dtype)
    return AddParams("add", za, zb, ma, sa, mb, sb, negate, ADD_LEFT_SHIFT, r)


def add_reference(a, b, p):
    a, b = np.broadcast_arrays(a.astype(np.int64), b.astype(np.int64))
    rounding = p.requant.rounding
    total = np.empty(a.shape, np.int64)
    for idx in np.ndindex(a.shape):
        da = (int(a[idx]) - p.a_zero_point) << p.left_shift
        db = (int(b[idx]) - p.b_zero_point) << p.left_shift
        sa = scale_one(da, p.a_multiplier, p.a_shift, rounding)
        sb = scale_one(db, p.b_multiplier, p.b_shift, rounding)
        total[idx] = sa - sb if p.b_negate else sa + sb
    return requant(total, p.requant)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("negate", [False, True], ids=["add", "sub"])
@pytest.mark.parametrize(
    "a_shape,b_shape,dtype,za,zb,zy,scales",
    [
        ((3, 4, 5), (3, 4, 5), "int8", -128, 127, 0, (0.02, 0.05, 0.07)),
        ((2, 3, 3, 4), (4,), "uint8", 0, 255, 128, (0.1, 0.1, 0.05)),
        ((2, 1, 5), (1, 6, 1), "int8", 7, -3, -128, (0.5, 0.003, 0.2)),
    ],
)
def test_add_matches_reference(rounding, negate, a_shape, b_shape, dtype, za, zb, zy, scales):
    rng = np.random.default_rng(len(a_shape) * 3 + len(rounding))
    a, b = codes(rng, a_shape, dtype), codes(rng, b_shape, dtype)
    p = add_params(*scales, za, zb, zy, dtype, rounding, negate)
    got = nb.add(a, b, p)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, add_reference(a, b, p))


def test_add_of_equal_scales_is_the_sum_of_reals():
    # s_a = s_b = s_y, zero points 0: y = a + b exactly, saturating at the int8 bounds.
    a = np.array([-100, -3, 0, 5, 100], np.int8)
    b = np.array([-100, 4, 0, 6, 100], np.int8)
    got = nb.add(a, b, add_params(0.5, 0.5, 0.5, 0, 0, 0, "int8", "gemmlowp"))
    np.testing.assert_array_equal(got, [-128, 1, 0, 11, 127])


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize(
    "a_shape,b_shape,a_dtype,b_dtype,za,zb",
    [((4, 5), (4, 5), "int8", "int8", -128, 127), ((2, 3, 4), (4,), "uint8", "uint8", 255, 0),
     ((3, 1), (1, 7), "int8", "uint8", 5, 200)],
)
def test_mul_matches_reference(rounding, a_shape, b_shape, a_dtype, b_dtype, za, zb):
    rng = np.random.default_rng(len(a_shape) + len(rounding) * 5)
    a, b = codes(rng, a_shape, a_dtype), codes(rng, b_shape, b_dtype)
    r = random_requant(rng, 1, "int8", rounding)
    p = MulParams("mul", za, zb, r)
    want = requant((a.astype(np.int64) - za) * (b.astype(np.int64) - zb), r)
    np.testing.assert_array_equal(nb.mul(a, b, p), want)


@pytest.mark.parametrize("field, value", [
    ("left_shift", 30),  # (a - za) << 30 wraps int32
    ("a_zero_point", 300),
    ("b_shift", -40),
    ("a_multiplier", 2**31),
])
def test_add_params_refuse_values_that_would_wrap(field, value):
    m, s = quantize_multiplier(0.5)
    fields = {"name": "add", "a_zero_point": 0, "b_zero_point": 0, "a_multiplier": m,
              "a_shift": s, "b_multiplier": m, "b_shift": s, "b_negate": False,
              "left_shift": ADD_LEFT_SHIFT,
              "requant": Requant(np.array([m]), np.array([s]), "gemmlowp", 0, -128, 127, "int8")}
    fields[field] = value
    with pytest.raises(QuantizationError, match=f"'add': {field}"):
        AddParams(**fields)


def test_mul_params_refuse_a_zero_point_outside_8_bits():
    rq = Requant(np.array([2**30]), np.array([0]), "gemmlowp", 0, -128, 127, "int8")
    with pytest.raises(QuantizationError, match="b_zero_point 70000"):
        MulParams("mul", 0, 70000, rq)

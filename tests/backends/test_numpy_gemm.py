"""Fully connected and matmul kernels against an int64 einsum reference."""

from __future__ import annotations

import numpy as np
import pytest

from gpuquant.backends.numpy.gemm import exact_matmul, reduction_chunk
from gpuquant.errors import OverflowRiskError, ShapeError
from gpuquant.ops import GemmParams, MatMulParams, Requant
from gpuquant.quant.fixedpoint import ROUNDING_MODES
from int_reference import codes, random_requant, requant


def gemm_reference(x, w, zx, zw, bias, r):
    acc = np.einsum(
        "mk,nk->mn", x.astype(np.int64) - zx, w.astype(np.int64) - np.asarray(zw)[:, None]
    )
    return requant(acc + bias, r)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize(
    "x_dtype,w_dtype,zx,zw_kind",
    [
        ("int8", "int8", -128, "zero"),
        ("int8", "int8", 127, "zero"),
        ("uint8", "int8", 0, "zero"),
        ("uint8", "int8", 255, "zero"),
        ("int8", "uint8", 3, "per_channel"),
        ("uint8", "uint8", 128, "per_channel"),
    ],
)
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (5, 7, 13), (3, 9, 30), (2, 3, 1031)])
def test_gemm_matches_reference(nb, rounding, x_dtype, w_dtype, zx, zw_kind, m, n, k):
    rng = np.random.default_rng([m, n, k, zx + 128, len(rounding)])
    x = codes(rng, (m, k), x_dtype)
    w = codes(rng, (n, k), w_dtype)
    if zw_kind == "zero":
        zw = np.zeros(n, dtype=np.int64)
    else:
        lo, hi = np.iinfo(w.dtype).min, np.iinfo(w.dtype).max
        zw = rng.integers(lo, hi + 1, n)
        zw[0] = lo
    bias = rng.integers(-(2**20), 2**20, n)
    out_dtype = "uint8" if rng.random() < 0.5 else "int8"
    r = random_requant(rng, n, out_dtype, rounding)
    p = GemmParams("fc", w, zw, zx, x_dtype, bias, r)
    got = nb.gemm(x, p)
    assert got.dtype == np.dtype(out_dtype)
    np.testing.assert_array_equal(got, gemm_reference(x, w, zx, zw, bias, r))


def test_gemm_without_requant_returns_int32_accumulators(nb):
    rng = np.random.default_rng(1)
    x, w = codes(rng, (4, 37), "uint8"), codes(rng, (6, 37), "int8")
    zw = rng.integers(-128, 128, 6)
    p = GemmParams("fc", w, zw, 200, "uint8", np.arange(6) - 3, None)
    got = nb.gemm(x, p)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, gemm_reference(x, w, 200, zw, np.arange(6) - 3, None))


def test_gemm_saturates_with_multiplier_above_one(nb):
    # M = 4 on accumulators of +-K*127*127: every output saturates to the clamp bounds.
    x = np.array([[127] * 8, [-128] * 8], dtype=np.int8)
    w = np.full((2, 8), 127, dtype=np.int8)
    w[1] = -127
    r = Requant(np.array([2**30]), np.array([3]), "gemmlowp", 0, -128, 127, "int8")
    got = nb.gemm(x, GemmParams("fc", w, 0, 0, "int8", 0, r))
    np.testing.assert_array_equal(got, [[127, -128], [-128, 127]])


@pytest.mark.parametrize(
    "shift,acc,want",
    [
        # numerics.md N2-N4: M = 0.25 (shift -1) and M = 0.5 (shift 0) at exact ties.
        (-1, 1, {"gemmlowp": 1, "single": 0, "float32_half_even": 0}),
        (0, -3, {"gemmlowp": -1, "single": -2, "float32_half_even": -2}),
        (-1, 5, {"gemmlowp": 2, "single": 1, "float32_half_even": 1}),
        (0, 5, {"gemmlowp": 3, "single": 3, "float32_half_even": 2}),
    ],
)
@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_gemm_rounds_ties_as_its_mode_says(nb, shift, acc, want, rounding):
    r = Requant(np.array([2**30]), np.array([shift]), rounding, 0, -128, 127, "int8")
    p = GemmParams("ties", np.ones((1, 1), np.int8), 0, 0, "int8", acc, r)
    assert nb.gemm(np.zeros((1, 1), np.int8), p)[0, 0] == want[rounding]


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("shift", [-3, -1, 0])
def test_gemm_every_tie_matches_reference(nb, rounding, shift):
    x = np.arange(-128, 128, dtype=np.int8)[:, None]
    r = Requant(np.array([2**30]), np.array([shift]), rounding, -3, -128, 127, "int8")
    p = GemmParams("ties", np.ones((1, 1), np.int8), 0, 0, "int8", 0, r)
    np.testing.assert_array_equal(nb.gemm(x, p), requant(x.astype(np.int64), r))


def test_n6_uint8_int8_products_do_not_saturate_at_16_bits(nb):
    x = np.array([[255, 255]], dtype=np.uint8)
    w = np.array([[127, 127]], dtype=np.int8)
    got = nb.gemm(x, GemmParams("n6", w, 0, 0, "uint8", 0, None))
    assert got.dtype == np.int32
    assert got[0, 0] == 64770


def test_n12_accumulator_bound_refused_when_params_are_built():
    k = 131073
    w = np.full((1, k), -128, dtype=np.int8)
    with pytest.raises(OverflowRiskError) as err:
        GemmParams("n12", w, 0, 0, "int8", 0, None)
    msg = str(err.value)
    assert "'n12'" in msg and str(128 * 128 * k) in msg and "2**31 - 1" in msg


def test_reduction_chunks_keep_float32_sums_exact():
    # Centred 8-bit values are at most 128 in magnitude: 1024 * 128 * 128 = 2**24.
    for a, b in [("int8", "int8"), ("uint8", "int8"), ("int8", "uint8"), ("uint8", "uint8")]:
        assert reduction_chunk(np.dtype(a), np.dtype(b)) == (np.float32, 1024)
    ftype, chunk = reduction_chunk(np.dtype("int16"), np.dtype("uint16"))
    assert ftype is np.float64 and chunk * 2**30 <= 2**53
    with pytest.raises(TypeError, match="int64"):
        reduction_chunk(np.dtype("int64"), np.dtype("int64"))


def test_exact_matmul_of_wider_integers_uses_float64():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 2**16, (3, 2000)).astype(np.uint16)
    b = rng.integers(-(2**15), 2**15, (2000, 4)).astype(np.int16)
    np.testing.assert_array_equal(exact_matmul(a, b), a.astype(np.int64) @ b.astype(np.int64))


@pytest.mark.parametrize(
    "a_dtype,b_dtype", [("int8", "int8"), ("uint8", "int8"), ("uint8", "uint8")]
)
def test_exact_matmul_at_extremes_across_many_chunks(a_dtype, b_dtype):
    # Sums far beyond 2**24 (float32's exact range) built from the largest products.
    k = 5000
    a = np.full((3, k), np.iinfo(a_dtype).min if a_dtype == "int8" else 255, dtype=a_dtype)
    b = np.full((k, 2), np.iinfo(b_dtype).min if b_dtype == "int8" else 255, dtype=b_dtype)
    a[1, ::3] = np.iinfo(a_dtype).max
    b[7::2, 1] = np.iinfo(b_dtype).max - 1
    want = a.astype(np.int64) @ b.astype(np.int64)
    assert np.abs(want).max() > 2**24
    np.testing.assert_array_equal(exact_matmul(a, b), want)


@pytest.mark.parametrize("a_dtype,b_dtype,k",
                         [("uint8", "int8", 140000), ("uint16", "int16", 2000)])
def test_exact_matmul_as_int32_is_the_product_modulo_2_32(a_dtype, b_dtype, k):
    # Products beyond int32 (8 bits: float32 chunks; 16 bits: float64 chunks) wrap as int32 does.
    rng = np.random.default_rng(k)
    a = np.full((3, k), np.iinfo(a_dtype).max, dtype=a_dtype)
    b = np.full((k, 2), np.iinfo(b_dtype).min, dtype=b_dtype)
    a[1] = rng.integers(0, int(np.iinfo(a_dtype).max) + 1, k)
    b[:, 1] = rng.integers(np.iinfo(b_dtype).min, int(np.iinfo(b_dtype).max) + 1, k)
    want = a.astype(np.int64) @ b.astype(np.int64)
    assert np.abs(want).max() > 2**31
    got = exact_matmul(a, b, np.int32)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, (want + 2**31) % 2**32 - 2**31)


def test_gemm_rejects_wrong_dtype_and_width(nb):
    p = GemmParams("fc", np.zeros((2, 3), np.int8), 0, 0, "int8", 0, None)
    with pytest.raises(ShapeError, match="'fc'.*uint8"):
        nb.gemm(np.zeros((1, 3), np.uint8), p)
    with pytest.raises(ShapeError, match="'fc'"):
        nb.gemm(np.zeros((1, 4), np.int8), p)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize(
    "a_shape,b_shape,a_dtype,b_dtype,za,zb",
    [
        ((3, 5), (5, 7), "uint8", "uint8", 255, [0]),
        ((2, 3, 9), (9, 4), "int8", "int8", -128, [127]),
        ((2, 1, 3, 17), (4, 17, 5), "int8", "uint8", 5, [0, 255, 7, 128, 1]),
    ],
)
def test_matmul_matches_reference(nb, rounding, a_shape, b_shape, a_dtype, b_dtype, za, zb):
    rng = np.random.default_rng(len(a_shape) * 10 + len(rounding))
    a, b = codes(rng, a_shape, a_dtype), codes(rng, b_shape, b_dtype)
    n = b_shape[-1]
    r = random_requant(rng, n, "int8", rounding)
    p = MatMulParams("mm", a_shape[-1], za, a_dtype, np.array(zb), b_dtype, r)
    acc = np.matmul(a.astype(np.int64) - za, b.astype(np.int64) - np.array(zb))
    np.testing.assert_array_equal(nb.matmul(a, b, p), requant(acc, r))


def test_matmul_without_requant(nb):
    rng = np.random.default_rng(3)
    a, b = codes(rng, (4, 6), "uint8"), codes(rng, (6, 2), "int8")
    p = MatMulParams("mm", 6, 12, "uint8", np.array([-3]), "int8", None)
    want = (a.astype(np.int64) - 12) @ (b.astype(np.int64) + 3)
    got = nb.matmul(a, b, p)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


def test_gemm_with_no_output_channels(nb):
    p = GemmParams("fc", np.zeros((0, 3), np.int8), np.zeros(0), 0, "uint8", np.zeros(0),
                   Requant(np.zeros(0, int), np.zeros(0, int), "gemmlowp", 0, -128, 127, "int8"))
    assert nb.gemm(np.zeros((4, 3), np.uint8), p).shape == (4, 0)


@pytest.mark.parametrize(
    "a_shape,b_shape,broadcast_b,packings",
    [
        ((2, 3, 4, 33), (33, 6), False, 1),  # a constant matrix for all six batch indices
        ((4, 5, 33), (1, 33, 6), False, 1),
        ((3, 5, 33), (33, 6), True, 1),  # b a stride-0 view over the batch
        ((2, 3, 5, 33), (2, 1, 33, 6), False, 2),  # one matrix per index of the first dim
        ((3, 5, 33), (3, 33, 6), False, 3),  # truly batched b
        ((5, 33), (3, 33, 6), False, 3),
    ],
)
def test_matmul_packs_each_distinct_b_once(nb, monkeypatch, a_shape, b_shape, broadcast_b,
                                           packings):
    from gpuquant.backends.numpy import gemm

    calls = []
    real = gemm.native_operands
    monkeypatch.setattr(gemm, "native_operands", lambda *args: calls.append(1) or real(*args))
    rng = np.random.default_rng(len(a_shape) + 3 * len(b_shape) + packings)
    a, b = codes(rng, a_shape, "uint8"), codes(rng, b_shape, "int8")
    if broadcast_b:
        b = np.broadcast_to(b, a_shape[:-2] + b_shape)
    zb = rng.integers(-128, 128, 6)
    r = random_requant(rng, 6, "int8", "gemmlowp")
    p = MatMulParams("mm", 33, 201, "uint8", zb, "int8", r)
    acc = np.matmul(a.astype(np.int64) - 201, b.astype(np.int64) - zb)
    np.testing.assert_array_equal(nb.matmul(a, b, p), requant(acc, r))
    assert len(calls) == (0 if nb.int8_core == "blas" else packings)

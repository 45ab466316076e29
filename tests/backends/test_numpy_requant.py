"""The requantization epilogue, and the fused gemmlowp path of multiply_by_quantized_multiplier.

The fused path must give exactly the composition of gemmlowp's two helpers,
``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(sat(acc << left), m), right)``, on the
edge values +-2**i + {-2..2}, the int32 extremes and seeded random values, for every shift.
"""

from __future__ import annotations

import numpy as np
import pytest

from gpuquant.backends.numpy.native import use_native
from gpuquant.backends.numpy.requant import requantize
from gpuquant.errors import QuantizationError
from gpuquant.ops import Requant
from gpuquant.quant.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    ROUNDING_MODES,
    multiply_by_quantized_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from int_reference import requant


def _edge_values() -> np.ndarray:
    v = [INT32_MIN, INT32_MAX]
    for i in range(31):
        for d in (-2, -1, 0, 1, 2):
            v += [2**i + d, -(2**i) + d]
    rng = np.random.default_rng(0)
    v += list(rng.integers(INT32_MIN, INT32_MAX, 2000, endpoint=True))
    return np.clip(np.array(v, dtype=np.int64), INT32_MIN, INT32_MAX)


@pytest.mark.parametrize("shift", range(-31, 31))
def test_fused_gemmlowp_equals_the_two_helpers(shift):
    acc = _edge_values()
    rng = np.random.default_rng(shift + 40)
    m = rng.integers(0, 2**31, acc.size)
    m[:4] = [0, 1, 2**30, INT32_MAX]
    shifted = np.clip(acc << max(shift, 0), INT32_MIN, INT32_MAX)
    want = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, m), max(-shift, 0))
    got = multiply_by_quantized_multiplier(acc, m, shift, "gemmlowp")
    np.testing.assert_array_equal(got, want)


def test_fused_gemmlowp_broadcasts_like_numpy():
    acc = np.array([[-5], [7], [1 << 20]])
    got = multiply_by_quantized_multiplier(acc, np.array([2**30, 2**31 - 1]), np.array([-1, 2]))
    assert got.shape == (3, 2) and got.dtype == np.int32
    np.testing.assert_array_equal(got[:, 0], [-1, 2, 1 << 18])  # M = 0.25, ties away from zero
    np.testing.assert_array_equal(got[:, 1], [-20, 28, 1 << 22])  # M = 4 - 2**-29


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_requantize_clamps_adds_zero_point_and_casts(nb, rounding, dtype):
    rng = np.random.default_rng(len(rounding))
    acc = rng.integers(-(2**31), 2**31, (7, 5))
    acc[0] = [INT32_MIN, INT32_MAX, 0, -1, 1]
    lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
    r = Requant(rng.integers(0, 2**31, 5), rng.integers(-31, 31, 5), rounding,
                lo + 3, lo + 1, hi - 2, dtype)
    got = requantize(acc, r, use_native(nb.int8_core))
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, requant(acc, r))
    got32 = requantize(acc.astype(np.int32), r, use_native(nb.int8_core))  # the native path
    np.testing.assert_array_equal(got32, requant(acc, r))
    np.testing.assert_array_equal(requantize(acc, None), acc.astype(np.int32))


def test_requantize_in_row_blocks_on_threads_equals_one_block(monkeypatch):
    from gpuquant.backends.numpy import requant as epilogue
    from gpuquant.backends.numpy import threads

    rng = np.random.default_rng(9)
    acc = rng.integers(-(2**24), 2**24, (3, 5, 7, 6))
    r = Requant(rng.integers(2**30, 2**31, 6), rng.integers(-20, 2, 6), "gemmlowp", 4,
                -128, 127, "int8")
    want = requant(acc, r)
    monkeypatch.setattr(epilogue, "PARALLEL_MIN_SIZE", 1)
    for count in (2, 3):
        monkeypatch.setattr(threads, "THREADS", count)
        got = requantize(acc, r)
        assert got.shape == acc.shape and got.dtype == np.int8
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("field, value, message", [
    ("multiplier", np.array([2**31]), "multiplier"),  # astype(int32) would wrap it to -2**31
    ("shift", np.array([31]), "shift"),
    ("zero_point", 128, "zero point 128"),
    ("zero_point", 1e30, "must be an integer"),
    ("qmin", True, "must be an integer"),
    ("dtype", "int32", "must be int8 or uint8"),
])
def test_requant_refuses_values_kernels_cannot_hold(field, value, message):
    fields = {"multiplier": np.array([2**30]), "shift": np.array([0]), "rounding": "gemmlowp",
              "zero_point": 0, "qmin": -128, "qmax": 127, "dtype": "int8"}
    fields[field] = value
    with pytest.raises(QuantizationError, match=message):
        Requant(**fields)


@pytest.mark.parametrize("acc_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_requantize_gemmlowp_matches_reference_at_every_shift(nb, acc_dtype, dtype):
    # int32 and int64 accumulators take the in-place gemmlowp path of requant.py.
    acc = _edge_values()[:600].astype(acc_dtype)
    shifts = np.arange(-31, 31)
    rng = np.random.default_rng(4)
    multipliers = rng.integers(0, 2**31, shifts.size)
    multipliers[:4] = [0, 1, 2**30, INT32_MAX]
    lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
    r = Requant(multipliers, shifts, "gemmlowp", lo + 100, lo, hi - 1, dtype)
    grid = np.broadcast_to(acc[:, None], (acc.size, shifts.size))
    got = requantize(grid, r, use_native(nb.int8_core))
    np.testing.assert_array_equal(got, requant(grid, r))


def test_requantize_gemmlowp_refuses_int64_accumulators_outside_int32():
    r = Requant(np.array([2**30]), np.array([0]), "gemmlowp", 0, -128, 127, "int8")
    with pytest.raises(ValueError, match="acc must lie in .*got 2147483648"):
        requantize(np.array([[5], [2**31]], dtype=np.int64), r)


@pytest.mark.parametrize("cache_block", [1, 13, 1 << 16])
def test_requantize_in_cache_sized_pieces_equals_reference(monkeypatch, cache_block):
    from gpuquant.backends.numpy import requant as epilogue

    rng = np.random.default_rng(cache_block)
    acc = rng.integers(-(2**24), 2**24, (5, 7, 6))
    r = Requant(rng.integers(2**30, 2**31, 6), rng.integers(-20, 2, 6), "gemmlowp", -4,
                -128, 127, "int8")
    monkeypatch.setattr(epilogue, "CACHE_BLOCK", cache_block)  # 1 and 13: 1 and 2 rows a piece
    np.testing.assert_array_equal(requantize(acc, r), requant(acc, r))

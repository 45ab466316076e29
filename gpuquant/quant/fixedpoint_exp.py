"""gemmlowp's fixed-point exp and reciprocal, as TFLite's reference integer softmax uses them.

A ``Q(i)`` value is an int32 ``raw`` meaning ``raw / 2**(31 - i)`` (gemmlowp's
``FixedPoint<int32, i>``). Products of two values are ``SaturatingRoundingDoublingHighMul`` of
the raws (the result has the sum of the integer bits); sums are plain int32 additions. All
functions are vectorised over int64 arrays holding int32 values.
"""

from __future__ import annotations

import numpy as np

from .fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

# exp(-2**k) in Q(0) for the barrel shifter of exp_on_negative_values, k = -2 .. 4.
_EXP_OF_MINUS_POWERS = (
    (-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
    (2, 39332535), (3, 720401), (4, 242),
)
_EXP_MINUS_ONE_EIGHTH = 1895147668  # exp(-1/8) in Q(0)
_ONE_THIRD = 715827883  # 1/3 in Q(0)
_48_OVER_17 = 1515870810  # in Q(2)
_MINUS_32_OVER_17 = -1010580540  # in Q(2)


def saturating_shift_left(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingMultiplyByPOT for ``exponent > 0``: ``x * 2**exponent``
    saturated to int32."""
    x = np.asarray(x, dtype=np.int64)
    limit = (1 << (31 - exponent)) - 1
    return np.where(x > limit, INT32_MAX, np.where(x < -limit, INT32_MIN, x << exponent))


def _mul(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    return saturating_rounding_doubling_high_mul(a, b)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """``exp(a)`` for Q(0) ``a`` in [-1/4, 0): Taylor series around -1/8 to the 4th power,
    ``exp(-1/8) * (1 + x + x^2/2 + x^3/6 + x^4/24)`` with ``x = a + 1/8``. Returns Q(0)."""
    x = np.asarray(a, dtype=np.int64) + (1 << 28)
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(_mul(x4_over_4 + x3, _ONE_THIRD) + x2, 1)
    return _EXP_MINUS_ONE_EIGHTH + _mul(_EXP_MINUS_ONE_EIGHTH, x + poly)


def exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """``exp(a)`` for Q(integer_bits) ``a <= 0``; returns Q(0) (``exp(0)`` is INT32_MAX).

    ``a = -(k/4 + r)`` with ``r`` in (0, 1/4]: ``exp(a mod 1/4 - 1/4)`` by the series above,
    then one multiplication by ``exp(-2**j)`` for every set bit j of the remainder.
    """
    a = np.asarray(a, dtype=np.int64)
    fractional_bits = 31 - integer_bits
    quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_shift_left(a_mod_quarter_minus_quarter, integer_bits)
    )
    remainder = a_mod_quarter_minus_quarter - a
    for exponent, multiplier in _EXP_OF_MINUS_POWERS:
        if integer_bits > exponent:
            bit = (remainder & (1 << (fractional_bits + exponent))) != 0
            result = np.where(bit, _mul(result, multiplier), result)
    return np.where(a == 0, INT32_MAX, result)


def rounding_half_sum(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp's RoundingHalfSum: ``(a + b + sign) / 2`` with C truncating division."""
    s = np.asarray(a, dtype=np.int64) + b
    return np.where(s >= 0, (s + 1) // 2, -((1 - s) // 2))


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """``1 / (1 + a)`` for Q(0) ``a`` in [0, 1): three Newton-Raphson steps on the half
    denominator ``d = (1 + a) / 2`` from ``48/17 - 32/17 d`` (all Q(2)); returns Q(0)."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = _48_OVER_17 + _mul(half_denominator, _MINUS_32_OVER_17)
    one_q2 = 1 << 29
    for _ in range(3):
        one_minus_dx = one_q2 - _mul(half_denominator, x)
        x = x + saturating_shift_left(_mul(x, one_minus_dx), 2)
    return saturating_shift_left(x, 1)


def count_leading_zeros32(x: np.ndarray) -> np.ndarray:
    """Leading zero bits of the uint32 values ``x`` (32 for 0)."""
    x = np.asarray(x, dtype=np.int64)
    bits = np.zeros(x.shape, dtype=np.int64)
    v = x.copy()
    for shift in (16, 8, 4, 2, 1):
        big = v >= (1 << shift)
        bits = np.where(big, bits + shift, bits)
        v = np.where(big, v >> shift, v)
    return np.where(x == 0, 32, 31 - bits)


def reciprocal(x: np.ndarray, integer_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's GetReciprocal of a positive Q(integer_bits) ``x``: ``(scale, bits_over_unit)``
    with ``1/x = scale * 2**-bits_over_unit``, ``scale`` in Q(0)."""
    x = np.asarray(x, dtype=np.int64)
    headroom_plus_one = count_leading_zeros32(x)
    bits_over_unit = integer_bits - headroom_plus_one
    shifted_minus_one = ((x << headroom_plus_one) - (1 << 31)) & 0xFFFFFFFF
    shifted_minus_one = np.where(shifted_minus_one >= 1 << 31, shifted_minus_one - (1 << 32),
                                 shifted_minus_one)
    return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), bits_over_unit

"""Requantization against an exact rational reference on >= 100,000 inputs per rounding mode.

The reference follows each mode's definition with Python integers and Fractions only:
gemmlowp = floor(x*M/2**31 + 1/2) on the saturated left-shifted x, then round half away from
zero of that divided by 2**right; single = round half away from zero of acc*M*2**(shift-31);
float32_half_even = round half to even of the float32 product (the product is formed exactly
from float32 operands and then rounded to float32 by the reference, not by NumPy).
"""

import math
from fractions import Fraction

import numpy as np
import pytest

from gpuquant import multiply_by_quantized_multiplier
from gpuquant.quant.fixedpoint import INT32_MAX, INT32_MIN

N_CASES = 100_000


def sat32(v: int) -> int:
    return max(INT32_MIN, min(INT32_MAX, v))


def half_away(f: Fraction) -> int:
    mag = math.floor(abs(f) + Fraction(1, 2))
    return mag if f >= 0 else -mag


def half_even(f: Fraction) -> int:
    fl = math.floor(f)
    rem = f - fl
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2 == 1):
        return fl + 1
    return fl


def to_float32_exact(f: Fraction) -> Fraction:
    """Round a rational to the nearest float32 (ties to even), exactly."""
    if f == 0:
        return Fraction(0)
    sign = -1 if f < 0 else 1
    a = abs(f)
    e = math.floor(math.log2(a.numerator) - math.log2(a.denominator))
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    ulp = Fraction(2) ** (e - 23)
    return sign * half_even(a / ulp) * ulp


def reference(acc: int, m: int, s: int, mode: str) -> int:
    if mode == "gemmlowp":
        x = sat32(acc * 2 ** max(s, 0))
        high = math.floor(Fraction(x * m, 2**31) + Fraction(1, 2))
        high = sat32(high)
        return half_away(Fraction(high, 2 ** max(-s, 0)))
    if mode == "single":
        return sat32(half_away(Fraction(acc * m) * Fraction(2) ** (s - 31)))
    mf = to_float32_exact(Fraction(m) * Fraction(2) ** (s - 31))
    af = to_float32_exact(Fraction(acc))
    return sat32(half_even(to_float32_exact(af * mf)))


def adversarial_inputs(rng: np.random.Generator, n: int):
    """Edge values (+-2**i +- {0,1,2}, INT32_MIN/MAX, ties) mixed with seeded random values."""
    edges = [0, 1, -1, 2, -2, INT32_MIN, INT32_MAX, INT32_MIN + 1, INT32_MAX - 1]
    for i in range(31):
        for d in (-2, -1, 0, 1, 2):
            edges += [sat32(2**i + d), sat32(-(2**i) + d)]
    edges = np.array(edges, dtype=np.int64)
    kind = rng.integers(0, 4, n)
    acc = np.where(
        kind == 0,
        rng.choice(edges, n),
        np.where(
            kind == 1,
            rng.integers(-(2**15), 2**15, n),
            rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True),
        ),
    )
    mult_edges = np.array([0, 2**30, 2**30 + 1, 2**31 - 1, 2**31 - 2, 3 * 2**29], dtype=np.int64)
    mult = np.where(rng.random(n) < 0.2, rng.choice(mult_edges, n), rng.integers(2**30, 2**31, n))
    shift = rng.integers(-31, 31, n)
    # exact ties: acc * M / 2**(31 - shift) lands on k + 1/2
    tie = kind == 3
    shift[tie] = rng.integers(-12, 1, tie.sum())
    mult[tie] = 2**30
    return acc.astype(np.int32), mult, shift


@pytest.mark.parametrize("mode", ["gemmlowp", "single", "float32_half_even"])
def test_against_exact_rational_reference(mode):
    rng = np.random.default_rng(20261203)
    acc, mult, shift = adversarial_inputs(rng, N_CASES)
    got = multiply_by_quantized_multiplier(acc, mult, shift, mode)
    assert got.dtype == np.int32
    want = np.array(
        [reference(int(a), int(m), int(s), mode) for a, m, s in zip(acc, mult, shift)],
        dtype=np.int64,
    )
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, [
        (int(acc[i]), int(mult[i]), int(shift[i]), int(got[i]), int(want[i])) for i in bad[:5]
    ]

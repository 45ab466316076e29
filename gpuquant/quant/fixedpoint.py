"""Fixed-point requantization: a real multiplier as an int32 and a power-of-two shift.

A real multiplier ``M > 0`` is written ``M = multiplier * 2**(shift - 31)`` with ``multiplier``
an int32 in ``[2**30, 2**31)`` (TFLite's ``QuantizeMultiplier``); ``shift > 0`` is a left shift.
Applying it to an int32 accumulator ``acc`` is defined three ways (docs/quantization.md, eq. 5-7):

``"gemmlowp"`` (TFLite's default reference kernels, gemmlowp):
    1. ``x = saturate_int32(acc * 2**max(shift, 0))``
    2. ``h = SaturatingRoundingDoublingHighMul(x, multiplier)``
       ``= floor(x * multiplier / 2**31 + 1/2)``: ties go toward +inf, because gemmlowp adds the
       nudge ``2**30`` (or ``1 - 2**30`` for a negative product) and then divides truncating.
    3. ``RoundingDivideByPOT(h, max(-shift, 0))``: ties away from zero.
    Two roundings: may differ by one from the single exact rounding. That is the definition.

``"single"`` (one rounding, as TFLite's single-rounding reference fully connected):
    ``round_half_away_from_zero(acc * multiplier * 2**(shift - 31))``, saturated to int32.

``"float32_half_even"`` (ONNX Runtime's CPU requantization, XNNPACK):
    ``round_half_to_even(float32(M) * float32(acc))`` with the product in float32 arithmetic,
    saturated to int32.

All functions are vectorised over NumPy arrays; per-channel ``multiplier``/``shift`` broadcast
against ``acc`` as NumPy broadcasting does.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

ROUNDING_MODES = ("gemmlowp", "single", "float32_half_even")


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Write ``real >= 0`` as ``(multiplier, shift)`` with ``real ~= multiplier * 2**(shift-31)``.

    ``multiplier`` is ``round_half_away_from_zero(q * 2**31)`` where ``real = q * 2**shift`` and
    ``q`` in [0.5, 1) (``math.frexp``); when that rounding reaches ``2**31`` the multiplier is
    halved and the shift incremented. Multipliers >= 1 give ``shift > 0``. A value too small for
    a shift of -31 underflows to ``(0, 0)``, i.e. the multiplier 0.0. A value needing a shift
    above 30 saturates to ``(2**31 - 1, 30)``. Raises ValueError for negative or non-finite input.
    """
    real = float(real)
    if not math.isfinite(real) or real < 0.0:
        raise ValueError(f"real multiplier must be finite and >= 0, got {real!r}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = math.floor(q * 2**31 + 0.5)  # q > 0: half away from zero; q * 2**31 is exact
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return INT32_MAX, 30
    return int(q_fixed), int(shift)


def _as_int64(x: np.ndarray | int, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def check_range(a: np.ndarray, lo: int, hi: int, name: str) -> None:
    """ValueError naming ``name`` and its first value outside ``[lo, hi]``, if any."""
    if a.size and (a.min() < lo or a.max() > hi):
        bad = a[(a < lo) | (a > hi)].ravel()[0]
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {int(bad)}")


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int32 values (ARM VQRDMULH).

    ``(a*b + nudge) / 2**31`` with C truncating division, ``nudge = 2**30`` if ``a*b >= 0`` else
    ``1 - 2**30``; equals ``floor(a*b / 2**31 + 1/2)`` (ties toward +inf). The single overflow case
    ``a == b == INT32_MIN`` saturates to INT32_MAX. Returns int64 values in the int32 range.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudged = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: ``x / 2**exponent`` rounded half away from zero.

    ``exponent`` in [0, 31]. Integer only: ``(x >> e) + (remainder > threshold)`` with
    ``threshold = mask/2 + (x < 0)``. Returns int64.
    """
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def round_half_away_from_zero(x: np.ndarray) -> np.ndarray:
    """``sign(x) * floor(|x| + 1/2)`` on floats (C's ``round``, TFLite's ``TfLiteRound``)."""
    x = np.asarray(x)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def round_half_to_even(x: np.ndarray) -> np.ndarray:
    """IEEE round-to-nearest-even on floats (``np.rint``, C's ``nearbyint``)."""
    return np.rint(x)


def multiplier_to_float32(multiplier: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """``float32(multiplier * 2**(shift - 31))``: the float32 multiplier of ``float32_half_even``."""
    m = np.asarray(multiplier, dtype=np.float64)
    s = np.asarray(shift, dtype=np.int64)
    return np.ldexp(m, s - 31).astype(np.float32)


def gemmlowp_in_place(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> None:
    """The ``"gemmlowp"`` rounding (module docstring) on int64 ``x``, in place.

    ``x`` holds int32 values and has the broadcast shape of all three; ``multiplier`` in
    [0, 2**31) and ``shift`` in [-31, 30] are int64 and unchecked. The two helpers above,
    fused (same integers, fewer passes over the data), with ``e = max(-shift, 0)``::

        x = saturate_int32(x << max(shift, 0))      |x| <= 2**31, so |x * multiplier| < 2**62
        x = (x * multiplier + 2**30) >> 31          SaturatingRoundingDoublingHighMul: floor of
                                                    x*m / 2**31 + 1/2 (m >= 0: never saturates)
        x = (x + h - [x < 0]) >> e, h = 2**(e-1)    RoundingDivideByPOT for e > 0
    """
    if np.any(shift > 0):
        x <<= np.maximum(shift, 0)
        np.clip(x, INT32_MIN, INT32_MAX, out=x)
    x *= multiplier
    x += 1 << 30
    x >>= 31
    e = np.maximum(-shift, 0)
    if np.any(e > 0):
        h = (np.int64(1) << e) >> 1
        x += h
        # After adding h, x < h exactly where x was negative; lanes with e = 0 (h = 0) compare
        # against INT64_MIN and stay as they are.
        x -= x < np.where(e > 0, h, np.iinfo(np.int64).min)
        x >>= e


def multiply_by_quantized_multiplier(
    acc: np.ndarray,
    multiplier: np.ndarray | int,
    shift: np.ndarray | int,
    rounding: str = "gemmlowp",
) -> np.ndarray:
    """Apply ``M = multiplier * 2**(shift-31)`` to int32 ``acc``; returns int32 (module docstring).

    ``multiplier`` in [0, 2**31), ``shift`` in [-31, 30], both broadcast against ``acc``
    (e.g. one per output channel on the last axis). Results outside int32 saturate.
    """
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {ROUNDING_MODES}, got {rounding!r}")
    x = _as_int64(acc, "acc")
    m = _as_int64(multiplier, "multiplier")
    s = _as_int64(shift, "shift")
    check_range(x, INT32_MIN, INT32_MAX, "acc")
    check_range(m, 0, INT32_MAX, "multiplier")
    check_range(s, -31, 30, "shift")

    if rounding == "gemmlowp":
        shape = np.broadcast_shapes(x.shape, m.shape, s.shape)
        out = np.array(np.broadcast_to(x, shape), dtype=np.int64)
        gemmlowp_in_place(out, m, s)
    elif rounding == "single":
        total_shift = 31 - s  # in [1, 62]
        product = x * m  # |product| < 2**62: exact in int64
        magnitude = (np.abs(product) + (np.int64(1) << (total_shift - 1))) >> total_shift
        out = np.clip(np.sign(product) * magnitude, INT32_MIN, INT32_MAX)
    else:
        scaled = x.astype(np.float32) * multiplier_to_float32(m, s)
        out = np.clip(round_half_to_even(scaled.astype(np.float64)), INT32_MIN, INT32_MAX)
    return np.asarray(out).astype(np.int32)

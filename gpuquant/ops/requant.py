"""The requantization epilogue shared by every accumulating op, and fused activation bounds.

``y = clamp(zero_point + multiply_by_quantized_multiplier(acc, multiplier, shift, rounding),
qmin, qmax)`` cast to ``dtype`` (docs/quantization.md, eq. 5-8). ReLU, ReLU6 and Clip are not
separate ops: they narrow ``[qmin, qmax]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import QuantizationError
from ..quant.fixedpoint import ROUNDING_MODES, quantize_multiplier, round_half_away_from_zero
from ..quant.params import QuantParams, dtype_bounds

ACTIVATIONS = (None, "relu", "relu6", "clip")


@dataclass(frozen=True)
class Requant:
    """Per-channel (or single) int32 multiplier and shift, output zero point and clamp bounds."""

    multiplier: np.ndarray  # int32 (C,) or (1,), in [0, 2**31)
    shift: np.ndarray  # int32, same shape, in [-31, 30]
    rounding: str
    zero_point: int
    qmin: int
    qmax: int
    dtype: str  # "int8" or "uint8"

    def __post_init__(self) -> None:
        if self.rounding not in ROUNDING_MODES:
            raise QuantizationError(f"rounding must be one of {ROUNDING_MODES}: {self.rounding!r}")
        if self.dtype not in ("int8", "uint8"):
            raise QuantizationError(
                f"requantized output must be int8 or uint8, got {self.dtype!r} "
                "(int32 accumulators come from requant=None)"
            )
        lo, hi = dtype_bounds(self.dtype)
        object.__setattr__(self, "zero_point", check_int("zero point", self.zero_point, lo, hi))
        for what in ("qmin", "qmax"):
            object.__setattr__(self, what, check_int(what, getattr(self, what), -(2**31), 2**31))
        if not lo <= self.qmin <= self.qmax <= hi:
            raise QuantizationError(
                f"clamp bounds [{self.qmin}, {self.qmax}] invalid for {self.dtype}"
            )
        multiplier = check_int_array("multiplier", self.multiplier, 0, 2**31 - 1)
        shift = check_int_array("shift", self.shift, -31, 30)
        if multiplier.shape != shift.shape:
            raise QuantizationError(f"{multiplier.size} multipliers but {shift.size} shifts")
        object.__setattr__(self, "multiplier", multiplier.astype(np.int32))
        object.__setattr__(self, "shift", shift.astype(np.int32))


def check_int(what: str, value: object, lo: int, hi: int) -> int:
    """``value`` as a Python int, if it is an integer (not a bool) in ``[lo, hi]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise QuantizationError(f"{what} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise QuantizationError(f"{what} {int(value)} outside [{lo}, {hi}]")
    return int(value)


def check_int_array(what: str, value: object, lo: int, hi: int) -> np.ndarray:
    """``value`` as a 1-D int64 array, if every entry is an integer in ``[lo, hi]``."""
    a = np.atleast_1d(np.asarray(value))
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise QuantizationError(f"{what} must be a 1-D integer array, got {a.dtype} {a.shape}")
    if a.size and (a.min() < lo or a.max() > hi):
        raise QuantizationError(f"{what} {a.tolist()} outside [{lo}, {hi}]")
    return a.astype(np.int64)


def activation_bounds(
    out: QuantParams,
    activation: str | None = None,
    clip_min: float | None = None,
    clip_max: float | None = None,
) -> tuple[int, int]:
    """Clamp bounds ``[qmin, qmax]`` of an output with a fused activation (TFLite's rule).

    Starts from ``out.bounds`` (the dtype's codes, within ``out.num_bits``).

    relu: ``qmin = max(qmin, zp)``; relu6: also ``qmax = min(qmax, zp + round(6 / scale))``;
    clip: ``zp + round(bound / scale)`` for each given bound; round is half away from zero. A
    quotient beyond the float32 range (a bound of +-FLT_MAX, as some exporters write "no bound")
    leaves that side at the dtype's bound.
    """
    if activation not in ACTIVATIONS:
        raise QuantizationError(f"fused activation must be one of {ACTIVATIONS}: {activation!r}")
    qmin, qmax = out.bounds
    zp = int(out.zero_point[0])
    scale = float(out.scale[0])

    def q(real: float) -> int:
        with np.errstate(over="ignore"):
            code = round_half_away_from_zero(np.float32(real) / np.float32(scale))
        return zp + int(np.clip(code, -(2**31), 2**31))

    lo, hi = qmin, qmax
    if activation == "relu":
        lo = max(qmin, zp)
    elif activation == "relu6":
        lo, hi = max(qmin, zp), min(qmax, q(6.0))
    elif activation == "clip":
        if clip_min is not None:
            lo = max(qmin, q(clip_min))
        if clip_max is not None:
            hi = min(qmax, q(clip_max))
    if lo > hi:
        raise QuantizationError(f"activation {activation} leaves an empty range [{lo}, {hi}]")
    return lo, hi


def make_requant(
    real_multiplier: np.ndarray | float,
    out: QuantParams,
    rounding: str = "gemmlowp",
    bounds: tuple[int, int] | None = None,
) -> Requant:
    """Requant for ``real_multiplier`` (one value or one per channel, each >= 0) into ``out``."""
    reals = np.atleast_1d(np.asarray(real_multiplier, dtype=np.float64))
    pairs = [quantize_multiplier(r) for r in reals]
    qmin, qmax = bounds if bounds is not None else out.bounds
    return Requant(
        multiplier=np.array([m for m, _ in pairs], dtype=np.int64),
        shift=np.array([s for _, s in pairs], dtype=np.int64),
        rounding=rounding,
        zero_point=int(out.zero_point[0]),
        qmin=qmin,
        qmax=qmax,
        dtype=out.dtype,
    )

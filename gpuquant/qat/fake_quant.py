"""Fake quantization, the NumPy reference: TensorFlow's FakeQuantWithMinMaxVars(PerChannel).

Every step is float32 arithmetic, in this order (TensorFlow's ``Nudge``):

1. codes: ``quant_min = 1 if narrow_range else 0``, ``quant_max = 2**num_bits - 1``;
2. ``scale = (max - min) / (quant_max - quant_min)``;
3. ``zero_point_from_min = quant_min - min / scale``;
4. ``nudged_zero_point``: ``quant_min`` if ``zero_point_from_min < quant_min``, ``quant_max`` if
   it is ``> quant_max``, else ``round_half_away_from_zero(zero_point_from_min)``;
5. ``nudged_min = (quant_min - nudged_zero_point) * scale``,
   ``nudged_max = (quant_max - nudged_zero_point) * scale``;
6. ``y = floor((clamp(x, nudged_min, nudged_max) - nudged_min) / scale + 0.5) * scale
   + nudged_min``.

So 0.0 is always exactly representable: it is the grid point ``nudged_zero_point``.

A range that excludes zero is *shifted*, not widened: with ``0 < min < max`` the zero point
clamps to ``quant_min`` and the nudged range becomes ``[0, max - min]`` (same width, same scale);
with ``min < max < 0`` it becomes ``[-(max - min), 0]``. Values above ``max - min`` then saturate.

Float32 decides the zero point at step 3: ``min / scale`` is a rounded float32 quotient, so a
range whose exact zero point lies within float32 rounding of a half-integer can round to the other
neighbour than exact arithmetic would (tests pin such a range).

``min == max == 0`` is TensorFlow's special case: the output is all zeros and the input gradient
passes through. A range so narrow that its float32 scale is not a normal float32 (e.g.
[0, 1e-44]) is treated the same way (as gpuquant.quant.params treats degenerate ranges), rather
than dividing by a zero or subnormal scale. Any other range with ``min >= max`` is an error.

Gradients (FakeQuantWithMinMaxVarsGradient): the input gradient is the upstream gradient where
``nudged_min <= x <= nudged_max`` and 0 elsewhere (straight-through inside the range); the
gradient of ``min`` is the sum of upstream gradients where ``x < nudged_min``, that of ``max`` the
sum where ``x > nudged_max`` (per channel for per-channel ranges).

Per-channel ranges (``axis`` set) apply step 1-6 to each slice along ``axis`` with its own
``min``/``max`` (TensorFlow's PerChannel op is ``axis=-1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import QuantizationError
from ..quant.fixedpoint import round_half_away_from_zero
from ..quant.params import QuantParams

NUM_BITS = range(2, 9)


@dataclass(frozen=True)
class Nudged:
    """The nudged range of step 1-5 (module docstring), one entry per channel (float32/int64).

    ``zero_point`` is the code of real 0 in ``[quant_min, quant_max]``; ``zero_range`` marks the
    ``min == max == 0`` channels, whose other fields are placeholders (scale 1, zero point
    ``quant_min``) and whose output is all zeros.
    """

    nudged_min: np.ndarray
    nudged_max: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    quant_min: int
    quant_max: int
    zero_range: np.ndarray


def quant_bounds(num_bits: int, narrow_range: bool) -> tuple[int, int]:
    """``(quant_min, quant_max)``: ``(1 if narrow_range else 0, 2**num_bits - 1)``."""
    if int(num_bits) not in NUM_BITS:
        raise QuantizationError(f"num_bits must be in [2, 8], got {num_bits}")
    return (1 if narrow_range else 0), 2 ** int(num_bits) - 1


def nudge(
    min_val: float | np.ndarray,
    max_val: float | np.ndarray,
    num_bits: int = 8,
    narrow_range: bool = False,
) -> Nudged:
    """Nudged range, scale and zero point of [min_val, max_val] (module docstring, step 1-5)."""
    quant_min, quant_max = quant_bounds(num_bits, narrow_range)
    lo = np.atleast_1d(np.asarray(min_val, dtype=np.float32))
    hi = np.atleast_1d(np.asarray(max_val, dtype=np.float32))
    if lo.shape != hi.shape or lo.ndim != 1:
        raise QuantizationError(f"min shape {lo.shape} and max shape {hi.shape} must be equal 1-D")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise QuantizationError(f"fake-quant range must be finite, got min {lo} max {hi}")
    zero_range = (lo == 0) & (hi == 0)
    bad = ~zero_range & ~(lo < hi)
    if bad.any():
        i = int(np.argmax(bad))
        raise QuantizationError(
            f"fake-quant range needs min < max (or both 0), got min {lo[i]} max {hi[i]} "
            f"at channel {i}"
        )
    qmin_f, qmax_f = np.float32(quant_min), np.float32(quant_max)
    scale = ((hi - lo) / (qmax_f - qmin_f)).astype(np.float32)
    zero_range = zero_range | (scale < np.finfo(np.float32).tiny)
    scale = np.where(zero_range, np.float32(1.0), scale).astype(np.float32)
    zp_from_min = (qmin_f - lo / scale).astype(np.float32)
    zero_point = np.where(
        zp_from_min < qmin_f,
        quant_min,
        np.where(
            zp_from_min > qmax_f,
            quant_max,
            # std::round of the float32 value, exactly (adding 0.5 in float32 could round up)
            round_half_away_from_zero(zp_from_min.astype(np.float64)),
        ),
    ).astype(np.int64)
    zp_f = zero_point.astype(np.float32)
    return Nudged(
        nudged_min=((qmin_f - zp_f) * scale).astype(np.float32),
        nudged_max=((qmax_f - zp_f) * scale).astype(np.float32),
        scale=scale,
        zero_point=zero_point,
        quant_min=quant_min,
        quant_max=quant_max,
        zero_range=zero_range,
    )


def _channel_shape(x: np.ndarray, axis: int | None, channels: int) -> tuple[int, ...]:
    if axis is None:
        if channels != 1:
            raise QuantizationError(f"{channels} ranges given for a per-tensor fake-quant")
        return (1,) * x.ndim
    ax = axis % x.ndim
    if x.shape[ax] != channels:
        raise QuantizationError(
            f"{channels} ranges for axis {axis} of a tensor of shape {x.shape}"
        )
    return tuple(channels if i == ax else 1 for i in range(x.ndim))


def fake_quant(
    x: np.ndarray,
    min_val: float | np.ndarray,
    max_val: float | np.ndarray,
    num_bits: int = 8,
    narrow_range: bool = False,
    axis: int | None = None,
) -> np.ndarray:
    """Quantize-dequantize ``x`` onto the nudged grid (module docstring, step 6), float32."""
    x = np.asarray(x, dtype=np.float32)
    n = nudge(min_val, max_val, num_bits, narrow_range)
    shape = _channel_shape(x, axis, n.scale.size)
    nmin, nmax = n.nudged_min.reshape(shape), n.nudged_max.reshape(shape)
    scale = n.scale.reshape(shape)
    shifted = np.minimum(np.maximum(x, nmin), nmax) - nmin
    y = (np.floor(shifted / scale + np.float32(0.5)) * scale + nmin).astype(np.float32)
    return np.where(n.zero_range.reshape(shape), np.float32(0.0), y).astype(np.float32)


def fake_quant_gradient(
    grad: np.ndarray,
    x: np.ndarray,
    min_val: float | np.ndarray,
    max_val: float | np.ndarray,
    num_bits: int = 8,
    narrow_range: bool = False,
    axis: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(d_x, d_min, d_max)`` of fake_quant for the upstream gradient ``grad`` (docstring).

    ``d_min``/``d_max`` have one entry per channel (shape (1,) for a per-tensor range).
    """
    x = np.asarray(x, dtype=np.float32)
    grad = np.asarray(grad, dtype=np.float32)
    if grad.shape != x.shape:
        raise QuantizationError(f"gradient shape {grad.shape} differs from input {x.shape}")
    n = nudge(min_val, max_val, num_bits, narrow_range)
    shape = _channel_shape(x, axis, n.scale.size)
    nmin, nmax = n.nudged_min.reshape(shape), n.nudged_max.reshape(shape)
    zero_range = n.zero_range.reshape(shape)
    below = (x < nmin) & ~zero_range
    above = (x > nmax) & ~zero_range
    d_x = np.where(below | above, np.float32(0.0), grad).astype(np.float32)
    reduce = tuple(i for i in range(x.ndim) if shape[i] == 1 or axis is None)
    d_min = np.where(below, grad, 0).sum(axis=reduce, dtype=np.float32).reshape(-1)
    d_max = np.where(above, grad, 0).sum(axis=reduce, dtype=np.float32).reshape(-1)
    return d_x, d_min.astype(np.float32), d_max.astype(np.float32)


def nudged_qparams(
    min_val: float | np.ndarray,
    max_val: float | np.ndarray,
    num_bits: int = 8,
    narrow_range: bool = False,
    dtype: str = "int8",
    axis: int | None = None,
) -> QuantParams:
    """The fake-quant grid as 8-bit quantization parameters: same scale, same real values.

    uint8 keeps the codes ``[quant_min, quant_max]`` and the zero point as they are; int8 moves
    them by ``-2**(num_bits - 1)`` (``[-128, 127]`` for 8 bits, ``[-8, 7]`` for 4); the
    parameters' ``num_bits`` and ``narrow_range`` keep ``bounds`` equal to those codes. A
    ``min == max == 0`` channel gets scale 1 and the zero point of code ``quant_min``.
    """
    if dtype not in ("int8", "uint8"):
        raise QuantizationError(f"fake-quant containers are int8 or uint8, got {dtype!r}")
    n = nudge(min_val, max_val, num_bits, narrow_range)
    offset = 2 ** (int(num_bits) - 1) if dtype == "int8" else 0
    if axis is None and n.scale.size != 1:
        raise QuantizationError(f"{n.scale.size} ranges given for per-tensor parameters")
    return QuantParams(n.scale, n.zero_point - offset, dtype, axis, narrow_range, int(num_bits))

"""The requantization epilogue of every accumulating kernel (ops/requant.py).

``y = clamp(zero_point + multiply_by_quantized_multiplier(acc, multiplier, shift, rounding),
qmin, qmax)`` cast to ``dtype``; the per-channel multiplier and shift broadcast along the last
axis (the output channel of NHWC and of (M, N) products). Large outputs are split into row
blocks requantized on the backend's threads (threads.py), each block in pieces of about
CACHE_BLOCK accumulators.
"""

from __future__ import annotations

import numpy as np

from ...ops import Requant
from ...quant.fixedpoint import INT32_MAX, INT32_MIN, multiply_by_quantized_multiplier
from ...quant.params import DTYPES
from .threads import for_row_blocks

PARALLEL_MIN_SIZE = 1 << 17  # below this many outputs, thread hand-off costs more than it saves
CACHE_BLOCK = 1 << 16  # accumulators requantized at a time: their int64 temporaries stay in L2


def _gemmlowp(acc: np.ndarray, requant: Requant) -> np.ndarray:
    """The gemmlowp rounding of quant/fixedpoint.py's fused path for int32 or int64 ``acc``
    (int64 values outside int32 are refused as there), in place on one int64 buffer ``x``
    (m: multiplier, s: shift)::

        x = sat_int32(acc << max(s, 0))              |x| <= 2**31, so |x * m| < 2**62
        x = (x * m + 2**30) >> 31                    SaturatingRoundingDoublingHighMul, m >= 0
        x = (x + h - [x < 0 and e > 0]) >> e         RoundingDivideByPOT, e = max(-s, 0),
                                                     h = 2**(e-1) (0 for e = 0), ties away from 0
        y = clamp(x + zero_point, qmin, qmax)        exact in int64, then cast
    """
    m = requant.multiplier.astype(np.int64)
    s = requant.shift.astype(np.int64)
    x = acc.astype(np.int64)
    if acc.dtype != np.int32 and x.size and (x.min() < INT32_MIN or x.max() > INT32_MAX):
        bad = x[(x < INT32_MIN) | (x > INT32_MAX)].ravel()[0]
        raise ValueError(f"acc must lie in [{INT32_MIN}, {INT32_MAX}], got {int(bad)}")
    if np.any(s > 0):
        x <<= np.maximum(s, 0)
        np.clip(x, INT32_MIN, INT32_MAX, out=x)
    x *= m
    x += 1 << 30
    x >>= 31
    e = np.maximum(-s, 0)
    if np.any(e > 0):
        h = (np.int64(1) << e) >> 1
        x += h
        # After adding h, x < h exactly where x was negative; no lane with e = 0 is below
        # INT64_MIN.
        x -= x < np.where(e > 0, h, np.iinfo(np.int64).min)
        x >>= e
    x += requant.zero_point
    np.clip(x, requant.qmin, requant.qmax, out=x)
    return x.astype(DTYPES[requant.dtype][0])


def epilogue(acc: np.ndarray, requant: Requant) -> np.ndarray:
    """``requant`` of the accumulators ``acc`` (one thread, no size split): 8-bit codes."""
    if requant.rounding == "gemmlowp" and acc.dtype in (np.int32, np.int64):
        return _gemmlowp(acc, requant)
    scaled = multiply_by_quantized_multiplier(
        acc, requant.multiplier, requant.shift, requant.rounding
    )
    zp = requant.zero_point
    # Clamping before adding the zero point keeps the sum inside int32.
    np.clip(scaled, requant.qmin - zp, requant.qmax - zp, out=scaled)
    scaled += np.int32(zp)
    return scaled.astype(DTYPES[requant.dtype][0])


def requantize(acc: np.ndarray, requant: Requant | None) -> np.ndarray:
    """8-bit output of an int32 accumulator ``acc``; ``requant=None`` returns ``acc`` as int32."""
    acc = np.asarray(acc)
    if requant is None:
        return acc.astype(np.int32)
    if acc.ndim == 0:  # a mean over every axis; the epilogue works on the multiplier's axis
        return epilogue(acc.reshape(1), requant).reshape(())
    if acc.size == 0:
        return epilogue(acc, requant)
    rows = acc.reshape(-1, acc.shape[-1])
    out = np.empty(rows.shape, dtype=DTYPES[requant.dtype][0])
    step = max(1, CACHE_BLOCK // max(rows.shape[1], 1))

    def block(start: int, stop: int) -> None:
        for first in range(start, stop, step):
            last = min(stop, first + step)
            out[first:last] = epilogue(rows[first:last], requant)

    for_row_blocks(rows.shape[0], block, acc.size >= PARALLEL_MIN_SIZE)
    return out.reshape(acc.shape)

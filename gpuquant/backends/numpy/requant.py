"""The requantization epilogue of every accumulating kernel (ops/requant.py).

``y = clamp(zero_point + multiply_by_quantized_multiplier(acc, multiplier, shift, rounding),
qmin, qmax)`` cast to ``dtype``; the per-channel multiplier and shift broadcast along the last
axis (the output channel of NHWC and of (M, N) products). Large outputs are split into row
blocks requantized on the backend's threads (threads.py), each block in pieces of about
CACHE_BLOCK accumulators. With a native core (``native``: "vnni" or "avx2", native.py), int32
accumulators go through that core's vectorised epilogue, the same integers; int64 ones, and
every accumulator of the blas core (``native=None``), through NumPy.
"""

from __future__ import annotations

import numpy as np

from ...ops import Requant
from ...quant.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    check_range,
    gemmlowp_in_place,
    multiply_by_quantized_multiplier,
)
from ...quant.params import DTYPES
from ..operands import requant_operands
from .native import requantize_into
from .threads import for_row_blocks

PARALLEL_MIN_SIZE = 1 << 17  # below this many outputs, thread hand-off costs more than it saves
CACHE_BLOCK = 1 << 16  # accumulators requantized at a time: their int64 temporaries stay in L2


def _gemmlowp(acc: np.ndarray, requant: Requant) -> np.ndarray:
    """``clamp(gemmlowp(acc) + zero_point, qmin, qmax)`` on one int64 copy of int32 or int64
    ``acc`` (quant/fixedpoint.py's gemmlowp_in_place; int64 values outside int32 refused)."""
    x = acc.astype(np.int64)
    if acc.dtype != np.int32:
        check_range(x, INT32_MIN, INT32_MAX, "acc")
    gemmlowp_in_place(x, requant.multiplier.astype(np.int64), requant.shift.astype(np.int64))
    x += requant.zero_point
    np.clip(x, requant.qmin, requant.qmax, out=x)
    return x.astype(DTYPES[requant.dtype][0])


def _native(acc: np.ndarray, requant: Requant, isa: str) -> np.ndarray:
    """``requant`` of int32 ``acc`` (at least 1-D) on native core ``isa``."""
    rows = acc.reshape(-1, acc.shape[-1])
    if rows.strides[1] != rows.itemsize:
        rows = np.ascontiguousarray(rows)
    out = np.empty(rows.shape, dtype=DTYPES[requant.dtype][0])
    requantize_into(rows, requant_operands(requant, rows.shape[1]), isa, out)
    return out.reshape(acc.shape)


def epilogue(acc: np.ndarray, requant: Requant, native: str | None = None) -> np.ndarray:
    """``requant`` of the accumulators ``acc`` (one thread, no size split): 8-bit codes, on
    native core ``native`` for int32 ``acc`` (None: NumPy)."""
    if native and acc.dtype == np.int32 and acc.ndim:
        return _native(acc, requant, native)
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


def requantize(acc: np.ndarray, requant: Requant | None, native: str | None = None
               ) -> np.ndarray:
    """8-bit output of an int32 accumulator ``acc``; ``requant=None`` returns ``acc`` as int32.
    ``native``: the native core that requantizes int32 ``acc`` (None: NumPy)."""
    acc = np.asarray(acc)
    if requant is None:
        return acc.astype(np.int32)
    if acc.ndim == 0:  # a mean over every axis; the epilogue works on the multiplier's axis
        return epilogue(acc.reshape(1), requant, native).reshape(())
    if acc.size == 0:
        return epilogue(acc, requant, native)
    rows = acc.reshape(-1, acc.shape[-1])
    out = np.empty(rows.shape, dtype=DTYPES[requant.dtype][0])
    step = max(1, CACHE_BLOCK // max(rows.shape[1], 1))

    def block(start: int, stop: int) -> None:
        for first in range(start, stop, step):
            last = min(stop, first + step)
            out[first:last] = epilogue(rows[first:last], requant, native)

    for_row_blocks(rows.shape[0], block, acc.size >= PARALLEL_MIN_SIZE)
    return out.reshape(acc.shape)

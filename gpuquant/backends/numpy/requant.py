"""The requantization epilogue of every accumulating kernel (ops/requant.py).

``y = clamp(zero_point + multiply_by_quantized_multiplier(acc, multiplier, shift, rounding),
qmin, qmax)`` cast to ``dtype``; the per-channel multiplier and shift broadcast along the last
axis (the output channel of NHWC and of (M, N) products). Large outputs are split into row
blocks requantized on the backend's threads (threads.py).
"""

from __future__ import annotations

import numpy as np

from ...ops import Requant
from ...quant.fixedpoint import multiply_by_quantized_multiplier
from ...quant.params import DTYPES
from .threads import for_row_blocks

PARALLEL_MIN_SIZE = 1 << 17  # below this many outputs, thread hand-off costs more than it saves


def _epilogue(acc: np.ndarray, requant: Requant) -> np.ndarray:
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
    if acc.ndim == 0 or acc.size == 0:
        return _epilogue(acc, requant)
    rows = acc.reshape(-1, acc.shape[-1])
    out = np.empty(rows.shape, dtype=DTYPES[requant.dtype][0])

    def block(start: int, stop: int) -> None:
        out[start:stop] = _epilogue(rows[start:stop], requant)

    for_row_blocks(rows.shape[0], block, acc.size >= PARALLEL_MIN_SIZE)
    return out.reshape(acc.shape)

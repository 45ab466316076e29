"""The requantization epilogue of every accumulating kernel (ops/requant.py).

``y = clamp(zero_point + multiply_by_quantized_multiplier(acc, multiplier, shift, rounding),
qmin, qmax)`` cast to ``dtype``; the per-channel multiplier and shift broadcast along the last
axis (the output channel of NHWC and of (M, N) products).
"""

from __future__ import annotations

import numpy as np

from ...ops import Requant
from ...quant.fixedpoint import multiply_by_quantized_multiplier
from ...quant.params import DTYPES


def requantize(acc: np.ndarray, requant: Requant | None) -> np.ndarray:
    """8-bit output of an int32 accumulator ``acc``; ``requant=None`` returns ``acc`` as int32."""
    if requant is None:
        return np.asarray(acc).astype(np.int32)
    scaled = multiply_by_quantized_multiplier(
        acc, requant.multiplier, requant.shift, requant.rounding
    )
    zp = requant.zero_point
    # Clamping before adding the zero point keeps the sum inside int32.
    clamped = np.clip(scaled, requant.qmin - zp, requant.qmax - zp) + np.int32(zp)
    return clamped.astype(DTYPES[requant.dtype][0])

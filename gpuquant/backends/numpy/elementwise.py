"""Element-wise add/sub and mul of two 8-bit tensors with their own scales (ops/elementwise.py).

Both broadcast as NumPy does. Every multiplication by a real multiplier goes through
``multiply_by_quantized_multiplier`` with the output requant's rounding mode.
"""

from __future__ import annotations

import numpy as np

from ...ops import AddParams, MulParams
from ...quant.fixedpoint import multiply_by_quantized_multiplier
from .requant import requantize


def add(a: np.ndarray, b: np.ndarray, p: AddParams) -> np.ndarray:
    """TFLite add (docs/quantization.md eq. 9)::

        a' = M_a((a - za) << left_shift)
        b' = +-M_b((b - zb) << left_shift)      (minus when ``b_negate``)
        y  = clamp(zy + M_out(a' + b'))

    ``|q - z| <= 255`` so the shifted values fit int32 for ``left_shift <= 23``.
    """
    rounding = p.requant.rounding
    shifted_a = (a.astype(np.int32) - np.int32(p.a_zero_point)) << p.left_shift
    shifted_b = (b.astype(np.int32) - np.int32(p.b_zero_point)) << p.left_shift
    scaled_a = multiply_by_quantized_multiplier(shifted_a, p.a_multiplier, p.a_shift, rounding)
    scaled_b = multiply_by_quantized_multiplier(shifted_b, p.b_multiplier, p.b_shift, rounding)
    if p.b_negate:
        total = scaled_a.astype(np.int64) - scaled_b
    else:
        total = scaled_a.astype(np.int64) + scaled_b
    return requantize(total, p.requant)


def mul(a: np.ndarray, b: np.ndarray, p: MulParams) -> np.ndarray:
    """``y = clamp(zy + M((a - za) * (b - zb)))``, the product exact in int32."""
    product = (a.astype(np.int32) - np.int32(p.a_zero_point)) * (
        b.astype(np.int32) - np.int32(p.b_zero_point)
    )
    return requantize(product, p.requant)

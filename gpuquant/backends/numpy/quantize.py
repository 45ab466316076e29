"""Quantize float32 to 8-bit and back, at the edges of an integer graph (quant/params.py)."""

from __future__ import annotations

import numpy as np

from ...ops import QuantizeParams
from ...quant.params import QuantParams
from ...quant.params import dequantize as dequantize_values
from ...quant.params import quantize as quantize_values


def quantize(x: np.ndarray, p: QuantizeParams) -> np.ndarray:
    """``clamp(round(float32(x) / scale) + zp)`` with ``p.rounding``, saturating; NaN raises,
    naming the layer."""
    return quantize_values(x, p.params, p.rounding, p.name)


def dequantize(x: np.ndarray, p: QuantParams) -> np.ndarray:
    """``float32(x - zp) * scale`` in float32."""
    return dequantize_values(x, p)

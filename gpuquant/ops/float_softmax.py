"""Parameters of ONNX Runtime's QLinearSoftmax, which normalises float32 exponentials.

contrib_ops/cpu/quantization/qlinear_softmax.cc, per row of the last axis::

    e[d]  = float32(exp((d + bit_shift) * s_x))  for d = x - max(row) in [-255, 0]
            (a table built in float64; bit_shift = max(0, log(FLT_MAX / D) - 5) / s_x keeps
            the row sum of D terms finite)
    S     = ((0 + e[d_0]) + e[d_1]) + ...         float32, in row order
    q     = round_half_to_even(float32(float32(e[d] * c) / S)) + z_y,  c = floor(1 / s_y)

clamped to the output dtype (onnxruntime 1.32 saturates int8 at 127; some older sources
wrapped it). ``table`` is ``e`` indexed by ``d + 255``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import QuantizationError
from ..quant.params import dtype_bounds


@dataclass(frozen=True)
class FloatSoftmaxParams:
    """Softmax over the last axis in ONNX Runtime's float32 steps (module docstring)."""

    name: str
    dtype: str
    table: np.ndarray  # float32 (256,): e[d + 255]
    inverse_scale: float  # float32 floor(1 / s_y)
    zero_point: int

    def __post_init__(self) -> None:
        t = np.asarray(self.table)
        if t.shape != (256,) or t.dtype != np.float32:
            raise QuantizationError(
                f"layer {self.name!r}: softmax table must be 256 float32 values, "
                f"got {t.dtype} of shape {t.shape}"
            )
        lo, hi = dtype_bounds(self.dtype)
        if not lo <= self.zero_point <= hi:
            raise QuantizationError(
                f"layer {self.name!r}: zero point {self.zero_point} outside {self.dtype}"
            )

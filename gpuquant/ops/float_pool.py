"""Parameters of ONNX Runtime's QLinearAveragePool, which averages in float32.

ONNX Runtime (contrib_ops/cpu/quantization/qlinear_pool.cc) dequantizes every code, sums each
window in float32 in row-major window order, divides by the count and quantizes::

    d[q]  = float32(x_scale * (q - x_zp))                  (one float32 product per code)
    s     = ((0 + d[x_0]) + d[x_1]) + ...                   (float32, valid positions, h then w)
    avg   = float32(s / float32(count))                     count: valid positions, or kh*kw
                                                           with count_include_pad
    y     = clamp(round_half_to_even(float32(float32(avg / y_scale) + y_zp)))

Each float32 step rounds, so the result is not a function of the integer sum; the kernel
repeats these float32 operations in this order. ``dequant`` is the table ``d`` indexed by
``q - qmin``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import QuantizationError
from ..quant.params import dtype_bounds
from .conv import conv_output_hw


@dataclass(frozen=True)
class FloatAvgPoolParams:
    """NHWC average pool in float32 as ONNX Runtime computes it (module docstring)."""

    name: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]  # top, bottom, left, right
    count_include_pad: bool
    input_dtype: str
    dequant: np.ndarray  # float32 (256,)
    output_scale: float  # float32 value
    output_zero_point: int
    output_dtype: str

    def __post_init__(self) -> None:
        d = np.asarray(self.dequant)
        if d.shape != (256,) or d.dtype != np.float32:
            raise QuantizationError(
                f"layer {self.name!r}: dequantization table must be 256 float32 values, "
                f"got {d.dtype} of shape {d.shape}"
            )
        lo, hi = dtype_bounds(self.output_dtype)
        dtype_bounds(self.input_dtype)
        if not lo <= self.output_zero_point <= hi:
            raise QuantizationError(
                f"layer {self.name!r}: output zero point {self.output_zero_point} outside "
                f"{self.output_dtype}"
            )
        if min(self.kernel) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise QuantizationError(
                f"layer {self.name!r}: bad window {self.kernel}, stride {self.stride} "
                f"or padding {self.padding}"
            )
        scale = np.float32(self.output_scale)
        if not (np.isfinite(scale) and scale > 0):
            raise QuantizationError(f"layer {self.name!r}: output scale {scale} must be > 0")
        object.__setattr__(self, "output_scale", float(scale))

    def output_hw(self, in_hw: tuple[int, int]) -> tuple[int, int]:
        return conv_output_hw(in_hw, self.kernel, self.stride, (1, 1), self.padding)

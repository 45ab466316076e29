"""Parameters of TFLite's reference integer softmax over the last axis.

Per row, with ``d = x - max(row)`` (reference_ops::Softmax, gemmlowp fixed point,
quant/fixedpoint_exp.py)::

    d' = SaturatingRoundingDoublingHighMul(d * 2**left_shift, input_multiplier)   Q(5)
    e  = exp_on_negative_values(d')                                               Q(0)
    S  = sum over the row of RoundingDivideByPOT(e, 12)                            Q(12)
    (r, b) = reciprocal(S)                           1/S = r * 2**-b, r in Q(0)
    y  = clamp(RoundingDivideByPOT(SRDHM(r, e), b + 31 - 8) + qmin(output))

Entries with ``d < diff_min`` give ``e = 0`` and the output's lowest code. The multiplier is
``beta * s_x * 2**26`` written as ``(input_multiplier, left_shift)``; the output has scale
1/256 and zero point qmin (-128 for int8, 0 for uint8), as TFLite requires.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import QuantizationError
from ..quant.fixedpoint import quantize_multiplier
from ..quant.params import dtype_bounds

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12


@dataclass(frozen=True)
class SoftmaxParams:
    """Fixed-point softmax over the last axis (module docstring)."""

    name: str
    input_dtype: str
    output_dtype: str
    input_multiplier: int
    input_left_shift: int
    diff_min: int

    def __post_init__(self) -> None:
        dtype_bounds(self.input_dtype)
        dtype_bounds(self.output_dtype)
        if not 0 <= self.input_left_shift <= 31 or not 0 <= self.input_multiplier < 2**31:
            raise QuantizationError(
                f"layer {self.name!r}: softmax multiplier {self.input_multiplier} with left shift "
                f"{self.input_left_shift} out of range"
            )


def tflite_softmax_params(
    name: str, input_scale: float, beta: float, input_dtype: str, output_dtype: str
) -> SoftmaxParams:
    """TFLite's PreprocessSoftmaxScaling and CalculateInputRadius in float64:
    ``real = min(beta * s_x * 2**26, 2**31 - 1)``, ``diff_min = -floor(31 * 2**26 / 2**shift)``."""
    real = min(float(beta) * float(input_scale) * 2.0 ** (31 - SCALED_DIFF_INTEGER_BITS),
               2.0**31 - 1.0)
    multiplier, shift = quantize_multiplier(real)
    if shift < 0:
        raise QuantizationError(
            f"layer {name!r}: softmax input scale {input_scale} * beta {beta} is too small "
            f"(multiplier {real} < 1)"
        )
    radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * 2.0 ** (31 - SCALED_DIFF_INTEGER_BITS)
    diff_min = -int(math.floor(radius / 2.0**shift))
    return SoftmaxParams(name, input_dtype, output_dtype, multiplier, shift, diff_min)

"""The quantization scheme: parameters, quantize/dequantize, fixed-point requantization."""

from .fixedpoint import (
    ROUNDING_MODES,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from .params import (
    QuantParams,
    choose_qparams,
    dequantize,
    dtype_bounds,
    int8_to_uint8,
    quantize,
    uint8_to_int8,
)

__all__ = [
    "ROUNDING_MODES", "QuantParams", "choose_qparams", "dequantize", "dtype_bounds",
    "int8_to_uint8", "multiply_by_quantized_multiplier", "quantize", "quantize_multiplier",
    "rounding_divide_by_pot", "saturating_rounding_doubling_high_mul", "uint8_to_int8",
]

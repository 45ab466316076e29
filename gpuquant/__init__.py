"""gpuquant: 8-bit integer inference on GPUs (CUDA through CuPy) with a bit-exact NumPy twin."""

from .errors import (
    BackendUnavailableError,
    CalibrationError,
    DataError,
    GpuquantError,
    ModelFormatError,
    OverflowRiskError,
    QuantizationError,
    ShapeError,
    UnsupportedOpError,
)
from .quant import (
    QuantParams,
    choose_qparams,
    dequantize,
    multiply_by_quantized_multiplier,
    quantize,
    quantize_multiplier,
)

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError", "CalibrationError", "DataError", "GpuquantError", "ModelFormatError",
    "OverflowRiskError", "QuantParams", "QuantizationError", "ShapeError", "UnsupportedOpError",
    "__version__", "choose_qparams", "dequantize", "multiply_by_quantized_multiplier",
    "quantize", "quantize_multiplier",
]

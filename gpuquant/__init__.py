"""gpuquant: 8-bit integer inference on GPUs (CUDA through CuPy) with a bit-exact NumPy twin."""

from .errors import (
    BackendUnavailableError,
    CalibrationError,
    DataError,
    GpuquantError,
    MissingDependencyError,
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

from .backends import get_backend
from .convert import quantize_model
from .integer.file import save
from .loader import load
from .runtime import InferenceSession

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError", "CalibrationError", "DataError", "GpuquantError",
    "InferenceSession", "MissingDependencyError", "ModelFormatError", "OverflowRiskError",
    "QuantParams", "QuantizationError", "ShapeError", "UnsupportedOpError", "__version__",
    "choose_qparams", "dequantize", "get_backend", "load", "multiply_by_quantized_multiplier",
    "quantize", "quantize_model", "quantize_multiplier", "save",
]

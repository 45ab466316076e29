"""Exceptions raised by gpuquant; each message names the node, tensor, shape or value at fault."""


class GpuquantError(Exception):
    """Base class of every error gpuquant raises on bad input."""


class QuantizationError(GpuquantError, ValueError):
    """Parameters that cannot represent the data: bad range, scale, zero point, dtype."""


class OverflowRiskError(QuantizationError):
    """An int32 accumulator or quantized bias of a layer could overflow."""


class CalibrationError(GpuquantError, ValueError):
    """Calibration data that cannot give a range: empty, non-finite, mismatched."""


class UnsupportedOpError(GpuquantError, NotImplementedError):
    """A model operator (named with its node) that gpuquant cannot run."""


class ModelFormatError(GpuquantError, ValueError):
    """A model file that is corrupt, truncated, of an unknown version, or inconsistent."""


class BackendUnavailableError(GpuquantError, RuntimeError, ValueError):
    """A backend was requested that is not one of gpuquant's or cannot run here (the message
    says why)."""


class DataError(GpuquantError, ValueError):
    """A data file (.npz of inputs, labels or calibration samples) that is missing, unreadable,
    lacks the named array, or holds values that cannot be used (empty, non-finite)."""


class ShapeError(GpuquantError, ValueError):
    """An input whose shape or dtype does not match what the model or kernel expects."""


class MissingDependencyError(GpuquantError, ImportError):
    """An optional package that a model format or feature needs is not installed (the message
    names the pip extra that brings it)."""

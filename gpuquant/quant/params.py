"""Quantization parameters: ``r = scale * (q - zero_point)``, per tensor or per axis.

Choosing parameters from a real range [rmin, rmax] (docs/quantization.md, eq. 1-3):

- the range is first widened to include 0: ``rmin = min(rmin, 0)``, ``rmax = max(rmax, 0)``;
- asymmetric: ``scale = (rmax - rmin) / (qmax - qmin)``, and the zero point is *nudged* to the
  integer ``clamp(round_half_away_from_zero(qmin - rmin / scale), qmin, qmax)`` so that 0.0 is
  exactly representable (TensorFlow's nudging);
- symmetric (weights): zero point 0 (128 for uint8), ``scale = max(|rmin|, |rmax|) / qmax`` with
  the narrow range [-127, 127] by default;
- a degenerate range (rmin == rmax == 0, e.g. an all-zero weight channel, or a range whose
  scale would be a subnormal float32) gets scale 1.0, so every scale is a finite normal float32
  and the channel quantizes to the zero point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import QuantizationError
from .fixedpoint import round_half_away_from_zero, round_half_to_even

DTYPES = {
    "int8": (np.int8, -128, 127),
    "uint8": (np.uint8, 0, 255),
    "int32": (np.int32, -(2**31), 2**31 - 1),
}

QUANTIZE_ROUNDING = ("half_to_even", "half_away_from_zero")


def dtype_bounds(dtype: str, narrow_range: bool = False, num_bits: int = 8) -> tuple[int, int]:
    """``(qmin, qmax)`` of a quantized dtype; ``narrow_range`` drops the lowest code (int8: -127).

    ``num_bits`` (2-8, 8-bit dtypes only) narrows an 8-bit container to ``num_bits`` codes:
    int8 ``[-2**(b-1), 2**(b-1) - 1]``, uint8 ``[0, 2**b - 1]``.
    """
    if dtype not in DTYPES:
        raise ValueError(f"quantized dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
    _, lo, hi = DTYPES[dtype]
    if num_bits != 8:
        if dtype == "int32" or not 2 <= num_bits <= 8:
            raise ValueError(f"num_bits {num_bits} invalid for {dtype} (2-8 bits, 8-bit dtypes)")
        lo, hi = (-(2 ** (num_bits - 1)), 2 ** (num_bits - 1) - 1) if dtype == "int8" else (
            0, 2**num_bits - 1)
    return (lo + 1 if narrow_range else lo), hi


@dataclass(frozen=True)
class QuantParams:
    """Scale and zero point of one tensor.

    ``scale`` float32 and ``zero_point`` int32 are 1-D arrays: length 1 for per-tensor
    parameters (``axis is None``), or one entry per index of ``axis`` for per-axis parameters.
    ``narrow_range`` drops the lowest code (int8 weights in [-127, 127]). ``num_bits`` below 8
    keeps the codes of an 8-bit container to ``num_bits`` bits (``dtype_bounds``); ``bounds``
    is the resulting ``(qmin, qmax)``, where quantize and requantization clamp.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    dtype: str
    axis: int | None = None
    narrow_range: bool = False
    num_bits: int = 8

    def __post_init__(self) -> None:
        scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float32))
        zp = np.atleast_1d(np.asarray(self.zero_point)).astype(np.int64)
        qmin, qmax = dtype_bounds(self.dtype, self.narrow_range, self.num_bits)
        if scale.ndim != 1 or zp.shape != scale.shape:
            raise QuantizationError(
                f"scale shape {scale.shape} and zero point shape {zp.shape} must be equal 1-D"
            )
        if self.axis is not None and (isinstance(self.axis, (bool, np.bool_))
                                      or not isinstance(self.axis, (int, np.integer))):
            raise QuantizationError(f"axis must be None or an integer, got {self.axis!r}")
        if self.axis is None and scale.size != 1:
            raise QuantizationError(f"per-tensor parameters need one scale, got {scale.size}")
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise QuantizationError(f"every scale must be finite and > 0, got {scale}")
        if zp.min() < qmin or zp.max() > qmax:
            raise QuantizationError(f"zero point {zp} outside [{qmin}, {qmax}] of {self.dtype}")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", zp.astype(np.int32))

    @property
    def bounds(self) -> tuple[int, int]:
        """``(qmin, qmax)``: the dtype's codes, less narrow range, within ``num_bits``."""
        return dtype_bounds(self.dtype, self.narrow_range, self.num_bits)

    @property
    def per_axis(self) -> bool:
        return self.axis is not None

    def broadcast_shape(self, ndim: int) -> tuple[int, ...]:
        """Shape that lines ``scale``/``zero_point`` up with axis ``axis`` of an ndim tensor;
        QuantizationError if ``axis`` is not one of its axes (-ndim <= axis < ndim)."""
        if self.axis is None:
            return (1,) * ndim
        if not -ndim <= self.axis < ndim:
            raise QuantizationError(f"axis {self.axis} of per-axis parameters does not exist in "
                                    f"a {ndim}-D tensor")
        axis = self.axis % ndim
        return tuple(self.scale.size if i == axis else 1 for i in range(ndim))


def choose_qparams(
    rmin: float | np.ndarray,
    rmax: float | np.ndarray,
    dtype: str = "int8",
    symmetric: bool = False,
    narrow_range: bool | None = None,
    axis: int | None = None,
) -> QuantParams:
    """Scale and nudged zero point for the real range [rmin, rmax] (module docstring).

    Arrays of ranges with ``axis`` set give per-axis parameters. ``narrow_range`` defaults to
    True for symmetric parameters and False otherwise. Non-finite bounds or rmin > rmax raise.
    """
    lo = np.atleast_1d(np.asarray(rmin, dtype=np.float64))
    hi = np.atleast_1d(np.asarray(rmax, dtype=np.float64))
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise QuantizationError(f"range bounds must be finite, got min {lo} max {hi}")
    if np.any(lo > hi):
        raise QuantizationError(f"range min exceeds max: min {lo} max {hi}")
    if narrow_range is None:
        narrow_range = symmetric
    qmin, qmax = dtype_bounds(dtype, narrow_range)
    lo = np.minimum(lo, 0.0)
    hi = np.maximum(hi, 0.0)
    if symmetric:
        center = 128 if dtype == "uint8" else 0
        half = min(qmax - center, center - qmin)
        scale = (np.maximum(np.abs(lo), np.abs(hi)) / half).astype(np.float32)
        zero_point = np.full(lo.shape, center, dtype=np.int64)
    else:
        scale = ((hi - lo) / (qmax - qmin)).astype(np.float32)
        safe = np.where(scale > 0, scale, np.float32(1.0)).astype(np.float64)
        zp_real = qmin - lo / safe
        zero_point = np.clip(round_half_away_from_zero(zp_real), qmin, qmax).astype(np.int64)
    # An empty range, or one so small that its float32 scale is subnormal, is degenerate:
    # scale 1.0 and the code of real 0.
    degenerate = ~(scale >= np.finfo(np.float32).tiny)
    scale = np.where(degenerate, np.float32(1.0), scale)
    if not symmetric:
        zero_point = np.where(degenerate, max(qmin, min(0, qmax)), zero_point)
    if axis is None and scale.size != 1:
        raise QuantizationError(f"{scale.size} ranges given for per-tensor parameters")
    return QuantParams(scale, zero_point, dtype, axis, narrow_range)


def quantize(
    x: np.ndarray, params: QuantParams, rounding: str = "half_to_even", name: str | None = None
) -> np.ndarray:
    """``q = clamp(round(x / scale) + zero_point, qmin, qmax)`` in ``params.dtype``.

    ``[qmin, qmax]`` is ``params.bounds``: the dtype's range, less its lowest code when
    ``params.narrow_range``, within ``params.num_bits``.

    The division is in float32 (as ONNX Runtime and TFLite compute it); ``rounding`` is
    ``"half_to_even"`` (ONNX QuantizeLinear) or ``"half_away_from_zero"`` (TFLite QUANTIZE).
    NaN inputs raise, naming the layer ``name`` when given; infinities saturate.
    """
    x = np.asarray(x, dtype=np.float32)
    nan = np.isnan(x)
    if nan.any():
        where = "" if name is None else f"layer {name!r}: "
        raise QuantizationError(f"{where}cannot quantize NaN ({int(nan.sum())} values)")
    shape = params.broadcast_shape(x.ndim)
    scaled = (x / params.scale.reshape(shape)).astype(np.float64)
    if rounding == "half_to_even":
        rounded = round_half_to_even(scaled)
    elif rounding == "half_away_from_zero":
        rounded = round_half_away_from_zero(scaled)
    else:
        raise ValueError(f"rounding must be one of {QUANTIZE_ROUNDING}, got {rounding!r}")
    np_dtype = DTYPES[params.dtype][0]
    qmin, qmax = params.bounds
    q = rounded + params.zero_point.reshape(shape)
    return np.clip(q, qmin, qmax).astype(np_dtype)


def dequantize(q: np.ndarray, params: QuantParams) -> np.ndarray:
    """``r = float32(q - zero_point) * scale`` in float32."""
    q = np.asarray(q)
    shape = params.broadcast_shape(q.ndim)
    diff = q.astype(np.int64) - params.zero_point.reshape(shape)
    return diff.astype(np.float32) * params.scale.reshape(shape)


def with_dtype(params: QuantParams, dtype: str) -> QuantParams:
    """The same real values in the 8-bit ``dtype`` (int8 or uint8): codes and zero point move by
    ``2**(num_bits - 1)`` (128 for 8 bits), which maps one dtype's bounds onto the other's."""
    if params.dtype == dtype:
        return params
    if {params.dtype, dtype} != {"int8", "uint8"}:
        raise QuantizationError(f"cannot express {params.dtype} parameters as {dtype}")
    shift = 2 ** (params.num_bits - 1) * (-1 if dtype == "int8" else 1)
    return QuantParams(params.scale, params.zero_point + shift, dtype, params.axis,
                       params.narrow_range, params.num_bits)


def uint8_to_int8(q: np.ndarray, params: QuantParams) -> tuple[np.ndarray, QuantParams]:
    """The same real values in int8: ``q - 128`` (flip of the top bit) and the parameters of
    ``with_dtype`` (``zero_point - 128``)."""
    if params.dtype != "uint8" or params.num_bits != 8:
        raise QuantizationError(
            f"expected 8-bit uint8 parameters, got {params.num_bits}-bit {params.dtype}"
        )
    out = (np.asarray(q, dtype=np.uint8) ^ np.uint8(0x80)).view(np.int8)
    return out, with_dtype(params, "int8")


def int8_to_uint8(q: np.ndarray, params: QuantParams) -> tuple[np.ndarray, QuantParams]:
    """The same real values in uint8: ``q + 128`` (flip of the top bit) and the parameters of
    ``with_dtype`` (``zero_point + 128``)."""
    if params.dtype != "int8" or params.num_bits != 8:
        raise QuantizationError(
            f"expected 8-bit int8 parameters, got {params.num_bits}-bit {params.dtype}"
        )
    out = np.asarray(q, dtype=np.int8).view(np.uint8) ^ np.uint8(0x80)
    return out, with_dtype(params, "uint8")

"""Parameters of the matrix-product ops: fully connected (constant weights) and matmul.

Fully connected, per row m of x (M, K) and output channel n (docs/quantization.md, eq. 4)::

    acc[m, n] = sum_k (x[m,k] - zx) * (w[n,k] - zw[n]) + bias[n]
              = sum_k x[m,k] * w[n,k]  -  zw[n] * rowsum(x)[m]  +  folded_bias[n]
    folded_bias[n] = bias[n] - zx * colsum(w)[n] + K * zx * zw[n]
    y[m, n] = requant(acc[m, n])

``folded_bias`` and ``colsum`` are computed once here; kernels add them in the epilogue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import QuantizationError
from ..quant.params import dtype_bounds
from .accumulator import check_accumulator, max_abs_offset
from .requant import Requant

WEIGHT_DTYPES = {"int8": np.int8, "uint8": np.uint8}


def _check_int_array(name: str, what: str, a: np.ndarray, dtype: type, ndim: int) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != dtype or a.ndim != ndim:
        raise QuantizationError(
            f"layer {name!r}: {what} must be a {ndim}-D {np.dtype(dtype).name} array, "
            f"got {a.ndim}-D {a.dtype} of shape {a.shape}"
        )
    return np.ascontiguousarray(a)


def _per_channel(name: str, what: str, value, channels: int) -> np.ndarray:
    a = np.atleast_1d(np.asarray(value, dtype=np.int64))
    if a.size == 1:
        a = np.full(channels, a[0], dtype=np.int64)
    if a.shape != (channels,):
        raise QuantizationError(f"layer {name!r}: {what} needs 1 or {channels} values, got {a.size}")
    return a


def fold_weights(
    name: str,
    weight2d: np.ndarray,
    weight_zero_point: np.ndarray,
    input_zero_point: int,
    input_dtype: str,
    bias: np.ndarray,
) -> np.ndarray:
    """Check int32 headroom and return ``folded_bias`` for weights viewed as (N, K)."""
    w = weight2d.astype(np.int64)
    k = w.shape[1]
    zw = weight_zero_point.astype(np.int64)
    check_accumulator(
        name,
        np.abs(w - zw[:, None]).sum(axis=1),
        max_abs_offset(input_zero_point, input_dtype),
        bias,
    )
    folded = bias.astype(np.int64) - input_zero_point * w.sum(axis=1) + k * input_zero_point * zw
    return folded.astype(np.int32)


@dataclass(frozen=True)
class GemmParams:
    """Fully connected ``y = requant(x @ w.T + bias)`` on 8-bit x (M, K) and w (N, K)."""

    name: str
    weight: np.ndarray  # (N, K) int8 or uint8
    weight_zero_point: np.ndarray  # int32 (N,)
    input_zero_point: int
    input_dtype: str
    bias: np.ndarray  # int32 (N,), scale s_x * s_w[n]
    requant: Requant | None  # None: int32 accumulators out
    folded_bias: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = np.asarray(self.weight).shape[0] if np.ndim(self.weight) == 2 else -1
        w = _check_int_array(
            self.name, "weight", self.weight, WEIGHT_DTYPES.get(_dtype_name(self.weight), np.int8), 2
        )
        zw = _per_channel(self.name, "weight zero point", self.weight_zero_point, n)
        bias = _per_channel(self.name, "bias", 0 if self.bias is None else self.bias, n)
        _check_zero_point(self.name, "input", self.input_zero_point, self.input_dtype)
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "weight_zero_point", zw.astype(np.int32))
        object.__setattr__(self, "bias", bias.astype(np.int32))
        object.__setattr__(self, "input_zero_point", int(self.input_zero_point))
        object.__setattr__(
            self,
            "folded_bias",
            fold_weights(self.name, w, zw, self.input_zero_point, self.input_dtype, bias),
        )
        _check_requant_channels(self.name, self.requant, n)


@dataclass(frozen=True)
class MatMulParams:
    """Batched ``y = requant((a - za) @ (b - zb))`` of two 8-bit activations (..., M, K) @ (..., K, N).

    ``b_zero_point`` is one value or one per column n. ``k`` is the reduction length, known when
    the graph is built, so that the int32 bound ``K * max|a - za| * max|b - zb|`` is checked then.
    """

    name: str
    k: int
    a_zero_point: int
    a_dtype: str
    b_zero_point: np.ndarray  # int32 (1,) or (N,)
    b_dtype: str
    requant: Requant | None

    def __post_init__(self) -> None:
        _check_zero_point(self.name, "a", self.a_zero_point, self.a_dtype)
        zb = np.atleast_1d(np.asarray(self.b_zero_point, dtype=np.int64))
        for z in np.unique(zb):
            _check_zero_point(self.name, "b", int(z), self.b_dtype)
        object.__setattr__(self, "b_zero_point", zb.astype(np.int32))
        object.__setattr__(self, "a_zero_point", int(self.a_zero_point))
        check_accumulator(
            self.name,
            self.k * max_abs_offset(zb, self.b_dtype).max(),
            max_abs_offset(self.a_zero_point, self.a_dtype),
        )


def _dtype_name(a: np.ndarray) -> str:
    return np.asarray(a).dtype.name


def _check_zero_point(name: str, what: str, zp: int, dtype: str) -> None:
    qmin, qmax = dtype_bounds(dtype)
    if dtype not in WEIGHT_DTYPES or not qmin <= int(zp) <= qmax:
        raise QuantizationError(
            f"layer {name!r}: {what} zero point {zp} invalid for dtype {dtype!r} "
            f"(8-bit inputs only, zero point in [{qmin}, {qmax}])"
        )


def _check_requant_channels(name: str, requant: Requant | None, channels: int) -> None:
    if requant is not None and requant.multiplier.size not in (1, channels):
        raise QuantizationError(
            f"layer {name!r}: {requant.multiplier.size} requantization multipliers for "
            f"{channels} output channels"
        )

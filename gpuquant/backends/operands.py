"""Host-side preparation of the constant kernel operands, in NumPy, built once per params object
(``ParamsCache``) by the CuPy backend and by the NumPy backend's native int8 core.

The CUDA GEMM kernels work on int8 images of both operands: a uint8 value ``q`` becomes
``q' = q - 128`` with zero point ``z' = z - 128``, so every ``q - z`` (hence every accumulator)
is unchanged. With ``x' = x - 128`` and ``w'`` (docs: cuda_src/igemm.cuh)::

    acc[m, n] = sum_k x'w' - zw'[n] * rowsum(x')[m] + folded'[n]
    folded'[n] = bias[n] - zx' * colsum(w')[n] + K * zx' * zw'[n]     (mod 2**32)

``folded'`` is stored modulo 2**32: the kernels sum with int32 wrap-around and the true
accumulator fits int32 (ops/accumulator.py), so the result is exact.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ops import Requant
from ..quant.fixedpoint import multiplier_to_float32

ROUNDING_CODES = {"gemmlowp": 0, "single": 1, "float32_half_even": 2}


class ParamsCache:
    """Values derived from a params object, keyed by ``id(params)`` while the params live
    (params are frozen, so a value never goes stale)."""

    def __init__(self) -> None:
        self._items: dict[int, Any] = {}

    def get(self, params: object, build: Callable[[], Any]) -> Any:
        key = id(params)
        if key not in self._items:
            self._items[key] = build()
            weakref.finalize(params, self._items.pop, key, None)
        return self._items[key]


def wrap_int32(v: np.ndarray) -> np.ndarray:
    """``v`` modulo 2**32 as int32 (two's complement)."""
    return np.asarray(v, dtype=np.int64).astype(np.uint32).view(np.int32)


def to_int8_image(q: np.ndarray) -> np.ndarray:
    """int8 ``q`` unchanged; uint8 ``q`` as ``q - 128`` in int8 (flip of the top bit)."""
    q = np.asarray(q)
    if q.dtype == np.uint8:
        return (q ^ np.uint8(0x80)).view(np.int8)
    return q.astype(np.int8, copy=False)


def zero_point_image(zp: np.ndarray | int, dtype: str) -> np.ndarray:
    """The zero point of ``to_int8_image``: ``zp - 128`` for uint8, else ``zp`` (int64)."""
    return np.asarray(zp, dtype=np.int64) - (128 if dtype == "uint8" else 0)


def pack_words(w8: np.ndarray) -> np.ndarray:
    """(N, K) int8 rows zero-padded to a multiple of 4 and viewed as (N, ceil(K/4)) uint32."""
    n, k = w8.shape
    kw = -(-k // 4)
    padded = np.zeros((n, 4 * kw), dtype=np.int8)
    padded[:, :k] = w8
    return np.ascontiguousarray(padded).view(np.uint32)


@dataclass(frozen=True)
class RequantOperands:
    """Per-channel epilogue arrays and scalars for fixedpoint.cuh's GqRequant."""

    multiplier: np.ndarray  # int32 (C,)
    shift: np.ndarray  # int32 (C,)
    multiplier_f32: np.ndarray  # float32 (C,)
    zero_point: int
    qmin: int
    qmax: int
    rounding: int
    out_int32: bool  # requant None: the kernels write int32 accumulators
    out_dtype: np.dtype


def requant_operands(rq: Requant | None, channels: int) -> RequantOperands:
    """Broadcast ``rq`` to ``channels``; ``None`` means int32 accumulators out."""
    if rq is None:
        zeros = np.zeros(channels, dtype=np.int32)
        return RequantOperands(zeros, zeros, zeros.astype(np.float32), 0, 0, 0, 0,
                               True, np.dtype(np.int32))
    m = np.broadcast_to(rq.multiplier, (channels,)).astype(np.int32)
    s = np.broadcast_to(rq.shift, (channels,)).astype(np.int32)
    return RequantOperands(
        m, s, multiplier_to_float32(m, s), int(rq.zero_point), int(rq.qmin), int(rq.qmax),
        ROUNDING_CODES[rq.rounding], False, np.dtype(rq.dtype),
    )


@dataclass(frozen=True)
class GemmOperands:
    """Weights (N, Kw) words, zw' and folded' (N,) int32, for N output channels and K = k."""

    weight_words: np.ndarray
    weight_zero_point: np.ndarray
    folded_bias: np.ndarray
    k: int
    requant: RequantOperands


def gemm_operands(
    weight2d: np.ndarray,
    weight_zero_point: np.ndarray,
    bias: np.ndarray,
    input_zero_point: int,
    input_dtype: str,
    rq: Requant | None,
) -> GemmOperands:
    """Operands of ``acc = sum (x - zx)(w - zw) + bias`` for weights viewed as (N, K)."""
    w8 = to_int8_image(weight2d)
    n, k = w8.shape
    zw = zero_point_image(weight_zero_point, weight2d.dtype.name)
    zx = int(zero_point_image(input_zero_point, input_dtype))
    colsum = w8.astype(np.int64).sum(axis=1)
    folded = np.asarray(bias, dtype=np.int64) - zx * colsum + k * zx * zw
    return GemmOperands(
        pack_words(w8), wrap_int32(zw), wrap_int32(folded), k, requant_operands(rq, n)
    )

"""The operations every backend implements, with the same signatures and the same integers.

Arrays are the backend's own (NumPy or CuPy); ``asarray``/``to_numpy`` move data in and out.
Activations are NHWC. 8-bit inputs are int8 or uint8 as their params say; each op returns the
dtype its params name (``Requant.dtype``; int32 when an accumulating op has ``requant=None``).
The rounding of every op is fixed by its params (ops/), never by the backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..ops import (
    AddParams,
    ConcatParams,
    Conv2DParams,
    GemmParams,
    LookupParams,
    MatMulParams,
    MeanParams,
    MulParams,
    PoolParams,
    QuantizeParams,
)
from ..ops.float_pool import FloatAvgPoolParams
from ..ops.float_softmax import FloatSoftmaxParams
from ..ops.pair_lookup import PairLookupParams
from ..ops.softmax import SoftmaxParams
from ..quant.params import QuantParams

Array = Any


class Backend(Protocol):
    name: str

    def asarray(self, x: Any) -> Array:
        """The backend's array for ``x`` (NumPy array, CuPy array, or a DLPack/CUDA-array object)."""

    def to_numpy(self, x: Array) -> np.ndarray:
        """A host NumPy copy of ``x``."""

    def gemm(self, x: Array, p: GemmParams) -> Array:
        """Fully connected: x (M, K) -> (M, N), ops/gemm.py."""

    def matmul(self, a: Array, b: Array, p: MatMulParams) -> Array:
        """Batched product of two 8-bit activations (..., M, K) @ (..., K, N), broadcasting batch."""

    def conv2d(self, x: Array, p: Conv2DParams) -> Array:
        """NHWC conv2d, grouped and depthwise included, ops/conv.py."""

    def max_pool2d(self, x: Array, p: PoolParams) -> Array:
        """NHWC max pool, ops/pool.py."""

    def avg_pool2d(self, x: Array, p: PoolParams) -> Array:
        """NHWC average pool over valid positions, half away from zero, ops/pool.py."""

    def mean(self, x: Array, p: MeanParams) -> Array:
        """Requantized mean over axes, ops/pool.py."""

    def add(self, a: Array, b: Array, p: AddParams) -> Array:
        """TFLite-style add/sub of two scales, broadcasting, ops/elementwise.py."""

    def mul(self, a: Array, b: Array, p: MulParams) -> Array:
        """Product of two 8-bit tensors, broadcasting, ops/elementwise.py."""

    def concat(self, xs: Sequence[Array], p: ConcatParams) -> Array:
        """Per-input table requantization, then join along ``p.axis``, ops/concat.py."""

    def lookup(self, x: Array, p: LookupParams) -> Array:
        """``p.table[x - qmin]``, ops/lut.py."""

    def quantize(self, x: Array, p: QuantizeParams) -> Array:
        """float32 -> 8-bit, quant/params.py ``quantize``."""

    def dequantize(self, x: Array, p: QuantParams) -> Array:
        """8-bit -> float32, quant/params.py ``dequantize``."""

    def transpose(self, x: Array, perm: Sequence[int]) -> Array:
        """``x.transpose(perm)``, materialised contiguous."""

    def reshape(self, x: Array, shape: Sequence[int]) -> Array:
        """``x.reshape(shape)`` (C order)."""

    def pad(self, x: Array, pads: Sequence[tuple[int, int]], value: int) -> Array:
        """Constant padding with the integer ``value`` (the zero point for real 0)."""

    def pair_lookup(self, a: Array, b: Array, p: PairLookupParams) -> Array:
        """``p.table[a - qmin_a, b - qmin_b]``, broadcasting, ops/pair_lookup.py."""

    def avg_pool2d_float(self, x: Array, p: FloatAvgPoolParams) -> Array:
        """NHWC average pool in ONNX Runtime's float32 steps, ops/float_pool.py."""

    def softmax(self, x: Array, p: SoftmaxParams) -> Array:
        """TFLite's fixed-point softmax over the last axis, ops/softmax.py."""

    def softmax_float(self, x: Array, p: FloatSoftmaxParams) -> Array:
        """ONNX Runtime's float32 QLinearSoftmax over the last axis, ops/float_softmax.py."""

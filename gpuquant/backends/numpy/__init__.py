"""The NumPy reference backend: every op of backends/base.py on the CPU, exact integers.

Products of 8-bit codes (fully connected, matmul, non-depthwise conv) run on a native int8 core
where it is built and the CPU has AVX-512 VNNI or AVX2 (native.py), else through float32 BLAS in
chunks small enough to stay exact (gemm.py); all give the same integers. Everything else is
vectorised NumPy over int32/int64. One module per op family.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...ops import (
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
from ...quant.params import QuantParams
from . import conv, elementwise, gemm, lut, native, pool, quantize
from . import shape as layout
from .imported import ImportedOps


class NumpyBackend(ImportedOps):
    """Backend protocol (backends/base.py) on NumPy arrays."""

    name = "numpy"

    def __init__(self, int8_core: str = "auto") -> None:
        """``int8_core``: "vnni" or "avx2" (the native AVX-512 VNNI or AVX2 core; an error where
        it cannot run), "blas" (float32 BLAS) or "auto" (vnni, else avx2, else blas)."""
        self._native = native.use_native(int8_core)
        self.int8_core = self._native or "blas"

    def asarray(self, x: Any) -> np.ndarray:
        """``x`` as a NumPy array; a CuPy array (anything with ``get`` and
        ``__cuda_array_interface__``) is copied to the host."""
        if hasattr(x, "__cuda_array_interface__") and hasattr(x, "get"):
            return x.get()
        return np.asarray(x)

    def to_numpy(self, x: np.ndarray) -> np.ndarray:
        return np.array(x, copy=True)

    def gemm(self, x: np.ndarray, p: GemmParams) -> np.ndarray:
        return gemm.gemm(x, p, self._native)

    def matmul(self, a: np.ndarray, b: np.ndarray, p: MatMulParams) -> np.ndarray:
        return gemm.matmul(a, b, p, self._native)

    def conv2d(self, x: np.ndarray, p: Conv2DParams) -> np.ndarray:
        return conv.conv2d(x, p, self._native)

    def max_pool2d(self, x: np.ndarray, p: PoolParams) -> np.ndarray:
        return pool.max_pool2d(x, p)

    def avg_pool2d(self, x: np.ndarray, p: PoolParams) -> np.ndarray:
        return pool.avg_pool2d(x, p)

    def mean(self, x: np.ndarray, p: MeanParams) -> np.ndarray:
        return pool.mean(x, p)

    def add(self, a: np.ndarray, b: np.ndarray, p: AddParams) -> np.ndarray:
        return elementwise.add(a, b, p)

    def mul(self, a: np.ndarray, b: np.ndarray, p: MulParams) -> np.ndarray:
        return elementwise.mul(a, b, p)

    def concat(self, xs: Sequence[np.ndarray], p: ConcatParams) -> np.ndarray:
        return lut.concat(xs, p)

    def lookup(self, x: np.ndarray, p: LookupParams) -> np.ndarray:
        return lut.lookup(x, p)

    def quantize(self, x: np.ndarray, p: QuantizeParams) -> np.ndarray:
        return quantize.quantize(x, p)

    def dequantize(self, x: np.ndarray, p: QuantParams) -> np.ndarray:
        return quantize.dequantize(x, p)

    def transpose(self, x: np.ndarray, perm: Sequence[int]) -> np.ndarray:
        return layout.transpose(x, perm)

    def reshape(self, x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        return layout.reshape(x, shape)

    def pad(self, x: np.ndarray, pads: Sequence[tuple[int, int]], value: int) -> np.ndarray:
        return layout.pad(x, pads, value)


__all__ = ["NumpyBackend"]

"""CupyBackend: every op of backends/base.py as a launch of a kernel from cuda_src/.

Each method checks the input's dtype and shape (ShapeError naming the layer), makes it
C-contiguous, computes the grid and block in plain code and launches (ops_*.py, launch.py).
Constant operands (weights, zero-point terms, multipliers, tables) are prepared in NumPy
(operands.py) and uploaded once per params object; the cache entry goes when the params object
does. The tensor-core GEMM path is taken on devices of compute capability 8.0 and newer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import ShapeError
from .ops_elementwise import ElementwiseOps
from .ops_gemm import GemmOps
from .ops_imported import ImportedOps
from .ops_pool import PoolOps


class CupyBackend(GemmOps, PoolOps, ElementwiseOps, ImportedOps):
    """Backend protocol on CuPy arrays, computed by the kernels of cuda_src/.

    ``kernels`` is the kernel provider (default: ``CudaKernels`` on the current CUDA device).
    """

    name = "cupy"

    def asarray(self, x: Any) -> Any:
        return self.k.asarray(x)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.array(self.k.to_numpy(x), copy=True)

    def transpose(self, x: Any, perm: Sequence[int]) -> Any:
        return self.xp.ascontiguousarray(self.k.asarray(x).transpose(tuple(perm)))

    def reshape(self, x: Any, shape: Sequence[int]) -> Any:
        return self.k.asarray(x).reshape(tuple(shape))

    def pad(self, x: Any, pads: Sequence[tuple[int, int]], value: int) -> Any:
        x = self.k.asarray(x)
        if x.dtype.kind in "iu":
            info = np.iinfo(x.dtype)
            if not info.min <= value <= info.max:
                raise ShapeError(f"pad value {value} does not fit {x.dtype}")
        return self.xp.pad(x, [tuple(q) for q in pads], mode="constant", constant_values=value)

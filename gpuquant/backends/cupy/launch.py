"""What every CuPy-backend launcher shares: input checks, grid sizes, per-params uploads.

``Launcher`` holds the kernel provider (device.py's ``CudaKernels``, or the tests' host twin) and
its array module; the op families (ops_*.py) are mixins of it that ``CupyBackend`` combines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import ShapeError
from ..operands import ParamsCache, RequantOperands, requant_operands
from .kernels import MMA_MIN_CC

THREADS = 128
TILE = 64

i32 = np.int32


def struct_arg(dtype: np.dtype, *values: int) -> np.ndarray:
    """A C struct kernel argument: a one-element structured host array (passed by value)."""
    return np.array([tuple(int(v) for v in values)], dtype=dtype)


def blocks(n: int, tile: int) -> int:
    """``ceil(n / tile)``, at least 1."""
    return max(1, -(-n // tile))


class Launcher:
    """Kernel provider, array module and upload cache, with the helpers every op uses."""

    def __init__(self, kernels: Any = None) -> None:
        if kernels is None:
            from .device import CudaKernels

            kernels = CudaKernels()
        self.k = kernels
        self.xp = kernels.xp
        self._uploads = ParamsCache()

    def _input(self, layer: str, what: str, x: Any, dtypes: Sequence[str],
               ndim: int | None = None) -> Any:
        """``x`` as a C-contiguous device array; ShapeError unless its dtype and rank fit."""
        x = self.k.asarray(x)
        if x.dtype.name not in dtypes:
            raise ShapeError(
                f"layer {layer!r}: {what} must be {' or '.join(dtypes)}, got {x.dtype} of shape "
                f"{tuple(x.shape)}"
            )
        if ndim is not None and x.ndim != ndim:
            raise ShapeError(
                f"layer {layer!r}: {what} must be {ndim}-D, got shape {tuple(x.shape)}")
        return self.xp.ascontiguousarray(x)

    def _grid1d(self, n: int) -> tuple[int]:
        return (max(1, min(blocks(n, THREADS), self.k.max_blocks)),)

    def _upload(self, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return self.xp.asarray(value)
        return value

    def _requant_args(self, r: RequantOperands) -> tuple:
        up = self._upload
        return (up(r.multiplier), up(r.shift), up(r.multiplier_f32), i32(r.zero_point),
                i32(r.qmin), i32(r.qmax), i32(r.rounding))

    def _requant(self, params: object, rq, channels: int) -> tuple[RequantOperands, tuple]:
        def build():
            ops = requant_operands(rq, channels)
            return ops, self._requant_args(ops)

        return self._uploads.get(params, build)

    def _mma(self) -> bool:
        return self.k.cc >= MMA_MIN_CC

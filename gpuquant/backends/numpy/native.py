"""The NumPy backend's native int8 core: cpu_src/igemm_vnni.h (AVX-512 VNNI) through the
extension module ``_igemm``, built at install time when a C++ compiler is present.

It computes the same integers as the float32-BLAS path of gemm.py, requantization included
(fixedpoint.cuh, shared with the CUDA kernels). Operands, with ``cx = 128`` for int8 inputs
(else 0), ``cw = 128`` for uint8 weights (else 0) and the op's folded bias F
(ops/gemm.py: ``acc = sum x w - zw * rowsum(x) + F``)::

    x' = x + cx  (uint8: x ^ 0x80 for int8 x)       w' = w - cw  (int8: w ^ 0x80 for uint8 w)
    acc = sum x' w' - zw' * rowsum(x') + folded'
    zw' = zw - cw        folded' = F - cx * (colsum(w') - K * zw')      (mod 2**32)

The epilogue writes int32 accumulators or requantized 8-bit codes. ``core`` selects the path:
"vnni" (native, an error where it cannot run), "blas" (float32 BLAS) or "auto" (native where
available).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ...errors import BackendUnavailableError
from ..operands import ParamsCache, RequantOperands, wrap_int32
from .threads import for_row_blocks

CORES = ("auto", "vnni", "blas")
PARALLEL_MIN_OPS = 1 << 22  # below this many multiply-adds, one thread is faster
CACHE = ParamsCache()


@functools.lru_cache(maxsize=1)
def _module():
    try:
        from . import _igemm
    except ImportError:
        return None
    return _igemm


def status() -> tuple[bool, str]:
    """Whether the native core runs here, and why (or why not)."""
    module = _module()
    if module is None:
        return False, "native extension not built (it needs a C++ compiler at install time)"
    if not module.supported():
        return False, "this CPU lacks AVX-512 VNNI"
    return True, "AVX-512 VNNI"


def use_native(core: str) -> bool:
    """Whether ``core`` runs the native path; "vnni" where it cannot run is an error."""
    if core not in CORES:
        raise ValueError(f"int8 core must be one of {CORES}, got {core!r}")
    if core == "blas":
        return False
    available, why = status()
    if core == "vnni" and not available:
        raise BackendUnavailableError(f"int8 core 'vnni' unavailable: {why}")
    return available


@dataclass(frozen=True)
class NativeOperands:
    """Packed w' panels, zw' and folded' (N,) int32, and the epilogue, for x of ``input_dtype``."""

    packed: bytes
    weight_zero_point: np.ndarray
    folded: np.ndarray
    flip_x: bool
    requant: RequantOperands


def native_operands(
    weight2d: np.ndarray,
    weight_zero_point: np.ndarray,
    folded_bias: np.ndarray,
    input_dtype: str,
    requant: RequantOperands,
) -> NativeOperands:
    """Operands of ``acc = sum x w - zw * rowsum(x) + folded_bias`` for weights viewed as (N, K)
    (any strides) and 8-bit inputs of ``input_dtype``."""
    n, k = weight2d.shape
    cw = 128 if weight2d.dtype == np.uint8 else 0
    cx = 128 if input_dtype == "int8" else 0
    zw = np.broadcast_to(np.asarray(weight_zero_point, dtype=np.int64), (n,)) - cw
    colsum = weight2d.sum(axis=1, dtype=np.int64) - k * cw
    folded = np.asarray(folded_bias, dtype=np.int64) - cx * (colsum - k * zw)
    return NativeOperands(
        _module().pack(weight2d, bool(cw)), wrap_int32(zw), wrap_int32(folded), bool(cx), requant
    )


def gemm_into(x: np.ndarray, ops: NativeOperands, out: np.ndarray) -> None:
    """``out[m, n] = requant(acc[m, n])`` (int32 ``acc`` itself when ops has no requant) for 8-bit
    x (M, K) of any row stride; ``out`` (M, N) may be a column slice of a wider array. Rows split
    over threads."""
    if x.strides[1] != x.itemsize:
        x = np.ascontiguousarray(x)
    rq = ops.requant
    m, k = x.shape
    module = _module()

    def block(start: int, stop: int) -> None:
        module.gemm(x[start:stop], ops.flip_x, ops.packed, ops.weight_zero_point, ops.folded,
                    rq.multiplier, rq.shift, rq.multiplier_f32, rq.zero_point, rq.qmin, rq.qmax,
                    rq.rounding, out[start:stop])

    for_row_blocks(m, block, m * out.shape[1] * k >= PARALLEL_MIN_OPS)

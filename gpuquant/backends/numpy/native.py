"""The NumPy backend's native int8 cores, cpu_src/igemm_vnni.h (AVX-512 VNNI) and
cpu_src/igemm_avx2.h (AVX2: 16-bit widening, pairs of products summed into int32 by VPMADDWD),
through the extension module ``_igemm``, built at install time when a C++ compiler is present.

Each computes the same integers as the float32-BLAS path of gemm.py, requantization included
(fixedpoint.cuh's gq_requantize, the CUDA kernels' epilogue, restated on 8 lanes by the AVX2
core and on 16 by the VNNI core). Operands, with ``cx = 128`` for int8 inputs
(else 0), ``cw = 128`` for uint8 weights (else 0) and the op's folded bias F
(ops/gemm.py: ``acc = sum x w - zw * rowsum(x) + F``)::

    x' = x + cx  (uint8: x ^ 0x80 for int8 x)       w' = w - cw  (int8: w ^ 0x80 for uint8 w)
    acc = sum x' w' - zw' * rowsum(x') + folded'
    zw' = zw - cw        folded' = F - cx * (colsum(w') - K * zw')      (mod 2**32)

The epilogue writes int32 accumulators or requantized 8-bit codes; ``requantize_into`` runs it
alone on int32 accumulators computed elsewhere (depthwise conv). ``core`` selects the path:
"vnni" or "avx2" (that native core, an error where it cannot run), "blas" (float32 BLAS) or
"auto" (the fastest native core available: vnni, else avx2, else blas).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ...errors import BackendUnavailableError
from ..operands import ParamsCache, RequantOperands, wrap_int32
from .threads import for_row_blocks

ISAS = {"vnni": "AVX-512 VNNI", "avx2": "AVX2"}  # native cores, fastest first
CORES = ("auto", *ISAS, "blas")
PARALLEL_MIN_OPS = 1 << 22  # below this many multiply-adds, one thread is faster
CACHES = {isa: ParamsCache() for isa in ISAS}  # each core's operands of a params object
NOT_BUILT = "native extension not built (it needs a C++ compiler at install time)"


@functools.lru_cache(maxsize=1)
def _module():
    try:
        from . import _igemm
    except ImportError:
        return None
    return _igemm


def available() -> tuple[str, ...]:
    """The native cores this CPU runs, fastest first (empty without the extension)."""
    module = _module()
    return () if module is None else tuple(module.supported())


def status() -> tuple[str | None, str]:
    """The native core "auto" runs here ("vnni", "avx2"; None: float32 BLAS), and why."""
    if _module() is None:
        return None, NOT_BUILT
    isas = available()
    if not isas:
        return None, "this CPU lacks AVX-512 VNNI and AVX2"
    if isas[0] == "vnni":
        return "vnni", ISAS["vnni"]
    return isas[0], f"{ISAS[isas[0]]}; this CPU lacks AVX-512 VNNI"


def use_native(core: str) -> str | None:
    """The native core that ``core`` runs, or None for float32 BLAS; "vnni" or "avx2" where it
    cannot run is an error."""
    if core not in CORES:
        raise ValueError(f"int8 core must be one of {CORES}, got {core!r}")
    if core == "blas":
        return None
    if core == "auto":
        return status()[0]
    if core not in available():
        why = NOT_BUILT if _module() is None else f"this CPU lacks {ISAS[core]}"
        raise BackendUnavailableError(f"int8 core {core!r} unavailable: {why}")
    return core


@dataclass(frozen=True)
class NativeOperands:
    """Packed w' panels of native core ``isa``, zw' and folded' (N,) int32, and the epilogue,
    for x of ``input_dtype``."""

    isa: str
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
    isa: str,
) -> NativeOperands:
    """Operands of ``acc = sum x w - zw * rowsum(x) + folded_bias`` on native core ``isa`` for
    weights viewed as (N, K) (any strides) and 8-bit inputs of ``input_dtype``."""
    n, k = weight2d.shape
    cw = 128 if weight2d.dtype == np.uint8 else 0
    cx = 128 if input_dtype == "int8" else 0
    zw = np.broadcast_to(np.asarray(weight_zero_point, dtype=np.int64), (n,)) - cw
    colsum = weight2d.sum(axis=1, dtype=np.int64) - k * cw
    folded = np.asarray(folded_bias, dtype=np.int64) - cx * (colsum - k * zw)
    pack = _module().pack if isa == "vnni" else _module().pack_avx2
    return NativeOperands(
        isa, pack(weight2d, bool(cw)), wrap_int32(zw), wrap_int32(folded), bool(cx), requant
    )


def gemm_into(x: np.ndarray, ops: NativeOperands, out: np.ndarray) -> None:
    """``out[m, n] = requant(acc[m, n])`` (int32 ``acc`` itself when ops has no requant) for 8-bit
    x (M, K) of any row stride; ``out`` (M, N) may be a column slice of a wider array. Rows split
    over threads."""
    if x.strides[1] != x.itemsize:
        x = np.ascontiguousarray(x)
    rq = ops.requant
    m, k = x.shape
    run = _module().gemm if ops.isa == "vnni" else _module().gemm_avx2

    def block(start: int, stop: int) -> None:
        run(x[start:stop], ops.flip_x, ops.packed, ops.weight_zero_point, ops.folded,
            rq.multiplier, rq.shift, rq.multiplier_f32, rq.zero_point, rq.qmin, rq.qmax,
            rq.rounding, out[start:stop])

    for_row_blocks(m, block, m * out.shape[1] * k >= PARALLEL_MIN_OPS)


def requantize_into(acc: np.ndarray, rq: RequantOperands, isa: str, out: np.ndarray) -> None:
    """``out[m, n] = clamp(zp + multiply_by_quantized_multiplier(acc[m, n], channel n), qmin,
    qmax)`` (fixedpoint.cuh's gq_requantize) on native core ``isa``, for int32 ``acc`` (M, N)
    contiguous along rows and 8-bit ``out`` (M, N); one thread."""
    run = _module().requantize if isa == "vnni" else _module().requantize_avx2
    run(acc, rq.multiplier, rq.shift, rq.multiplier_f32, rq.zero_point, rq.qmin, rq.qmax,
        rq.rounding, out)

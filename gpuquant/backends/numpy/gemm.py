"""Fully connected and matmul kernels on 8-bit data, exact through float BLAS.

``exact_matmul`` computes the integer product ``sum_k a[m,k] * b[k,n]`` with BLAS. Unsigned
inputs are first centred on half their range (``a' = a - 2**(bits-1)``, uint8: ``a - 128``), so
that ``|a'|, |b'| <= 2**(bits-1)`` whatever the signedness (8 bits: 128). A float32 sum of
integers is exact while every partial sum stays within 2**24 in magnitude, so the reduction
dimension is cut into chunks of ``2**24 // (max|a'| * max|b'|)`` (8 x 8 bits: 1024), each chunk
one float32 matmul, and the chunk results are summed in int64 (or in int32, modulo 2**32, where
the caller knows the final value lies in int32). Where that bound would give chunks
below ``MIN_FLOAT32_CHUNK`` (inputs wider than 8 bits) float64 is used, exact below 2**53.
The centring is undone exactly with ``a = a' + ca``, ``b = b' + cb``::

    sum_k a b = sum_k a' b' + cb * rowsum(a')[m] + ca * colsum(b)[n]

The zero-point terms then follow ops/gemm.py:
``acc[m,n] = sum_k x[m,k] w[n,k] - zw[n] * rowsum(x)[m] + folded_bias[n]``.

With ``native`` set ("vnni", "avx2") the same integers come from that native int8 core instead
(native.py), which also fuses the zero-point terms and the requantization.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import ShapeError
from ...ops import GemmParams, MatMulParams
from ..operands import requant_operands
from .checks import check_input
from .native import CACHES, NativeOperands, gemm_into, native_operands
from .requant import requantize

FLOAT32_EXACT = 2**24
FLOAT64_EXACT = 2**53
MIN_FLOAT32_CHUNK = 256


def half_range(dtype: np.dtype) -> int:
    """``2**(bits-1)``: the largest magnitude of a centred value of an integer dtype."""
    return 1 << (8 * np.dtype(dtype).itemsize - 1)


def centre(dtype: np.dtype) -> int:
    """The offset subtracted from an integer dtype: ``2**(bits-1)`` if unsigned, else 0."""
    return half_range(dtype) if np.dtype(dtype).kind == "u" else 0


def reduction_chunk(a_dtype: np.dtype, b_dtype: np.dtype) -> tuple[type, int]:
    """The float type and the K-chunk that keep every partial sum of centred products exact."""
    bound = half_range(a_dtype) * half_range(b_dtype)
    chunk = FLOAT32_EXACT // bound
    if chunk >= MIN_FLOAT32_CHUNK:
        return np.float32, chunk
    if FLOAT64_EXACT // bound < 1:
        raise TypeError(f"products of {a_dtype} and {b_dtype} are not exact in float64")
    return np.float64, FLOAT64_EXACT // bound


def exact_matmul(a: np.ndarray, b: np.ndarray, dtype: type = np.int64) -> np.ndarray:
    """``a @ b`` of integer arrays (..., M, K) and (..., K, N) as ``dtype`` (..., M, N): int64
    exactly, int32 modulo 2**32 (so exactly wherever the product lies in int32).

    Batch dimensions broadcast as in ``np.matmul``. Each chunk's float sum is an exact integer
    (below 2**24 for float32, 2**53 for float64); it is cast to int64 when float64 and to
    ``dtype`` when float32 (exact), then added in ``dtype``, which wraps modulo 2**32 for int32.
    """
    ftype, chunk = reduction_chunk(a.dtype, b.dtype)
    k = a.shape[-1]
    if b.shape[-2] != k:
        raise ShapeError(f"matmul reduction mismatch: {a.shape} @ {b.shape}")
    ca, cb = centre(a.dtype), centre(b.dtype)
    af, bf = a.astype(ftype), b.astype(ftype)
    if ca:
        af -= ca
    if cb:
        bf -= cb
    exact = np.int64 if ftype is np.float64 else dtype
    out = np.matmul(af[..., :chunk], bf[..., :chunk, :]).astype(exact).astype(dtype, copy=False)
    for k0 in range(chunk, k, chunk):
        part = np.matmul(af[..., k0:k0 + chunk], bf[..., k0:k0 + chunk, :])
        np.add(out, part.astype(exact, copy=False), out=out, dtype=dtype, casting="unsafe")
    if cb:
        out += (cb * (a.sum(axis=-1, dtype=np.int64) - k * ca)).astype(dtype)[..., None]
    if ca:
        out += (ca * b.sum(axis=-2, dtype=np.int64)).astype(dtype)[..., None, :]
    return out


def gemm(x: np.ndarray, p: GemmParams, native: str | None = None) -> np.ndarray:
    """``requant(x @ w.T - zw * rowsum(x) + folded_bias)`` for x (M, K); ops/gemm.py eq. 4."""
    check_input(p.name, "input", x, p.input_dtype, 2)
    if x.shape[1] != p.weight.shape[1]:
        raise ShapeError(
            f"layer {p.name!r}: input of shape {x.shape} does not match weight {p.weight.shape}"
        )
    if native:
        n = p.weight.shape[0]
        ops = CACHES[native].get(p, lambda: native_operands(
            p.weight, p.weight_zero_point, p.folded_bias, p.input_dtype,
            requant_operands(p.requant, n), native))
        out = np.empty((x.shape[0], n), dtype=ops.requant.out_dtype)
        gemm_into(x, ops, out)
        return out
    acc = exact_matmul(x, p.weight.T)
    acc += p.folded_bias
    if np.any(p.weight_zero_point):
        acc -= p.weight_zero_point.astype(np.int64) * x.sum(axis=1, dtype=np.int64)[:, None]
    return requantize(acc, p.requant)


def matmul(a: np.ndarray, b: np.ndarray, p: MatMulParams, native: str | None = None
           ) -> np.ndarray:
    """``requant((a - za) @ (b - zb))`` of a (..., M, K) and b (..., K, N), batch broadcast.

    Expanded: ``sum a b - zb[n] rowsum(a)[m] - za colsum(b)[n] + K za zb[n]``.
    """
    check_input(p.name, "a", a, p.a_dtype)
    check_input(p.name, "b", b, p.b_dtype)
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != p.k or b.shape[-2] != p.k:
        raise ShapeError(
            f"layer {p.name!r}: expected (..., M, {p.k}) @ (..., {p.k}, N), "
            f"got {a.shape} @ {b.shape}"
        )
    if native:
        return _native_matmul(a, b, p, native)
    za = np.int64(p.a_zero_point)
    zb = p.b_zero_point.astype(np.int64)
    acc = exact_matmul(a, b)
    acc -= zb * a.sum(axis=-1, dtype=np.int64)[..., None]
    acc -= za * b.sum(axis=-2, dtype=np.int64)[..., None, :]
    acc += p.k * za * zb
    return requantize(acc, p.requant)


def _native_matmul(a: np.ndarray, b: np.ndarray, p: MatMulParams, isa: str) -> np.ndarray:
    """matmul on native core ``isa`` with ``folded[n] = -za * (colsum(b)[n] - K * zb[n])``.

    b is packed once per distinct matrix: batch dimensions along which b is broadcast (size 1
    or stride 0) reuse one packing. When b is the same matrix for every batch index, all of a's
    rows go through one product; otherwise there is one product per batch index.
    """
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    n = b.shape[-1]
    zb = np.broadcast_to(p.b_zero_point.astype(np.int64), (n,))
    requant = requant_operands(p.requant, n)
    out = np.empty(batch + (a.shape[-2], n), dtype=requant.out_dtype)
    if out.size == 0:
        return out
    packed: dict[tuple[int, ...], NativeOperands] = {}

    def operands(index: tuple[int, ...]) -> NativeOperands:
        key = tuple(i if stride else 0 for i, stride in zip(index, b.strides[:-2]))
        if key not in packed:
            bt = b[key].T
            folded = -p.a_zero_point * (bt.sum(axis=1, dtype=np.int64) - p.k * zb)
            packed[key] = native_operands(bt, zb, folded, p.a_dtype, requant, isa)
        return packed[key]

    if not any(b.strides[:-2]):
        rows = math.prod(batch) * a.shape[-2]
        gemm_into(a.reshape(rows, p.k), operands((0,) * len(batch)), out.reshape(rows, n))
        return out
    for index in np.ndindex(*batch):
        gemm_into(a[index], operands(index), out[index])
    return out

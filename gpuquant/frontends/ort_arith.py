"""ONNX Runtime's float32 arithmetic for 8-bit ops (x86-64 MLAS), evaluated into integer tables.

Each function returns the 8-bit outputs ONNX Runtime computes for every possible input code (or
pair of codes), so that the importer can hand integer-only tables to the kernels. Every float32
operation is done in float32 in the runtime's order; ``fma32`` is a correctly rounded fused
multiply-add (the FMA3 instructions of the AVX2 kernels). Conversions to integers round half to
even (``cvtps2dq``, ``nearbyintf``) and saturate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..quant.params import DTYPES, dtype_bounds

f32 = np.float32


def fma32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``float32(a * b + c)`` with one rounding, for float32 ``a``, ``b``, ``c``.

    ``a * b`` is exact in float64; the float64 sum ``s`` and its exact error ``e`` (TwoSum) fix
    the one case where rounding ``s`` to float32 could differ from rounding ``a*b + c``: ``s``
    exactly halfway between two float32 values with ``e != 0``.
    """
    p = np.asarray(a, np.float32).astype(np.float64) * np.asarray(b, np.float32)
    c64 = np.asarray(c, np.float32).astype(np.float64)
    s = p + c64
    bp = s - c64
    e = (p - bp) + (c64 - (s - bp))
    r = s.astype(np.float32)
    other = np.nextafter(r, np.where(s > r, np.float32(np.inf), np.float32(-np.inf)))
    tie = (r.astype(np.float64) != s) & (
        (r.astype(np.float64) + other.astype(np.float64)) / 2 == s
    )
    toward = np.where(e > 0, np.maximum(r, other), np.minimum(r, other))
    return np.where(tie & (e != 0), toward, r).astype(np.float32)


def saturate_rint(x: np.ndarray, dtype: str) -> np.ndarray:
    """``clamp(round_half_to_even(x))`` into ``dtype`` (the pack-with-saturation of MLAS)."""
    np_dtype, lo, hi = DTYPES[dtype]
    return np.clip(np.rint(np.asarray(x, np.float64)), lo, hi).astype(np_dtype)


def codes(dtype: str) -> np.ndarray:
    """All 256 codes of ``dtype``, lowest first, as int32."""
    lo, _ = dtype_bounds(dtype)
    return np.arange(lo, lo + 256, dtype=np.int32)


def dequantize_codes(scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """``float32(scale * (q - zp))`` for every code q (one float32 product)."""
    return (f32(scale) * (codes(dtype) - zero_point).astype(np.float32)).astype(np.float32)


def quantize_linear(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """MlasQuantizeLinear: ``clamp(round_half_to_even(float32(x / scale)) + zp)``."""
    scaled = (np.asarray(x, np.float32) / f32(scale)).astype(np.float64)
    np_dtype, lo, hi = DTYPES[dtype]
    return np.clip(np.rint(scaled) + zero_point, lo, hi).astype(np_dtype)


def qlinear_add_table(
    a: tuple[float, int], b: tuple[float, int], c: tuple[float, int], dtype: str, mode: str
) -> np.ndarray:
    """MlasQLinearAdd (AVX2 kernel), table[i, j] for codes (a_i, b_j); ``a``, ``b``, ``c`` are
    (scale, zero point). ``mode`` is the broadcast kernel ONNX Runtime picks: "general", or
    "a_scalar"/"b_scalar" when that input is one value over a span. The kernel takes a span
    input ``u`` and a second input ``v`` (ONNX Runtime passes the span first, so a scalar
    ``a`` swaps the roles); with ``r_u = s_u / s_c``, ``r_v = s_v / s_c`` and
    ``k = zc - fma(r_u, zu, r_v * zv)`` (float32; the compiler fuses this multiply-add)::

        general:  y = fma(u, r_u, fma(v, r_v, k))
        scalar v: y = fma(u, r_u, fma(v, r_v, k))   with fma(v, r_v, k) computed once

    then rounded half to even and saturated. Both forms give the same numbers; the roles of
    ``a`` and ``b`` are what differs.
    """
    if mode not in ("general", "a_scalar", "b_scalar"):
        raise ValueError(f"unknown broadcast mode {mode!r}")
    (u, v) = (b, a) if mode == "a_scalar" else (a, b)
    r_u, r_v = f32(f32(u[0]) / f32(c[0])), f32(f32(v[0]) / f32(c[0]))
    k = f32(f32(c[1]) - fma32(r_u, f32(u[1]), f32(r_v * f32(v[1]))))
    qu = codes(dtype).astype(np.float32)[:, None]
    qv = codes(dtype).astype(np.float32)[None, :]
    y = saturate_rint(fma32(qu, r_u, fma32(qv, r_v, k)), dtype)
    return np.ascontiguousarray(y.T) if mode == "a_scalar" else y


def qlinear_mul_table(
    a: tuple[float, int], b: tuple[float, int], c: tuple[float, int], dtype: str
) -> np.ndarray:
    """MlasQLinearMul (SSE2 kernel): ``y = float32(float32((a-za)(b-zb)) * r) + float32(zc)``
    with ``r = float32(float32(s_a * s_b) / s_c)``, rounded half to even and saturated."""
    ratio = f32(f32(f32(a[0]) * f32(b[0])) / f32(c[0]))
    da = (codes(dtype) - a[1])[:, None]
    db = (codes(dtype) - b[1])[None, :]
    product = (da * db).astype(np.float32)
    y = ((product * ratio).astype(np.float32) + f32(c[1])).astype(np.float32)
    return saturate_rint(y, dtype)


def lookup_table(
    fn: Callable[[np.ndarray], np.ndarray],
    x: tuple[float, int],
    y: tuple[float, int],
    in_dtype: str,
    out_dtype: str,
) -> np.ndarray:
    """QlinearBuildLookupTable: ``quantize_linear(fn(dequantize_codes(x)), y)``; ``fn`` maps
    float32 to float32 as ONNX Runtime's transformer does."""
    values = np.asarray(fn(dequantize_codes(x[0], x[1], in_dtype)), dtype=np.float32)
    return quantize_linear(values, y[0], y[1], out_dtype)


_LOGISTIC_ALPHA = [f32(v) for v in (4.37031012579801e-11, 1.15627324459942e-07,
                                    6.08574864600143e-05, 8.51377133304701e-03,
                                    2.48287947061529e-01)]
_LOGISTIC_BETA = [f32(v) for v in (6.10247389755681e-13, 5.76102136993427e-09,
                                   6.29106785017040e-06, 1.70198817374094e-03,
                                   1.16817656904453e-01, 9.93151921023180e-01)]


def mlas_logistic(x: np.ndarray) -> np.ndarray:
    """MlasComputeLogistic (FMA3 kernel): x clamped to [-18, 18], then
    ``p/q + 1/2`` clamped to [0, 1] with odd/even polynomials in ``x^2`` evaluated by FMA."""
    v = np.clip(np.asarray(x, np.float32), f32(-18.0), f32(18.0))
    v2 = (v * v).astype(np.float32)
    p = fma32(v2, _LOGISTIC_ALPHA[0], _LOGISTIC_ALPHA[1])
    for coef in _LOGISTIC_ALPHA[2:]:
        p = fma32(p, v2, coef)
    p = (p * v).astype(np.float32)
    q = fma32(v2, _LOGISTIC_BETA[0], _LOGISTIC_BETA[1])
    for coef in _LOGISTIC_BETA[2:]:
        q = fma32(q, v2, coef)
    return np.clip((p / q).astype(np.float32) + f32(0.5), f32(0.0), f32(1.0)).astype(np.float32)


def leaky_relu(alpha: float) -> Callable[[np.ndarray], np.ndarray]:
    """``x >= 0 ? x : alpha * x`` in float32."""
    a = f32(alpha)
    return lambda x: np.where(x >= 0, x, (x * a).astype(np.float32)).astype(np.float32)


FLT_MAX = float(np.finfo(np.float32).max)


def softmax_exp_table(x_scale: float, length: int) -> np.ndarray:
    """QLinearSoftmax's exponentials ``e[j] = float32(exp((j - 255 + bit_shift) * s_x))``,
    ``bit_shift = max(0, log(float32(FLT_MAX / length)) - 5) / s_x``, in float64."""
    s = float(f32(x_scale))
    shift = max(0.0, float(np.log(np.float64(f32(FLT_MAX) / f32(length)))) - 5.0) / s
    j = np.arange(256, dtype=np.float64)
    return np.exp((j - 255.0 + shift) * s).astype(np.float32)

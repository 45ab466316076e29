"""Plain, obviously-correct references for the backend tests: Python integers, loops, einsum.

Nothing here calls gpuquant's kernels or fixed-point helpers; each function restates the
formula of the docstrings in ops/ and quant/fixedpoint.py element by element.
"""

from __future__ import annotations

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
NP_DTYPES = {"int8": np.int8, "uint8": np.uint8, "int32": np.int32}


def _sat32(v: int) -> int:
    return max(INT32_MIN, min(INT32_MAX, v))


def _div_pow2_half_away(v: int, e: int) -> int:
    if e == 0:
        return v
    magnitude = (abs(v) + (1 << (e - 1))) >> e
    return magnitude if v >= 0 else -magnitude


def scale_one(acc: int, multiplier: int, shift: int, rounding: str) -> int:
    """``acc * multiplier * 2**(shift - 31)`` rounded as the mode says, saturated to int32."""
    if rounding == "gemmlowp":
        x = _sat32(acc << max(shift, 0))
        high = (x * multiplier + (1 << 30)) >> 31  # floor(x*m/2**31 + 1/2)
        return _sat32(_div_pow2_half_away(high, max(-shift, 0)))
    if rounding == "single":
        return _sat32(_div_pow2_half_away(acc * multiplier, 31 - shift))
    if rounding == "float32_half_even":
        m = np.float32(multiplier * 2.0 ** (shift - 31))
        return _sat32(int(np.rint(np.float64(np.float32(acc) * m))))
    raise ValueError(rounding)


def scale(acc: np.ndarray, multiplier, shift, rounding: str) -> np.ndarray:
    """``scale_one`` element-wise; per-channel multiplier/shift on the last axis."""
    acc = np.asarray(acc, dtype=np.int64)
    m = np.broadcast_to(np.asarray(multiplier, dtype=np.int64), acc.shape)
    s = np.broadcast_to(np.asarray(shift, dtype=np.int64), acc.shape)
    out = np.empty(acc.shape, dtype=np.int64)
    for idx in np.ndindex(acc.shape):
        out[idx] = scale_one(int(acc[idx]), int(m[idx]), int(s[idx]), rounding)
    return out


def requant(acc: np.ndarray, r) -> np.ndarray:
    """``clamp(zp + scale(acc), qmin, qmax)`` in ``r.dtype``; ``r=None`` gives int32 ``acc``."""
    if r is None:
        return np.asarray(acc).astype(np.int32)
    y = scale(acc, r.multiplier, r.shift, r.rounding) + r.zero_point
    return np.clip(y, r.qmin, r.qmax).astype(NP_DTYPES[r.dtype])


def conv_acc(x, w, zx, zw, bias, stride, dilation, padding, groups) -> np.ndarray:
    """``sum (x - zx)(w - zw) + bias`` by loops over outputs and taps; NHWC x, OHWI w.

    An out-of-range tap reads ``zx`` (real 0), i.e. contributes nothing.
    """
    n, h, wd, c_in = x.shape
    c_out, kh, kw, cg = w.shape
    top, bottom, left, right = padding
    oh = (h + top + bottom - (kh - 1) * dilation[0] - 1) // stride[0] + 1
    ow = (wd + left + right - (kw - 1) * dilation[1] - 1) // stride[1] + 1
    xc = x.astype(np.int64) - zx
    wc = w.astype(np.int64) - np.asarray(zw, dtype=np.int64).reshape(-1, 1, 1, 1)
    out = np.zeros((n, oh, ow, c_out), dtype=np.int64)
    per_group = c_out // groups
    for o in range(c_out):
        g = o // per_group
        for i in range(kh):
            for j in range(kw):
                for yy in range(oh):
                    r = yy * stride[0] + i * dilation[0] - top
                    if not 0 <= r < h:
                        continue
                    for xx in range(ow):
                        c = xx * stride[1] + j * dilation[1] - left
                        if not 0 <= c < wd:
                            continue
                        patch = xc[:, r, c, g * cg:(g + 1) * cg]
                        out[:, yy, xx, o] += patch @ wc[o, i, j]
    out += np.broadcast_to(np.asarray(bias, dtype=np.int64).reshape(-1), (c_out,))
    return out


def random_requant(rng: np.random.Generator, channels: int, dtype: str, rounding: str):
    """A Requant with per-channel multipliers from about 2**-14 up to 4 (above 1 included),
    a random output zero point and clamp bounds narrowed on one side half of the time."""
    from gpuquant.ops import Requant
    from gpuquant.quant.params import dtype_bounds

    qmin, qmax = dtype_bounds(dtype)
    lo, hi = (qmin, qmax) if rng.random() < 0.5 else (qmin + 5, qmax - 7)
    return Requant(
        multiplier=rng.integers(2**30, 2**31, channels),
        shift=rng.integers(-14, 3, channels),
        rounding=rounding,
        zero_point=int(rng.integers(qmin, qmax + 1)),
        qmin=lo,
        qmax=hi,
        dtype=dtype,
    )


def codes(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    """Uniform random 8-bit codes of ``dtype`` with both extremes planted."""
    np_dtype = NP_DTYPES[dtype]
    info = np.iinfo(np_dtype)
    a = rng.integers(info.min, int(info.max) + 1, size=shape).astype(np_dtype)
    flat = a.reshape(-1)
    if flat.size >= 2:
        flat[0], flat[-1] = info.min, info.max
    return a

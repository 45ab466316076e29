"""Edge cases of the NumPy backend's fast paths against independent references.

The in-place gemmlowp epilogue in cache-sized pieces (requant.py), depthwise conv on stride-phase
row views (conv.py), max/average pooling on the same row views (pool.py) and the native matmul's
shared packing of a broadcast b (gemm.py). References: int_reference.py's loops and
quant/fixedpoint.py's ``multiply_by_quantized_multiplier``; the depthwise and pooling references
below pad explicitly (conv: the input zero point; pools: positions left out of the window) and
loop over taps in int64.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuquant.backends.numpy import conv, requant as requant_module, threads
from gpuquant.backends.numpy.native import use_native
from gpuquant.backends.numpy.requant import requantize
from gpuquant.ops import Conv2DParams, GemmParams, MatMulParams, MeanParams, PoolParams, Requant
from gpuquant.quant.fixedpoint import multiply_by_quantized_multiplier
from int_reference import INT32_MAX, INT32_MIN, NP_DTYPES, codes, requant, scale_one

FIXTURES_OK = settings(deadline=None, derandomize=True,
                       suppress_health_check=[HealthCheck.function_scoped_fixture])
I8 = ["int8", "uint8"]
EDGE_ACC = sorted({s * ((1 << i) + d) for i in range(32) for d in (-2, -1, 0, 1, 2)
                   for s in (1, -1)} | {INT32_MIN, INT32_MAX, 0})
EDGE_ACC = [v for v in EDGE_ACC if INT32_MIN <= v <= INT32_MAX]


def _bounds(dtype: str) -> tuple[int, int]:
    info = np.iinfo(NP_DTYPES[dtype])
    return int(info.min), int(info.max)


def _zero_point(rng: np.random.Generator, dtype: str) -> int:
    lo, hi = _bounds(dtype)
    return int(rng.choice([lo, hi, 0, int(rng.integers(lo, hi + 1))]))


def _requant(rng: np.random.Generator, channels: int, dtype: str, rounding: str = "gemmlowp"
             ) -> Requant:
    """Multipliers and shifts over their whole ranges, extremes planted; per-tensor a third of
    the time; clamp bounds narrowed half of the time."""
    c = 1 if rng.random() < 1 / 3 else channels
    multiplier = rng.integers(2**30, 2**31, c)
    shift = rng.integers(-31, 31, c)
    planted = [(INT32_MAX, 30), (2**30, -31), (0, 0), (1, 0), (INT32_MAX, -31), (2**30, 1)]
    for i in range(c):
        if rng.random() < 0.3:
            multiplier[i], shift[i] = planted[int(rng.integers(len(planted)))]
    lo, hi = _bounds(dtype)
    if rng.random() < 0.5:
        lo, hi = sorted(int(v) for v in rng.integers(lo, hi + 1, 2))
    return Requant(multiplier, shift, rounding, _zero_point(rng, dtype), lo, hi, dtype)


def _reference_by_fixedpoint(acc: np.ndarray, r: Requant) -> np.ndarray:
    """``clamp(zp + multiply_by_quantized_multiplier(acc))`` in int64 (docs/quantization.md)."""
    scaled = multiply_by_quantized_multiplier(acc, r.multiplier, r.shift, r.rounding)
    y = np.clip(scaled.astype(np.int64) + r.zero_point, r.qmin, r.qmax)
    return y.astype(NP_DTYPES[r.dtype])


def _view(rng: np.random.Generator, a: np.ndarray) -> np.ndarray:
    """``a`` itself, or the same values as a non-contiguous view (reversed, or sliced from a
    larger array)."""
    pick = rng.integers(3)
    if pick == 1 and a.ndim:
        return np.ascontiguousarray(a[::-1])[::-1]
    if pick == 2:
        big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
        big[tuple(slice(None, None, 2) for _ in a.shape)] = a
        return big[tuple(slice(None, None, 2) for _ in a.shape)]
    return a


# --- requantization epilogue ---------------------------------------------------------------

@pytest.mark.parametrize("cache_block,parallel_min,count", [(1 << 16, 1 << 17, 1), (7, 1, 3),
                                                            (1, 1, 2)])
@FIXTURES_OK
@given(rows=st.integers(0, 40), channels=st.sampled_from([1, 2, 3, 17]),
       acc_dtype=st.sampled_from([np.int32, np.int64]), dtype=st.sampled_from(I8),
       transposed=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_requantize_gemmlowp_property(nb, monkeypatch, cache_block, parallel_min, count, rows,
                                      channels, acc_dtype, dtype, transposed, seed):
    monkeypatch.setattr(requant_module, "CACHE_BLOCK", cache_block)
    monkeypatch.setattr(requant_module, "PARALLEL_MIN_SIZE", parallel_min)
    monkeypatch.setattr(threads, "THREADS", count)
    rng = np.random.default_rng(seed)
    acc = rng.choice(EDGE_ACC, (rows, channels)).astype(acc_dtype)
    if transposed:
        acc = np.ascontiguousarray(acc.T).T
    r = _requant(rng, channels, dtype)
    got = requantize(acc, r, use_native(nb.int8_core))
    assert got.dtype == np.dtype(dtype) and got.shape == acc.shape
    np.testing.assert_array_equal(got, requant(acc, r))
    np.testing.assert_array_equal(got, _reference_by_fixedpoint(acc, r))


@pytest.mark.parametrize("shape", [(1 << 16, 1), ((1 << 16) + 1, 2), (1031, 129), (3, 70001)])
@pytest.mark.parametrize("acc_dtype", [np.int32, np.int64])
def test_requantize_at_the_default_block_sizes(nb, shape, acc_dtype):
    # Around CACHE_BLOCK (2**16 accumulators a piece) and PARALLEL_MIN_SIZE (2**17, threads),
    # with the real constants; one row wider than a piece in the last case.
    rng = np.random.default_rng(shape[0])
    acc = rng.choice(EDGE_ACC, shape).astype(acc_dtype)
    r = _requant(rng, shape[1], "uint8")
    got = requantize(acc, r, use_native(nb.int8_core))
    np.testing.assert_array_equal(got, _reference_by_fixedpoint(acc, r))


@pytest.mark.parametrize("rounding", ["gemmlowp", "single", "float32_half_even"])
@pytest.mark.parametrize("acc_dtype", [np.int32, np.int64])
def test_requantize_zero_dimensional_accumulator_keeps_its_shape(nb, rounding, acc_dtype):
    # Mean over every axis without keepdims hands the epilogue one 0-d accumulator.
    r = Requant(np.array([2**30]), np.array([1]), rounding, 3, -128, 127, "int8")
    got = requantize(np.array(-100, acc_dtype), r, use_native(nb.int8_core))
    assert got.shape == () and got.dtype == np.int8
    assert int(got) == 3 + scale_one(-100, 2**30, 1, rounding)


def test_mean_over_every_axis_without_keepdims_is_a_scalar(nb):
    x = np.arange(-12, 12, dtype=np.int8).reshape(1, 2, 3, 4)
    r = Requant(np.array([2**30]), np.array([-6]), "gemmlowp", 5, -128, 127, "int8")
    got = nb.mean(x, MeanParams("mean", (0, 1, 2, 3), False, -128, "int8", r))
    total = int((x.astype(np.int64) + 128).sum())  # 24 * 128 - 12 = 3060
    assert got.shape == () and int(got) == 5 + scale_one(total, 2**30, -6, "gemmlowp") == 29


def test_gemm_int64_accumulators_at_the_int32_edges(nb):
    # uint8 x at 0/255 with zero point 255 (|x - zx| <= 255) against weights -128/127 with a
    # bias filling the rest of the headroom: accumulators reach +-(2**31 - 1) exactly.
    k = 64
    w = np.array([[-128] * k, [127] * k, [-128] * (k // 2) + [127] * (k // 2)], np.int8)
    room = INT32_MAX - 255 * np.abs(w.astype(np.int64)).sum(axis=1)
    bias = np.array([room[0], -room[1], room[2]])
    x = np.array([[0] * k, [255] * k, [0] * (k // 2) + [255] * (k // 2)], np.uint8)
    r = Requant(np.array([INT32_MAX, 2**30, 2**30 + 1]), np.array([30, -31, 0]), "gemmlowp",
                0, -128, 127, "int8")
    p = GemmParams("fc", w, 0, 255, "uint8", bias, r)
    acc = (x.astype(np.int64) - 255) @ w.T.astype(np.int64) + bias
    assert acc.max() == INT32_MAX and acc.min() == -INT32_MAX
    np.testing.assert_array_equal(nb.gemm(x, p), requant(acc, r))
    p32 = GemmParams("fc", w, 0, 255, "uint8", bias, None)
    np.testing.assert_array_equal(nb.gemm(x, p32), acc)


# --- depthwise conv -----------------------------------------------------------------------

def depthwise_reference(x, w, zx, zw, bias, stride, dilation, padding) -> np.ndarray:
    """``sum (xp - zx)(w - zw) + bias`` in int64 over explicitly padded ``xp`` (padding holds
    zx); output channel o reads input channel ``o // (C_out / C_in)``."""
    n, h, wd, c_in = x.shape
    c_out, kh, kw, _ = w.shape
    m = c_out // c_in
    top, bottom, left, right = padding
    xp = np.pad(x.astype(np.int64), ((0, 0), (top, bottom), (left, right), (0, 0)),
                constant_values=zx) - zx
    wc = w[..., 0].astype(np.int64) - np.asarray(zw, np.int64).reshape(-1, 1, 1)
    oh = (h + top + bottom - (kh - 1) * dilation[0] - 1) // stride[0] + 1
    ow = (wd + left + right - (kw - 1) * dilation[1] - 1) // stride[1] + 1
    out = np.zeros((n, oh, ow, c_out), np.int64)
    for o in range(c_out):
        for r in range(oh):
            for c in range(ow):
                for i in range(kh):
                    for j in range(kw):
                        out[:, r, c, o] += (xp[:, r * stride[0] + i * dilation[0],
                                               c * stride[1] + j * dilation[1], o // m]
                                            * wc[o, i, j])
    return out + np.asarray(bias, np.int64)


@pytest.mark.parametrize("block,count", [(1 << 16, 1), (1, 3), (40, 2)])
@FIXTURES_OK
@given(n=st.sampled_from([0, 1, 1, 2, 3]), hw=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       c_in=st.sampled_from([1, 2, 5]), mult=st.sampled_from([1, 1, 2, 3]),
       kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       padding=st.tuples(*[st.integers(0, 5)] * 4),
       x_dtype=st.sampled_from(I8), w_dtype=st.sampled_from(I8),
       rounding=st.sampled_from([None, "gemmlowp", "gemmlowp", "single", "float32_half_even"]),
       seed=st.integers(0, 2**32 - 1))
def test_depthwise_property(nb, monkeypatch, block, count, n, hw, c_in, mult, kernel, stride,
                            dilation, padding, x_dtype, w_dtype, rounding, seed):
    monkeypatch.setattr(conv, "DEPTHWISE_BLOCK", block)
    monkeypatch.setattr(conv, "PARALLEL_MIN_OPS", 0 if count > 1 else conv.PARALLEL_MIN_OPS)
    monkeypatch.setattr(threads, "THREADS", count)
    rng = np.random.default_rng(seed)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    padded = [hw[0] + padding[0] + padding[1], hw[1] + padding[2] + padding[3]]
    # Grow the image where the window would not fit the padded input.
    size = tuple(s + max(0, span - p) for s, span, p in zip(hw, spans, padded))
    c_out = c_in * mult
    x = _view(rng, codes(rng, (n, *size, c_in), x_dtype))
    w = codes(rng, (c_out, *kernel, 1), w_dtype)
    if rng.random() < 0.3:
        w[:] = rng.choice(_bounds(w_dtype), w.shape)
    zx = _zero_point(rng, x_dtype)
    zw = np.array([_zero_point(rng, w_dtype) for _ in range(c_out)])
    if rng.random() < 0.3:
        zw[:] = 0
    bias = rng.integers(-(2**20), 2**20, c_out)
    r = None if rounding is None else _requant(rng, c_out, rng.choice(I8), rounding)
    p = Conv2DParams("dw", w, zw, zx, x_dtype, bias, r, stride, dilation, padding,
                     groups=c_in)
    assert p.is_depthwise or c_in == 1
    acc = depthwise_reference(x, w, zx, zw, bias, stride, dilation, padding)
    got = nb.conv2d(x, p)
    assert got.shape == acc.shape
    np.testing.assert_array_equal(got, requant(acc, r))


@pytest.mark.parametrize("shape,kernel,stride,dilation,padding", [
    ((1, 1, 1, 3), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # 1x1 image, kernel all but padding
    ((2, 1, 1, 2), (5, 5), (3, 3), (1, 1), (2, 2, 2, 2)),
    ((1, 2, 1, 4), (4, 3), (1, 1), (2, 3), (3, 3, 3, 3)),  # width 1, dilated window > image
    ((1, 9, 7, 3), (2, 2), (5, 4), (1, 1), (0, 0, 0, 0)),  # stride > kernel: rows skipped
    ((1, 9, 7, 3), (3, 2), (4, 6), (2, 3), (1, 4, 0, 5)),  # dilation with stride
    ((2, 4, 4, 64), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1)),  # many channels
])
@pytest.mark.parametrize("x_dtype,zx", [("uint8", 255), ("uint8", 0), ("int8", -128),
                                        ("int8", 127)])
def test_depthwise_odd_geometries_with_extreme_codes(nb, shape, kernel, stride, dilation,
                                                     padding, x_dtype, zx):
    rng = np.random.default_rng([shape[1], kernel[0], stride[1], zx + 128])
    c_in = shape[3]
    x = codes(rng, shape, x_dtype)
    w = rng.choice(np.array([-128, 127, -127, 0], np.int8), (2 * c_in, *kernel, 1))
    zw = rng.choice([0, 127, -128], 2 * c_in)
    bias = rng.integers(-1000, 1000, 2 * c_in)
    r = _requant(rng, 2 * c_in, "uint8")
    p = Conv2DParams("dw", w, zw, zx, x_dtype, bias, r, stride, dilation, padding, groups=c_in)
    acc = depthwise_reference(x, w, zx, zw, bias, stride, dilation, padding)
    np.testing.assert_array_equal(nb.conv2d(x, p), requant(acc, r))


def test_depthwise_blocks_cross_depthwise_block(nb, monkeypatch):
    # 4 images of 8 x 9 x 12 accumulators: the default block holds 75 images, 1 << 9 holds 0.
    for block in (1 << 16, 1 << 9, 2000):
        monkeypatch.setattr(conv, "DEPTHWISE_BLOCK", block)
        rng = np.random.default_rng(block)
        x = codes(rng, (4, 16, 18, 6), "int8")
        w = codes(rng, (12, 3, 3, 1), "int8")
        r = _requant(rng, 12, "int8")
        geometry = ((2, 2), (1, 1), (1, 1, 1, 1))
        p = Conv2DParams("dw", w, 0, -3, "int8", 7, r, *geometry, groups=6)
        acc = depthwise_reference(x, w, -3, np.zeros(12), 7, *geometry)
        np.testing.assert_array_equal(nb.conv2d(x, p), requant(acc, r))


# --- pooling ------------------------------------------------------------------------------

def pool_reference(x, kernel, stride, padding, qmin, qmax, average) -> np.ndarray:
    """Max, or TFLite average (sum of valid codes / valid count, half away from zero), over
    the positions of each window inside the input; int64 loops."""
    n, h, wd, c = x.shape
    top, bottom, left, right = padding
    oh = (h + top + bottom - kernel[0]) // stride[0] + 1
    ow = (wd + left + right - kernel[1]) // stride[1] + 1
    out = np.zeros((n, oh, ow, c), np.int64)
    for b in range(n):
        for r in range(oh):
            for col in range(ow):
                for k in range(c):
                    vals = [int(x[b, rr, cc, k])
                            for rr in range(r * stride[0] - top, r * stride[0] - top + kernel[0])
                            for cc in range(col * stride[1] - left,
                                            col * stride[1] - left + kernel[1])
                            if 0 <= rr < h and 0 <= cc < wd]
                    if average:
                        q = Fraction(sum(vals), len(vals))
                        mag = int(abs(q) + Fraction(1, 2))
                        out[b, r, col, k] = mag if q >= 0 else -mag
                    else:
                        out[b, r, col, k] = max(vals)
    return np.clip(out, qmin, qmax).astype(x.dtype)


@FIXTURES_OK
@given(n=st.sampled_from([0, 1, 2]), hw=st.tuples(st.integers(1, 7), st.integers(1, 7)),
       c=st.sampled_from([1, 3, 16]), kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       stride=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       pad=st.tuples(*[st.floats(0, 1, exclude_max=True)] * 4), dtype=st.sampled_from(I8),
       average=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_pool_property(nb, n, hw, c, kernel, stride, pad, dtype, average, seed):
    rng = np.random.default_rng(seed)
    ks = (kernel[0], kernel[0], kernel[1], kernel[1])
    padding = tuple(int(f * k) for f, k in zip(pad, ks))  # each side below the window
    size = tuple(max(s, k - padding[2 * i] - padding[2 * i + 1])
                 for i, (s, k) in enumerate(zip(hw, kernel)))
    x = codes(rng, (n, *size, c), dtype)
    if rng.random() < 0.3:  # long runs of one extreme code: ties and saturated sums
        x[:] = rng.choice(_bounds(dtype), x.shape)
    x = _view(rng, x)
    lo, hi = _bounds(dtype)
    if rng.random() < 0.5:
        lo, hi = sorted(int(v) for v in rng.integers(lo, hi + 1, 2))
    p = PoolParams("pool", kernel, stride, padding, dtype, lo, hi)
    got = (nb.avg_pool2d if average else nb.max_pool2d)(x, p)
    want = pool_reference(x, kernel, stride, padding, lo, hi, average)
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", I8)
def test_avg_pool_rounds_half_away_from_zero_at_extreme_codes(nb, dtype):
    # A 2x2 window at a corner, padding 1, holds one valid code: that code. Each interior
    # window holds lo, hi, hi, lo: (lo + hi) / 2 is a tie, int8 -0.5 -> -1, uint8 127.5 -> 128.
    lo, hi = _bounds(dtype)
    x = np.array([[lo, hi, lo], [hi, lo, hi], [lo, hi, lo]], NP_DTYPES[dtype])[None, :, :, None]
    p = PoolParams("avg", (2, 2), (1, 1), (1, 1, 1, 1), dtype, lo, hi)
    want = pool_reference(x, (2, 2), (1, 1), (1, 1, 1, 1), lo, hi, True)
    assert int(want[0, 1, 1, 0]) == (-1 if dtype == "int8" else 128)
    assert int(want[0, 0, 0, 0]) == lo
    np.testing.assert_array_equal(nb.avg_pool2d(x, p), want)


# --- native matmul packing ----------------------------------------------------------------

@FIXTURES_OK
@given(batch=st.sampled_from([((), ()), ((0,), ()), ((3,), ()), ((), (3,)), ((2, 1), (1, 3)),
                              ((2, 3), (1, 3)), ((2, 3), (2, 1)), ((1, 1), (4, 2)),
                              ((2, 1, 3), (1, 2, 1)), ((1, 3), (0, 3))]),
       m=st.sampled_from([0, 1, 7]), n=st.sampled_from([1, 5, 17]),
       k=st.sampled_from([0, 1, 9, 40]),
       a_dtype=st.sampled_from(I8), b_dtype=st.sampled_from(I8),
       broadcast_view=st.booleans(), transposed=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_matmul_broadcast_b_property(nb, batch, m, n, k, a_dtype, b_dtype, broadcast_view,
                                     transposed, seed):
    rng = np.random.default_rng(seed)
    a = _view(rng, codes(rng, batch[0] + (m, k), a_dtype))
    b = codes(rng, batch[1] + (k, n), b_dtype)
    if transposed:
        b = np.swapaxes(np.ascontiguousarray(np.swapaxes(b, -1, -2)), -1, -2)
    if broadcast_view:
        b = np.broadcast_to(b, np.broadcast_shapes(batch[0], batch[1]) + (k, n))
    za = _zero_point(rng, a_dtype)
    zb = np.array([_zero_point(rng, b_dtype) for _ in range(n)])
    if rng.random() < 0.3:
        zb = zb[:1]
    r = _requant(rng, n, rng.choice(I8))
    p = MatMulParams("mm", k, za, a_dtype, zb, b_dtype, r)
    acc = np.matmul(a.astype(np.int64) - za, b.astype(np.int64) - zb)
    got = nb.matmul(a, b, p)
    assert got.shape == acc.shape
    np.testing.assert_array_equal(got, requant(acc, r))

"""conv2d (grouped, depthwise, padded, strided, dilated) against a loop reference."""

from __future__ import annotations

import numpy as np
import pytest

from gpuquant.errors import ShapeError
from gpuquant.ops import Conv2DParams, Requant, make_requant
from gpuquant.quant.fixedpoint import ROUNDING_MODES
from gpuquant.quant.params import QuantParams
from int_reference import codes, conv_acc, random_requant, requant


# (N, H, W, C_in), (C_out, KH, KW), stride, dilation, padding (t, b, l, r), groups
GEOMETRIES = [
    ((1, 5, 6, 3), (4, 3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1),
    ((2, 7, 5, 4), (6, 3, 2), (2, 1), (1, 2), (0, 2, 1, 0), 1),
    ((1, 9, 8, 6), (4, 2, 3), (2, 3), (2, 1), (1, 0, 2, 1), 2),
    ((2, 6, 6, 3), (6, 3, 3), (1, 2), (1, 1), (1, 1, 1, 1), 3),  # depthwise, multiplier 2
    ((1, 8, 7, 5), (5, 3, 3), (2, 2), (2, 2), (2, 1, 0, 2), 5),  # depthwise, multiplier 1
    ((3, 4, 4, 7), (5, 1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 1),  # 1x1
]


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"{g[0]}x{g[1]}/g{g[5]}")
@pytest.mark.parametrize(
    "x_dtype,zx,w_dtype,zw_kind",
    [("int8", -128, "int8", "zero"), ("uint8", 255, "int8", "zero"),
     ("uint8", 0, "uint8", "per_channel"), ("int8", 127, "uint8", "per_channel")],
)
def test_conv2d_matches_reference(nb, rounding, geometry, x_dtype, zx, w_dtype, zw_kind):
    shape, (c_out, kh, kw), stride, dilation, padding, groups = geometry
    rng = np.random.default_rng([len(rounding), c_out, kh, kw, groups, zx + 128])
    x = codes(rng, shape, x_dtype)
    w = codes(rng, (c_out, kh, kw, shape[3] // groups), w_dtype)
    info = np.iinfo(w.dtype)
    if zw_kind == "zero":
        zw = np.zeros(c_out, np.int64)
    else:
        zw = rng.integers(info.min, info.max + 1, c_out)
    bias = rng.integers(-(2**16), 2**16, c_out)
    r = random_requant(rng, c_out, "int8" if rng.random() < 0.5 else "uint8", rounding)
    p = Conv2DParams("conv", w, zw, zx, x_dtype, bias, r, stride, dilation, padding, groups)
    want = requant(conv_acc(x, w, zx, zw, bias, stride, dilation, padding, groups), r)
    got = nb.conv2d(x, p)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("geometry", GEOMETRIES[2:4], ids=["grouped", "depthwise"])
def test_conv2d_without_requant_returns_int32(nb, geometry):
    shape, (c_out, kh, kw), stride, dilation, padding, groups = geometry
    rng = np.random.default_rng(7)
    x, w = codes(rng, shape, "uint8"), codes(rng, (c_out, kh, kw, shape[3] // groups), "int8")
    zw = rng.integers(-128, 128, c_out)
    p = Conv2DParams("conv", w, zw, 17, "uint8", 0, None, stride, dilation, padding, groups)
    got = nb.conv2d(x, p)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, conv_acc(x, w, 17, zw, 0, stride, dilation, padding, groups))


def test_n7_padding_holds_the_input_zero_point(nb):
    x = np.full((1, 3, 3, 1), 10, dtype=np.uint8)  # scale 0.5, zero point 10: real 0
    w = np.ones((1, 3, 3, 1), dtype=np.int8)  # scale 1, zero point 0
    out = QuantParams(1.0, 0, "int8")
    r = make_requant(0.5 * 1.0 / 1.0, out)
    p = Conv2DParams("n7", w, 0, 10, "uint8", 0, r, padding=(1, 1, 1, 1))
    np.testing.assert_array_equal(nb.conv2d(x, p), np.zeros((1, 3, 3, 1), np.int8))


def test_n7_depthwise_padding_holds_the_input_zero_point(nb):
    x = np.full((1, 3, 3, 2), 10, dtype=np.uint8)
    w = np.ones((4, 3, 3, 1), dtype=np.int8)
    r = make_requant(0.5, QuantParams(1.0, 0, "int8"))
    p = Conv2DParams("n7dw", w, 0, 10, "uint8", 0, r, padding=(1, 1, 1, 1), groups=2)
    assert p.is_depthwise
    np.testing.assert_array_equal(nb.conv2d(x, p), np.zeros((1, 3, 3, 4), np.int8))


def test_conv2d_large_reduction_crosses_float32_chunks(nb):
    # K = 3*3*200 = 1800 > 514 (uint8 x int8 chunk) at extreme codes.
    rng = np.random.default_rng(11)
    x = np.full((1, 4, 4, 200), 255, dtype=np.uint8)
    x[0, 1, 2, ::7] = 0
    w = np.where(rng.random((3, 3, 3, 200)) < 0.5, -128, 127).astype(np.int8)
    r = Requant(np.array([2**30]), np.array([-14]), "single", 3, -128, 127, "int8")
    p = Conv2DParams("big", w, 0, 0, "uint8", 0, r, padding=(1, 1, 1, 1))
    want = requant(conv_acc(x, w, 0, [0, 0, 0], 0, (1, 1), (1, 1), (1, 1, 1, 1), 1), r)
    np.testing.assert_array_equal(nb.conv2d(x, p), want)


def test_conv2d_rejects_channel_mismatch(nb):
    p = Conv2DParams("conv", np.zeros((2, 3, 3, 4), np.int8), 0, 0, "int8", 0, None)
    with pytest.raises(ShapeError, match="'conv'.*4 channels"):
        nb.conv2d(np.zeros((1, 5, 5, 3), np.int8), p)


def test_conv2d_in_im2col_blocks_equals_one_block(nb, monkeypatch):
    from gpuquant.backends.numpy import conv

    rng = np.random.default_rng(5)
    x, w = codes(rng, (5, 6, 6, 4), "int8"), codes(rng, (3, 3, 3, 4), "int8")
    p = Conv2DParams("conv", w, 0, -5, "int8", 0, None, padding=(1, 1, 1, 1))
    want = conv_acc(x, w, -5, [0, 0, 0], 0, (1, 1), (1, 1), (1, 1, 1, 1), 1)
    monkeypatch.setattr(conv, "IM2COL_BUDGET", 2 * 6 * 6 * 36)  # two images per block
    np.testing.assert_array_equal(nb.conv2d(x, p), want)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("cache_threads",
                         [(1, 1), (1, 3), (2 * 8 * 6, 2), (2 * 7 * 8 * 6, 3), (1 << 16, 1)])
def test_conv2d_in_output_blocks_and_threads_matches_reference(nb, monkeypatch, rounding,
                                                                cache_threads):
    from gpuquant.backends.numpy import conv, threads

    cache, count = cache_threads
    # Accumulators per block (blas core): 1 gives one output row, 2 * 8 * 6 two rows of 8 pixels
    # by 6 channels, 2 * 7 * 8 * 6 two whole images, 1 << 16 all three images.
    monkeypatch.setattr(conv, "CACHE_BLOCK", cache)
    monkeypatch.setattr(conv, "PARALLEL_MIN_SIZE", 0)
    monkeypatch.setattr(threads, "THREADS", count)
    rng = np.random.default_rng([cache, count, len(rounding)])
    x = codes(rng, (3, 9, 8, 4), "uint8")
    w = codes(rng, (6, 3, 2, 2), "uint8")
    zw = rng.integers(0, 256, 6)
    bias = rng.integers(-(2**20), 2**20, 6)
    r = random_requant(rng, 6, "int8", rounding)
    geometry = ((1, 1), (2, 1), (1, 1, 0, 1))  # output (7, 8), groups 2
    p = Conv2DParams("conv", w, zw, 3, "uint8", bias, r, *geometry, groups=2)
    want = conv_acc(x, w, 3, zw, bias, *geometry, 2)
    np.testing.assert_array_equal(nb.conv2d(x, p), requant(want, r))
    p32 = Conv2DParams("conv", w, zw, 3, "uint8", bias, None, *geometry, groups=2)
    np.testing.assert_array_equal(nb.conv2d(x, p32), want)


@pytest.mark.parametrize("multiplier", [1, 3])
@pytest.mark.parametrize("block_threads", [(1 << 16, 1), (1, 2), (1, 3)])
def test_depthwise_stride_phases_and_blocks_match_reference(nb, monkeypatch, multiplier,
                                                            block_threads):
    from gpuquant.backends.numpy import conv, threads

    block, count = block_threads
    monkeypatch.setattr(conv, "DEPTHWISE_BLOCK", block)  # 1: one image per block
    monkeypatch.setattr(conv, "PARALLEL_MIN_OPS", 0)
    monkeypatch.setattr(threads, "THREADS", count)
    rng = np.random.default_rng(multiplier)
    x = codes(rng, (5, 11, 13, 4), "uint8")
    c_out = 4 * multiplier
    w = codes(rng, (c_out, 3, 4, 1), "uint8")
    zw = rng.integers(0, 256, c_out)
    bias = rng.integers(-(2**16), 2**16, c_out)
    r = random_requant(rng, c_out, "int8", "gemmlowp")
    # Strides (2, 3) and dilation (3, 1): the taps read two row phases and three column phases.
    geometry = ((2, 3), (3, 1), (2, 1, 0, 3))
    p = Conv2DParams("dw", w, zw, 201, "uint8", bias, r, *geometry, groups=4)
    assert p.is_depthwise
    want = conv_acc(x, w, 201, zw, bias, *geometry, 4)
    np.testing.assert_array_equal(nb.conv2d(x, p), requant(want, r))
    p32 = Conv2DParams("dw", w, zw, 201, "uint8", bias, None, *geometry, groups=4)
    np.testing.assert_array_equal(nb.conv2d(x, p32), want)


def test_depthwise_wrapping_tap_sums_give_the_exact_accumulator(nb):
    # uint8 input with zero point 128 and |w| = 127 over 300x300 taps: max|x - zx| * sum|w| =
    # 128 * 127 * 90000 passes the params' int32 bound, while the raw codes (up to 255) times
    # the weights reach 2.9e9 and wrap in int32; the final accumulators must still be exact.
    w = np.full((2, 300, 300, 1), 127, dtype=np.int8)
    w[1] = -127
    x = codes(np.random.default_rng(300), (2, 300, 300, 2), "uint8")
    x[0, ..., 0], x[0, ..., 1] = 255, 0  # image 0: both channels at their extreme, 1.45e9
    bias = np.array([-(2**20), 2**20])
    p = Conv2DParams("wide", w, 0, 128, "uint8", bias, None, groups=2)
    want = conv_acc(x, w, 128, np.zeros(2), bias, (1, 1), (1, 1), (0, 0, 0, 0), 2)
    assert want[0, 0, 0].tolist() == [127 * 127 * 90000 - 2**20, 128 * 127 * 90000 + 2**20]
    np.testing.assert_array_equal(nb.conv2d(x, p), want)
    r = random_requant(np.random.default_rng(2), 2, "int8", "gemmlowp")
    pr = Conv2DParams("wide", w, 0, 128, "uint8", bias, r, groups=2)
    np.testing.assert_array_equal(nb.conv2d(x, pr), requant(want, r))


@pytest.mark.parametrize("kernel,stride,dilation,padding", [
    ((4, 3), (4, 3), (2, 3), (3, 0, 1, 2)),  # gcd(stride, dilation) = 2 and 3: taps two apart
    ((5, 2), (3, 2), (2, 4), (0, 4, 2, 2)),
    ((2, 5), (1, 4), (3, 1), (1, 1, 4, 0)),
])
def test_depthwise_tap_grids_match_reference(nb, kernel, stride, dilation, padding):
    rng = np.random.default_rng(kernel[0] * 10 + stride[1])
    x = codes(rng, (3, 17, 19, 5), "int8")
    w = codes(rng, (5, *kernel, 1), "int8")
    p = Conv2DParams("dw", w, 0, -7, "int8", 11, None, stride, dilation, padding, groups=5)
    want = conv_acc(x, w, -7, np.zeros(5), 11, stride, dilation, padding, 5)
    np.testing.assert_array_equal(nb.conv2d(x, p), want)

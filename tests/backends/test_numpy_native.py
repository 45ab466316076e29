"""The native int8 core (cpu_src/igemm_vnni.h) against the float32-BLAS path and Python integers.

Every shape family of the register tiles (6 rows x 64 columns, K in groups of 4) is crossed:
M, N and K below, at and past a tile, with both signednesses of x and w, extreme zero points,
the three rounding modes, multipliers above 1 and saturation.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from int_reference import INT32_MAX, INT32_MIN, codes, random_requant, requant

from gpuquant.backends.numpy import NumpyBackend, native, threads
from gpuquant.backends.numpy.requant import requantize
from gpuquant.backends.operands import requant_operands
from gpuquant.errors import BackendUnavailableError
from gpuquant.ops import Conv2DParams, GemmParams, MatMulParams, Requant
from gpuquant.quant.fixedpoint import ROUNDING_MODES

AVAILABLE, WHY = native.status()
needs_native = pytest.mark.skipif(not AVAILABLE, reason=f"native int8 core: {WHY}")
vnni = NumpyBackend("vnni") if AVAILABLE else None
blas = NumpyBackend("blas")


def _cpu_has_vnni() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return all(f in flags.split() for f in ("avx512f", "avx512bw", "avx512vl", "avx512_vnni"))


@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")) or not _cpu_has_vnni(),
                    reason="no C++ compiler or no AVX-512 VNNI here")
def test_the_core_is_built_and_chosen_where_compiler_and_cpu_allow():
    assert AVAILABLE, WHY
    assert NumpyBackend().int8_core == "vnni"


def test_core_choice():
    assert NumpyBackend("blas").int8_core == "blas"
    with pytest.raises(ValueError, match="int8 core must be one of"):
        NumpyBackend("avx")


def test_vnni_where_it_cannot_run_is_an_error(monkeypatch):
    monkeypatch.setattr(native, "status", lambda: (False, "this CPU lacks AVX-512 VNNI"))
    assert NumpyBackend().int8_core == "blas"
    with pytest.raises(BackendUnavailableError, match="lacks AVX-512 VNNI"):
        NumpyBackend("vnni")


@needs_native
@pytest.mark.parametrize("rounding", [*ROUNDING_MODES, None])
@pytest.mark.parametrize("x_dtype, w_dtype", [("uint8", "int8"), ("int8", "int8"),
                                              ("uint8", "uint8"), ("int8", "uint8")])
@pytest.mark.parametrize("m", [1, 5, 6, 7, 13, 200])
@pytest.mark.parametrize("n, k", [(1, 1), (15, 2), (16, 3), (17, 4), (63, 5), (64, 31),
                                  (65, 64), (130, 257), (3, 1030)])
def test_gemm_equals_blas_path_and_int64(rounding, x_dtype, w_dtype, m, n, k):
    rng = np.random.default_rng([m, n, k, len(x_dtype), len(w_dtype), len(rounding or "")])
    x = codes(rng, (m, k), x_dtype)
    w = codes(rng, (n, k), w_dtype)
    lo, hi = np.iinfo(x.dtype).min, np.iinfo(x.dtype).max
    zx = int(rng.choice([lo, hi, 0]))
    wlo, whi = np.iinfo(w.dtype).min, np.iinfo(w.dtype).max
    zw = rng.integers(wlo, whi + 1, n) if rng.random() < 0.5 else np.zeros(n, np.int64)
    zw[0] = whi
    bias = rng.integers(-(2**20), 2**20, n)
    r = None if rounding is None else random_requant(rng, n, str(rng.choice(["int8", "uint8"])),
                                                     rounding)
    p = GemmParams("fc", w, zw, zx, x_dtype, bias, r)
    got = vnni.gemm(x, p)
    np.testing.assert_array_equal(got, blas.gemm(x, p))
    if r is None:
        acc = (x.astype(np.int64) - zx) @ (w.astype(np.int64) - zw[:, None]).T + bias
        np.testing.assert_array_equal(got, acc)


@needs_native
@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_epilogue_on_adversarial_accumulators(rounding):
    """acc[m, n] = folded[n] - zw[n] * x[m] over 256 rows x 1536 channels: int32 extremes,
    powers of two and their neighbours (ties), random values; every multiplier/shift extreme,
    shifts > 0 (multipliers above 1, saturation) included."""
    rng = np.random.default_rng(7)
    n = 1536
    edges = [INT32_MIN, INT32_MAX, 0, 1, -1]
    for i in range(31):
        edges += [2**i - 1, 2**i, 2**i + 1, -(2**i) - 1, -(2**i), -(2**i) + 1]
    folded = np.array(edges + list(rng.integers(INT32_MIN, INT32_MAX, n - len(edges),
                                                endpoint=True)), dtype=np.int64)
    zw = rng.integers(-128, 128, n)
    zw[:len(edges)] = 0
    multiplier = rng.integers(0, 2**31, n)
    multiplier[:6] = [0, 1, 2**30, 2**30 + 1, 2**31 - 1, 2**31 - 2]
    shift = rng.integers(-31, 31, n)
    shift[6:68] = np.arange(-31, 31)
    x = np.arange(256, dtype=np.uint8)[:, None]
    for dtype, zp, qmin, qmax in [("int8", -5, -128, 127), ("uint8", 3, 0, 255),
                                  ("int8", 0, 0, 6)]:
        r = Requant(multiplier, shift, rounding, zp, qmin, qmax, dtype)
        ops = native.native_operands(np.zeros((n, 1), np.int8), zw, folded, "uint8",
                                     requant_operands(r, n))
        out = np.empty((256, n), dtype)
        native.gemm_into(x, ops, out)
        acc = (folded[None, :] - zw[None, :] * x.astype(np.int64) + 2**31) % 2**32 - 2**31
        np.testing.assert_array_equal(out, requantize(acc, r))
        head = Requant(multiplier[:200], shift[:200], rounding, zp, qmin, qmax, dtype)
        np.testing.assert_array_equal(out[::85, :200], requant(acc[::85, :200], head))


@needs_native
@pytest.mark.parametrize("a_shape, b_shape", [((5, 7), (7, 3)), ((2, 1, 9, 66), (3, 66, 70)),
                                              ((4, 6, 3), (3, 65))])
@pytest.mark.parametrize("a_dtype, b_dtype", [("uint8", "int8"), ("int8", "uint8")])
def test_matmul_with_batch_broadcast_equals_blas_path(a_shape, b_shape, a_dtype, b_dtype):
    rng = np.random.default_rng(len(a_shape) + a_shape[-1])
    a, b = codes(rng, a_shape, a_dtype), codes(rng, b_shape, b_dtype)
    n = b_shape[-1]
    zb = rng.integers(np.iinfo(b.dtype).min, np.iinfo(b.dtype).max + 1, n)
    za = int(np.iinfo(a.dtype).max)
    for r in (None, random_requant(rng, n, "int8", "gemmlowp")):
        p = MatMulParams("mm", a_shape[-1], za, a_dtype, zb, b_dtype, r)
        np.testing.assert_array_equal(vnni.matmul(a, b, p), blas.matmul(a, b, p))


@needs_native
@pytest.mark.parametrize("groups, c_in, c_out", [(1, 3, 70), (2, 6, 10), (3, 9, 129)])
@pytest.mark.parametrize("x_dtype", ["uint8", "int8"])
def test_conv2d_groups_stride_dilation_padding_equal_blas_path(groups, c_in, c_out, x_dtype):
    rng = np.random.default_rng(groups * 100 + c_out)
    x = codes(rng, (2, 11, 9, c_in), x_dtype)
    w = codes(rng, (c_out, 3, 2, c_in // groups), "int8")
    zx = int(np.iinfo(x.dtype).min)
    for r in (None, random_requant(rng, c_out, "uint8", "single")):
        p = Conv2DParams("conv", w, rng.integers(-3, 4, c_out), zx, x_dtype,
                         rng.integers(-999, 999, c_out), r, stride=(2, 1), dilation=(1, 2),
                         padding=(1, 2, 0, 3), groups=groups)
        np.testing.assert_array_equal(vnni.conv2d(x, p), blas.conv2d(x, p))


@needs_native
def test_row_blocks_on_threads_equal_one_block(monkeypatch):
    rng = np.random.default_rng(3)
    x, w = codes(rng, (100, 40), "int8"), codes(rng, (70, 40), "int8")
    p = GemmParams("fc", w, 0, -7, "int8", rng.integers(-99, 99, 70),
                   random_requant(rng, 70, "int8", "float32_half_even"))
    want = blas.gemm(x, p)
    monkeypatch.setattr(native, "PARALLEL_MIN_OPS", 0)
    for count in (2, 3, 7):
        monkeypatch.setattr(threads, "THREADS", count)
        np.testing.assert_array_equal(vnni.gemm(x, p), want)


@needs_native
def test_empty_batch_and_a_strided_input():
    rng = np.random.default_rng(4)
    w = codes(rng, (9, 12), "int8")
    p = GemmParams("fc", w, 0, 0, "uint8", 0, None)
    assert vnni.gemm(np.zeros((0, 12), np.uint8), p).shape == (0, 9)
    wide = codes(rng, (5, 30), "uint8")
    np.testing.assert_array_equal(vnni.gemm(wide[:, 3:15], p), blas.gemm(wide[:, 3:15], p))
    np.testing.assert_array_equal(vnni.gemm(wide[:, ::2][:, :12], p),
                                  blas.gemm(wide[:, ::2][:, :12], p))


@needs_native
def test_extension_checks_buffer_sizes():
    from gpuquant.backends.numpy import _igemm

    w = np.zeros((3, 8), np.int8)
    packed = _igemm.pack(w, False)
    i32, f32 = np.zeros(3, np.int32), np.zeros(3, np.float32)
    x, out = np.zeros((2, 8), np.uint8), np.zeros((2, 3), np.int32)
    _igemm.gemm(x, False, packed, i32, i32, i32, i32, f32, 0, 0, 0, 0, out)
    with pytest.raises(ValueError, match="packed weights"):
        _igemm.gemm(np.zeros((2, 9), np.uint8), False, packed, i32, i32, i32, i32, f32, 0, 0, 0,
                    0, out)
    with pytest.raises(ValueError, match="zw: expected 3 values"):
        _igemm.gemm(x, False, packed, i32[:2], i32, i32, i32, f32, 0, 0, 0, 0, out)
    with pytest.raises(ValueError, match="out has 3 rows"):
        _igemm.gemm(x, False, packed, i32, i32, i32, i32, f32, 0, 0, 0, 0,
                    np.zeros((3, 3), np.int32))
    with pytest.raises(ValueError, match="unknown rounding"):
        _igemm.gemm(x, False, packed, i32, i32, i32, i32, f32, 0, 0, 0, 7, out)
    with pytest.raises(ValueError, match="contiguous along rows"):
        _igemm.gemm(np.zeros((8, 2), np.uint8).T, False, packed, i32, i32, i32, i32, f32, 0, 0,
                    0, 0, out)

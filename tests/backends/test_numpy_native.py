"""The native int8 cores (cpu_src/igemm_vnni.h, cpu_src/igemm_avx2.h) against the float32-BLAS
path and Python integers.

Every shape family of the register tiles (VNNI: 6 rows x 64 columns, K in groups of 4; AVX2:
6 rows x 16 columns, K in pairs, rows widened in chunks of 72) is crossed: M, N and K below, at
and past a tile, with both signednesses of x and w, extreme zero points, the three rounding
modes, multipliers above 1 and saturation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from int_reference import INT32_MAX, INT32_MIN, codes, random_requant, requant

from gpuquant.backends.numpy import NumpyBackend, native, threads
from gpuquant.backends.numpy.requant import requantize
from gpuquant.backends.operands import requant_operands
from gpuquant.errors import BackendUnavailableError
from gpuquant.ops import Conv2DParams, GemmParams, MatMulParams, Requant
from gpuquant.quant.fixedpoint import ROUNDING_MODES

AVAILABLE = native.available()
# Each native core, skipped where it cannot run: parametrize a test's ``isa`` with it.
ISAS = [pytest.param(isa, marks=pytest.mark.skipif(
    isa not in AVAILABLE, reason=f"core {isa!r} does not run here ({native.status()[1]})"))
    for isa in native.ISAS]
each_core = pytest.mark.parametrize("isa", ISAS)
CORES = {isa: NumpyBackend(isa) for isa in AVAILABLE}
blas = NumpyBackend("blas")
# The extension's (pack, gemm) functions of each core.
FUNCTIONS = {"vnni": ("pack", "gemm"), "avx2": ("pack_avx2", "gemm_avx2")}


def _cpu_flags() -> set[str]:
    info = Path("/proc/cpuinfo")
    return set(info.read_text().split()) if info.exists() else set()


HAS_COMPILER = bool(shutil.which("c++") or shutil.which("g++"))
HAS_VNNI = {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= _cpu_flags()


@pytest.mark.skipif(not HAS_COMPILER or "avx2" not in _cpu_flags(),
                    reason="no C++ compiler or no AVX2 here")
def test_the_cores_are_built_and_chosen_where_compiler_and_cpu_allow():
    assert AVAILABLE == (("vnni", "avx2") if HAS_VNNI else ("avx2",)), native.status()
    assert NumpyBackend().int8_core == AVAILABLE[0]
    assert native.status()[0] == AVAILABLE[0]


def test_core_choice():
    assert NumpyBackend("blas").int8_core == "blas"
    with pytest.raises(ValueError, match="int8 core must be one of"):
        NumpyBackend("avx")


def test_a_core_where_it_cannot_run_is_an_error(monkeypatch):
    monkeypatch.setattr(native, "available", lambda: ())
    assert NumpyBackend().int8_core == "blas"
    assert native.status()[0] is None
    with pytest.raises(BackendUnavailableError, match="lacks AVX-512 VNNI"):
        NumpyBackend("vnni")
    with pytest.raises(BackendUnavailableError, match="'avx2' unavailable: .*lacks AVX2"):
        NumpyBackend("avx2")


def test_auto_takes_avx2_where_vnni_is_missing(monkeypatch):
    monkeypatch.setattr(native, "available", lambda: ("avx2",))
    assert NumpyBackend().int8_core == "avx2"
    assert native.status() == ("avx2", "AVX2; this CPU lacks AVX-512 VNNI")
    with pytest.raises(BackendUnavailableError, match="lacks AVX-512 VNNI"):
        NumpyBackend("vnni")


@each_core
@pytest.mark.parametrize("rounding", [*ROUNDING_MODES, None])
@pytest.mark.parametrize("x_dtype, w_dtype", [("uint8", "int8"), ("int8", "int8"),
                                              ("uint8", "uint8"), ("int8", "uint8")])
@pytest.mark.parametrize("m", [1, 5, 6, 7, 13, 200])
@pytest.mark.parametrize("n, k", [(1, 1), (15, 2), (16, 3), (17, 4), (63, 5), (64, 31),
                                  (65, 64), (130, 257), (3, 1030)])
def test_gemm_equals_blas_path_and_int64(isa, rounding, x_dtype, w_dtype, m, n, k):
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
    got = CORES[isa].gemm(x, p)
    np.testing.assert_array_equal(got, blas.gemm(x, p))
    if r is None:
        acc = (x.astype(np.int64) - zx) @ (w.astype(np.int64) - zw[:, None]).T + bias
        np.testing.assert_array_equal(got, acc)


@each_core
@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_epilogue_on_adversarial_accumulators(isa, rounding):
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
                                     requant_operands(r, n), isa)
        out = np.empty((256, n), dtype)
        native.gemm_into(x, ops, out)
        acc = (folded[None, :] - zw[None, :] * x.astype(np.int64) + 2**31) % 2**32 - 2**31
        np.testing.assert_array_equal(out, requantize(acc, r))
        head = Requant(multiplier[:200], shift[:200], rounding, zp, qmin, qmax, dtype)
        np.testing.assert_array_equal(out[::85, :200], requant(acc[::85, :200], head))


@each_core
@pytest.mark.parametrize("x_dtype, w_dtype, zw", [("int8", "uint8", 255), ("uint8", "int8", -128),
                                                   ("int8", "int8", 127)])
def test_partial_sums_past_int32_wrap_to_the_exact_accumulator(isa, x_dtype, w_dtype, zw):
    """K = 100001 (odd: a last pair of k half padded) with weights at their zero point but for a
    few taps: sum x'w' and zw' rowsum(x') pass 2**31 (int32 wrap-around in VPDPBUSD / VPADDD and
    the epilogue) while the true accumulator, checked by ops/accumulator.py, is small."""
    rng = np.random.default_rng(16)
    k, n = 100001, 70
    x = codes(rng, (13, k), x_dtype)
    x[rng.random(x.shape) < 0.9] = np.iinfo(x.dtype).max
    w = np.full((n, k), zw, dtype=w_dtype)
    taps = rng.integers(0, k, (n, 3))
    w[np.arange(n)[:, None], taps] = codes(rng, (n, 3), w_dtype)
    x_image = x.astype(np.int64) + (128 if x_dtype == "int8" else 0)
    w_image = w.astype(np.int64) - (128 if w_dtype == "uint8" else 0)
    assert np.abs(x_image @ w_image.T).min() >= 2**31
    zx = int(np.iinfo(x.dtype).min)
    for r in (None, random_requant(rng, n, "int8", "single")):
        p = GemmParams("fc", w, zw, zx, x_dtype, 0, r)
        got = CORES[isa].gemm(x, p)
        np.testing.assert_array_equal(got, blas.gemm(x, p))
        if r is None:
            acc = (x.astype(np.int64) - zx) @ (w.astype(np.int64) - zw).T
            np.testing.assert_array_equal(got, acc)


@each_core
@pytest.mark.parametrize("a_shape, b_shape", [((5, 7), (7, 3)), ((2, 1, 9, 66), (3, 66, 70)),
                                              ((4, 6, 3), (3, 65))])
@pytest.mark.parametrize("a_dtype, b_dtype", [("uint8", "int8"), ("int8", "uint8")])
def test_matmul_with_batch_broadcast_equals_blas_path(isa, a_shape, b_shape, a_dtype, b_dtype):
    rng = np.random.default_rng(len(a_shape) + a_shape[-1])
    a, b = codes(rng, a_shape, a_dtype), codes(rng, b_shape, b_dtype)
    n = b_shape[-1]
    zb = rng.integers(np.iinfo(b.dtype).min, np.iinfo(b.dtype).max + 1, n)
    za = int(np.iinfo(a.dtype).max)
    for r in (None, random_requant(rng, n, "int8", "gemmlowp")):
        p = MatMulParams("mm", a_shape[-1], za, a_dtype, zb, b_dtype, r)
        np.testing.assert_array_equal(CORES[isa].matmul(a, b, p), blas.matmul(a, b, p))


@each_core
@pytest.mark.parametrize("groups, c_in, c_out", [(1, 3, 70), (2, 6, 10), (3, 9, 129)])
@pytest.mark.parametrize("x_dtype", ["uint8", "int8"])
def test_conv2d_groups_stride_dilation_padding_equal_blas_path(isa, groups, c_in, c_out, x_dtype):
    rng = np.random.default_rng(groups * 100 + c_out)
    x = codes(rng, (2, 11, 9, c_in), x_dtype)
    w = codes(rng, (c_out, 3, 2, c_in // groups), "int8")
    zx = int(np.iinfo(x.dtype).min)
    for r in (None, random_requant(rng, c_out, "uint8", "single")):
        p = Conv2DParams("conv", w, rng.integers(-3, 4, c_out), zx, x_dtype,
                         rng.integers(-999, 999, c_out), r, stride=(2, 1), dilation=(1, 2),
                         padding=(1, 2, 0, 3), groups=groups)
        np.testing.assert_array_equal(CORES[isa].conv2d(x, p), blas.conv2d(x, p))


@each_core
def test_row_blocks_on_threads_equal_one_block(isa, monkeypatch):
    rng = np.random.default_rng(3)
    x, w = codes(rng, (100, 40), "int8"), codes(rng, (70, 40), "int8")
    p = GemmParams("fc", w, 0, -7, "int8", rng.integers(-99, 99, 70),
                   random_requant(rng, 70, "int8", "float32_half_even"))
    want = blas.gemm(x, p)
    monkeypatch.setattr(native, "PARALLEL_MIN_OPS", 0)
    for count in (2, 3, 7):
        monkeypatch.setattr(threads, "THREADS", count)
        np.testing.assert_array_equal(CORES[isa].gemm(x, p), want)


@each_core
def test_empty_batch_and_a_strided_input(isa):
    core = CORES[isa]
    rng = np.random.default_rng(4)
    w = codes(rng, (9, 12), "int8")
    p = GemmParams("fc", w, 0, 0, "uint8", 0, None)
    assert core.gemm(np.zeros((0, 12), np.uint8), p).shape == (0, 9)
    wide = codes(rng, (5, 30), "uint8")
    np.testing.assert_array_equal(core.gemm(wide[:, 3:15], p), blas.gemm(wide[:, 3:15], p))
    np.testing.assert_array_equal(core.gemm(wide[:, ::2][:, :12], p),
                                  blas.gemm(wide[:, ::2][:, :12], p))


@each_core
def test_extension_checks_buffer_sizes(isa):
    from gpuquant.backends.numpy import _igemm

    pack, gemm = (getattr(_igemm, name) for name in FUNCTIONS[isa])
    w = np.zeros((3, 8), np.int8)
    packed = pack(w, False)
    i32, f32 = np.zeros(3, np.int32), np.zeros(3, np.float32)
    x, out = np.zeros((2, 8), np.uint8), np.zeros((2, 3), np.int32)
    gemm(x, False, packed, i32, i32, i32, i32, f32, 0, 0, 0, 0, out)
    with pytest.raises(ValueError, match="packed weights"):
        gemm(np.zeros((2, 9), np.uint8), False, packed, i32, i32, i32, i32, f32, 0, 0, 0, 0,
             out)
    with pytest.raises(ValueError, match="zw: expected 3 values"):
        gemm(x, False, packed, i32[:2], i32, i32, i32, f32, 0, 0, 0, 0, out)
    with pytest.raises(ValueError, match="out has 3 rows"):
        gemm(x, False, packed, i32, i32, i32, i32, f32, 0, 0, 0, 0, np.zeros((3, 3), np.int32))
    with pytest.raises(ValueError, match="packed weights"):
        gemm(x, False, getattr(_igemm, FUNCTIONS[{"vnni": "avx2", "avx2": "vnni"}[isa]][0])(
            np.zeros((3, 80), np.int8), False), i32, i32, i32, i32, f32, 0, 0, 0, 0, out)
    with pytest.raises(ValueError, match="unknown rounding"):
        gemm(x, False, packed, i32, i32, i32, i32, f32, 0, 0, 0, 7, out)
    with pytest.raises(ValueError, match="contiguous along rows"):
        gemm(np.zeros((8, 2), np.uint8).T, False, packed, i32, i32, i32, i32, f32, 0, 0, 0, 0,
             out)


@each_core
@pytest.mark.parametrize("case, pattern", [
    ("float32 out", "out: expected a 2-D buffer of items"),
    ("big-endian out", "out: expected a 2-D buffer of items"),
    ("out rows at a stride of 6 bytes", "out: expected"),
    ("overlapping out rows", "rows apart"),
    ("out over x", "out overlaps an input"),
    ("out over zw", "out overlaps an input"),
    ("bool x", "x: expected a 2-D buffer of items"),
    ("uint32 zw", "zw: expected 3 values of 'il'"),
    ("int32 multiplier_f32", "multiplier_f32: expected 3 values"),
    ("int8 out, qmin > qmax", "clamp bounds"),
    ("int8 out, zero point 200", "zero point 200"),
    ("uint8 out, qmin -1", "must lie in \\[0, 255\\]"),
])
def test_extension_rejects_buffers_of_another_type_or_layout(isa, case, pattern):
    """Each odd buffer is a ValueError naming it, never a silent reinterpretation."""
    from gpuquant.backends.numpy import _igemm

    pack, gemm = (getattr(_igemm, name) for name in FUNCTIONS[isa])
    packed = pack(np.ones((3, 8), np.int8), False)
    i32, f32 = np.zeros(3, np.int32), np.zeros(3, np.float32)
    shared = np.zeros(64, np.int8)
    args = {"x": np.ones((2, 8), np.uint8), "zw": i32, "multiplier_f32": f32, "zero_point": 0,
            "qmin": -128, "qmax": 127, "out": np.zeros((2, 3), np.int32)}
    tweak = {
        "float32 out": {"out": np.zeros((2, 3), np.float32)},
        "big-endian out": {"out": np.zeros((2, 3), ">i4")},
        "out rows at a stride of 6 bytes": {"out": np.lib.stride_tricks.as_strided(
            np.zeros(8, np.int32), (2, 3), (6, 4))},
        "overlapping out rows": {"out": np.lib.stride_tricks.as_strided(
            np.zeros(8, np.int32), (2, 3), (8, 4))},
        "out over x": {"x": shared[:16].reshape(2, 8), "out": shared[8:14].reshape(2, 3)},
        "out over zw": {"zw": shared.view(np.int32)[:3], "out": shared.view(np.int32)[2:8]
                        .reshape(2, 3)},
        "bool x": {"x": np.ones((2, 8), bool)},
        "uint32 zw": {"zw": np.zeros(3, np.uint32)},
        "int32 multiplier_f32": {"multiplier_f32": i32},
        "int8 out, qmin > qmax": {"out": np.zeros((2, 3), np.int8), "qmin": 5, "qmax": 4},
        "int8 out, zero point 200": {"out": np.zeros((2, 3), np.int8), "zero_point": 200},
        "uint8 out, qmin -1": {"out": np.zeros((2, 3), np.uint8), "qmin": -1, "qmax": 9},
    }[case]
    args.update(tweak)
    with pytest.raises(ValueError, match=pattern):
        gemm(args["x"], False, packed, args["zw"], i32, i32, i32, args["multiplier_f32"],
             args["zero_point"], args["qmin"], args["qmax"], 0, args["out"])


@each_core
def test_extension_holds_no_reference_to_its_arrays_after_a_call(isa):
    """Each buffer the extension takes is released once: outputs of the backend are freed."""
    from gpuquant.backends.numpy import _igemm

    pack, gemm = (getattr(_igemm, name) for name in FUNCTIONS[isa])
    packed = pack(np.ones((3, 8), np.int8), False)
    i32, f32 = np.zeros(3, np.int32), np.zeros(3, np.float32)
    x = np.ones((2, 8), np.uint8)
    for out in (np.zeros((2, 3), np.int32), np.zeros((2, 3), np.int8)):
        arrays = (x, packed, i32, f32, out)
        before = [sys.getrefcount(a) for a in arrays]
        gemm(x, False, packed, i32, i32, i32, i32, f32, 0, 0, 0, 0, out)
        with pytest.raises(ValueError, match="out has 3 rows"):
            gemm(x, False, packed, i32, i32, i32, i32, f32, 0, 0, 0, 0, out[[0, 1, 1]])
        assert [sys.getrefcount(a) for a in arrays] == before
    y = CORES[isa].gemm(x, GemmParams("fc", np.ones((3, 8), np.int8), 0, 0, "uint8", 0, None))
    freed = weakref.ref(y)
    del y
    assert freed() is None


@each_core
def test_extension_reads_and_packs_through_negative_strides(isa):
    from gpuquant.backends.numpy import _igemm

    pack, gemm = (getattr(_igemm, name) for name in FUNCTIONS[isa])
    rng = np.random.default_rng(11)
    w, x = codes(rng, (70, 13), "int8"), codes(rng, (9, 13), "uint8")
    assert pack(w[::-1, ::-1], False) == pack(w[::-1, ::-1].copy(), False)
    packed = pack(w, False)
    zeros, f32 = np.zeros(70, np.int32), np.zeros(70, np.float32)
    out = np.zeros((9, 70), np.int32)
    gemm(x[::-1], False, packed, zeros, zeros, zeros, zeros, f32, 0, 0, 0, 0, out[::-1])
    np.testing.assert_array_equal(out, x.astype(np.int64) @ w.T.astype(np.int64))


@each_core
def test_operands_with_negative_strides_equal_blas_path(isa):
    """Reversed views (x[::-1] and the like) are ordinary inputs of gemm, matmul and conv."""
    core = CORES[isa]
    rng = np.random.default_rng(12)
    x = codes(rng, (7, 20), "int8")
    p = GemmParams("fc", codes(rng, (5, 20), "int8"), 1, 3, "int8", 0, None)
    np.testing.assert_array_equal(core.gemm(x[::-1], p), blas.gemm(x[::-1], p))
    a, b = codes(rng, (2, 6, 9), "uint8"), codes(rng, (9, 17), "int8")
    mp = MatMulParams("mm", 9, 7, "uint8", 2, "int8", None)
    for a_view, b_view in ((a[:, ::-1], b), (a, b[::-1]), (a, b[:, ::-1])):
        np.testing.assert_array_equal(core.matmul(a_view, b_view, mp),
                                      blas.matmul(a_view, b_view, mp))
    image = codes(rng, (1, 1, 8, 5), "uint8")[:, :, ::-1]  # a 1x1 conv reads it without a copy
    cp = Conv2DParams("conv", codes(rng, (4, 1, 1, 5), "int8"), 0, 3, "uint8", 0, None)
    np.testing.assert_array_equal(core.conv2d(image, cp), blas.conv2d(image, cp))


def test_matmul_with_no_output_columns(nb):
    a, b = np.ones((3, 7, 4), np.int8), np.ones((4, 0), np.int8)
    for r in (None, Requant(np.array([2**30]), np.array([0]), "single", 0, -128, 127, "int8")):
        p = MatMulParams("mm", 4, 0, "int8", 0, "int8", r)
        assert nb.matmul(a, b, p).shape == (3, 7, 0)


def _gemm_in_a_forked_child(backend: NumpyBackend, x: np.ndarray, p: GemmParams, queue) -> None:
    queue.put(backend.gemm(x, p))


@pytest.mark.parametrize("core", ["blas", *ISAS])
def test_a_forked_child_runs_on_threads_of_its_own(core, monkeypatch):
    """After the parent used the thread pool, a fork()ed child (multiprocessing's default on
    Linux) must not wait forever for the parent's workers, which it does not have."""
    import multiprocessing

    from gpuquant.backends.numpy import requant as np_requant

    monkeypatch.setattr(threads, "THREADS", 2)
    monkeypatch.setattr(native, "PARALLEL_MIN_OPS", 0)
    monkeypatch.setattr(np_requant, "PARALLEL_MIN_SIZE", 0)
    rng = np.random.default_rng(14)
    x = codes(rng, (10, 16), "uint8")
    p = GemmParams("fc", codes(rng, (8, 16), "int8"), 0, 0, "uint8", 0,
                   random_requant(rng, 8, "int8", "gemmlowp"))
    backend = NumpyBackend(core)
    want = backend.gemm(x, p)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_gemm_in_a_forked_child, args=(backend, x, p, queue))
    child.start()
    child.join(20)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail("the forked child hung on the parent's thread pool")
    np.testing.assert_array_equal(queue.get(timeout=5), want)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_one_thread_per_cpu_the_process_may_run_on():
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from gpuquant.backends.numpy import threads; print(threads.THREADS)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=env)
    assert done.stdout.strip() == "1"


@each_core
def test_params_shared_by_python_threads(isa, monkeypatch):
    """Several Python threads run the same fresh params at once (the operand cache is filled
    concurrently; each call also splits its rows over the pool)."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(native, "PARALLEL_MIN_OPS", 0)
    monkeypatch.setattr(threads, "THREADS", 3)
    rng = np.random.default_rng(15)
    xs = [codes(rng, (int(rng.integers(1, 300)), 77), "int8") for _ in range(16)]
    for _ in range(3):
        p = GemmParams("fc", codes(rng, (130, 77), "uint8"), rng.integers(0, 256, 130), -128,
                       "int8", rng.integers(-999, 999, 130),
                       random_requant(rng, 130, "uint8", "single"))
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(CORES[isa].gemm, xs, [p] * len(xs)))
        for x, y in zip(xs, got, strict=True):
            np.testing.assert_array_equal(y, blas.gemm(x, p))

# Property tests: each native core against the BLAS path, bit for bit, over random shapes around
# every tile edge (6-row tiles, 72- and 192-row chunks, 8/16/64-column panels and vectors, K % 2
# and K % 4), operand views, zero points at the extremes and arbitrary valid requantizations.


EDGE_M = [0, 1, 2, 5, 6, 7, 11, 12, 13, 71, 72, 73, 143, 144, 145, 191, 192, 193, 197, 383, 384,
          385]
EDGE_N = [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 191, 192, 193]
EDGE_K = [0, 1, 2, 3, 4, 5, 6, 7, 8, 63, 64, 65, 66, 255, 256, 257, 258, 1025, 1026, 1027, 1028]
I8 = ["int8", "uint8"]


def _zero_point(rng: np.random.Generator, dtype: str) -> int:
    lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
    return int(rng.choice([lo, hi, lo + 1, hi - 1, 0, int(rng.integers(lo, hi + 1))]))


def _any_requant(rng: np.random.Generator, channels: int, rounding: str, dtype: str) -> Requant:
    """Per-tensor or per-channel multipliers anywhere in [0, 2**31) (extremes planted), shifts
    anywhere in [-31, 30], a zero point and clamp bounds anywhere in the dtype's range."""
    size = 1 if rng.random() < 0.3 else max(channels, 1)
    multiplier = rng.integers(0, 2**31, size)
    shift = rng.integers(-31, 31, size)
    if rng.random() < 0.5:  # multipliers of real converters: [2**30, 2**31), modest shifts
        multiplier = rng.integers(2**30, 2**31, size)
        shift = rng.integers(-20, 3, size)
    picks = rng.random(size)
    multiplier[picks < 0.1] = rng.choice([0, 1, 2**30, 2**31 - 1], int((picks < 0.1).sum()))
    shift[picks > 0.9] = rng.choice([-31, -30, 0, 29, 30], int((picks > 0.9).sum()))
    lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
    qmin, qmax = sorted(int(v) for v in rng.integers(lo, hi + 1, 2))
    if rng.random() < 0.5:
        qmin, qmax = lo, hi
    zp = _zero_point(rng, dtype)
    return Requant(multiplier, shift, rounding, zp, qmin, qmax, dtype)


def _epilogue(rng: np.random.Generator, channels: int) -> Requant | None:
    kind = rng.choice(["none", "int8", "uint8"], p=[0.2, 0.4, 0.4])
    if kind == "none":
        return None
    return _any_requant(rng, channels, str(rng.choice(ROUNDING_MODES)), str(kind))


def _view(rng: np.random.Generator, a: np.ndarray) -> np.ndarray:
    """``a`` itself or an equal array read through another layout: rows reversed, a strided
    column window of a wider array, Fortran order, or every row broadcast from one."""
    kind = rng.integers(5)
    if kind == 1:
        return np.ascontiguousarray(a[::-1])[::-1]
    if kind == 2:
        wide = np.zeros((a.shape[0], 2 * a.shape[1] + 3), a.dtype)
        wide[:, 3::2] = a
        return wide[:, 3::2]
    if kind == 3:
        return np.asfortranarray(a)
    if kind == 4 and a.shape[0]:
        return np.broadcast_to(a[:1], a.shape)
    return a


def _bias(rng: np.random.Generator, headroom: np.ndarray) -> np.ndarray:
    """int32 biases that use up to all of each channel's headroom (ops/accumulator.py)."""
    scale = rng.choice([0.0, 1e-3, 1.0], headroom.shape)
    return (rng.uniform(-1, 1, headroom.shape) * headroom * scale).astype(np.int64)


def _headroom(w2d: np.ndarray, zw: np.ndarray, x_dtype: str, zx: int) -> np.ndarray:
    xmax = max(abs(int(np.iinfo(x_dtype).min) - zx), abs(int(np.iinfo(x_dtype).max) - zx))
    used = xmax * np.abs(w2d.astype(np.int64) - zw[:, None]).sum(axis=1)
    return np.maximum(INT32_MAX - used, 0)


@each_core
@settings(max_examples=400, deadline=None, derandomize=True)
@given(m=st.one_of(st.sampled_from(EDGE_M), st.integers(0, 400)),
       n=st.one_of(st.sampled_from(EDGE_N[1:]), st.integers(1, 200)),
       k=st.one_of(st.sampled_from(EDGE_K), st.integers(0, 300)),
       x_dtype=st.sampled_from(I8), w_dtype=st.sampled_from(I8), seed=st.integers(0, 2**32 - 1))
def test_property_gemm_equals_blas_path(isa, m, n, k, x_dtype, w_dtype, seed):
    rng = np.random.default_rng(seed)
    x, w = _view(rng, codes(rng, (m, k), x_dtype)), codes(rng, (n, k), w_dtype)
    zx = _zero_point(rng, x_dtype)
    zw = np.array([_zero_point(rng, w_dtype) for _ in range(n)], dtype=np.int64)
    if rng.random() < 0.3:
        zw[:] = 0
    bias = _bias(rng, _headroom(w, zw, x_dtype, zx))
    p = GemmParams("fc", w, zw, zx, x_dtype, bias, _epilogue(rng, n))
    got = CORES[isa].gemm(x, p)
    assert got.shape == (m, n)
    np.testing.assert_array_equal(got, blas.gemm(x, p))


@each_core
@settings(max_examples=150, deadline=None, derandomize=True)
@given(batch=st.sampled_from([((), ()), ((3,), ()), ((), (2,)), ((2, 1), (3,)), ((1, 2), (4, 1)),
                              ((0,), (1,)), ((2, 3), (2, 3))]),
       m=st.sampled_from([0, 1, 5, 6, 7, 13]), n=st.sampled_from([0, 1, 16, 17, 65]),
       k=st.sampled_from([0, 1, 3, 4, 9, 130]),
       a_dtype=st.sampled_from(I8), b_dtype=st.sampled_from(I8), seed=st.integers(0, 2**32 - 1))
def test_property_matmul_with_batch_broadcast_equals_blas_path(isa, batch, m, n, k, a_dtype,
                                                               b_dtype, seed):
    rng = np.random.default_rng(seed)
    a = codes(rng, batch[0] + (m, k), a_dtype)
    b = codes(rng, batch[1] + (k, n), b_dtype)
    if rng.random() < 0.3:
        a = a[..., ::-1, :]
    if rng.random() < 0.3:
        b = np.swapaxes(np.ascontiguousarray(np.swapaxes(b, -1, -2)), -1, -2)
    elif rng.random() < 0.3:
        b = b[..., ::-1, :]
    zb = np.array([_zero_point(rng, b_dtype) for _ in range(max(n, 1))])[:n or 1]
    if rng.random() < 0.5:
        zb = zb[:1]
    p = MatMulParams("mm", k, _zero_point(rng, a_dtype), a_dtype, zb, b_dtype, _epilogue(rng, n))
    np.testing.assert_array_equal(CORES[isa].matmul(a, b, p), blas.matmul(a, b, p))


@each_core
@settings(max_examples=150, deadline=None, derandomize=True)
@given(groups=st.sampled_from([1, 1, 2, 3]), cg_in=st.integers(1, 5), cg_out=st.integers(1, 70),
       kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       padding=st.tuples(*[st.integers(0, 2)] * 4), batch=st.integers(0, 2),
       x_dtype=st.sampled_from(I8), w_dtype=st.sampled_from(I8), seed=st.integers(0, 2**32 - 1))
def test_property_conv2d_equals_blas_path(isa, groups, cg_in, cg_out, kernel, stride, dilation,
                                          padding, batch, x_dtype, w_dtype, seed):
    rng = np.random.default_rng(seed)
    c_in, c_out = groups * cg_in, groups * cg_out
    size = [(kernel[i] - 1) * dilation[i] + 1 + int(rng.integers(0, 6)) for i in range(2)]
    x = codes(rng, (batch, *size, c_in), x_dtype)
    if rng.random() < 0.3:
        x = x[:, ::-1, ::-1]
    w = codes(rng, (c_out, *kernel, cg_in), w_dtype)
    zx = _zero_point(rng, x_dtype)
    zw = np.array([_zero_point(rng, w_dtype) for _ in range(c_out)])
    bias = _bias(rng, _headroom(w.reshape(c_out, -1), zw, x_dtype, zx))
    p = Conv2DParams("conv", w, zw, zx, x_dtype, bias, _epilogue(rng, c_out), stride=stride,
                     dilation=dilation, padding=padding, groups=groups)
    np.testing.assert_array_equal(CORES[isa].conv2d(x, p), blas.conv2d(x, p))

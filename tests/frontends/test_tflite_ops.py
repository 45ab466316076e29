"""Single-operator TFLite models written with the flatbuffer builders, run through the importer
on the NumPy backend. Known answers: scalar Python-int transcriptions of TFLite's reference
kernels (quantization_util.cc QuantizeMultiplier, gemmlowp SaturatingRoundingDoublingHighMul /
RoundingDivideByPOT, reference_integer_ops add/mul/pooling), independent of gpuquant's code."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from tflite_builder import Op, T, write

from gpuquant.backends.numpy import NumpyBackend
from gpuquant.errors import UnsupportedOpError
from gpuquant.frontends.tflite_model import load_tflite
from gpuquant.runtime.executor import execute

RNG = np.random.default_rng(7)


def quantize_multiplier(real: float) -> tuple[int, int]:
    if real == 0:
        return 0, 0
    q, shift = math.frexp(real)
    m = int(Fraction(q) * 2**31 + Fraction(1, 2))  # q > 0: half away from zero
    if m == 2**31:
        m, shift = m // 2, shift + 1
    return m, shift


def srdhm(a: int, b: int) -> int:
    if a == b == -(2**31):
        return 2**31 - 1
    n = a * b + (2**30 if a * b >= 0 else 1 - 2**30)
    return n // 2**31 if n >= 0 else -((-n) // 2**31)  # C division truncates toward zero


def rdbp(x: int, e: int) -> int:
    mask = (1 << e) - 1
    rem = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > threshold else 0)


def mbqm(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return rdbp(srdhm(x * (1 << left), m), right)


def run(path, feeds):
    model = load_tflite(path)
    return model, {k: np.asarray(v) for k, v in execute(model, feeds, NumpyBackend()).items()}


def q8(name, shape, scale, zp, dtype="int8", data=None):
    return T(name, shape, dtype, data, [scale], [zp])


def codes(shape, dtype="int8"):
    lo = -128 if dtype == "int8" else 0
    return RNG.integers(lo, lo + 256, shape).astype(dtype)


@pytest.mark.parametrize("op, relu", [("ADD", False), ("ADD", True), ("SUB", False)])
def test_add_sub_broadcast(tmp_path, op, relu):
    sa, za, sb, zb, sy, zy = 0.031, -5, 0.017, 9, 0.05, 3
    tensors = [q8("a", (1, 4, 4, 3), sa, za), q8("b", (1, 1, 1, 3), sb, zb),
               q8("y", (1, 4, 4, 3), sy, zy)]
    opts = "SubOptions" if op == "SUB" else "AddOptions"
    path = write(tmp_path / "add.tflite", tensors,
                 [Op(op, [0, 1], [2], opts, {"FusedActivationFunction": 1 if relu else 0})],
                 [0, 1], [2])
    a, b = codes((1, 4, 4, 3)), codes((1, 1, 1, 3))
    _, out = run(path, {"a": a, "b": b})
    f = lambda v: float(np.float32(v))  # noqa: E731
    twice = 2 * max(f(sa), f(sb))
    ma, ea = quantize_multiplier(f(sa) / twice)
    mb, eb = quantize_multiplier(f(sb) / twice)
    mo, eo = quantize_multiplier(twice / ((1 << 20) * f(sy)))
    lo = zy if relu else -128
    expected = np.empty_like(a)
    for idx in np.ndindex(a.shape):
        va = mbqm((int(a[idx]) - za) << 20, ma, ea)
        vb = mbqm((int(b[0, 0, 0, idx[3]]) - zb) << 20, mb, eb)
        raw = va - vb if op == "SUB" else va + vb
        expected[idx] = min(max(mbqm(raw, mo, eo) + zy, lo), 127)
    np.testing.assert_array_equal(out["y"], expected)


def test_mul(tmp_path):
    sa, za, sb, zb, sy, zy = 0.02, 3, 0.04, -7, 0.01, -2
    tensors = [q8("a", (2, 5), sa, za), q8("b", (2, 5), sb, zb), q8("y", (2, 5), sy, zy)]
    path = write(tmp_path / "mul.tflite", tensors,
                 [Op("MUL", [0, 1], [2], "MulOptions", {"FusedActivationFunction": 0})],
                 [0, 1], [2])
    a, b = codes((2, 5)), codes((2, 5))
    _, out = run(path, {"a": a, "b": b})
    f = lambda v: float(np.float32(v))  # noqa: E731
    m, e = quantize_multiplier(f(sa) * f(sb) / f(sy))
    expected = np.array([min(max(mbqm((int(x) - za) * (int(y) - zb), m, e) + zy, -128), 127)
                         for x, y in zip(a.ravel(), b.ravel())], np.int8).reshape(2, 5)
    np.testing.assert_array_equal(out["y"], expected)


@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_same_padding(tmp_path, op):
    tensors = [q8("x", (1, 5, 5, 2), 0.1, 4), q8("y", (1, 3, 3, 2), 0.1, 4)]
    fields = {"Padding": 0, "StrideW": 2, "StrideH": 2, "FilterWidth": 3, "FilterHeight": 3,
              "FusedActivationFunction": 0}
    path = write(tmp_path / "pool.tflite", tensors, [Op(op, [0], [1], "Pool2DOptions", fields)],
                 [0], [1])
    x = codes((1, 5, 5, 2))
    _, out = run(path, {"x": x})
    expected = np.empty((1, 3, 3, 2), np.int8)
    for oh, ow, c in np.ndindex(3, 3, 2):
        win = [int(x[0, h, w, c]) for h in range(2 * oh - 1, 2 * oh + 2)
               for w in range(2 * ow - 1, 2 * ow + 2) if 0 <= h < 5 and 0 <= w < 5]
        if op == "MAX_POOL_2D":
            expected[0, oh, ow, c] = max(win)
        else:
            s, n = sum(win), len(win)
            expected[0, oh, ow, c] = (s + n // 2) // n if s > 0 else -((-s + n // 2) // n)
    np.testing.assert_array_equal(out["y"], expected)


def test_conv_uint8_per_tensor_and_deprecated_opcode(tmp_path):
    sx, zx, sw, zw, sy, zy = 0.02, 120, 0.005, 131, 0.03, 110
    w = codes((4, 3, 3, 2), "uint8")
    bias = RNG.integers(-300, 300, 4).astype(np.int32)
    tensors = [q8("x", (1, 5, 5, 2), sx, zx, "uint8"), q8("w", w.shape, sw, zw, "uint8", w),
               T("b", (4,), "int32", bias, [float(np.float32(sx) * np.float32(sw))], [0]),
               q8("y", (1, 5, 5, 4), sy, zy, "uint8")]
    fields = {"Padding": 0, "StrideW": 1, "StrideH": 1, "FusedActivationFunction": 3,
              "DilationWFactor": 1, "DilationHFactor": 1}
    path = write(tmp_path / "conv.tflite", tensors,
                 [Op("CONV_2D", [0, 1, 2], [3], "Conv2DOptions", fields)], [0], [3],
                 deprecated_codes=True)
    x = codes((1, 5, 5, 2), "uint8")
    model, out = run(path, {"x": x})
    assert model.metadata["ops"] == {"CONV_2D": 1}
    # GetQuantizedConvolutionMultipler: double(float32(s_x * s_w)) / double(s_y).
    m, e = quantize_multiplier(float(np.float32(sx) * np.float32(sw)) / float(np.float32(sy)))
    hi = min(255, zy + round(6 / float(np.float32(sy))))
    xp = np.pad(x.astype(int) - zx, ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = np.empty((1, 5, 5, 4), np.uint8)
    for h, wi, o in np.ndindex(5, 5, 4):
        acc = int((xp[0, h:h + 3, wi:wi + 3, :] * (w[o].astype(int) - zw)).sum()) + int(bias[o])
        expected[0, h, wi, o] = min(max(mbqm(acc, m, e) + zy, zy), hi)
    np.testing.assert_array_equal(out["y"], expected)


def test_quantize_dequantize_concat_pad_reshape(tmp_path):
    s, z = 0.25, -3
    tensors = [T("f", (1, 2, 2, 3), "float32"), q8("q", (1, 2, 2, 3), s, z),
               q8("r", (1, 2, 2, 3), s * 2, 5), q8("c", (1, 2, 2, 6), s, z),
               T("pads", (4, 2), "int32", np.array([[0, 0], [1, 0], [0, 1], [0, 0]], np.int32)),
               q8("p", (1, 3, 3, 6), s, z), T("shape", (2,), "int32", np.array([1, 54], np.int32)),
               q8("flat", (1, 54), s, z), T("d", (1, 54), "float32")]
    ops = [Op("QUANTIZE", [0], [1]), Op("QUANTIZE", [1], [2]),
           Op("CONCATENATION", [1, 1], [3], "ConcatenationOptions",
              {"Axis": 3, "FusedActivationFunction": 0}),
           Op("PAD", [3, 4], [5]), Op("RESHAPE", [5, 6], [7]), Op("DEQUANTIZE", [7], [8])]
    path = write(tmp_path / "misc.tflite", tensors, ops, [0], [8, 2])
    f = (np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3) - 6) * np.float32(0.125)
    _, out = run(path, {"f": f})
    # TFLite QUANTIZE rounds half away from zero: -0.75/0.25 = -3 exactly, 0.125/0.25 = 0.5 -> 1.
    q = np.array([np.sign(v) * math.floor(abs(v) + 0.5) for v in (f / np.float32(s)).ravel()])
    q = np.clip(q + z, -128, 127).reshape(1, 2, 2, 3)
    c = np.concatenate([q, q], axis=3)
    p = np.pad(c, ((0, 0), (1, 0), (0, 1), (0, 0)), constant_values=z)
    np.testing.assert_array_equal(out["d"], ((p.reshape(1, 54) - z) * np.float32(s)).astype(
        np.float32))
    m, e = quantize_multiplier(float(np.float32(s)) / float(np.float32(s * 2)))
    r = np.array([min(max(mbqm(int(v) - z, m, e) + 5, -128), 127) for v in q.ravel()])
    np.testing.assert_array_equal(out["r"], r.reshape(1, 2, 2, 3))


def test_unsupported_operator_names_index(tmp_path):
    tensors = [q8("x", (1, 4), 0.1, 0), q8("y", (1, 4), 0.1, 0), q8("z", (1, 4), 0.1, 0)]
    path = write(tmp_path / "bad.tflite", tensors,
                 [Op("RESHAPE", [0], [1]), Op("ABS", [1], [2])], [0], [2])
    with pytest.raises(UnsupportedOpError, match=r"operator 1 \(ABS\)"):
        load_tflite(path)

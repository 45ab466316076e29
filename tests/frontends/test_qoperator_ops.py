"""Each supported QOperator op, alone in a model: gpuquant on the NumPy backend must give
onnxruntime's integers exactly, on exhaustive code ranges where the op is a table and on
inputs built to hit rounding ties elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from ort_weights import int8_weights
from qoperator_helpers import MS, build, const, helper, run_both, scalar

RNG = np.random.default_rng(20261203)
DTYPES = {"int8": np.int8, "uint8": np.uint8}


def codes(dtype: str) -> np.ndarray:
    lo = -128 if dtype == "int8" else 0
    return np.arange(lo, lo + 256).astype(DTYPES[dtype])


def random_codes(dtype: str, shape) -> np.ndarray:
    lo = -128 if dtype == "int8" else 0
    return RNG.integers(lo, lo + 256, shape).astype(DTYPES[dtype])


def zero_point(dtype: str) -> int:
    return int(RNG.integers(-20, 20)) if dtype == "int8" else int(RNG.integers(100, 150))


def scale() -> float:
    return float(np.float32(RNG.uniform(0.002, 0.08)))


def assert_same(expected: np.ndarray, got: np.ndarray) -> None:
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("trial", range(3))
def test_quantize_linear_ties(tmp_path, dtype, trial):
    s = 2.0 ** -int(RNG.integers(2, 7))  # a power of two: k + 0.5 steps are exact ties
    z = zero_point(dtype)
    halves = (np.arange(-300, 300) + 0.5) * s
    x = np.concatenate([halves, RNG.normal(0, 1, 400), [0.0, -0.0, 1e9, -1e9]])
    x = x.astype(np.float32).reshape(1, 1, -1)
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    path = build(tmp_path, node, {"x": x}, [scalar("s", s, np.float32),
                                            scalar("z", z, DTYPES[dtype])], DTYPES[dtype])
    assert_same(*run_both(path, {"x": x}))


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_dequantize_linear(tmp_path, dtype):
    x = codes(dtype).reshape(1, 256)
    node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"])
    path = build(tmp_path, node, {"x": x}, [scalar("s", scale(), np.float32),
                                            scalar("z", zero_point(dtype), DTYPES[dtype])],
                 np.float32)
    assert_same(*run_both(path, {"x": x}))


def _pair_inputs(dtype: str):
    a = np.repeat(codes(dtype), 256).reshape(1, 256, 256)
    b = np.tile(codes(dtype), 256).reshape(1, 256, 256)
    return a, b


def _binary(tmp_path, op, dtype, a, b, params):
    t = DTYPES[dtype]
    (sa, za), (sb, zb), (sc, zc) = params
    node = helper.make_node(op, ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["y"], domain=MS)
    init = [scalar("as", sa, np.float32), scalar("az", za, t), scalar("bs", sb, np.float32),
            scalar("bz", zb, t), scalar("cs", sc, np.float32), scalar("cz", zc, t)]
    path = build(tmp_path, node, {"a": a, "b": b}, init, t, op)
    assert_same(*run_both(path, {"a": a, "b": b}))


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("trial", range(4))
def test_binary_every_pair_of_codes(tmp_path, op, dtype, trial):
    a, b = _pair_inputs(dtype)
    params = [(scale(), zero_point(dtype)) for _ in range(3)]
    _binary(tmp_path, op, dtype, a, b, params)


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("shapes", [((2, 4, 8, 8), (1, 4, 1, 1)), ((2, 4, 8, 8), (1,)),
                                    ((1,), (2, 4, 8, 8)), ((2, 4, 8, 8), (8,)),
                                    ((1, 4, 1, 1), (2, 4, 8, 8))])
def test_binary_broadcast(tmp_path, op, shapes):
    dtype = "uint8"
    params = [(scale(), zero_point(dtype)) for _ in range(3)]
    a, b = random_codes(dtype, shapes[0]), random_codes(dtype, shapes[1])
    _binary(tmp_path, op, dtype, a, b, params)


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_qlinear_add_scalar_a_every_pair(tmp_path, dtype):
    """A one-element ``a`` takes ONNX Runtime's swapped scalar kernel: all 256 x 256 pairs."""
    import onnxruntime as ort

    from gpuquant.backends.numpy import NumpyBackend
    from gpuquant.frontends.onnx_qoperator import load_qoperator_onnx
    from gpuquant.runtime.executor import execute

    t = DTYPES[dtype]
    b = codes(dtype)
    for _ in range(3):
        (sa, za), (sb, zb), (sc, zc) = [(scale(), zero_point(dtype)) for _ in range(3)]
        node = helper.make_node("QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "cs", "cz"],
                                ["y"], domain=MS)
        init = [scalar("as", sa, np.float32), scalar("az", za, t), scalar("bs", sb, np.float32),
                scalar("bz", zb, t), scalar("cs", sc, np.float32), scalar("cz", zc, t)]
        path = build(tmp_path, node, {"a": b[:1], "b": b}, init, t, "add_scalar")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        model = load_qoperator_onnx(path)
        backend = NumpyBackend()
        for v in b:
            feeds = {"a": np.array([v], t), "b": b}
            expected = session.run(["y"], feeds)[0]
            assert_same(expected, np.asarray(execute(model, feeds, backend)["y"]))


def _conv(tmp_path, dtype, x_shape, w_shape, attrs, ties: bool, per_channel=True):
    t = DTYPES[dtype]
    c_out = w_shape[0]
    x = random_codes(dtype, x_shape)
    w = int8_weights(RNG, w_shape)
    if ties:
        # Exact binary-fraction scales: float32(acc) * M lands on many x.5 ties.
        sx, sy = 0.5, 2.0 ** int(RNG.integers(3, 6))
        sw = np.full(c_out if per_channel else 1, 0.25, np.float32)
    else:
        sx, sy = scale(), scale() * 8
        sw = RNG.uniform(0.001, 0.01, c_out if per_channel else 1).astype(np.float32)
    bias = RNG.integers(-2000, 2000, c_out).astype(np.int32)
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                            ["y"], **attrs)
    init = [scalar("xs", sx, np.float32), scalar("xz", zero_point(dtype), t), const("w", w),
            const("ws", sw), const("wz", np.zeros(sw.size, np.int8)),
            scalar("ys", sy, np.float32), scalar("yz", zero_point(dtype), t), const("b", bias)]
    path = build(tmp_path, node, {"x": x}, init, t, "conv")
    assert_same(*run_both(path, {"x": x}))


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("case", [
    ((2, 3, 9, 9), (8, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((1, 4, 10, 7), (6, 4, 3, 2), {"strides": [2, 1], "pads": [0, 1, 2, 0]}),
    ((1, 8, 8, 8), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1]}),
    ((1, 4, 8, 8), (8, 1, 3, 3), {"group": 4, "dilations": [2, 2]}),
    ((1, 6, 7, 7), (4, 3, 1, 1), {"group": 2, "auto_pad": "SAME_UPPER"}),
])
def test_qlinear_conv(tmp_path, dtype, ties, case):
    _conv(tmp_path, dtype, case[0], case[1], case[2], ties)


def test_qlinear_conv_per_tensor_weights(tmp_path):
    _conv(tmp_path, "uint8", (1, 3, 6, 6), (5, 3, 3, 3), {}, ties=False, per_channel=False)


def test_qlinear_conv_uint8_weights(tmp_path):
    x = random_codes("uint8", (1, 4, 6, 6))
    w = random_codes("uint8", (3, 4, 3, 3))
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"],
                            pads=[1, 1, 1, 1])
    init = [scalar("xs", 0.02, np.float32), scalar("xz", 128, np.uint8), const("w", w),
            scalar("ws", 0.004, np.float32), scalar("wz", 125, np.uint8),
            scalar("ys", 0.5, np.float32), scalar("yz", 120, np.uint8)]
    path = build(tmp_path, node, {"x": x}, init, np.uint8)
    assert_same(*run_both(path, {"x": x}))


def test_conv_integer(tmp_path):
    x = random_codes("uint8", (1, 3, 7, 7))
    w = int8_weights(RNG, (4, 3, 3, 3))
    node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], pads=[1, 1, 1, 1])
    init = [const("w", w), scalar("xz", 130, np.uint8), scalar("wz", 3, np.int8)]
    path = build(tmp_path, node, {"x": x}, init, np.int32)
    assert_same(*run_both(path, {"x": x}))


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("ties", [False, True])
def test_qlinear_matmul_constant_b(tmp_path, dtype, ties):
    t = DTYPES[dtype]
    a = random_codes(dtype, (2, 5, 33))
    b = int8_weights(RNG, (33, 7))
    sa, sb, sy = (0.5, 0.25, 16.0) if ties else (scale(), scale() / 8, scale() * 8)
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    init = [scalar("as", sa, np.float32), scalar("az", zero_point(dtype), t), const("b", b),
            scalar("bs", sb, np.float32), scalar("bz", 0, np.int8),
            scalar("ys", sy, np.float32), scalar("yz", zero_point(dtype), t)]
    path = build(tmp_path, node, {"a": a}, init, t)
    assert_same(*run_both(path, {"a": a}))


def test_qlinear_matmul_two_activations(tmp_path):
    a = random_codes("uint8", (3, 4, 20))
    b = random_codes("uint8", (3, 20, 6))
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    init = [scalar("as", 0.02, np.float32), scalar("az", 128, np.uint8),
            scalar("bs", 0.03, np.float32), scalar("bz", 120, np.uint8),
            scalar("ys", 0.5, np.float32), scalar("yz", 125, np.uint8)]
    path = build(tmp_path, node, {"a": a, "b": b}, init, np.uint8)
    assert_same(*run_both(path, {"a": a, "b": b}))


def test_matmul_integer(tmp_path):
    a = random_codes("uint8", (4, 50))
    b = int8_weights(RNG, (50, 9))
    node = helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])
    init = [const("b", b), scalar("az", 131, np.uint8), scalar("bz", -2, np.int8)]
    path = build(tmp_path, node, {"a": a}, init, np.int32)
    assert_same(*run_both(path, {"a": a}))


@pytest.mark.parametrize("alpha", [1.0, 0.75])
def test_qgemm(tmp_path, alpha):
    a = random_codes("int8", (3, 40))
    b = int8_weights(RNG, (6, 40))
    sb = RNG.uniform(0.001, 0.01, 6).astype(np.float32)
    bias = RNG.integers(-5000, 5000, 6).astype(np.int32)
    node = helper.make_node("QGemm", ["a", "as", "az", "b", "bs", "bz", "c", "ys", "yz"], ["y"],
                            domain=MS, transB=1, alpha=alpha)
    init = [scalar("as", scale(), np.float32), scalar("az", 5, np.int8), const("b", b),
            const("bs", sb), const("bz", np.zeros(6, np.int8)), const("c", bias),
            scalar("ys", 0.05, np.float32), scalar("yz", -3, np.int8)]
    path = build(tmp_path, node, {"a": a}, init, np.int8)
    assert_same(*run_both(path, {"a": a}))


def _unary(tmp_path, op, dtype, attrs=None):
    t = DTYPES[dtype]
    x = codes(dtype).reshape(1, 256)
    node = helper.make_node(op, ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS, **(attrs or {}))
    init = [scalar("xs", scale() * 4, np.float32), scalar("xz", zero_point(dtype), t),
            scalar("ys", scale(), np.float32), scalar("yz", zero_point(dtype), t)]
    path = build(tmp_path, node, {"x": x}, init, t, op)
    assert_same(*run_both(path, {"x": x}))


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("trial", range(4))
def test_qlinear_sigmoid_every_code(tmp_path, dtype, trial):
    _unary(tmp_path, "QLinearSigmoid", dtype)


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("alpha", [0.1, 0.3333])
def test_qlinear_leaky_relu_every_code(tmp_path, dtype, alpha):
    _unary(tmp_path, "QLinearLeakyRelu", dtype, {"alpha": alpha})


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_qlinear_concat(tmp_path, dtype):
    t = DTYPES[dtype]
    x0, x1 = codes(dtype).reshape(1, 4, 8, 8), random_codes(dtype, (1, 2, 8, 8))
    x2 = random_codes(dtype, (1, 3, 8, 8))
    sy, zy = scale(), zero_point(dtype)
    node = helper.make_node(
        "QLinearConcat", ["ys", "yz", "x0", "s0", "z0", "x1", "s1", "z1", "x2", "s2", "z2"],
        ["y"], domain=MS, axis=1)
    init = [scalar("ys", sy, np.float32), scalar("yz", zy, t),
            scalar("s0", scale(), np.float32), scalar("z0", zero_point(dtype), t),
            scalar("s1", sy, np.float32), scalar("z1", zy, t),
            scalar("s2", scale() * 3, np.float32), scalar("z2", zero_point(dtype), t)]
    feeds = {"x0": x0, "x1": x1, "x2": x2}
    path = build(tmp_path, node, feeds, init, t)
    assert_same(*run_both(path, feeds))


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [2, 2], "strides": [2, 2]},
    {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1},
    {"kernel_shape": [3, 2], "strides": [2, 2], "ceil_mode": 1},
    # ceil_mode's last window would start in the end padding: onnxruntime drops it
    {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1], "ceil_mode": 1},
    {"kernel_shape": [6, 6]},
])
def test_qlinear_average_pool(tmp_path, dtype, attrs):
    t = DTYPES[dtype]
    x = random_codes(dtype, (2, 5, 6, 6))
    node = helper.make_node("QLinearAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"],
                            domain=MS, **attrs)
    init = [scalar("xs", scale(), np.float32), scalar("xz", zero_point(dtype), t),
            scalar("ys", scale(), np.float32), scalar("yz", zero_point(dtype), t)]
    path = build(tmp_path, node, {"x": x}, init, t)
    assert_same(*run_both(path, {"x": x}))


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("ties", [False, True])
def test_qlinear_global_average_pool(tmp_path, dtype, ties):
    t = DTYPES[dtype]
    x = random_codes(dtype, (2, 6, 4, 4))
    xs, ys = (1.0, 1.0) if ties else (scale(), scale())  # ties: sums / 32 on x.5 often
    node = helper.make_node("QLinearGlobalAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"],
                            domain=MS)
    init = [scalar("xs", xs, np.float32), scalar("xz", zero_point(dtype), t),
            scalar("ys", ys * (2.0 if ties else 1.0), np.float32),
            scalar("yz", zero_point(dtype), t)]
    path = build(tmp_path, node, {"x": x}, init, t)
    assert_same(*run_both(path, {"x": x}))


def test_max_pool(tmp_path):
    x = random_codes("int8", (1, 3, 7, 7))
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                            pads=[1, 1, 1, 1])
    path = build(tmp_path, node, {"x": x}, [], np.int8)
    assert_same(*run_both(path, {"x": x}))


@pytest.mark.parametrize("op, inputs, attrs, init", [
    ("Reshape", ["x", "shape"], {}, [("shape", np.array([0, -1, 2], np.int64))]),
    ("Flatten", ["x"], {"axis": 2}, []),
    ("Transpose", ["x"], {"perm": [0, 2, 3, 1]}, []),
    ("Squeeze", ["x", "axes"], {}, [("axes", np.array([0], np.int64))]),
    ("Unsqueeze", ["x", "axes"], {}, [("axes", np.array([1, -1], np.int64))]),
])
def test_shape_ops(tmp_path, op, inputs, attrs, init):
    x = random_codes("int8", (1, 3, 4, 6))
    node = helper.make_node(op, inputs, ["y"], **attrs)
    path = build(tmp_path, node, {"x": x}, [const(n, v) for n, v in init], np.int8)
    assert_same(*run_both(path, {"x": x}))


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("shape, axis, opset", [((4, 10), -1, 13), ((2, 3, 5), 1, 13),
                                                ((2, 3, 4), 1, 12), ((3, 300), 1, 13)])
@pytest.mark.parametrize("x_scale", [0.004, 0.05, 0.7])
def test_qlinear_softmax(tmp_path, dtype, shape, axis, opset, x_scale):
    t = DTYPES[dtype]
    x = random_codes(dtype, shape)
    x.reshape(-1)[:8] = codes(dtype)[-1]  # rows with repeated maxima
    zy = -128 if dtype == "int8" else 0
    node = helper.make_node("QLinearSoftmax", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS,
                            axis=axis, opset=opset)
    init = [scalar("xs", x_scale, np.float32), scalar("xz", zero_point(dtype), t),
            scalar("ys", 1.0 / 256, np.float32), scalar("yz", zy, t)]
    path = build(tmp_path, node, {"x": x}, init, t)
    assert_same(*run_both(path, {"x": x}))

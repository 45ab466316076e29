"""Each float op, loaded by the ONNX frontend and run by the float executor, against
onnxruntime on small synthetic models."""

import numpy as np
import pytest
from onnx import TensorProto, helper

from gpuquant.frontends.onnx_float import load_onnx
from onnx_cases import assert_matches_onnxruntime, make_model

RNG = np.random.default_rng(1234)


def rand(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def node(op, inputs, outputs, **attrs):
    return helper.make_node(op, inputs, outputs, **attrs)


def test_conv_bias_pads_strides_dilations():
    model = make_model(
        [node("Conv", ["x", "w", "b"], ["y"], pads=[1, 2, 0, 1], strides=[2, 1], dilations=[1, 2])],
        [("x", [None, 3, 11, 10])], [("y", None)],
        {"w": rand(5, 3, 3, 3), "b": rand(5)},
    )
    assert_matches_onnxruntime(model, {"x": rand(2, 3, 11, 10)})


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_conv_auto_pad(auto_pad, stride):
    model = make_model(
        [node("Conv", ["x", "w"], ["y"], group=4, auto_pad=auto_pad, strides=[stride, stride],
              kernel_shape=[3, 3])],
        [("x", [None, 4, 9, 8])], [("y", None)],
        {"w": rand(4, 1, 3, 3)},
    )
    assert_matches_onnxruntime(model, {"x": rand(3, 4, 9, 8)})


def test_grouped_conv_channel_multiplier():
    model = make_model(
        [node("Conv", ["x", "w", "b"], ["y"], group=2, pads=[1, 1, 1, 1])],
        [("x", [None, 4, 6, 6])], [("y", None)],
        {"w": rand(6, 2, 3, 3), "b": rand(6)},
    )
    assert_matches_onnxruntime(model, {"x": rand(2, 4, 6, 6)})


def test_batch_normalization_after_conv():
    model = make_model(
        [node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], epsilon=1e-3)],
        [("x", [None, 3, 5, 5])], [("y", None)],
        {"w": rand(4, 3, 3, 3), "s": rand(4), "b": rand(4), "m": rand(4),
         "v": np.abs(rand(4)) + 0.1},
        opset=15,
    )
    assert_matches_onnxruntime(model, {"x": rand(2, 3, 5, 5)})


@pytest.mark.parametrize("trans_a,trans_b,alpha,beta", [(0, 1, 1.0, 1.0), (1, 0, 0.5, 2.0),
                                                        (1, 1, 1.5, 0.25)])
def test_gemm(trans_a, trans_b, alpha, beta):
    a = rand(6, 4) if trans_a else rand(4, 6)
    b = rand(5, 6) if trans_b else rand(6, 5)
    model = make_model(
        [node("Gemm", ["a", "b", "c"], ["y"], transA=trans_a, transB=trans_b, alpha=alpha,
              beta=beta)],
        [("a", list(a.shape))], [("y", None)], {"b": b, "c": rand(5)},
    )
    assert_matches_onnxruntime(model, {"a": a})


def test_matmul_and_elementwise_broadcast():
    model = make_model(
        [node("MatMul", ["x", "w"], ["m"]), node("Add", ["m", "b"], ["a"]),
         node("Sub", ["a", "x2"], ["s"]), node("Mul", ["s", "k"], ["p"]),
         node("Div", ["p", "d"], ["y"])],
        [("x", [None, 3, 4]), ("x2", [None, 3, 5])], [("y", None)],
        {"w": rand(4, 5), "b": rand(5), "k": rand(1, 5), "d": np.float32(1.5) + np.abs(rand(3, 1))},
    )
    assert_matches_onnxruntime(model, {"x": rand(2, 3, 4), "x2": rand(2, 3, 5)})


@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool(ceil_mode, count_include_pad):
    model = make_model(
        [node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
              pads=[1, 0, 1, 1], ceil_mode=ceil_mode, count_include_pad=count_include_pad)],
        [("x", [None, 2, 8, 7])], [("y", None)], opset=19,
    )
    assert_matches_onnxruntime(model, {"x": rand(2, 2, 8, 7)})


@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_max_pool_pads_dilations(ceil_mode):
    model = make_model(
        [node("MaxPool", ["x"], ["y"], kernel_shape=[2, 3], strides=[2, 2], pads=[1, 1, 0, 1],
              dilations=[1, 2], ceil_mode=ceil_mode)],
        [("x", [None, 2, 9, 8])], [("y", None)],
    )
    assert_matches_onnxruntime(model, {"x": rand(2, 2, 9, 8)})


def test_max_pool_same_upper_and_global_average_pool():
    model = make_model(
        [node("MaxPool", ["x"], ["p"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
         node("GlobalAveragePool", ["p"], ["y"])],
        [("x", [None, 3, 7, 6])], [("y", None)],
    )
    assert_matches_onnxruntime(model, {"x": rand(2, 3, 7, 6)})


def test_concat():
    model = make_model(
        [node("Relu", ["a"], ["r"]), node("Concat", ["r", "b", "c"], ["y"], axis=1)],
        [("a", [None, 2, 3, 3]), ("b", [None, 1, 3, 3])], [("y", None)], {"c": rand(1, 3, 3, 3)},
    )
    assert_matches_onnxruntime(model, {"a": rand(1, 2, 3, 3), "b": rand(1, 1, 3, 3)})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_opset13(mode):
    pads = np.array([0, 0, 1, 2, 0, 0, 2, 1], dtype=np.int64)
    model = make_model(
        [node("Pad", ["x", "pads", "v"], ["y"], mode=mode)],
        [("x", [None, 2, 4, 5])], [("y", None)],
        {"pads": pads, "v": np.array(0.5, dtype=np.float32)},
    )
    got = assert_matches_onnxruntime(model, {"x": rand(2, 2, 4, 5)})
    assert got["y"].shape == (2, 2, 7, 8)


def test_pad_opset18_axes_and_negative_pads():
    model = make_model(
        [node("Pad", ["x", "pads", "", "axes"], ["y"])],
        [("x", [None, 2, 4, 5])], [("y", None)],
        {"pads": np.array([1, -1, 2, 1], dtype=np.int64), "axes": np.array([2, -1], np.int64)},
        opset=18,
    )
    assert_matches_onnxruntime(model, {"x": rand(2, 2, 4, 5)})


def test_reduce_mean_attribute_axes():
    model = make_model(
        [node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=1)],
        [("x", [None, 3, 4, 5])], [("y", None)],
    )
    assert_matches_onnxruntime(model, {"x": rand(2, 3, 4, 5)})


def test_reduce_mean_input_axes_opset18():
    model = make_model(
        [node("ReduceMean", ["x", "axes"], ["y"], keepdims=0)],
        [("x", [None, 3, 4, 5])], [("y", None)], {"axes": np.array([-1, 1], np.int64)}, opset=18,
    )
    assert_matches_onnxruntime(model, {"x": rand(2, 3, 4, 5)})


def test_softmax_opset13_and_opset11():
    for opset, attrs in ((13, {}), (13, {"axis": 1}), (11, {})):
        model = make_model(
            [node("Gemm", ["x", "w"], ["g"]), node("Softmax", ["g"], ["y"], **attrs)],
            [("x", [None, 6])], [("y", None)], {"w": rand(6, 10, scale=3.0)}, opset=opset,
        )
        assert_matches_onnxruntime(model, {"x": rand(4, 6)})


def test_activations():
    model = make_model(
        [node("HardSwish", ["x"], ["h"]), node("HardSigmoid", ["x"], ["s"], alpha=0.3, beta=0.4),
         node("Sigmoid", ["x"], ["g"]), node("Relu", ["x"], ["r"]),
         node("Clip", ["x", "lo", "hi"], ["c"]), node("Clip", ["x", "", "hi"], ["c2"])],
        [("x", [None, 50])], [("h", None), ("s", None), ("g", None), ("r", None), ("c", None),
                              ("c2", None)],
        {"lo": np.array(-1.0, np.float32), "hi": np.array(2.5, np.float32)}, opset=14,
    )
    x = np.concatenate([np.linspace(-8, 8, 49, dtype=np.float32), [3.0]])[None]
    assert_matches_onnxruntime(model, {"x": np.repeat(x, 2, axis=0).astype(np.float32)})


def test_reshape_minus_one_and_zero_flatten_transpose():
    model = make_model(
        [node("Reshape", ["x", "shape"], ["r"]), node("Transpose", ["r"], ["t"], perm=[0, 2, 1]),
         node("Flatten", ["t"], ["y"], axis=2)],
        [("x", [None, 4, 3, 2])], [("y", None)], {"shape": np.array([0, -1, 3], np.int64)},
    )
    got = assert_matches_onnxruntime(model, {"x": rand(2, 4, 3, 2)})
    assert got["y"].shape == (6, 8)


def test_squeeze_unsqueeze_both_forms():
    for opset in (11, 13):
        if opset == 11:
            nodes = [node("Unsqueeze", ["x"], ["u"], axes=[1, -1]),
                     node("Squeeze", ["u"], ["y"], axes=[1])]
            inits = {}
        else:
            nodes = [node("Unsqueeze", ["x", "a"], ["u"]), node("Squeeze", ["u", "b"], ["y"])]
            inits = {"a": np.array([1, -1], np.int64), "b": np.array([1], np.int64)}
        model = make_model(nodes, [("x", [None, 3])], [("y", None)], inits, opset=opset)
        got = assert_matches_onnxruntime(model, {"x": rand(2, 3)})
        assert got["y"].shape == (2, 3, 1)


def test_dropout_identity_and_constant_nodes():
    weight = helper.make_tensor("wc", TensorProto.FLOAT, [3, 2], rand(3, 2).ravel().tolist())
    model = make_model(
        [node("Constant", [], ["w"], value=weight),
         node("Constant", [], ["k"], value_float=2.0),
         node("Dropout", ["x"], ["d"]), node("Identity", ["d"], ["i"]),
         node("MatMul", ["i", "w"], ["m"]), node("Mul", ["m", "k"], ["y"])],
        [("x", [None, 3])], [("y", None)], opset=13,
    )
    graph = load_onnx(model)
    assert [n.op_type for n in graph.nodes] == ["MatMul", "Mul"]
    assert graph.nodes[0].inputs[0] == "x"
    assert_matches_onnxruntime(model, {"x": rand(4, 3)})


def test_dynamic_flatten_shape_subgraph_is_folded():
    """``x.view(x.size(0), -1)`` as torch exports it: Shape -> Gather -> Unsqueeze -> Concat."""
    model = make_model(
        [node("Conv", ["x", "w"], ["c"]), node("Shape", ["c"], ["s"]),
         node("Gather", ["s", "zero"], ["n"], axis=0),
         node("Unsqueeze", ["n", "axes"], ["n1"]),
         node("Concat", ["n1", "minus1"], ["shape"], axis=0),
         node("Reshape", ["c", "shape"], ["y"])],
        [("x", ["N", 2, 5, 5])], [("y", ["N", "M"])],
        {"w": rand(3, 2, 3, 3), "zero": np.array(0, np.int64), "axes": np.array([0], np.int64),
         "minus1": np.array([-1], np.int64)},
    )
    graph = load_onnx(model)
    assert [n.op_type for n in graph.nodes] == ["Conv", "Reshape"]
    assert graph.nodes[1].attrs["shape"] == [0, -1]
    assert graph.shapes["y"] == (None, 27)
    for batch in (1, 3):
        assert_matches_onnxruntime(model, {"x": rand(batch, 2, 5, 5)})


def test_unsorted_nodes_are_sorted():
    model = make_model(
        [node("Relu", ["a"], ["y"]), node("Mul", ["x", "k"], ["a"])],
        [("x", [None, 4])], [("y", [None, 4])], {"k": rand(4)}, check=False,
    )
    graph = load_onnx(model)
    assert [n.op_type for n in graph.nodes] == ["Mul", "Relu"]


def test_shape_ops_at_run_time_with_dynamic_batch():
    """Shape of a batch-dependent tensor cannot be folded: Shape, Gather, Slice, Cast run."""
    int64 = TensorProto.INT64
    model = make_model(
        [node("Shape", ["x"], ["s"]), node("Gather", ["s", "i"], ["g"], axis=0),
         node("Slice", ["s", "starts", "ends"], ["sl"]),
         node("Cast", ["s"], ["c"], to=TensorProto.FLOAT), node("Relu", ["x"], ["y"])],
        [("x", [None, 3, 4])],
        [("g", [2], int64), ("sl", [2], int64), ("c", [3]), ("y", [None, 3, 4])],
        {"i": np.array([0, -1], np.int64), "starts": np.array([0], np.int64),
         "ends": np.array([2], np.int64)},
    )
    graph = load_onnx(model)
    assert [n.op_type for n in graph.nodes] == ["Shape", "Gather", "Slice", "Cast", "Relu"]
    got = assert_matches_onnxruntime(model, {"x": rand(5, 3, 4)})
    assert got["g"].tolist() == [5, 4] and got["c"].tolist() == [5.0, 3.0, 4.0]


@pytest.mark.parametrize("axis", [0, -1, -3, 4])
def test_flatten_axes(axis):
    model = make_model([node("Flatten", ["x"], ["y"], axis=axis)], [("x", [2, 3, 4, 5])],
                       [("y", None)])
    assert_matches_onnxruntime(model, {"x": rand(2, 3, 4, 5)})

"""The float executor on the shipped models against onnxruntime, keep=True, batching and input
validation."""

from pathlib import Path

import numpy as np
import onnx
import pytest

from gpuquant.errors import ShapeError, UnsupportedOpError
from gpuquant.frontends.onnx_float import load_onnx
from gpuquant.graph.executor import run_graph, run_graph_batched
from gpuquant.graph.ir import Graph, Node, TensorInfo
from onnx_cases import onnxruntime_outputs

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT / "gpuquant" / "data" / "mnist_cnn.onnx"
CASES = Path(__file__).resolve().parents[1] / "cases" / "onnx"
CNN_FLOAT = CASES / "cnn_float.onnx"
CNN_IO = CASES / "cnn_qoperator_aint8_wint8_perchannel_io.npz"


def mnist_inputs(count):
    images = np.load(ROOT / "gpuquant" / "data" / "mnist_test.npz")["images"][:count]
    return ((images.astype(np.float32) / 255.0 - 0.1307) / 0.3081)[:, None]


def assert_close(got, ref, rtol=1e-5):
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * float(np.abs(ref).max()))


def test_cnn_float_matches_recorded_onnxruntime_outputs():
    io = np.load(CNN_IO)
    graph = load_onnx(CNN_FLOAT)
    batch = io["x"].reshape(-1, 3, 16, 16)
    got = run_graph(graph, {"x": batch})["y"]
    expected = io["float_model_y"].reshape(got.shape)
    assert_close(got, expected)
    for i in range(2):
        one = run_graph(graph, {"x": io["x"][i]})["y"]
        assert_close(one, io["float_model_y"][i])


def test_mnist_matches_onnxruntime_and_is_accurate():
    x = mnist_inputs(1000)
    model = onnx.load(MNIST)
    expected = onnxruntime_outputs(model, {"input": x})["logits"]
    got = run_graph_batched(load_onnx(MNIST), {"input": x}, batch_size=500)["logits"]
    assert_close(got, expected)
    assert np.array_equal(got.argmax(1), expected.argmax(1))


def test_keep_returns_every_intermediate_equal_to_onnxruntime():
    model = onnx.load(MNIST)
    graph = load_onnx(model)
    names = [n.outputs[0] for n in graph.nodes]
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    known = {o.name for o in exposed.graph.output}
    for name in names:
        if name not in known:
            exposed.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    x = mnist_inputs(16)
    expected = onnxruntime_outputs(exposed, {"input": x})
    got = run_graph(graph, {"input": x}, keep=True)
    assert set(names) | {"input"} <= set(got)
    for name in names:
        assert_close(got[name], expected[name])
        assert graph.shapes[name][1:] == got[name].shape[1:]


def test_requested_outputs_and_batched_equals_whole():
    graph = load_onnx(MNIST)
    x = mnist_inputs(7)
    relu = graph.nodes[1].outputs[0]
    whole = run_graph(graph, {"input": x}, outputs=[relu, "logits"])
    assert set(whole) == {relu, "logits"}
    batched = run_graph_batched(graph, {"input": x}, batch_size=3, outputs=[relu, "logits"])
    for name in whole:
        assert_close(batched[name], whole[name])


@pytest.mark.parametrize(
    "feeds,words",
    [
        ({"image": np.zeros((1, 1, 28, 28), np.float32)}, ["'image'", "input"]),
        ({"input": np.zeros((1, 28, 28), np.float32)},
         ["'input'", "(None, 1, 28, 28)", "(1, 28, 28)"]),
        ({"input": np.zeros((1, 1, 28, 27), np.float32)}, ["'input'", "(1, 1, 28, 27)"]),
        ({"input": np.zeros((1, 1, 28, 28), np.float64)}, ["'input'", "float32", "float64"]),
        ({}, ["missing", "'input'"]),
    ],
)
def test_bad_feeds_raise_shape_error(feeds, words):
    graph = load_onnx(MNIST)
    with pytest.raises(ShapeError) as info:
        run_graph(graph, feeds)
    for word in words:
        assert word in str(info.value)


def test_node_failure_names_the_node():
    graph = Graph(
        "g",
        [Node("Reshape", "r", ["x"], ["y"], {"shape": [5, -1]})],
        [TensorInfo("x", (None, 3))],
        [TensorInfo("y", (5, None))],
    )
    with pytest.raises(ShapeError, match="'r'.*Reshape"):
        run_graph(graph, {"x": np.zeros((2, 3), np.float32)})


def test_unknown_op_raises_unsupported():
    graph = Graph("g", [Node("Tanh", "t0", ["x"], ["y"])], [TensorInfo("x", (None, 3))],
                  [TensorInfo("y", (None, 3))])
    with pytest.raises(UnsupportedOpError, match="'t0'.*Tanh"):
        run_graph(graph, {"x": np.zeros((2, 3), np.float32)})

"""The shared QOperator CNN (onnxruntime's quantize_static output): every 8-bit intermediate and
the output equal onnxruntime's, for all 8 inputs of the case file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gpuquant.backends.numpy import NumpyBackend
from gpuquant.errors import ModelFormatError, UnsupportedOpError
from gpuquant.frontends.onnx_qoperator import load_qoperator_onnx
from gpuquant.runtime.executor import execute

CASES = Path(__file__).resolve().parents[1] / "cases" / "onnx"
MODEL = CASES / "cnn_qoperator_aint8_wint8_perchannel.onnx"
IO = CASES / "cnn_qoperator_aint8_wint8_perchannel_io.npz"


@pytest.fixture(scope="module")
def model():
    return load_qoperator_onnx(MODEL)


@pytest.fixture(scope="module")
def io():
    return np.load(IO)


def as_onnx_layout(model, name: str, value) -> np.ndarray:
    value = np.asarray(value)
    return value.transpose(0, 3, 1, 2) if model.tensors[name].layout == "NHWC" else value


@pytest.mark.parametrize("i", range(8))
def test_every_intermediate_and_output_equal_onnxruntime(model, io, i):
    env = execute(model, {"x": io["x"][i]}, NumpyBackend(), keep=True)
    prefix = "optall_intermediates/"
    names = [k[len(prefix):] for k in io.files if k.startswith(prefix)]
    assert len(names) == 7
    for name in names:
        got = as_onnx_layout(model, name, env[name])
        np.testing.assert_array_equal(got, io[prefix + name][i], err_msg=name)
        assert got.dtype == io[prefix + name].dtype
    np.testing.assert_array_equal(np.asarray(env["y"]), io["optall/y"][i])


def test_interface_and_metadata(model):
    # declared [1, 3, 16, 16]; every op keeps the batch leading, so any batch runs
    assert [(s.name, s.shape, s.dtype) for s in model.inputs] == [
        ("x", (None, 3, 16, 16), "float32")]
    assert [(s.name, s.shape, s.dtype) for s in model.outputs] == [("y", (None, 10), "float32")]
    assert "fixed_batch" not in model.metadata
    assert model.metadata["ops"] == {
        "QuantizeLinear": 1, "QLinearConv": 2, "QLinearAdd": 1, "QLinearAveragePool": 1,
        "Flatten": 1, "QGemm": 1, "DequantizeLinear": 1,
    }


def test_is_qoperator_onnx():
    import onnx

    from gpuquant.frontends.onnx_qoperator import is_qoperator_onnx

    assert is_qoperator_onnx(onnx.load(str(MODEL)))
    assert not is_qoperator_onnx(onnx.load(str(CASES / "cnn_float.onnx")))


def test_unsupported_op_names_node(tmp_path):
    import onnx
    from onnx import helper

    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat0"),
             helper.make_node("Neg", ["f"], ["y"], name="neg1")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.INT8, [2, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.INT8, [2, 3])])
    path = tmp_path / "neg.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(UnsupportedOpError, match=r"node 1 'neg1' \(ai.onnx:Neg\)"):
        load_qoperator_onnx(path)


@pytest.mark.parametrize("content", [b"", b"not a protobuf at all \xff\xfe", None])
def test_bad_file_is_a_format_error(tmp_path, content):
    path = tmp_path / "bad.onnx"
    if content is None:
        path.write_bytes(MODEL.read_bytes()[:500] if MODEL.exists() else b"\x08")
    else:
        path.write_bytes(content)
    with pytest.raises(ModelFormatError):
        load_qoperator_onnx(path)
    with pytest.raises(ModelFormatError):
        load_qoperator_onnx(tmp_path / "missing.onnx")


def test_batch_of_five_rows_equal_batch_one_and_onnxruntime(model, io):
    """The model declares batch 1; five stacked inputs give, row by row, the batch-1 run of
    that row and onnxruntime's integers (output and every 8-bit intermediate)."""
    backend = NumpyBackend()
    x = np.concatenate([io["x"][i] for i in range(5)])
    env = execute(model, {"x": x}, backend, keep=True)
    prefix = "optall_intermediates/"
    names = [k[len(prefix):] for k in io.files if k.startswith(prefix)]
    for i in range(5):
        one = execute(model, {"x": io["x"][i]}, backend)["y"]
        np.testing.assert_array_equal(np.asarray(env["y"])[i:i + 1], np.asarray(one))
        np.testing.assert_array_equal(np.asarray(env["y"])[i:i + 1], io["optall/y"][i])
        for name in names:
            got = as_onnx_layout(model, name, env[name])[i:i + 1]
            np.testing.assert_array_equal(got, io[prefix + name][i], err_msg=name)
    assert np.asarray(env["y"]).shape == (5, 10)


def test_dynamic_batch_file_runs_like_onnxruntime_at_batch_five(io, tmp_path):
    """The same file with a symbolic leading dimension "N" (as exporters write it): imported
    at batch 1, run at batch 5 next to onnxruntime on the same file."""
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(MODEL))
    for vi in list(proto.graph.input) + list(proto.graph.output):
        vi.type.tensor_type.shape.dim[0].dim_param = "N"
    path = tmp_path / "dynamic.onnx"
    onnx.save(proto, str(path))
    x = np.concatenate([io["x"][i] for i in range(3, 8)])
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        ["y"], {"x": x})[0]
    dynamic = load_qoperator_onnx(path)
    assert dynamic.inputs[0].shape == (None, 3, 16, 16)
    got = execute(dynamic, {"x": x}, NumpyBackend())["y"]
    np.testing.assert_array_equal(np.asarray(got), expected)
    np.testing.assert_array_equal(expected, io["optall/y"][3:8].reshape(5, 10))

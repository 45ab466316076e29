"""The ONNX float frontend: normal forms, shapes, and bad models."""

import re
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from gpuquant.errors import ModelFormatError, UnsupportedOpError
from gpuquant.frontends.onnx_float import load_float_onnx, load_onnx
from gpuquant.graph.executor import run_graph

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "graph"))
from onnx_cases import make_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT / "gpuquant" / "data" / "mnist_cnn.onnx"


def test_path_bytes_and_proto_give_the_same_graph():
    from_path = load_onnx(MNIST)
    from_str = load_onnx(str(MNIST))
    from_bytes = load_onnx(MNIST.read_bytes())
    from_proto = load_onnx(onnx.load(MNIST))
    for other in (from_str, from_bytes, from_proto):
        assert [n.name for n in other.nodes] == [n.name for n in from_path.nodes]
        assert other.initializers.keys() == from_path.initializers.keys()
    assert from_path.opset == 13
    assert [t.name for t in from_path.inputs] == ["input"]
    assert from_path.inputs[0].shape == (None, 1, 28, 28)
    assert from_path.shapes["logits"] == (None, 10)
    assert from_path.shapes["/conv_layers/conv_layers.8/MaxPool_output_0"] == (None, 128, 3, 3)


def test_normal_forms_of_mnist_nodes():
    graph = load_onnx(MNIST)
    conv = graph.nodes[0]
    assert conv.op_type == "Conv"
    assert conv.attrs == {"dilations": [1, 1], "group": 1, "kernel_shape": [3, 3],
                          "pads": [1, 1, 1, 1], "strides": [1, 1]}
    gemm = graph.nodes[-1]
    assert gemm.attrs == {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1}


def test_clip_bounds_and_auto_pad_become_attributes():
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2]),
         helper.make_node("Clip", ["c", "lo", "hi"], ["y"])],
        [("x", [None, 2, 7, 8])], [("y", None)],
        {"w": np.ones((3, 2, 4, 4), np.float32), "lo": np.array(0.0, np.float32),
         "hi": np.array(6.0, np.float32)},
    )
    graph = load_onnx(model)
    conv, clip = graph.nodes
    # SAME_UPPER: out = ceil(7/2) = 4, total pad = (4-1)*2 + 4 - 7 = 3 -> 1 before, 2 after;
    # width: out = 4, total = (4-1)*2 + 4 - 8 = 2 -> 1, 1.
    assert conv.attrs["pads"] == [1, 1, 2, 1]
    assert "auto_pad" not in conv.attrs
    assert clip.inputs == ["c"] and clip.attrs == {"min": 0.0, "max": 6.0}
    assert graph.shapes["y"] == (None, 3, 4, 4)
    assert "lo" not in graph.initializers


def test_corrupt_bytes_raise_model_format_error():
    with pytest.raises(ModelFormatError, match="model bytes"):
        load_onnx(b"\x08\x07garbage that is not protobuf \xff\xff\xff")


def test_truncated_file_names_the_path(tmp_path):
    data = MNIST.read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError) as info:
        load_onnx(path)
    assert str(path) in str(info.value)


def test_unsupported_op_is_named_unless_allowed():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["r"]),
         helper.make_node("Tanh", ["r"], ["y"], name="act")],
        [("x", [None, 4])], [("y", None)],
    )
    with pytest.raises(UnsupportedOpError, match="'act'.*Tanh"):
        load_onnx(model)
    graph = load_onnx(model, allow_unsupported=True)
    assert [n.op_type for n in graph.nodes] == ["Relu", "Tanh"]
    with pytest.raises(UnsupportedOpError, match="'act'.*Tanh"):
        run_graph(graph, {"x": np.zeros((1, 4), np.float32)})


def _qdq_model():
    return make_model(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="x_q"),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], name="x_dq"),
         helper.make_node("Relu", ["d"], ["y"])],
        [("x", [None, 4])], [("y", None)], initializers={"s": np.float32(0.1), "z": np.int8(0)},
    )


@pytest.mark.parametrize("model, fragment", [
    (_qdq_model(), "(2 quantized nodes, e.g. 'x_q', a QuantizeLinear)"),
    (ROOT / "tests" / "cases" / "onnx" / "cnn_qoperator_aint8_wint8_perchannel.onnx",
     "(7 quantized nodes, e.g. 'x_QuantizeLinear', a QuantizeLinear)"),
], ids=["qdq", "qoperator"])
def test_an_already_quantized_model_is_refused_for_quantization(model, fragment):
    with pytest.raises(ModelFormatError, match="already quantized") as exc:
        load_float_onnx(model)
    assert fragment in str(exc.value)
    assert "gpuquant.load(...) or `gpuquant run`" in str(exc.value)


def test_quantize_model_refuses_an_already_quantized_model():
    from gpuquant.convert import quantize_model

    path = ROOT / "tests" / "cases" / "onnx" / "cnn_qoperator_aint8_wint8_perchannel.onnx"
    with pytest.raises(ModelFormatError, match="already quantized"):
        quantize_model(path, np.zeros((1, 1, 28, 28), np.float32))


def test_load_float_onnx_of_a_float_model_is_load_onnx():
    graph = load_float_onnx(MNIST)
    assert [n.name for n in graph.nodes] == [n.name for n in load_onnx(MNIST).nodes]


def test_old_opset_is_refused():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [None, 4])],
                       [("y", None)], opset=9)
    with pytest.raises(ModelFormatError, match="opset 9"):
        load_onnx(model)


def test_input_nobody_produces_is_refused():
    model = make_model([helper.make_node("Add", ["x", "ghost"], ["y"], name="plus")],
                       [("x", [None, 4])], [("y", [None, 4])], check=False)
    with pytest.raises(ModelFormatError, match="'plus'.*'ghost'"):
        load_onnx(model)


def test_tensor_produced_twice_is_refused():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"], name="a"),
         helper.make_node("Relu", ["x"], ["y"], name="b")],
        [("x", [None, 4])], [("y", [None, 4])], check=False,
    )
    with pytest.raises(ModelFormatError, match="'y'.*produced twice"):
        load_onnx(model)


def test_duplicate_node_names_are_refused():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["r"], name="same"),
         helper.make_node("Relu", ["r"], ["y"], name="same")],
        [("x", [None, 4])], [("y", [None, 4])], check=False,
    )
    with pytest.raises(ModelFormatError, match="duplicate node name 'same'"):
        load_onnx(model)


def test_runtime_clip_bound_is_unsupported():
    model = make_model(
        [helper.make_node("Clip", ["x", "lo"], ["y"], name="clamp")],
        [("x", [None, 4]), ("lo", [])], [("y", None)],
    )
    with pytest.raises(UnsupportedOpError, match="'clamp'.*min bound"):
        load_onnx(model)


def test_external_tensor_data_next_to_the_file(tmp_path):
    model = onnx.load(MNIST)
    path = tmp_path / "external.onnx"
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    graph = load_onnx(path)
    reference = load_onnx(MNIST)
    for name, value in reference.initializers.items():
        np.testing.assert_array_equal(graph.initializers[name], value)
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(ModelFormatError, match="external"):
        load_onnx(path)


def test_missing_file_is_a_model_format_error(tmp_path):
    with pytest.raises(ModelFormatError, match="nothing.onnx"):
        load_onnx(tmp_path / "nothing.onnx")


def test_opset11_softmax_over_flattened_axes_is_unsupported():
    model = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=1, name="sm")],
                       [("x", [None, 3, 4])], [("y", None)], opset=11)
    with pytest.raises(UnsupportedOpError, match="'sm'.*last axis"):
        load_onnx(model)


def test_empty_file_is_named_as_empty(tmp_path):
    path = tmp_path / "e.onnx"
    path.write_bytes(b"")
    for load in (load_onnx, load_float_onnx):
        with pytest.raises(ModelFormatError, match=rf"file '{re.escape(str(path))}' is empty"):
            load(path)


def test_integer_models_are_named_by_content_with_the_command_that_runs_them(tmp_path):
    import gpuquant

    cases = ROOT / "tests" / "cases"
    gq = tmp_path / "model.onnx"  # the extension does not decide, as for gpuquant.load
    gpuquant.save(gpuquant.load(cases / "onnx" / "cnn_qoperator_aint8_wint8_perchannel.onnx"), gq)
    tflite = tmp_path / "model2.onnx"
    tflite.write_bytes((cases / "tflite" / "model1_cnn_int8.tflite").read_bytes())
    for path, what in ((gq, "an integer gpuquant model"), (tflite, "a TFLite model")):
        with pytest.raises(ModelFormatError) as info:
            load_float_onnx(path)
        text = str(info.value)
        assert text.startswith(f"{path}: this is {what}, not an ONNX model"), text
        assert "need a float ONNX model" in text and "`gpuquant run`" in text
        assert "Wire format" not in text


def test_a_zip_that_is_no_gpuquant_model_is_not_called_one(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, input=np.zeros((2, 3), np.float32))
    with pytest.raises(ModelFormatError, match="zip archive without gpuquant's model.json") as info:
        load_float_onnx(path)
    assert "integer gpuquant model" not in str(info.value)

"""QDQ import: a model quantized by onnxruntime's quantize_static (QDQ format) runs in gpuquant
with the scales and zero points it carries; its 8-bit tensors agree with onnxruntime's."""

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from gpuquant.backends import get_backend
from gpuquant.errors import ModelFormatError, UnsupportedOpError
from gpuquant.frontends.onnx_qdq import import_qdq, load_qdq, strip_qdq
from gpuquant.runtime.executor import execute

ort = pytest.importorskip("onnxruntime", reason="onnxruntime quantizes the case model")
quantization = pytest.importorskip("onnxruntime.quantization",
                                   reason="onnxruntime.quantization makes the QDQ model")

CASES = Path(__file__).resolve().parents[1] / "cases" / "onnx"


class _Reader(quantization.CalibrationDataReader):
    def __init__(self, xs: np.ndarray) -> None:
        self.items = iter([{"x": x} for x in xs])

    def get_next(self):
        return next(self.items, None)


@pytest.fixture(scope="module", params=["QInt8", "QUInt8"])
def ort_qdq(tmp_path_factory, request):
    """cnn_float.onnx quantized by onnxruntime: QDQ, int8 or uint8 activations, per-channel
    int8 weights, calibrated (min/max) on the case's 8 inputs."""
    xs = np.load(CASES / "cnn_qoperator_aint8_wint8_perchannel_io.npz")["x"]
    folder = tmp_path_factory.mktemp("qdq")
    path = folder / f"cnn_qdq_{request.param}.onnx"
    # quantize_static writes "<model>-inferred.onnx" beside its input and deletes it: a private
    # copy keeps two workers from racing on that file in tests/cases
    source = folder / "cnn_float.onnx"
    shutil.copyfile(CASES / "cnn_float.onnx", source)
    quantization.quantize_static(
        str(source), str(path), _Reader(xs),
        quant_format=quantization.QuantFormat.QDQ,
        activation_type=getattr(quantization.QuantType, request.param),
        weight_type=quantization.QuantType.QInt8,
        per_channel=True,
    )
    return path, xs


def _with_q_outputs(path: Path) -> tuple[bytes, dict[str, str]]:
    """The model with every activation QuantizeLinear output added as a graph output, and
    map Q output -> the float tensor it quantizes."""
    model = onnx.load(str(path))
    inits = {t.name for t in model.graph.initializer}
    q_nodes = [n for n in model.graph.node
               if n.op_type == "QuantizeLinear" and n.input[0] not in inits]
    zero_points = {t.name: t.data_type for t in model.graph.initializer}
    for n in q_nodes:
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(n.output[0], zero_points[n.input[2]], None))
    graph_outputs = {o.name for o in model.graph.output}
    dq_out = {n.input[0]: n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    # a pair that ends in a graph output gives its tensor the output's name (onnx_qdq.py)
    q_of = {n.output[0]: dq_out[n.output[0]] if dq_out.get(n.output[0]) in graph_outputs
            else n.input[0] for n in q_nodes}
    return model.SerializeToString(), q_of


def test_given_parameters_are_used_exactly(ort_qdq):
    path, _ = ort_qdq
    model = onnx.load(str(path))
    _, qparams, _ = strip_qdq(model)
    graph, given, _ = load_qdq(path)
    integer = import_qdq(path)
    checked = set()
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear":
            continue
        scale = onnx.numpy_helper.to_array(
            next(t for t in model.graph.initializer if t.name == node.input[1]))
        tensor = node.input[0]
        if tensor in graph.initializers or tensor not in given:
            continue
        specs = [s for s in integer.tensors.values()
                 if s.float_name == tensor and s.qparams is not None]
        for spec in specs:  # none for a Flatten output, which the Gemm reads as its input
            assert spec.qparams.scale[0] == np.float32(scale)
            assert spec.qparams.zero_point[0] == given[tensor].zero_point[0]
            checked.add(tensor)
    assert len(checked) >= 5
    assert integer.metadata["float_nodes"] == []
    assert set(qparams) >= {n for n in given}


@pytest.mark.parametrize("rounding", ["float32_half_even", "gemmlowp"])
def test_onnxruntime_qdq_model_agrees_within_one_step(ort_qdq, rounding):
    path, xs = ort_qdq
    data, q_of = _with_q_outputs(path)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    reference = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in reference.get_outputs()]
    optimized = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    integer = import_qdq(path, rounding=rounding)
    backend = get_backend("numpy")
    integer_outputs = {o.name for o in integer.outputs}
    checked = set()
    for x in xs:
        ref = dict(zip(names, reference.run(None, {"x": x})))
        env = execute(integer, {"x": x}, backend, keep=True)
        for q_name, tensor in q_of.items():
            spec = next((s for n, s in integer.tensors.items() if s.float_name == tensor
                         and s.qparams is not None and n in env), None)
            if spec is None:
                continue  # fused away (a Conv output read only by its Relu/Clip)
            ours = np.asarray(backend.to_numpy(env[spec.name])).astype(np.int32)
            if spec.layout == "NHWC":
                ours = ours.transpose(0, 3, 1, 2)
            theirs = ref[q_name].astype(np.int32)
            if ref[q_name].dtype == np.uint8:  # the same real values as int8 codes
                theirs -= 128
            # one step; the output Gemm reads the average pool's output, where ties round
            # half to even in onnxruntime (float) and half away from zero in gpuquant's TFLite
            # kernel, so a one-step difference there can reach two steps in the logits
            bound = 2 if tensor in integer_outputs else 1
            assert np.abs(ours.reshape(theirs.shape) - theirs).max() <= bound, tensor
            checked.add(tensor)
        ours_y = np.asarray(backend.to_numpy(env[integer.outputs[0].name]))
        ort_y = optimized.run(None, {"x": x})[0]
        assert ours_y.reshape(ort_y.shape).argmax(-1).tolist() == ort_y.argmax(-1).tolist()
    assert len(checked) >= 6


def test_dequantize_of_a_model_input_is_refused():
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.INT8, [1, 4])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])
    scale = onnx.numpy_helper.from_array(np.array(0.5, np.float32), "s")
    node = onnx.helper.make_node("DequantizeLinear", ["x", "s"], ["y"], name="dq")
    model = onnx.helper.make_model(onnx.helper.make_graph([node], "g", [x], [y], [scale]),
                                   opset_imports=[onnx.helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedOpError, match="'dq'"):
        strip_qdq(model)


def _weight_dq(scale: np.ndarray, axis: int) -> onnx.ModelProto:
    """y = DequantizeLinear(int8 weight (2, 3), scale, axis), read by MatMul."""
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])
    inits = [onnx.numpy_helper.from_array(np.ones((2, 3), np.int8), "wq"),
             onnx.numpy_helper.from_array(scale.astype(np.float32), "s"),
             onnx.numpy_helper.from_array(np.zeros(scale.shape, np.int8), "z")]
    nodes = [onnx.helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"], name="wdq",
                                   axis=axis),
             onnx.helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    return onnx.helper.make_model(onnx.helper.make_graph(nodes, "g", [x], [y], inits),
                                  opset_imports=[onnx.helper.make_opsetid("", 13)])


@pytest.mark.parametrize("scale, axis, match", [
    (np.array([0.1, 0.2]), 1, "2 scales along axis 1 of a tensor of shape \\(2, 3\\)"),
    (np.array([0.1, 0.2]), 5, "axis 5"),
    (np.array([0.1, 0.0, 0.2]), 1, "scale must be finite and > 0"),
])
def test_bad_dequantize_parameters_name_the_node(scale, axis, match):
    # the wrong count used to reach dequantize's broadcast: a raw NumPy ValueError
    with pytest.raises(ModelFormatError, match=f"node 'wdq': .*{match}"):
        strip_qdq(_weight_dq(scale, axis))


def _dynamic_batch(data: bytes) -> bytes:
    """The model with leading input/output dimensions "N", as exporters write them."""
    model = onnx.load_model_from_string(data)
    for vi in list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims):
            dims[0].dim_param = "N"
    return model.SerializeToString()


def test_batch_of_five_rows_equal_batch_one_and_agree_with_onnxruntime(ort_qdq):
    """The case model declares batch 1; the converter keeps the batch dynamic, so five
    stacked inputs give, row by row, the batch-1 run of that row, and onnxruntime's output
    codes at batch 5 within the two steps the batch-1 test allows for the logits."""
    path, xs = ort_qdq
    integer = import_qdq(path)
    backend = get_backend("numpy")
    name = integer.outputs[0].name
    batch = np.concatenate(xs[:5])
    env = execute(integer, {"x": batch}, backend, keep=True)
    got = np.asarray(backend.to_numpy(env[name]))
    assert got.shape == (5, 10) and "fixed_batch" not in integer.metadata
    for i in range(5):
        one = np.asarray(backend.to_numpy(execute(integer, {"x": xs[i]}, backend)[name]))
        np.testing.assert_array_equal(got[i:i + 1], one)
    data, q_of = _with_q_outputs(path)
    q_name = next(q for q, tensor in q_of.items() if tensor == name)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    reference = ort.InferenceSession(_dynamic_batch(data), opts,
                                     providers=["CPUExecutionProvider"])
    theirs = reference.run([q_name], {"x": batch})[0]
    assert theirs.shape == (5, 10)
    theirs = theirs.astype(np.int32) - (128 if theirs.dtype == np.uint8 else 0)
    spec = next(s for n, s in integer.tensors.items()
                if s.float_name == name and s.qparams is not None and n in env)
    ours = np.asarray(backend.to_numpy(env[spec.name])).astype(np.int32)
    assert np.abs(ours - theirs).max() <= 2

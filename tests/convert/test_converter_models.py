"""End-to-end conversion of the shipped MNIST CNN and the shared cnn_float case."""

from pathlib import Path

import numpy as np

from convert_helpers import ranges_of, run_both
from gpuquant.backends.numpy import NumpyBackend
from gpuquant.convert import convert, quantize_model
from gpuquant.frontends.onnx_float import load_onnx
from gpuquant.graph.executor import run_graph
from gpuquant.runtime.executor import execute

DATA = Path(__file__).resolve().parents[2] / "gpuquant" / "data"
CASES = Path(__file__).resolve().parents[1] / "cases" / "onnx"


def _mnist(split, n):
    images = np.load(DATA / f"mnist_{split}.npz")
    x = (images["images"][:n].astype(np.float32) / 255.0 - 0.1307) / 0.3081
    return x[:, None], images["labels"][:n]


def _merged_ranges(g, batches):
    ranges = {}
    for x in batches:
        for k, (lo, hi) in ranges_of(g, {"input": x}).items():
            a, b = ranges.get(k, (lo, hi))
            ranges[k] = (min(a, lo), max(b, hi))
    return ranges


def test_mnist_int8_accuracy_within_0_3_points_of_float():
    g = load_onnx(str(DATA / "mnist_cnn.onnx"))
    calib, _ = _mnist("calib", 1000)
    model = convert(g, _merged_ranges(g, np.split(calib, 4)))
    assert model.metadata["float_nodes"] == []
    x, labels = _mnist("test", 1000)
    f = run_graph(g, {"input": x})["logits"]
    q = np.asarray(execute(model, {"input": x}, NumpyBackend())["logits"])
    float_acc = 100 * (f.argmax(1) == labels).mean()
    int8_acc = 100 * (q.argmax(1) == labels).mean()
    assert int8_acc >= float_acc - 0.3
    assert (f.argmax(1) == q.argmax(1)).mean() >= 0.99


def test_mnist_int8_with_bias_correction_within_0_3_points_of_float():
    g = load_onnx(str(DATA / "mnist_cnn.onnx"))
    calib, _ = _mnist("calib", 1000)
    model = quantize_model(g, calib, batch_size=250, bias_correction=True)
    assert model.metadata["float_nodes"] == []
    x, labels = _mnist("test", 1000)
    f = run_graph(g, {"input": x})["logits"]
    q = np.asarray(execute(model, {"input": x}, NumpyBackend())["logits"])
    float_acc = 100 * (f.argmax(1) == labels).mean()
    int8_acc = 100 * (q.argmax(1) == labels).mean()
    assert int8_acc >= float_acc - 0.3, (float_acc, int8_acc)


def test_mnist_layout_is_nhwc_with_one_transpose_and_permuted_gemm():
    g = load_onnx(str(DATA / "mnist_cnn.onnx"))
    calib, _ = _mnist("calib", 200)
    model = convert(g, ranges_of(g, {"input": calib}))
    ops = [n.op for n in model.nodes]
    assert ops.count("transpose") == 1 and ops.index("transpose") == 1
    assert ops == ["quantize", "transpose", "conv2d", "max_pool2d", "conv2d", "max_pool2d",
                   "conv2d", "max_pool2d", "reshape", "gemm", "gemm", "dequantize"]
    for spec in model.tensors.values():
        if spec.dtype == "int8":
            assert spec.qparams is not None


def test_cnn_float_case_runs_end_to_end_close_to_float():
    g = load_onnx(str(CASES / "cnn_float.onnx"))
    x = np.load(CASES / "cnn_qoperator_aint8_wint8_perchannel_io.npz")["x"].reshape(-1, 3, 16, 16)
    model = convert(g, ranges_of(g, {"x": x}))
    assert model.metadata["float_nodes"] == []
    assert {"conv2d", "add", "avg_pool2d", "gemm"} <= set(model.metadata["op_counts"])
    f, q = run_both(g, model, {"x": x})
    err = np.abs(f["y"] - q["y"]).max()
    assert err < 0.03 * np.abs(f["y"]).max()
    assert (f["y"].argmax(1) == q["y"].argmax(1)).all()

"""calibrate(): ranges of every activation over batches, batching of arrays, progress, errors."""

import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from gpuquant.calibrate import METHODS, calibrate, calibrate_with_means
from gpuquant.errors import CalibrationError
from gpuquant.frontends.onnx_float import load_onnx
from gpuquant.graph.ir import Graph, Node, TensorInfo

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT / "gpuquant" / "data" / "mnist_cnn.onnx"


def tiny_graph():
    """y = 2 * relu(x)."""
    return Graph(
        "tiny",
        [Node("Relu", "relu", ["x"], ["r"]), Node("Mul", "double", ["r", "two"], ["y"])],
        [TensorInfo("x", (None, 2))],
        [TensorInfo("y", (None, 2))],
        {"two": np.array(2.0, np.float32)},
    )


def batches():
    return [{"x": np.array([[-1.0, 2.0]], np.float32)}, {"x": np.array([[3.0, -4.0]], np.float32)}]


def test_minmax_ranges_of_every_activation():
    ranges = calibrate(tiny_graph(), batches(), progress=False)
    assert ranges == {"x": (-4.0, 3.0), "r": (0.0, 3.0), "y": (0.0, 6.0)}


def test_channel_means_of_layer_inputs_over_uneven_batches():
    g = Graph(
        "conv",
        [Node("Relu", "relu", ["x"], ["r"]),
         Node("Conv", "conv", ["r", "w"], ["y"], {"kernel_shape": [1, 1]})],
        [TensorInfo("x", (None, 3, 4, 5))],
        [TensorInfo("y", (None, 2, 4, 5))],
        {"w": np.ones((2, 3, 1, 1), np.float32)},
    )
    x = np.random.default_rng(3).normal(0, 1, (7, 3, 4, 5)).astype(np.float32)
    ranges, means = calibrate_with_means(g, x, progress=False, batch_size=3)
    assert ranges == calibrate(g, x, progress=False, batch_size=3)
    assert set(means) == {"r"}
    expect = np.maximum(x, 0).astype(np.float64).mean(axis=(0, 2, 3))
    np.testing.assert_allclose(means["r"], expect, rtol=1e-12)
    assert calibrate_with_means(g, x, progress=False, means=False)[1] == {}


def test_selected_tensors_and_observer_options():
    ranges = calibrate(tiny_graph(), batches(), method="moving_average", tensors=["y"],
                       progress=False, averaging_constant=0.5)
    # y per batch: [0, 4] then [6, 0] -> min 0, max 4 + 0.5 * (6 - 4) = 5
    assert ranges == {"y": (0.0, 5.0)}


def test_array_is_cut_into_batches():
    x = np.array([[-1.0, 2.0], [3.0, -4.0], [0.5, 0.5]], np.float32)
    ranges = calibrate(tiny_graph(), x, method="moving_average", batch_size=2, progress=False,
                       averaging_constant=0.5)
    # batches x[:2] (min -4, max 3) then x[2:] (0.5): min -4 + 0.5 * 4.5, max 3 - 0.5 * 2.5
    assert ranges["x"] == (-1.75, 1.75)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_ordered_finite_ranges(method):
    x = np.random.default_rng(0).standard_normal((64, 2)).astype(np.float32)
    ranges = calibrate(tiny_graph(), x, method=method, batch_size=16, progress=False)
    for lo, hi in ranges.values():
        assert np.isfinite(lo) and np.isfinite(hi) and lo <= hi


def test_mnist_ranges_match_onnxruntime_extremes():
    images = np.load(ROOT / "gpuquant" / "data" / "mnist_calib.npz")["images"][:200]
    x = ((images.astype(np.float32) / 255.0 - 0.1307) / 0.3081)[:, None]
    ranges = calibrate(load_onnx(MNIST), x, batch_size=64, progress=False)
    session = ort.InferenceSession(onnx.load(MNIST).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": x})[0]
    assert ranges["input"] == (float(x.min()), float(x.max()))
    np.testing.assert_allclose(ranges["logits"], (logits.min(), logits.max()), rtol=1e-5)
    assert len(ranges) == 14  # the input and the 13 node outputs


def test_wrong_input_name_names_the_input():
    with pytest.raises(CalibrationError, match="'image'"):
        calibrate(tiny_graph(), [{"image": np.zeros((1, 2), np.float32)}], progress=False)


def test_wrong_input_shape_names_the_input():
    with pytest.raises(CalibrationError, match="'x'.*\\(1, 3\\)"):
        calibrate(tiny_graph(), [{"x": np.zeros((1, 3), np.float32)}], progress=False)


def test_no_batches_and_unknown_tensor_raise():
    with pytest.raises(CalibrationError, match="no calibration batches"):
        calibrate(tiny_graph(), [], progress=False)
    with pytest.raises(CalibrationError, match="'nope'"):
        calibrate(tiny_graph(), batches(), tensors=["nope"], progress=False)


@pytest.mark.parametrize("batch_size", [0, -4])
def test_batch_size_below_one_is_refused(batch_size):
    x = np.ones((4, 2), np.float32)
    with pytest.raises(CalibrationError, match=f"batch_size must be >= 1, got {batch_size}"):
        calibrate(tiny_graph(), x, batch_size=batch_size, progress=False)


def test_non_finite_calibration_input_names_the_tensor():
    bad = [{"x": np.array([[1.0, np.nan]], np.float32)}]
    with pytest.raises(CalibrationError, match="'x'.*1 of 2"):
        calibrate(tiny_graph(), bad, progress=False)


def test_progress_bar_on_stderr(capsys):
    calibrate(tiny_graph(), batches(), progress=True)
    assert "calibrating" in capsys.readouterr().err


def test_progress_bar_without_tqdm(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    calibrate(tiny_graph(), batches(), progress=True)
    assert "2/2" in capsys.readouterr().err


def test_one_dict_of_whole_arrays_is_cut_into_batches_like_an_array():
    x = np.array([[-1.0, 2.0], [3.0, -4.0], [0.5, 0.5]], np.float32)
    ranges = calibrate(tiny_graph(), {"x": x}, method="moving_average", batch_size=2,
                       progress=False, averaging_constant=0.5)
    # as test_array_is_cut_into_batches: x[:2] then x[2:]
    assert ranges["x"] == (-1.75, 1.75)


def two_input_graph():
    """z = x + y."""
    return Graph("add", [Node("Add", "add", ["x", "y"], ["z"])],
                 [TensorInfo("x", (None, 1)), TensorInfo("y", (None, 1))],
                 [TensorInfo("z", (None, 1))], {})


def test_one_dict_feeds_every_input_the_same_samples_of_each_batch():
    x = np.array([[1.0], [2.0], [3.0]], np.float32)
    y = np.array([[-1.0], [-2.0], [10.0]], np.float32)
    ranges = calibrate(two_input_graph(), {"x": x, "y": y}, method="moving_average",
                       batch_size=2, progress=False, averaging_constant=0.5)
    # z per batch: [0, 0] then [13]: min 0 + 0.5 * 13, max 0 + 0.5 * 13
    assert ranges["z"] == (6.5, 6.5)
    assert ranges["y"] == (-2.0 + 0.5 * 12.0, -1.0 + 0.5 * 11.0)


def test_one_dict_of_unequal_or_non_array_values_is_refused():
    x = np.zeros((3, 1), np.float32)
    with pytest.raises(CalibrationError, match=r"different numbers of samples.*'x': 3, 'y': 2"):
        calibrate(two_input_graph(), {"x": x, "y": x[:2]}, progress=False)
    with pytest.raises(CalibrationError, match=r"'x' is a list; pass such a dict or an iterable "
                                               r"of feed dicts, one per batch"):
        calibrate(tiny_graph(), {"x": [[1.0, 2.0]]}, progress=False)


def test_a_0d_array_is_named_as_the_array_given_not_a_dict():
    with pytest.raises(CalibrationError, match=r"^calibration data is a 0-d array; input 'x' "
                                               r"needs an array of all its samples along axis 0$"):
        calibrate(tiny_graph(), np.array(3.0, np.float32), progress=False)


def test_non_finite_input_names_the_batch_its_count_and_size():
    x = np.zeros((5, 2), np.float32)
    x[2, 0], x[3, 1] = np.inf, np.nan
    with pytest.raises(CalibrationError, match=r"^calibration batch 1: tensor 'x': 2 of 4 values "
                                               r"in this batch are not finite \(NaN or inf\)"):
        calibrate(tiny_graph(), x, batch_size=2, progress=False)


def matmul_graph():
    """y = x @ [[0], [1]]: an inf in x[:, 0] makes inf * 0 = NaN (IEEE 754)."""
    return Graph("mm", [Node("MatMul", "mm", ["x", "w"], ["y"])], [TensorInfo("x", (None, 2))],
                 [TensorInfo("y", (None, 1))], {"w": np.array([[0.0], [1.0]], np.float32)})


def test_inf_input_raises_before_the_float_ops_warn():
    data = [{"x": np.array([[1.0, 2.0]], np.float32)}, {"x": np.array([[np.inf, 3.0]], np.float32)}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CalibrationError, match="calibration batch 1: tensor 'x': 1 of 2"):
            calibrate(matmul_graph(), data, progress=False)
        ranges = calibrate(matmul_graph(), data, progress=False, skip_nonfinite=True)
    # finite values only: x {1, 2, 3}, y {2} (batch 1's y is inf * 0 + 3 = NaN)
    assert ranges == {"x": (1.0, 3.0), "y": (2.0, 2.0)}


def test_non_finite_activation_names_the_batch():
    data = [{"x": np.array([[1.0, 2.0]], np.float32)},
            {"x": np.array([[3e38, 1.0]], np.float32)}]  # 2 * 3e38 passes float32's 3.4e38
    with np.errstate(over="ignore"), pytest.raises(
            CalibrationError, match="calibration batch 1: tensor 'y': 1 of 2 values in this batch"):
        calibrate(tiny_graph(), data, progress=False)

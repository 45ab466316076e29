"""InferenceSession: onnxruntime-like inputs/outputs, any batch, named errors; quantize_model."""

from pathlib import Path

import numpy as np
import pytest

from gpuquant.backends.numpy import NumpyBackend
from gpuquant.convert import quantize_model
from gpuquant.errors import ShapeError
from gpuquant.integer.file import save
from gpuquant.runtime import InferenceSession, execute

DATA = Path(__file__).resolve().parents[2] / "gpuquant" / "data"


@pytest.fixture(scope="module")
def mnist():
    images = np.load(DATA / "mnist_calib.npz")["images"][:200]
    x = ((images.astype(np.float32) / 255.0 - 0.1307) / 0.3081)[:, None]
    return quantize_model(DATA / "mnist_cnn.onnx", x, method="minmax"), x


def test_inputs_outputs_describe_the_model_like_onnxruntime(mnist):
    model, _ = mnist
    s = InferenceSession(model, backend="numpy")
    (inp,), (out,) = s.get_inputs(), s.get_outputs()
    assert (inp.name, inp.shape, inp.type) == ("input", [None, 1, 28, 28], "tensor(float)")
    assert (out.name, out.shape, out.type) == ("logits", [None, 10], "tensor(float)")


def test_run_from_file_any_batch_matches_the_executor(mnist, tmp_path):
    model, x = mnist
    save(model, tmp_path / "mnist.gqm")
    s = InferenceSession(tmp_path / "mnist.gqm", backend="numpy")
    for n in (1, 5):
        (y,) = s.run(None, {"input": x[:n]})
        assert isinstance(y, np.ndarray) and y.shape == (n, 10) and y.dtype == np.float32
        np.testing.assert_array_equal(
            y, execute(model, {"input": x[:n]}, NumpyBackend())["logits"])
    assert s.run(["logits"], {"input": x[:2]})[0].shape == (2, 10)


@pytest.mark.parametrize("feed, match", [
    ({"image": np.zeros((1, 1, 28, 28), np.float32)}, "'image'"),
    ({}, "missing input 'input'"),
    ({"input": np.zeros((1, 1, 28, 27), np.float32)}, "'input'.*28, 27"),
    ({"input": np.zeros((1, 28, 28), np.float32)}, "'input'"),
    ({"input": np.zeros((1, 1, 28, 28), np.float64)}, "'input'.*float64"),
])
def test_bad_feeds_raise_shape_error_naming_the_input(mnist, feed, match):
    s = InferenceSession(mnist[0], backend="numpy")
    with pytest.raises(ShapeError, match=match):
        s.run(None, feed)


def test_output_names_as_a_string_and_a_feed_that_is_not_a_dict_are_refused(mnist):
    # list("logits") would have asked for outputs 'l', 'o', ...; a bare array is not a feed
    s = InferenceSession(mnist[0], backend="numpy")
    with pytest.raises(ShapeError, match="list of names"):
        s.run("logits", {"input": mnist[1][:1]})
    with pytest.raises(ShapeError, match="input_feed must map"):
        s.run(None, mnist[1][:1])


def test_a_batch_of_zero_samples_gives_zero_outputs(mnist):
    # the flatten before the first Gemm reshaped to [0, -1], which cannot infer -1 from 0 values
    (y,) = InferenceSession(mnist[0], backend="numpy").run(None, {"input": mnist[1][:0]})
    assert y.shape == (0, 10) and y.dtype == np.float32


def test_unknown_output_name(mnist):
    s = InferenceSession(mnist[0], backend="numpy")
    with pytest.raises(ShapeError, match="'probs'"):
        s.run(["probs"], {"input": mnist[1][:1]})


def test_quantize_model_records_source_and_calibration(mnist):
    model, _ = mnist
    assert model.metadata["source"]["file"] == "mnist_cnn.onnx"
    assert model.metadata["calibration"] == {"method": "minmax"}
    assert model.metadata["float_nodes"] == [] and model.metadata["warnings"] == []


def test_an_unknown_backend_name_is_a_gpuquant_error(mnist):
    from gpuquant.errors import BackendUnavailableError

    with pytest.raises(BackendUnavailableError, match="got 'tpu'") as exc:
        InferenceSession(mnist[0], backend="tpu")
    assert isinstance(exc.value, ValueError)

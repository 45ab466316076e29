"""The shared full-integer TFLite CNN: every tensor equals the TFLite interpreter's reference
kernels, and the output equals its XNNPACK path with ``rounding="xnnpack"``, for all 8 inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gpuquant.backends.numpy import NumpyBackend
from gpuquant.errors import ModelFormatError
from gpuquant.frontends.tflite_model import load_tflite
from gpuquant.runtime.executor import execute

CASES = Path(__file__).resolve().parents[1] / "cases" / "tflite"
MODEL = CASES / "model1_cnn_int8.tflite"


@pytest.fixture(scope="module")
def io():
    return np.load(CASES / "model1_cnn_io.npz")


@pytest.fixture(scope="module")
def ref():
    return np.load(CASES / "model1_cnn_intermediates_ref.npz")


@pytest.mark.parametrize("i", range(8))
def test_reference_kernels_every_tensor(io, ref, i):
    model = load_tflite(MODEL)
    names = model.metadata["tensor_names"]
    env = execute(model, {model.inputs[0].name: io["input_int8"][i]}, NumpyBackend(), keep=True)
    compared = 0
    for key in ref.files:
        name = names[int(key[1:4])]
        if name in env:
            np.testing.assert_array_equal(np.asarray(env[name]), ref[key][i], err_msg=key)
            compared += 1
    assert compared == 7  # the input and the six operator outputs
    np.testing.assert_array_equal(np.asarray(env[model.outputs[0].name]),
                                  io["output_int8_builtin_ref"][i])


@pytest.mark.parametrize("i", range(8))
def test_xnnpack_rounding_output(io, i):
    model = load_tflite(MODEL, rounding="xnnpack")
    out = execute(model, {model.inputs[0].name: io["input_int8"][i]}, NumpyBackend())
    np.testing.assert_array_equal(np.asarray(out[model.outputs[0].name]),
                                  io["output_int8_auto_xnnpack"][i])


def test_interface_and_metadata():
    model = load_tflite(MODEL)
    # declared [1, 16, 16, 3]; every operator keeps the batch leading, so any batch runs
    assert [(s.shape, s.dtype, s.layout) for s in model.inputs] == [
        ((None, 16, 16, 3), "int8", "NHWC")]
    assert [(s.shape, s.dtype) for s in model.outputs] == [((None, 10), "int8")]
    assert "fixed_batch" not in model.metadata
    assert model.metadata["ops"] == {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "AVERAGE_POOL_2D": 1,
                                     "RESHAPE": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1}
    rounding = {n.name: n.params.requant.rounding for n in model.nodes
                if n.op in ("conv2d", "gemm")}
    assert rounding == {"0:CONV_2D": "gemmlowp", "1:DEPTHWISE_CONV_2D": "gemmlowp",
                        "4:FULLY_CONNECTED": "single"}


def test_bad_files(tmp_path):
    for content in (b"", b"\x00" * 16, MODEL.read_bytes()[:64]):
        path = tmp_path / "bad.tflite"
        path.write_bytes(content)
        with pytest.raises(ModelFormatError):
            load_tflite(path)
    with pytest.raises(ModelFormatError):
        load_tflite(tmp_path / "missing.tflite")
    with pytest.raises(ValueError, match="rounding"):
        load_tflite(MODEL, rounding="nearest")


@pytest.mark.parametrize("rounding, key", [("reference", "output_int8_builtin_ref"),
                                           ("xnnpack", "output_int8_auto_xnnpack")])
def test_batch_of_five_rows_equal_batch_one_and_the_interpreter(io, ref, rounding, key):
    """The model declares batch 1 (TFLite: ResizeInputTensor to 5): five stacked inputs give,
    row by row, the batch-1 run of that row and the interpreter's tensors for that input."""
    model = load_tflite(MODEL, rounding=rounding)
    name, out = model.inputs[0].name, model.outputs[0].name
    backend = NumpyBackend()
    x = np.concatenate([io["input_int8"][i] for i in range(5)])
    env = execute(model, {name: x}, backend, keep=True)
    names = model.metadata["tensor_names"]
    for i in range(5):
        one = execute(model, {name: io["input_int8"][i]}, backend)[out]
        np.testing.assert_array_equal(np.asarray(env[out])[i:i + 1], np.asarray(one))
        np.testing.assert_array_equal(np.asarray(env[out])[i:i + 1], io[key][i])
        if rounding == "reference":
            compared = 0
            for k in ref.files:
                if names[int(k[1:4])] in env:
                    np.testing.assert_array_equal(np.asarray(env[names[int(k[1:4])]])[i:i + 1],
                                                  ref[k][i], err_msg=k)
                    compared += 1
            assert compared == 7
    assert np.asarray(env[out]).shape == (5, 10)

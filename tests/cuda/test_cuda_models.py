"""Whole models on the CuPy backend with host builds of the kernels: the bundled MNIST CNN gives
the NumPy backend's integers in every rounding mode; the shared ONNX QOperator and TFLite cases
give the outputs their own runtimes recorded (onnxruntime; TFLite's reference kernels and
XNNPACK)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from host_kernels import HostKernels

from gpuquant.backends.cupy import CupyBackend
from gpuquant.backends.numpy import NumpyBackend
from gpuquant.convert import quantize_model
from gpuquant.frontends.onnx_qoperator import load_qoperator_onnx
from gpuquant.frontends.tflite_model import load_tflite
from gpuquant.runtime import InferenceSession
from gpuquant.runtime.executor import execute

DATA = Path(__file__).resolve().parents[2] / "gpuquant" / "data"
CASES = Path(__file__).resolve().parents[1] / "cases"


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    raw = np.load(DATA / "mnist_calib.npz")["images"][:64]
    return ((raw.astype(np.float32) / 255.0 - 0.1307) / 0.3081)[:, None]


@pytest.mark.parametrize("rounding,activation_dtype,cc", [
    ("gemmlowp", "int8", 90), ("single", "uint8", 75), ("float32_half_even", "int8", 75)])
def test_mnist_matches_the_numpy_backend(images, rounding, activation_dtype, cc):
    model = quantize_model(DATA / "mnist_cnn.onnx", images, rounding=rounding,
                           activation_dtype=activation_dtype)
    feed = {"input": images[:3]}
    (expected,) = InferenceSession(model, backend=NumpyBackend()).run(None, feed)
    (got,) = InferenceSession(model, backend=CupyBackend(HostKernels(cc))).run(None, feed)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("cc", [75, 90])
def test_onnx_qoperator_case_equals_onnxruntime(cc):
    model = load_qoperator_onnx(CASES / "onnx" / "cnn_qoperator_aint8_wint8_perchannel.onnx")
    io = np.load(CASES / "onnx" / "cnn_qoperator_aint8_wint8_perchannel_io.npz")
    backend = CupyBackend(HostKernels(cc))
    for i in range(len(io["x"])):
        y = execute(model, {"x": io["x"][i]}, backend)["y"]
        np.testing.assert_array_equal(backend.to_numpy(y), io["optall/y"][i])


@pytest.mark.parametrize("rounding,expected", [("reference", "output_int8_builtin_ref"),
                                               ("xnnpack", "output_int8_auto_xnnpack")])
@pytest.mark.parametrize("cc", [75, 90])
def test_tflite_case_equals_the_interpreter(cc, rounding, expected):
    model = load_tflite(CASES / "tflite" / "model1_cnn_int8.tflite", rounding=rounding)
    io = np.load(CASES / "tflite" / "model1_cnn_io.npz")
    backend = CupyBackend(HostKernels(cc))
    for i in range(len(io["input_int8"])):
        out = execute(model, {model.inputs[0].name: io["input_int8"][i]}, backend)
        np.testing.assert_array_equal(backend.to_numpy(out[model.outputs[0].name]),
                                      io[expected][i])

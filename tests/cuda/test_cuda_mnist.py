"""The bundled MNIST CNN, quantized and run end to end by the CuPy backend on host builds of the
kernels, gives the same integers as the NumPy backend (every layer's rounding mode included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from host_kernels import HostKernels

from gpuquant.backends.cupy import CupyBackend
from gpuquant.backends.numpy import NumpyBackend
from gpuquant.convert import quantize_model
from gpuquant.runtime import InferenceSession

DATA = Path(__file__).resolve().parents[2] / "gpuquant" / "data"


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

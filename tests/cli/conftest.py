"""Small MNIST files for CLI tests: model-ready inputs with labels, written once per session."""

import numpy as np
import pytest

from gpuquant.compare.datasets import MNIST_MODEL, load_mnist


@pytest.fixture(scope="session")
def mnist_files(tmp_path_factory):
    """Paths of the built-in model, a 300-image calibration .npz and a 200-image test .npz."""
    root = tmp_path_factory.mktemp("mnist")
    calib, test = load_mnist("calib").head(300), load_mnist("test").head(200)
    np.savez(root / "calib.npz", input=calib.inputs)
    np.savez(root / "test.npz", input=test.inputs, labels=test.labels)
    return {"model": str(MNIST_MODEL), "calib": str(root / "calib.npz"),
            "test": str(root / "test.npz"), "labels": test.labels}


@pytest.fixture(scope="session")
def mnist_gq(mnist_files, tmp_path_factory):
    """The built-in model quantized through ``gpuquant quantize`` into a .gq file."""
    from gpuquant.cli import main

    out = tmp_path_factory.mktemp("gq") / "mnist.gq"
    assert main(["quantize", mnist_files["model"], "--calib", mnist_files["calib"],
                 "-o", str(out)]) == 0
    return out

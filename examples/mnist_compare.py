"""The main job through the public Python API: quantize the built-in MNIST CNN (calibrated on
5,000 training images), save it, load it into an InferenceSession, and run float (onnxruntime)
and int8 side by side on the 10,000 MNIST test images.

    python examples/mnist_compare.py [auto|numpy|cupy]

``gpuquant compare`` does the same with tables, per-layer errors and timing.
"""

import os
import sys
import tempfile
from pathlib import Path

# One OpenBLAS thread unless the user chose: more only contend with the NumPy backend's own
# threads (gpuquant/compare/blas.py); OpenBLAS reads the variable when NumPy loads.
if not {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"} & os.environ.keys():
    os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np
import onnxruntime as ort

import gpuquant
from gpuquant.compare.datasets import MNIST_MODEL, load_mnist
from gpuquant.compare.metrics import (
    cosine_similarity,
    sqnr_db,
    top1_accuracy,
    top1_agreement,
)

BATCH = 500
backend = sys.argv[1] if len(sys.argv) > 1 else "auto"

calib, test = load_mnist("calib"), load_mnist("test")
model = gpuquant.quantize_model(MNIST_MODEL, calib.inputs, "minmax", activation_dtype="int8",
                                per_channel=True, batch_size=BATCH)
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "mnist_int8.gq"
    gpuquant.save(model, path)
    size_mb = path.stat().st_size / 1e6
    session = gpuquant.InferenceSession(path, backend=backend)


def test_logits(session: ort.InferenceSession | gpuquant.InferenceSession) -> np.ndarray:
    """The "logits" output over the test images, BATCH images per run (the two sessions share
    onnxruntime's run(output_names, input_feed))."""
    return np.concatenate([session.run(["logits"], {"input": test.inputs[i:i + BATCH]})[0]
                           for i in range(0, len(test), BATCH)])


float_logits = test_logits(
    ort.InferenceSession(str(MNIST_MODEL), providers=["CPUExecutionProvider"]))
int8_logits = test_logits(session)

print(f"integer model file: {size_mb:.2f} MB")
print(f"float top-1 accuracy: {100 * top1_accuracy(float_logits, test.labels):.2f}%")
print(f"int8  top-1 accuracy: {100 * top1_accuracy(int8_logits, test.labels):.2f}%")
print(f"top-1 agreement:      {100 * top1_agreement(float_logits, int8_logits):.2f}%")
print(f"logit cosine:         {cosine_similarity(float_logits, int8_logits):.6f}")
print(f"logit SQNR:           {sqnr_db(float_logits, int8_logits):.1f} dB")

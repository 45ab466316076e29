"""The main job through the Python API: quantize the built-in MNIST CNN (calibrated on 5,000
training images), then run float and int8 side by side on the 10,000 MNIST test images.

    OPENBLAS_NUM_THREADS=1 python examples/mnist_compare.py [auto|numpy|cupy]

``gpuquant compare`` does the same with tables, per-layer errors and timing (and sets one BLAS
thread itself: compare/blas.py says why).
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

from gpuquant.compare.datasets import MNIST_MODEL, load_mnist
from gpuquant.compare.metrics import cosine_similarity, sqnr_db, top1_accuracy, top1_agreement
from gpuquant.convert import quantize_model
from gpuquant.frontends.onnx_float import load_onnx
from gpuquant.graph.executor import run_graph_batched
from gpuquant.integer.file import save
from gpuquant.runtime.session import InferenceSession

BATCH = 500
backend = sys.argv[1] if len(sys.argv) > 1 else "auto"

calib, test = load_mnist("calib"), load_mnist("test")
model = quantize_model(MNIST_MODEL, calib.inputs, "minmax", activation_dtype="int8",
                       per_channel=True, batch_size=BATCH)
path = Path(tempfile.mkdtemp()) / "mnist_int8.gq"
save(model, path)

session = InferenceSession(str(path), backend=backend)
graph = load_onnx(MNIST_MODEL)
float_logits = run_graph_batched(graph, {"input": test.inputs}, BATCH)["logits"]
int8_logits = np.concatenate([
    session.run(["logits"], {"input": test.inputs[i:i + BATCH]})[0]
    for i in range(0, len(test), BATCH)
])

print(f"integer model: {path} ({path.stat().st_size / 1e6:.2f} MB)")
print(f"float top-1 accuracy: {100 * top1_accuracy(float_logits, test.labels):.2f}%")
print(f"int8  top-1 accuracy: {100 * top1_accuracy(int8_logits, test.labels):.2f}%")
print(f"top-1 agreement:      {100 * top1_agreement(float_logits, int8_logits):.2f}%")
print(f"logit cosine:         {cosine_similarity(float_logits, int8_logits):.6f}")
print(f"logit SQNR:           {sqnr_db(float_logits, int8_logits):.1f} dB")

"""int8 weight codes whose products onnxruntime sums exactly on every x86-64 CPU.

onnxruntime's integer GEMM (MLAS) on an x86-64 CPU without VNNI (AVX2 only, as AMD EPYC before
Zen 4) multiplies a uint8 operand by an int8 one with VPMADDUBSW, which saturates the sum of
each adjacent pair of products, ``a[k] * w[k] + a[k+1] * w[k+1]``, to int16; int8 activations
take the same path after a shift by 128. Its output is then the exact ONNX value only while
``255 * (|w[k]| + |w[k+1]|) <= 32767``: weight codes in [-64, 64] (7 bits, what onnxruntime's
``reduce_range`` gives) keep every pair below it. Tests that take onnxruntime's integers as the
reference draw int8 weights here; full-range weights are checked against the exact int64
reference (tests/backends) and ONNX's own conformance cases (tests/onnx_conformance).
"""

import numpy as np

WEIGHT_BOUND = 64


def int8_weights(rng: np.random.Generator, shape) -> np.ndarray:
    """Uniform int8 codes in [-WEIGHT_BOUND, WEIGHT_BOUND]."""
    return rng.integers(-WEIGHT_BOUND, WEIGHT_BOUND + 1, shape).astype(np.int8)

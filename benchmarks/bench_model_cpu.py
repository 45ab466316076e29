"""CPU model throughput: a small MobileNet-style network, float against int8 on the NumPy backend.

The network is built in memory with ``onnx.helper`` and random weights (seed 0): input
(N, 3, 96, 96) NCHW, a 3x3 stride-2 stem conv + ReLU6, then inverted-residual blocks without
the residual add (1x1 expand conv + ReLU6, 3x3 depthwise conv + ReLU6 at stride 1 or 2, 1x1
project conv), a 1x1 head conv + ReLU6, global average pool and a Gemm to 10 logits. It is
quantized with ``gpuquant.quantize_model`` (min-max, int8 activations, per-channel weights) on
BATCH random inputs, and both are measured in this run on one batch of BATCH images:

- ``float``: gpuquant's NumPy float32 executor (``run_graph``, im2col + BLAS);
- ``int8 (<core>)``: ``InferenceSession.run`` on ``NumpyBackend(core)`` for each int8 core this
  CPU runs (``vnni``, ``avx2``, ``blas``), float32 input to float32 output, so quantizing the
  input and dequantizing the output are included.

img/s = BATCH / median time of ROUNDS rounds after a warm-up, the methods taking turns in each
round. Every method gets the same number of threads: one by default, else
``OPENBLAS_NUM_THREADS`` when set before the run (bench_gemm_cpu.py says why one).
Run, after the README's install: ``python benchmarks/bench_model_cpu.py``.
"""

from __future__ import annotations

import os

# Before NumPy loads, which is when OpenBLAS reads it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import gpuquant
from gpuquant.backends.numpy import NumpyBackend, native, threads
from gpuquant.frontends.onnx_float import load_float_onnx
from gpuquant.graph.executor import run_graph
from interleaved import median_seconds

BATCH = 32
ROUNDS = 5
THREADS = int(os.environ["OPENBLAS_NUM_THREADS"])
STEM = 16
# (expanded channels, output channels, depthwise stride) of each block
BLOCKS = ((48, 24, 2), (72, 24, 1), (72, 32, 2), (96, 32, 1), (128, 64, 2), (192, 64, 1))
HEAD = 128
CLASSES = 10


def mobilenet_like(rng: np.random.Generator) -> onnx.ModelProto:
    """The network of the module docstring, He-initialised so activations stay in range."""
    nodes, inits = [], [numpy_helper.from_array(np.array(0, np.float32), "zero"),
                        numpy_helper.from_array(np.array(6, np.float32), "six")]

    def conv(x: str, c_in: int, c_out: int, k: int, stride: int, group: int, relu6: bool) -> str:
        name = f"conv{len(inits)}"
        fan_in = c_in // group * k * k
        w = rng.normal(0, np.sqrt(2 / fan_in), (c_out, c_in // group, k, k)).astype(np.float32)
        b = rng.normal(0, 0.1, c_out).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, f"{name}_w"),
                      numpy_helper.from_array(b, f"{name}_b")])
        nodes.append(helper.make_node(
            "Conv", [x, f"{name}_w", f"{name}_b"], [name], name=name, kernel_shape=[k, k],
            strides=[stride, stride], pads=[k // 2] * 4, group=group))
        if not relu6:
            return name
        nodes.append(helper.make_node("Clip", [name, "zero", "six"], [f"{name}_relu6"]))
        return f"{name}_relu6"

    x = conv("input", 3, STEM, 3, 2, 1, True)
    c = STEM
    for expanded, c_out, stride in BLOCKS:
        x = conv(x, c, expanded, 1, 1, 1, True)
        x = conv(x, expanded, expanded, 3, stride, expanded, True)
        x = conv(x, expanded, c_out, 1, 1, 1, False)
        c = c_out
    x = conv(x, c, HEAD, 1, 1, 1, True)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"]))
    fc_w = rng.normal(0, np.sqrt(1 / HEAD), (CLASSES, HEAD)).astype(np.float32)
    inits.extend([numpy_helper.from_array(fc_w, "fc_w"),
                  numpy_helper.from_array(np.zeros(CLASSES, np.float32), "fc_b")])
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes, "mobilenet_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 96, 96])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def main() -> None:
    threads.THREADS = THREADS
    rng = np.random.default_rng(0)
    graph = load_float_onnx(mobilenet_like(rng))
    calib = rng.normal(0, 1, (BATCH, 3, 96, 96)).astype(np.float32)
    model = gpuquant.quantize_model(graph, calib)
    feeds = {"input": rng.normal(0, 1, (BATCH, 3, 96, 96)).astype(np.float32)}
    cores = (*native.available(), "blas")
    sessions = {core: gpuquant.InferenceSession(model, backend=NumpyBackend(core))
                for core in cores}
    outputs = {core: s.run(None, feeds)[0] for core, s in sessions.items()}
    for core in cores:
        assert np.array_equal(outputs[core], outputs["blas"]), f"{core} core differs from blas"
    fns = {"float (NumPy float32 executor)": lambda: run_graph(graph, feeds)}
    for core, session in sessions.items():
        fns[f"int8 (NumPy backend, {core})"] = lambda s=session: s.run(None, feeds)
    load_before = os.getloadavg()[0]
    seconds = median_seconds(fns, ROUNDS)
    load_after = os.getloadavg()[0]
    float_rate = BATCH / seconds["float (NumPy float32 executor)"]
    width = max(len(name) for name in fns)
    print(f"MobileNet-style network, input ({BATCH}, 3, 96, 96), {len(BLOCKS)} blocks; "
          f"median of {ROUNDS} rounds")
    print(f"{'method':<{width}} | {'ms/batch':>9} | {'img/s':>8} | {'x float':>7}")
    print("-" * (width + 35))
    for name, t in seconds.items():
        print(f"{name:<{width}} | {1e3 * t:9.1f} | {BATCH / t:8.1f} | "
              f"{BATCH / t / float_rate:7.2f}")
    print(f"{THREADS} thread(s) per method; {os.cpu_count()} CPUs, 1-minute load average "
          f"{load_before:.1f} before, {load_after:.1f} after (other processes share the cores)")


if __name__ == "__main__":
    main()

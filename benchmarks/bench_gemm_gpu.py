"""int8 GEMM throughput of the CuPy backend's kernels on a GPU, beside cuBLAS float16/float32
(cupy.matmul) and torch._int_mm (int8 x int8 -> int32) when torch is installed.

Shapes: M = N = K = 4096 and 8192, and the fully connected layers of the bundled MNIST CNN at
batch 256. Each row: median of 20 timed runs after 3 warm-up runs, CUDA events around each run.
TOPS = 2*M*N*K / time; "of peak" divides by the device's dense int8 tensor-core peak from
DEVICE_INT8_PEAK_TOPS (looked up by device name; blank when unknown).
Each gpuquant kernel is first checked against the NumPy reference backend on a small input.

    python benchmarks/bench_gemm_gpu.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

import numpy as np

# Dense int8 tensor-core peaks (TOPS, no sparsity) from the vendors' data sheets.
DEVICE_INT8_PEAK_TOPS = {
    "H200": 1979.0,
    "H100 SXM": 1979.0,
    "H100 PCIe": 1513.0,
    "A100": 624.0,
    "L40S": 733.0,
    "L4": 242.5,
    "A10": 250.0,
    "RTX 4090": 660.6,
    "RTX 3090": 284.0,
    "T4": 130.0,
}

SQUARE = (4096, 8192)
BATCH = 256
WARMUP, RUNS = 3, 20


def _peak(device_name: str) -> float | None:
    for key, tops in DEVICE_INT8_PEAK_TOPS.items():
        if key.lower() in device_name.lower():
            return tops
    return None


def _time(cp, fn) -> float:
    """Median seconds of ``fn()`` over RUNS runs after WARMUP runs, timed by CUDA events."""
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(RUNS):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) / 1e3)
    return statistics.median(times)


def _gemm_params(n: int, k: int, requant: bool):
    from gpuquant.ops import GemmParams, Requant

    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (n, k)).astype(np.int8)
    bias = np.zeros(n, np.int32)
    rq = Requant(np.full(n, 1 << 30), np.full(n, -14), "gemmlowp", 0, -128, 127, "int8") \
        if requant else None
    return GemmParams("bench", w, np.zeros(n), 0, "int8", bias, rq)


def _mnist_fc_shapes() -> list[tuple[str, int, int, int]]:
    """(label, M, N, K) of the bundled MNIST CNN's Gemm layers (weights (N, K)) at batch BATCH."""
    from pathlib import Path

    import onnx
    from onnx import numpy_helper

    import gpuquant

    model = onnx.load(Path(gpuquant.__file__).parent / "data" / "mnist_cnn.onnx")
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return [(f"mnist {node.name.split('/')[-2]}", BATCH, *inits[node.input[1]].shape)
            for node in model.graph.node if node.op_type == "Gemm"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)

    import cupy as cp

    from gpuquant.backends.cupy import CupyBackend
    from gpuquant.backends.numpy import NumpyBackend

    backend = CupyBackend()
    device_name = backend.k.device_name
    peak = _peak(device_name)
    path = "mma (tensor cores)" if backend.k.cc >= 80 else "dp4a"
    print(f"device: {device_name} (sm_{backend.k.cc}), gpuquant path: {path}, "
          f"int8 peak: {peak or 'unknown'} TOPS")

    ref = NumpyBackend()
    for requant in (True, False):
        p = _gemm_params(70, 101, requant)
        x = np.random.default_rng(1).integers(-128, 128, (65, 101)).astype(np.int8)
        if not np.array_equal(backend.to_numpy(backend.gemm(x, p)), ref.gemm(x, p)):
            print("gpuquant GEMM disagrees with the NumPy reference; not timing it")
            return 1

    try:
        import torch
    except ImportError:
        torch = None

    shapes = [(f"square {s}", s, s, s) for s in SQUARE] + _mnist_fc_shapes()
    rows = []
    for label, m, n, k in shapes:
        ops = 2.0 * m * n * k
        x = cp.asarray(np.random.default_rng(2).integers(-128, 128, (m, k)).astype(np.int8))
        for requant in (True, False):
            p = _gemm_params(n, k, requant)
            backend.gemm(x, p)  # upload weights and compile before timing
            t = _time(cp, lambda: backend.gemm(x, p))
            name = "gpuquant int8" + (" + requant" if requant else " -> int32")
            rows.append((label, name, t, ops / t / 1e12))
        for dtype in (cp.float16, cp.float32):
            a = cp.asarray(x, dtype=dtype)
            b = cp.ones((k, n), dtype=dtype)
            t = _time(cp, lambda: cp.matmul(a, b))
            rows.append((label, f"cupy matmul {np.dtype(dtype).name}", t, ops / t / 1e12))
        if torch is not None and hasattr(torch, "_int_mm"):
            ta = torch.as_tensor(x, device="cuda")
            tb = torch.ones((k, n), dtype=torch.int8, device="cuda")
            try:
                t = _time(cp, lambda: torch._int_mm(ta, tb))
                rows.append((label, "torch._int_mm", t, ops / t / 1e12))
            except RuntimeError as e:  # _int_mm wants M > 16 and K, N multiples of 8
                print(f"torch._int_mm skipped at {label}: {str(e).splitlines()[0]}")

    print(f"{'shape':<28} {'kernel':<26} {'ms':>9} {'TOPS':>9} {'of peak':>8}")
    for label, name, t, tops in rows:
        share = f"{100 * tops / peak:7.1f}%" if peak else ""
        print(f"{label:<28} {name:<26} {1e3 * t:9.3f} {tops:9.2f} {share:>8}")
    if args.json:
        with open(args.json, "w") as f:
            keys = ("shape", "kernel", "seconds", "tops")
            json.dump({"device": device_name, "cc": backend.k.cc, "peak_tops": peak,
                       "rows": [dict(zip(keys, r)) for r in rows]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

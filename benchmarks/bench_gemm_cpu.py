"""CPU GEMM throughput: the NumPy backend's 8-bit fully connected kernel against its peers.

For M = N = K in {256, 1024, 2048}, uint8 activations x int8 weights, all measured in this run:

- ``numpy backend``: ``NumpyBackend(core).gemm`` with a per-channel requantization (gemmlowp
  rounding) to int8, and the same kernel returning int32 accumulators (``requant=None``), on
  each int8 core this CPU runs: ``vnni`` and ``avx2`` (the native AVX-512 VNNI and AVX2 cores,
  where built and supported) and ``blas`` (exact float32 BLAS);
- ``naive int64``: ``x.astype(int64) @ w.T.astype(int64)``;
- ``float32 BLAS``: one float32 matmul of the same shape on operands converted beforehand, the
  ceiling of the blas core (which adds conversions, chunk sums and the epilogue);
- ``onnxruntime``: a one-node ``MatMulInteger`` (uint8 x int8 -> int32) model built in memory,
  when onnxruntime imports.

GOPS = 2*M*N*K / median time (ROUNDS rounds after a warm-up, the methods taking turns in each
round; conversion of the inputs is part of each measured call). The int32 results of every
gpuquant core are checked equal to the exact product before timing; onnxruntime's are compared
and its wrong entries counted, since on an x86-64 CPU without VNNI its uint8 x int8 kernel
saturates each pair of products to int16 (VPMADDUBSW) and so is not exact on full-range weights.
Every method gets the same number of threads: one by default, else ``OPENBLAS_NUM_THREADS``
when set before the run (OpenBLAS reads it when NumPy loads). With more threads than free
cores, OpenBLAS's spinning threads and the NumPy backend's own pool slow each other down and the
rows stop being comparable (on a shared 2-core machine the blas core then beat its own float32
ceiling); one thread each stays meaningful on a machine shared with other work.
Run, after the README's install: ``python benchmarks/bench_gemm_cpu.py``, or
``OPENBLAS_NUM_THREADS=2 python benchmarks/bench_gemm_cpu.py`` for two threads per method.
"""

from __future__ import annotations

import os

# Before NumPy loads, which is when OpenBLAS reads it (the docstring says why one thread).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from collections.abc import Callable

import numpy as np

from gpuquant.backends.numpy import NumpyBackend, native, threads
from gpuquant.ops import GemmParams, Requant
from interleaved import median_seconds

SIZES = (256, 1024, 2048)
ROUNDS = 7
THREADS = int(os.environ["OPENBLAS_NUM_THREADS"])


def onnxruntime_matmulinteger(n: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """A callable (a uint8 (n, n), b int8 (n, n)) -> int32 a @ b via onnxruntime, or None."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])],
        "matmulinteger",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n]),
         helper.make_tensor_value_info("B", TensorProto.INT8, [n, n])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return lambda a, b: session.run(None, {"A": a, "B": b})[0]


def measure(n: int, rng: np.random.Generator) -> tuple[dict[str, float], int]:
    """(GOPS by method, how many of onnxruntime's n*n outputs differ from the exact product)."""
    x = rng.integers(0, 256, (n, n), dtype=np.uint8)
    w = rng.integers(-128, 128, (n, n), dtype=np.int8)
    zx = 131
    requant = Requant(
        multiplier=rng.integers(2**30, 2**31, n), shift=np.full(n, -12), rounding="gemmlowp",
        zero_point=-3, qmin=-128, qmax=127, dtype="int8",
    )
    cores = {core: NumpyBackend(core) for core in (*native.available(), "blas")}
    with_requant = GemmParams("fc", w, 0, zx, "uint8", 0, requant)
    accumulators = GemmParams("fc", w, 0, zx, "uint8", 0, None)
    wt = np.ascontiguousarray(w.T)
    ort_run = onnxruntime_matmulinteger(n)

    # Raw products sum x*w: the backend's accumulators are those minus zx * colsum(w).
    reference = x.astype(np.int64) @ w.T.astype(np.int64)
    shifted = reference - zx * w.sum(axis=1, dtype=np.int64)
    for core, backend in cores.items():
        assert np.array_equal(backend.gemm(x, accumulators), shifted), f"{core} core differs"
        assert np.array_equal(backend.gemm(x, with_requant), cores["blas"].gemm(x, with_requant))
    ort_wrong = 0 if ort_run is None else int(np.count_nonzero(ort_run(x, wt) != reference))

    xf, wf = x.astype(np.float32), w.T.astype(np.float32)
    fns = {}
    for core, backend in cores.items():
        fns[f"numpy backend ({core}), requant to int8"] = (
            lambda b=backend: b.gemm(x, with_requant))
        fns[f"numpy backend ({core}), int32 out"] = lambda b=backend: b.gemm(x, accumulators)
    fns |= {
        "naive int64 matmul": lambda: x.astype(np.int64) @ w.T.astype(np.int64),
        "float32 BLAS (ceiling)": lambda: xf @ wf,
    }
    if ort_run is not None:
        fns["onnxruntime MatMulInteger"] = lambda: ort_run(x, wt)
    gops = {name: 2.0 * n**3 / t / 1e9 for name, t in median_seconds(fns, ROUNDS).items()}
    return gops, ort_wrong


def main() -> None:
    threads.THREADS = THREADS
    rng = np.random.default_rng(0)
    load_before = os.getloadavg()[0]
    results, ort_wrong = {}, {}
    for n in SIZES:
        results[n], ort_wrong[n] = measure(n, rng)
    load_after = os.getloadavg()[0]
    peer = "onnxruntime MatMulInteger"
    names = list(results[SIZES[0]])
    width = max(len(name) for name in names)
    print(f"GOPS (2*M*N*K / median time), M = N = K; in brackets: share of {peer}")
    print(f"{'method':<{width}} | " + " | ".join(f"{n:>19}" for n in SIZES))
    print("-" * (width + 3 + 22 * len(SIZES)))
    for name in names:
        cells = []
        for n in SIZES:
            gops = results[n]
            cell = f"{gops[name]:8.1f}"
            if peer in gops and name != peer:
                cell += f" ({gops[name] / gops[peer]:6.1%})"
            cells.append(f"{cell:>19}")
        print(f"{name:<{width}} | " + " | ".join(cells))
    if peer not in names:
        print("onnxruntime not importable: no peer column")
    if any(ort_wrong.values()):
        counts = ", ".join(f"{ort_wrong[n]:,} of {n * n:,} at {n}" for n in SIZES)
        print(f"onnxruntime's int32 results are not exact here (wrong entries: {counts}):\n"
              "its uint8 x int8 kernel saturates each pair of products to int16 (VPMADDUBSW) "
              "on CPUs without VNNI; timed all the same")
    print(f"native int8 cores here: {', '.join(native.available()) or 'none'}; "
          f"auto runs {native.status()[0] or 'blas'} ({native.status()[1]})")
    print(f"{THREADS} thread(s) per method; {os.cpu_count()} CPUs, 1-minute load average "
          f"{load_before:.1f} before, "
          f"{load_after:.1f} after (other processes share the cores)")


if __name__ == "__main__":
    main()

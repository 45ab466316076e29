"""The kernels of cuda_src/: which template instantiations exist, by file and architecture.

Every name here is a C++ expression naming one ``__global__`` function, used both as a CuPy
``name_expressions`` entry and by the host test harness. Tensor-core (``MMA``) instantiations
exist for compute capability 8.0 and newer only.
"""

from __future__ import annotations

from itertools import product

MMA_MIN_CC = 80
OPTIONS = ("-std=c++17",)


def _b(v: bool) -> str:
    return "true" if v else "false"


def gemm_name(out_int32: bool, mma: bool) -> str:
    return f"gq_gemm<{_b(out_int32)}, {_b(mma)}>"


def conv_name(out_int32: bool, mma: bool) -> str:
    return f"gq_conv2d<{_b(out_int32)}, {_b(mma)}>"


def depthwise_name(out_int32: bool) -> str:
    return f"gq_depthwise_conv2d<{_b(out_int32)}>"


def _igemm_names(make, cc: int) -> list[str]:
    mmas = (False, True) if cc >= MMA_MIN_CC else (False,)
    return [make(out, mma) for out, mma in product((False, True), mmas)]


def name_expressions(file: str, cc: int) -> list[str]:
    """Instantiations of ``file`` compiled for compute capability ``cc`` (e.g. 90)."""
    if file == "gemm.cu":
        return _igemm_names(gemm_name, cc)
    if file == "conv.cu":
        return _igemm_names(conv_name, cc) + [depthwise_name(out) for out in (False, True)]
    return list(PLAIN_KERNELS[file])


def matmul_name(out_int32: bool) -> str:
    return f"gq_matmul<{int(out_int32)}>"


# Files whose kernels are plain extern "C" functions or fixed instantiations.
PLAIN_KERNELS: dict[str, tuple[str, ...]] = {
    "elementwise.cu": ("gq_add", "gq_mul", "gq_lookup", "gq_quantize", "gq_dequantize"),
    "pool.cu": ("gq_max_pool2d", "gq_avg_pool2d", "gq_mean"),
    "matmul.cu": (matmul_name(False), matmul_name(True)),
    "imported.cu": ("gq_pair_lookup", "gq_avg_pool2d_float", "gq_softmax", "gq_softmax_float"),
}

KERNEL_FILES = ("gemm.cu", "conv.cu", *PLAIN_KERNELS)

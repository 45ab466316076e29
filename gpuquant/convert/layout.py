"""NCHW (ONNX) <-> NHWC bookkeeping: permutations, axes, pads, and Gemm weight columns.

The float graph is NCHW; integer conv/pool kernels run NHWC. A 4-D tensor is either in ONNX
order or in NHWC; ``TO_NHWC`` maps the first to the second (``nhwc = onnx.transpose(TO_NHWC)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)


def nhwc_shape(shape: Sequence[int | None]) -> tuple[int | None, ...]:
    """The NHWC shape of an NCHW shape."""
    return tuple(shape[i] for i in TO_NHWC)


def nhwc_axis(axis: int) -> int:
    """Where NCHW axis ``axis`` (negative allowed) lives in NHWC."""
    return TO_NHWC.index(axis % 4)


def nhwc_pads(pads: Sequence[int]) -> list[tuple[int, int]]:
    """ONNX Pad's ``[b_0..b_3, e_0..e_3]`` of an NCHW tensor as NHWC (begin, end) pairs."""
    pairs = list(zip(pads[:4], pads[4:]))
    return [tuple(int(v) for v in pairs[i]) for i in TO_NHWC]


def nhwc_constant(value: np.ndarray) -> np.ndarray:
    """A constant that broadcasts against NCHW tensors, made to broadcast against NHWC ones:
    leading 1s up to rank 4, then transposed."""
    v = np.asarray(value)
    v = v.reshape((1,) * (4 - v.ndim) + v.shape)
    return np.ascontiguousarray(v.transpose(TO_NHWC))


def nhwc_flatten_columns(weight: np.ndarray, chw: Sequence[int]) -> np.ndarray:
    """Gemm weight (N, C*H*W) whose columns follow NCHW flattening, reordered for an input
    flattened from NHWC: column ``h*W*C + w*C + c`` takes column ``c*H*W + h*W + w``."""
    c, h, w = chw
    n = weight.shape[0]
    return np.ascontiguousarray(weight.reshape(n, c, h, w).transpose(0, 2, 3, 1).reshape(n, -1))

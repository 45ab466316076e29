"""Static int32 headroom checks, done once when a layer's parameters are built.

For an output channel n the accumulator is ``acc = sum_k (x_k - zx)(w_nk - zw_n) + bias_n``
(docs/quantization.md, eq. 4). With ``|x_k - zx| <= A = max(zx - qmin, qmax - zx)`` it is
bounded by ``A * sum_k |w_nk - zw_n| + |bias_n|``; a layer whose bound exceeds ``2**31 - 1`` is
refused. Kernels may wrap in intermediate int32 sums (two's complement): the final value is
exact whenever this bound holds.
"""

from __future__ import annotations

import numpy as np

from ..errors import OverflowRiskError
from ..quant.params import dtype_bounds

INT32_MAX = 2**31 - 1


def max_abs_offset(zero_point: int | np.ndarray, dtype: str) -> np.ndarray:
    """``max(zp - qmin, qmax - zp)``: the largest ``|q - zp|`` a tensor of ``dtype`` can hold."""
    qmin, qmax = dtype_bounds(dtype)
    zp = np.asarray(zero_point, dtype=np.int64)
    return np.maximum(zp - qmin, qmax - zp)


def check_accumulator(
    layer: str,
    weight_abs_sums: np.ndarray,
    input_max_abs: int | np.ndarray,
    bias: np.ndarray | None = None,
) -> None:
    """Raise OverflowRiskError if ``input_max_abs * weight_abs_sums + |bias|`` exceeds int32.

    ``weight_abs_sums[n] = sum_k |w_nk - zw_n|`` per output channel (or, for two activations,
    ``K * max|b - zb|``).
    """
    bound = np.asarray(input_max_abs, dtype=np.int64) * np.asarray(weight_abs_sums, np.int64)
    if bias is not None:
        bound = bound + np.abs(np.asarray(bias, dtype=np.int64))
    bound = np.atleast_1d(bound)
    if bound.size == 0:
        return
    worst = int(np.argmax(bound))
    if bound[worst] > INT32_MAX:
        raise OverflowRiskError(
            f"layer {layer!r}: int32 accumulator could overflow: output channel {worst} is "
            f"bounded by {int(bound[worst])} = max|x - zx| * sum|w - zw| + |bias|, "
            f"above 2**31 - 1 = {INT32_MAX}"
        )


def check_bias(layer: str, bias_real: np.ndarray, bias_scale: np.ndarray) -> np.ndarray:
    """Quantize a bias to int32 with scale ``s_in * s_w``: ``round_half_to_even(b / scale)``.

    Raises OverflowRiskError naming the layer and channel if a value does not fit int32.
    """
    b = np.asarray(bias_real, dtype=np.float64)
    s = np.asarray(bias_scale, dtype=np.float64)
    q = np.rint(b / s)
    over = np.abs(q) > INT32_MAX
    if over.any():
        ch = int(np.flatnonzero(over)[0])
        raise OverflowRiskError(
            f"layer {layer!r}: quantized bias of channel {ch} would be {q.ravel()[ch]:.4g} "
            f"(bias {b.ravel()[ch]:.6g} / scale {np.broadcast_to(s, b.shape).ravel()[ch]:.6g}), "
            f"outside int32 [-2**31, 2**31 - 1]"
        )
    return q.astype(np.int32)

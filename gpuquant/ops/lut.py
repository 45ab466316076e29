"""Element-wise maps of one 8-bit tensor as 256-entry lookup tables.

Any function of a single 8-bit value is exact as a table: ``table[q - qmin] =
quantize_out(f(dequantize_in(q)))``. Requantization between scales, ReLU on its own, sigmoid,
tanh, hard-swish and GELU all run through ``lookup``; the table is computed once at conversion,
in float64, rounded half to even unless the op's source runtime says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import QuantizationError
from ..quant.params import DTYPES, QuantParams, dtype_bounds


@dataclass(frozen=True)
class LookupParams:
    """``y = table[x - qmin(input_dtype)]``; ``table`` has 256 entries of the output dtype."""

    name: str
    input_dtype: str
    table: np.ndarray

    def __post_init__(self) -> None:
        t = np.asarray(self.table)
        if t.shape != (256,) or t.dtype.name not in ("int8", "uint8"):
            raise QuantizationError(
                f"layer {self.name!r}: lookup table must be 256 int8/uint8 values, "
                f"got {t.dtype} of shape {t.shape}"
            )
        dtype_bounds(self.input_dtype)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf)(x)


FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "hard_sigmoid": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "hard_swish": lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
}


def build_table(
    fn: str | Callable[[np.ndarray], np.ndarray],
    inp: QuantParams,
    out: QuantParams,
    rounding: str = "half_to_even",
) -> np.ndarray:
    """``table[i] = clamp(round(f(s_in * (q_i - z_in)) / s_out) + z_out)``, ``q_i = qmin + i``.

    Computed in float64 from the float32 scales; ``rounding`` is ``"half_to_even"`` or
    ``"half_away_from_zero"``; the clamp is to ``out.bounds`` (``num_bits`` codes).
    """
    f = FUNCTIONS[fn] if isinstance(fn, str) else fn
    qmin, _ = dtype_bounds(inp.dtype)
    codes = np.arange(qmin, qmin + 256, dtype=np.float64)
    real = float(inp.scale[0]) * (codes - int(inp.zero_point[0]))
    y = np.asarray(f(real), dtype=np.float64) / float(out.scale[0])
    if rounding == "half_to_even":
        r = np.rint(y)
    elif rounding == "half_away_from_zero":
        r = np.sign(y) * np.floor(np.abs(y) + 0.5)
    else:
        raise ValueError(f"unknown rounding {rounding!r}")
    lo, hi = out.bounds
    return np.clip(r + int(out.zero_point[0]), lo, hi).astype(DTYPES[out.dtype][0])

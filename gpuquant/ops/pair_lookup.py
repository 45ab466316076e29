"""Element-wise functions of two 8-bit tensors as a 256 x 256 table.

Any function of a pair of 8-bit codes is exact as a table::

    y = table[a - qmin(a_dtype), b - qmin(b_dtype)]        (a, b broadcast as NumPy does)

ONNX Runtime's QLinearAdd and QLinearMul compute each output in float32 from the pair of codes
(frontends/ort_arith.py); the table holds that arithmetic, evaluated once at import, so the
kernels stay integer-only and bit-exact with the runtime the model came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import QuantizationError
from ..quant.params import dtype_bounds


@dataclass(frozen=True)
class PairLookupParams:
    """``y = table[a - qmin_a, b - qmin_b]``; ``table`` is (256, 256) of the output dtype."""

    name: str
    a_dtype: str
    b_dtype: str
    table: np.ndarray

    def __post_init__(self) -> None:
        t = np.asarray(self.table)
        if t.shape != (256, 256) or t.dtype.name not in ("int8", "uint8"):
            raise QuantizationError(
                f"layer {self.name!r}: pair lookup table must be 256x256 int8/uint8 values, "
                f"got {t.dtype} of shape {t.shape}"
            )
        dtype_bounds(self.a_dtype)
        dtype_bounds(self.b_dtype)
        object.__setattr__(self, "table", np.ascontiguousarray(t))

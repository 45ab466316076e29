"""Table lookups and concatenation through per-input tables (ops/lut.py, ops/concat.py)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import ShapeError
from ...ops import ConcatParams, LookupParams
from ...quant.params import dtype_bounds
from .checks import check_input


def lookup(x: np.ndarray, p: LookupParams) -> np.ndarray:
    """``p.table[x - qmin(input_dtype)]``, same shape as ``x``."""
    check_input(p.name, "input", x, p.input_dtype)
    qmin, _ = dtype_bounds(p.input_dtype)
    return p.table[x.astype(np.intp) - qmin]


def concat(xs: Sequence[np.ndarray], p: ConcatParams) -> np.ndarray:
    """Each input through its table (as is where the table is None), joined along ``p.axis``."""
    if len(xs) != len(p.tables):
        raise ShapeError(f"layer {p.name!r}: {len(xs)} inputs for {len(p.tables)} tables")
    parts = [x if t is None else lookup(x, t) for x, t in zip(xs, p.tables)]
    dtypes = {part.dtype.name for part in parts}
    if len(dtypes) != 1:
        raise ShapeError(f"layer {p.name!r}: inputs join as mixed dtypes {sorted(dtypes)}")
    return np.concatenate(parts, axis=p.axis)

"""Layout ops on integer tensors: transpose, reshape, constant pad."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import ShapeError


def transpose(x: np.ndarray, perm: Sequence[int]) -> np.ndarray:
    """``x.transpose(perm)`` as a new C-contiguous array."""
    return np.ascontiguousarray(x.transpose(tuple(perm)))


def reshape(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``x.reshape(shape)`` in C order (a view where NumPy can give one)."""
    return x.reshape(tuple(shape))


def pad(x: np.ndarray, pads: Sequence[tuple[int, int]], value: int) -> np.ndarray:
    """Constant padding ``pads[i] = (before, after)`` per axis with the integer ``value``."""
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        if not info.min <= value <= info.max:
            raise ShapeError(f"pad value {value} does not fit {x.dtype}")
    return np.pad(x, [tuple(p) for p in pads], constant_values=value)

"""Input checks shared by the kernels: dtype and rank of an 8-bit activation, named in errors."""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError


def check_input(layer: str, what: str, x: np.ndarray, dtype: str, ndim: int | None = None) -> None:
    """Raise ShapeError unless ``x`` has dtype ``dtype`` (and rank ``ndim`` when given)."""
    if x.dtype.name != dtype:
        raise ShapeError(
            f"layer {layer!r}: {what} must be {dtype}, got {x.dtype} of shape {x.shape}"
        )
    if ndim is not None and x.ndim != ndim:
        raise ShapeError(
            f"layer {layer!r}: {what} must be {ndim}-D, got shape {x.shape}"
        )

"""Whole arrays (input name -> all samples along axis 0) cut into batches of samples."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import ShapeError


def sample_count(feeds: Mapping[str, np.ndarray]) -> int:
    """The number of samples (length of axis 0) that every array of ``feeds`` holds; 0 for no
    arrays. Raises ShapeError for a 0-d array or when the counts differ, naming each input's."""
    for name, value in feeds.items():
        if not value.ndim:
            raise ShapeError(f"input {name!r} is a 0-d array: it has no axis 0 of samples")
    counts = {name: value.shape[0] for name, value in feeds.items()}
    if len(set(counts.values())) > 1:
        raise ShapeError(f"inputs hold different numbers of samples along axis 0: {counts}")
    return next(iter(counts.values()), 0)


def batches_of(feeds: Mapping[str, np.ndarray], batch_size: int) -> list[dict[str, np.ndarray]]:
    """``feeds`` cut along axis 0: batch k maps each input to its samples
    ``[k * batch_size, (k + 1) * batch_size)``, the last batch shorter when ``batch_size`` does
    not divide ``sample_count(feeds)``; no batches for no samples. Raises ValueError for
    ``batch_size < 1`` and ShapeError as ``sample_count``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    total = sample_count(feeds)
    return [{name: value[i: i + batch_size] for name, value in feeds.items()}
            for i in range(0, total, batch_size)]

"""Range tracking for fake quantization during training.

- A batch's range is ``[min(min(x), 0), max(max(x), 0)]``: widened to include 0, as TensorFlow's
  moving-average quantizer does, so that nudging (fake_quant.py) never has to shift it.
- Activations (``mode="ema"``): the first observed batch sets the range; after that
  ``min <- decay * min + (1 - decay) * batch_min`` and the same for ``max``.
- Calibration without training (``mode="minmax"``): the running minimum and maximum over all
  observed batches (post-training quantization's min/max ranges).
- Weights (``mode="last"``): the range is the current tensor's own range at every step, per
  output channel when ``axis`` is set; ``symmetric`` makes it ``[-m, m]`` with
  ``m = max(|min|, |max|)`` (the converter's symmetric weights).
- ``freeze_after = N``: after N observed batches the range stops changing.

``ema_update``, ``minmax_update`` and ``symmetric_range`` are plain arithmetic, so the
PyTorch modules apply the same rules to tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CalibrationError

MODES = ("ema", "minmax", "last")


def batch_range(
    x: np.ndarray, axis: int | None = None, name: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """``(min(x) ∧ 0, max(x) ∨ 0)`` over the whole tensor, or per index of ``axis``; float32 1-D.

    Non-finite values raise CalibrationError naming the tensor and the count.
    """
    x = np.asarray(x, dtype=np.float32)
    bad = int(np.size(x) - np.isfinite(x).sum())
    if bad or x.size == 0:
        raise CalibrationError(
            f"tensor {name!r}: {bad} of {x.size} values not finite" if bad
            else f"tensor {name!r}: empty batch"
        )
    if axis is None:
        lo, hi = x.min(keepdims=True).reshape(1), x.max(keepdims=True).reshape(1)
    else:
        moved = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
        lo, hi = moved.min(axis=1), moved.max(axis=1)
    return np.minimum(lo, 0).astype(np.float32), np.maximum(hi, 0).astype(np.float32)


def ema_update(cur_min: Any, cur_max: Any, batch_min: Any, batch_max: Any, decay: float):
    """``(decay * cur + (1 - decay) * batch)`` for min and max; NumPy arrays or torch tensors."""
    return (
        decay * cur_min + (1.0 - decay) * batch_min,
        decay * cur_max + (1.0 - decay) * batch_max,
    )


def minmax_update(cur_min: Any, cur_max: Any, batch_min: Any, batch_max: Any):
    """``(min(cur_min, batch_min), max(cur_max, batch_max))``; NumPy arrays or torch tensors."""
    return (
        cur_min + (batch_min - cur_min) * (batch_min < cur_min),
        cur_max + (batch_max - cur_max) * (batch_max > cur_max),
    )


def symmetric_range(lo: Any, hi: Any):
    """``(-m, m)`` with ``m = max(|lo|, |hi|)``, elementwise; NumPy arrays or torch tensors."""
    m = abs(lo)
    m = m + (abs(hi) - m) * (abs(hi) > m)
    return -m, m


class RangeTracker:
    """Tracks one tensor's range over training steps (module docstring); NumPy reference."""

    def __init__(
        self,
        mode: str = "ema",
        decay: float = 0.99,
        freeze_after: int | None = None,
        axis: int | None = None,
        symmetric: bool = False,
        name: str = "",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        if freeze_after is not None and freeze_after < 1:
            raise ValueError(f"freeze_after must be >= 1, got {freeze_after}")
        self.mode, self.decay, self.freeze_after = mode, decay, freeze_after
        self.axis, self.symmetric, self.name = axis, symmetric, name
        self.steps = 0
        self.min: np.ndarray | None = None
        self.max: np.ndarray | None = None

    @property
    def frozen(self) -> bool:
        return self.freeze_after is not None and self.steps >= self.freeze_after

    def observe(self, x: np.ndarray) -> None:
        """Fold one batch into the range, unless frozen."""
        if self.frozen:
            return
        lo, hi = batch_range(x, self.axis, self.name)
        if self.symmetric:
            lo, hi = symmetric_range(lo, hi)
        if self.mode == "ema" and self.min is not None:
            lo, hi = ema_update(self.min, self.max, lo, hi, self.decay)
        elif self.mode == "minmax" and self.min is not None:
            lo, hi = minmax_update(self.min, self.max, lo, hi)
        self.min, self.max = lo.astype(np.float32), hi.astype(np.float32)
        self.steps += 1

    def range(self) -> tuple[np.ndarray, np.ndarray]:
        """The current ``(min, max)``; CalibrationError before the first batch."""
        if self.min is None:
            raise CalibrationError(f"tensor {self.name!r}: no batch observed, no range")
        return self.min, self.max

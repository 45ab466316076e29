"""Fake quantization and quantization-aware training.

The NumPy reference op (fake_quant) and range tracking (ranges) need only NumPy; the PyTorch
integration (torch_ops, prepare, export) imports torch when first used.
"""

from .fake_quant import Nudged, fake_quant, fake_quant_gradient, nudge, nudged_qparams
from .ranges import RangeTracker, batch_range, ema_update, symmetric_range

__all__ = [
    "Nudged", "RangeTracker", "batch_range", "ema_update", "fake_quant", "fake_quant_gradient",
    "nudge", "nudged_qparams", "symmetric_range",
]

"""Fake quantization and quantization-aware training.

The NumPy reference op (fake_quant) and range tracking (ranges) need only NumPy. With PyTorch
installed (the optional QAT extra), ``prepare`` (a model for training) and ``export_qdq`` (the
trained model as QDQ ONNX, for frontends/onnx_qdq.py) are here too.
"""

from importlib.util import find_spec

from .fake_quant import Nudged, fake_quant, fake_quant_gradient, nudge, nudged_qparams
from .ranges import RangeTracker, batch_range, ema_update, minmax_update, symmetric_range

__all__ = [
    "Nudged", "RangeTracker", "batch_range", "ema_update", "fake_quant", "fake_quant_gradient",
    "minmax_update", "nudge", "nudged_qparams", "symmetric_range",
]

if find_spec("torch") is not None:
    from .export import export_qdq
    from .prepare import prepare

    __all__ += ["export_qdq", "prepare"]

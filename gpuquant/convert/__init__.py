"""Float graph + calibrated ranges -> integer model."""

from .api import quantize_model
from .converter import convert

__all__ = ["convert", "quantize_model"]

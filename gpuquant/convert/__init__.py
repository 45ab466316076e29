"""Float graph + calibrated ranges -> integer model."""

from .converter import convert

__all__ = ["convert"]

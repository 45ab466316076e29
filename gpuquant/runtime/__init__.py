"""Running integer models: the node-by-node executor and the inference session."""

from .executor import execute

__all__ = ["execute"]

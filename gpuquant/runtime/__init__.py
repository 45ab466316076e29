"""Running integer models: the node-by-node executor and the inference session."""

from .executor import execute
from .session import InferenceSession, NodeArg

__all__ = ["InferenceSession", "NodeArg", "execute"]

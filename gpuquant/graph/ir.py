"""The float graph: what a frontend produces and the float executor, calibration and the
converter consume. Operators keep ONNX semantics and names (NCHW activations, ONNX attributes),
whichever file format they came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TensorInfo:
    """A graph input or output: name, shape (None for a dynamic dimension), NumPy dtype name."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"


@dataclass
class Node:
    """One operator: ONNX op type, unique name, input/output tensor names, attributes.

    An empty string in ``inputs`` is an omitted optional input, as in ONNX.
    """

    op_type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """Topologically sorted nodes plus constant tensors (weights) by name.

    ``shapes`` maps tensor names (graph inputs, node outputs) to their static shapes as far as
    they are known (None for a dynamic dimension, e.g. the batch); a tensor may be missing.
    """

    name: str
    nodes: list[Node]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    opset: int = 13
    shapes: dict[str, tuple[int | None, ...]] = field(default_factory=dict)

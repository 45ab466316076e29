"""Static shapes of every tensor of a float graph, by running it once on a batch of zeros."""

from __future__ import annotations

import numpy as np

from ..graph.executor import run_graph
from ..graph.ir import Graph


def infer_shapes(graph: Graph) -> dict[str, tuple[int | None, ...]]:
    """Shape of each graph input and node output; the first dimension is None when some graph
    input has a dynamic batch. Other dynamic input dimensions are taken as 1."""
    feeds = {
        t.name: np.zeros(tuple(1 if d is None else d for d in t.shape), dtype=t.dtype)
        for t in graph.inputs
    }
    values = run_graph(graph, feeds, keep=True)
    dynamic = any(t.shape and t.shape[0] is None for t in graph.inputs)
    shapes = {}
    for name, value in values.items():
        shape = tuple(int(d) for d in np.shape(value))
        shapes[name] = (None,) + shape[1:] if dynamic and shape else shape
    return shapes

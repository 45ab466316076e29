"""Static shapes of every tensor of a float graph, by running it once on a batch of zeros."""

from __future__ import annotations

import numpy as np

from ..graph.executor import run_graph
from ..graph.ir import Graph


def infer_shapes(graph: Graph) -> dict[str, tuple[int | None, ...]]:
    """Shape of each graph input and node output, the first dimension (the batch, as the float
    executor treats it) None. Other dynamic input dimensions are taken as 1."""
    feeds = {
        t.name: np.zeros(tuple(1 if d is None else d for d in t.shape), dtype=t.dtype)
        for t in graph.inputs
    }
    values = run_graph(graph, feeds, keep=True)
    shapes = {}
    for name, value in values.items():
        shape = tuple(int(d) for d in np.shape(value))
        shapes[name] = (None,) + shape[1:] if shape else shape
    return shapes

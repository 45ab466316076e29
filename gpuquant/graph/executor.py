"""Float32 NumPy executor of a float graph (graph/ir.py), NCHW, ops from graph/float_ops.py.

The first dimension of every graph input is the batch: it may differ from the declared one;
every other dimension, the rank and the dtype must match the declaration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ShapeError, UnsupportedOpError
from .batches import batches_of
from .float_ops import REGISTRY
from .ir import Graph, Node


def run_node(node: Node, inputs: Sequence[np.ndarray | None]) -> np.ndarray:
    """Output of one node given its input arrays (None for an omitted optional input).

    Raises UnsupportedOpError for an op without a float implementation and ShapeError when the
    op rejects its inputs, naming the node and the input shapes.
    """
    fn = REGISTRY.get(node.op_type)
    if fn is None:
        raise UnsupportedOpError(
            f"node {node.name!r}: op {node.op_type} has no float implementation"
        )
    try:
        return fn(node.attrs, *inputs)
    except (ValueError, IndexError, TypeError) as exc:
        shapes = [None if v is None else tuple(v.shape) for v in inputs]
        raise ShapeError(
            f"node {node.name!r} ({node.op_type}) failed on input shapes {shapes}: {exc}"
        ) from exc


def check_feeds(graph: Graph, feeds: dict[str, np.ndarray]) -> None:
    """Raise ShapeError unless ``feeds`` has exactly the graph inputs, as NumPy arrays, with
    matching rank, dtype and non-batch dimensions (the message names the input, expected and
    got)."""
    for name, value in feeds.items():
        if not isinstance(value, np.ndarray):
            raise ShapeError(f"input {name!r}: expected a NumPy array, got {type(value).__name__}")
    check_input_values(graph.inputs, feeds, "graph")


def check_input_values(specs: Sequence, feeds: Mapping[str, np.ndarray], owner: str) -> None:
    """``check_feeds`` over input specs (``name``, ``shape`` with None for any size, ``dtype``)
    of a ``owner`` ("graph", "model"): every value an array (NumPy or CuPy: ``shape`` and a
    NumPy ``dtype``) of the spec's dtype, rank and non-batch dimensions, no input missing or
    unknown."""
    expected = {t.name: t for t in specs}
    for name in feeds:
        if name not in expected:
            raise ShapeError(f"unknown input {name!r}; the {owner}'s inputs are {list(expected)}")
    for name, info in expected.items():
        if name not in feeds:
            raise ShapeError(f"missing input {name!r} (shape {info.shape}, {info.dtype})")
        value = feeds[name]
        if not isinstance(getattr(value, "dtype", None), np.dtype) or not hasattr(value, "shape"):
            raise ShapeError(f"input {name!r}: expected an array, got {type(value).__name__}")
        if value.dtype != np.dtype(info.dtype):
            raise ShapeError(f"input {name!r}: expected dtype {info.dtype}, got {value.dtype}")
        if value.ndim != len(info.shape) or any(
            d is not None and d != g for d, g in zip(info.shape[1:], value.shape[1:])
        ):
            raise ShapeError(
                f"input {name!r}: expected shape {info.shape} (any batch), got {value.shape}"
            )


def _last_uses(graph: Graph) -> dict[str, int]:
    last: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for name in node.inputs:
            last[name] = i
    return last


def run_graph(
    graph: Graph,
    feeds: dict[str, np.ndarray],
    outputs: list[str] | None = None,
    keep: bool = False,
) -> dict[str, np.ndarray]:
    """Run ``graph`` on ``feeds`` and return ``outputs`` (default: the graph outputs) by name.

    With ``keep=True`` every graph input and node output is returned as well. Tensors that no
    later node needs are freed as the run goes, unless kept.
    """
    check_feeds(graph, feeds)
    wanted = [t.name for t in graph.outputs] if outputs is None else list(outputs)
    produced = {t.name for t in graph.inputs} | {o for n in graph.nodes for o in n.outputs}
    for name in wanted:
        if name not in produced and name not in graph.initializers:
            raise ShapeError(f"requested output {name!r} is not a tensor of the graph")
    env: dict[str, np.ndarray] = dict(feeds)
    last = _last_uses(graph)
    pinned = set(wanted)
    for i, node in enumerate(graph.nodes):
        args = [
            None if name == "" else env[name] if name in env else graph.initializers[name]
            for name in node.inputs
        ]
        result = run_node(node, args)
        env[node.outputs[0]] = result
        if not keep:
            for name in node.inputs:
                if last.get(name) == i and name not in pinned:
                    env.pop(name, None)
    if keep:
        return env
    return {name: env[name] if name in env else graph.initializers[name] for name in wanted}


def run_graph_batched(
    graph: Graph,
    feeds: dict[str, np.ndarray],
    batch_size: int,
    outputs: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """``run_graph`` over slices of ``batch_size`` along the first axis, outputs concatenated."""
    check_feeds(graph, feeds)
    parts: dict[str, list[np.ndarray]] = {}
    for chunk in batches_of(feeds, batch_size):
        for name, value in run_graph(graph, chunk, outputs).items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}

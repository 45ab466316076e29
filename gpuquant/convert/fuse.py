"""Fuse Relu, Clip(0, 6) (ReLU6) and Clip(a, b) into the Conv/Gemm/MatMul/Add/Sub/Mul before them.

A fused activation narrows the producer's clamp bounds (ops/requant.py ``activation_bounds``)
and the producer then writes the activation's output tensor directly, so the calibrated range
of that tensor (post-activation) sets the output's parameters. Fusion needs the producer's
output to feed only the activation and not be a graph output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..graph.ir import Graph, Node
from .graph_utils import consumers, replace_nodes

FUSABLE_PRODUCERS = ("Conv", "Gemm", "MatMul", "Add", "Sub", "Mul")


@dataclass(frozen=True)
class Activation:
    """A fused activation: ``kind`` for ``activation_bounds``, and the nodes it replaced."""

    kind: str  # "relu", "relu6" or "clip"
    clip_min: float | None
    clip_max: float | None
    node: Node  # the original activation node
    pre_output: str  # the producer's original output tensor


def activation_of(node: Node) -> tuple[str, float | None, float | None] | None:
    """``(kind, min, max)`` of a Relu or Clip node, None for any other node."""
    if node.op_type == "Relu":
        return "relu", None, None
    if node.op_type != "Clip":
        return None
    lo = float(node.attrs.get("min", -math.inf))
    hi = float(node.attrs.get("max", math.inf))
    if lo == 0.0 and hi == 6.0:
        return "relu6", None, None
    if lo == 0.0 and hi == math.inf:
        return "relu", None, None
    return "clip", (lo if math.isfinite(lo) else None), (hi if math.isfinite(hi) else None)


def fuse_activations(
    graph: Graph, exclude: frozenset[str] = frozenset()
) -> tuple[Graph, dict[str, Activation]]:
    """A copy of ``graph`` with activations fused, and producer node name -> its Activation.

    Nodes named in ``exclude`` take part in no fusion."""
    users = consumers(graph)
    producers = {out: node for node in graph.nodes for out in node.outputs}
    outputs = {o.name for o in graph.outputs}
    replaced: dict[str, Node | None] = {}
    fused: dict[str, Activation] = {}
    for node in graph.nodes:
        act = activation_of(node)
        if act is None or not node.inputs or node.name in exclude:
            continue
        pre = node.inputs[0]
        producer = producers.get(pre)
        if (
            producer is None
            or producer.op_type not in FUSABLE_PRODUCERS
            or producer.name in exclude
            or producer.name in fused
            or len(users.get(pre, [])) != 1
            or pre in outputs
        ):
            continue
        fused[producer.name] = Activation(act[0], act[1], act[2], node, pre)
        replaced[producer.name] = Node(
            producer.op_type, producer.name, list(producer.inputs), list(node.outputs),
            dict(producer.attrs),
        )
        replaced[node.name] = None
    return replace_nodes(graph, replaced, graph.initializers), fused

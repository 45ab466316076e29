"""Small queries and rewrites on float graphs shared by the conversion passes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..graph.ir import Graph, Node


def consumers(graph: Graph) -> dict[str, list[Node]]:
    """Tensor name -> the nodes that read it."""
    users: dict[str, list[Node]] = {}
    for node in graph.nodes:
        for name in node.inputs:
            if name:
                users.setdefault(name, []).append(node)
    return users


def replace_nodes(
    graph: Graph, replaced: dict[str, Node | None], initializers: dict[str, np.ndarray]
) -> Graph:
    """A copy of ``graph`` where each node named in ``replaced`` becomes its value (None: dropped)
    and initializers no remaining node reads are dropped."""
    nodes = [n for n in (replaced.get(n.name, n) for n in graph.nodes) if n is not None]
    used = {name for n in nodes for name in n.inputs} | {o.name for o in graph.outputs}
    inits = {k: v for k, v in initializers.items() if k in used}
    return replace(graph, nodes=nodes, initializers=inits)

"""Fold inference BatchNormalization into the Conv or Gemm that feeds it.

``y = (conv(x, w) + b - mean) * g / sqrt(var + eps) + beta`` is the conv with
``w'[o] = w[o] * f[o]`` and ``b'[o] = (b[o] - mean[o]) * f[o] + beta[o]``,
``f = g / sqrt(var + eps)``, computed in float64 and stored as float32. A Gemm folds the same
way per output column. A BatchNormalization whose input is used elsewhere, or whose producer
is not a Conv/Gemm with constant weights, is left as it is.
"""

from __future__ import annotations

import numpy as np

from ..graph.ir import Graph, Node
from .graph_utils import consumers, replace_nodes


def _foldable(graph: Graph, producer: Node, bn: Node, users: dict[str, list[Node]]) -> bool:
    if producer.op_type not in ("Conv", "Gemm") or len(users.get(bn.inputs[0], [])) != 1:
        return False
    if any(o.name == bn.inputs[0] for o in graph.outputs):
        return False
    if not all(name in graph.initializers for name in bn.inputs[1:5]):
        return False
    if producer.inputs[1] not in graph.initializers:
        return False
    bias = producer.inputs[2] if len(producer.inputs) > 2 else ""
    if bias and bias not in graph.initializers:
        return False
    if producer.op_type == "Gemm":
        return not producer.attrs.get("transA", 0) and producer.attrs.get("beta", 1.0) == 1.0
    return True


def fold_batchnorm(graph: Graph, exclude: frozenset[str] = frozenset()) -> Graph:
    """A copy of ``graph`` with every foldable BatchNormalization merged into its producer;
    nodes named in ``exclude`` are left alone."""
    users = consumers(graph)
    producers = {out: node for node in graph.nodes for out in node.outputs}
    inits = dict(graph.initializers)
    replaced: dict[str, Node | None] = {}
    for bn in graph.nodes:
        if bn.op_type != "BatchNormalization" or bn.name in exclude:
            continue
        producer = producers.get(bn.inputs[0])
        if (
            producer is None
            or producer.name in replaced
            or producer.name in exclude
            or not _foldable(graph, producer, bn, users)
        ):
            continue
        g, beta, mean, var = (inits[n].astype(np.float64) for n in bn.inputs[1:5])
        f = g / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
        w = inits[producer.inputs[1]].astype(np.float64)
        if producer.op_type == "Conv":
            w = w * f.reshape((-1,) + (1,) * (w.ndim - 1))
        elif producer.attrs.get("transB", 0):
            w = w * f[:, None] * float(producer.attrs.get("alpha", 1.0))
        else:
            w = w * f[None, :] * float(producer.attrs.get("alpha", 1.0))
        bias_name = producer.inputs[2] if len(producer.inputs) > 2 else ""
        b = inits[bias_name].astype(np.float64) if bias_name else np.zeros_like(f)
        w_name, b_name = f"{producer.name}/folded_weight", f"{producer.name}/folded_bias"
        inits[w_name] = w.astype(np.float32)
        inits[b_name] = ((b - mean) * f + beta).astype(np.float32)
        attrs = dict(producer.attrs)
        if producer.op_type == "Gemm":
            attrs["alpha"] = 1.0
        replaced[producer.name] = Node(
            producer.op_type, producer.name, [producer.inputs[0], w_name, b_name],
            list(bn.outputs), attrs,
        )
        replaced[bn.name] = None
    return replace_nodes(graph, replaced, inits)

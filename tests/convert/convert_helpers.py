"""Small hand-built float graphs and calibration by the float executor, for converter tests."""

import numpy as np

from gpuquant.backends.numpy import NumpyBackend
from gpuquant.graph.executor import run_graph
from gpuquant.graph.ir import Graph, Node, TensorInfo
from gpuquant.runtime.executor import execute


def graph(nodes, inputs, outputs, initializers=None, name="g"):
    """``inputs``/``outputs``: {name: shape}; nodes: (op_type, name, inputs, outputs, attrs)."""
    return Graph(
        name=name,
        nodes=[Node(op, n, list(i), list(o), dict(a)) for op, n, i, o, a in nodes],
        inputs=[TensorInfo(k, tuple(v)) for k, v in inputs.items()],
        outputs=[TensorInfo(k, tuple(v)) for k, v in outputs.items()],
        initializers={k: np.asarray(v, dtype=np.float32) for k, v in (initializers or {}).items()},
    )


def ranges_of(g, feeds):
    """Min/max of every tensor over one float run: an independent calibration."""
    env = run_graph(g, feeds, keep=True)
    return {k: (float(v.min()), float(v.max())) for k, v in env.items()}


def run_both(g, model, feeds):
    """(float outputs, integer outputs on the NumPy backend) by output name."""
    f = run_graph(g, feeds)
    q = execute(model, feeds, NumpyBackend())
    return f, {k: np.asarray(v) for k, v in q.items()}


def output_scale(model, name):
    return float(model.tensors[name + ":q"].qparams.scale[0])

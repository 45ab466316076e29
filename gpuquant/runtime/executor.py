"""Run an integer model: walk its nodes in order and dispatch each to the backend.

Every tensor lives in the backend's own arrays. ``"float"`` nodes (integer/model.py) run on the
host through the float executor's ``run_node`` in float32 with ONNX semantics; their inputs are
copied from the backend and their one output copied back. Intermediate tensors are dropped after their last use
unless ``keep`` is set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import GpuquantError, ModelFormatError, ShapeError
from ..graph.executor import run_node
from ..integer.model import IntegerModel, IntegerNode

Array = Any


def resolve_reshape(in_shape: Sequence[int], shape: Sequence[int], where: str = "") -> tuple[int, ...]:
    """ONNX Reshape target: 0 copies the input dimension at that index, one -1 is inferred."""
    out = [int(in_shape[i]) if int(d) == 0 else int(d) for i, d in enumerate(shape)]
    total = int(np.prod(in_shape, dtype=np.int64))
    if out.count(-1) > 1:
        raise ShapeError(f"{where}: reshape target {list(shape)} has more than one -1")
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise ShapeError(f"{where}: cannot reshape {tuple(in_shape)} to {list(shape)}")
        out[out.index(-1)] = total // known
    if int(np.prod(out, dtype=np.int64)) != total:
        raise ShapeError(f"{where}: cannot reshape {tuple(in_shape)} to {list(shape)}")
    return tuple(out)


def _float_node(backend, node: IntegerNode, args: list[Array]) -> list[Array]:
    host = [None if a is None else np.asarray(backend.to_numpy(a)) for a in args]
    return [backend.asarray(run_node(node.params, host))]


def _reshape(backend, node: IntegerNode, args: list[Array]) -> list[Array]:
    x = args[0]
    shape = resolve_reshape(x.shape, node.params["shape"], f"node {node.name!r}")
    return [backend.reshape(x, shape)]


def _pad(backend, node: IntegerNode, args: list[Array]) -> list[Array]:
    pads = [tuple(int(v) for v in p) for p in node.params["pads"]]
    return [backend.pad(args[0], pads, int(node.params["value"]))]


DISPATCH: dict[str, Callable[[Any, IntegerNode, list[Array]], list[Array]]] = {
    "gemm": lambda b, n, a: [b.gemm(a[0], n.params)],
    "matmul": lambda b, n, a: [b.matmul(a[0], a[1], n.params)],
    "conv2d": lambda b, n, a: [b.conv2d(a[0], n.params)],
    "max_pool2d": lambda b, n, a: [b.max_pool2d(a[0], n.params)],
    "avg_pool2d": lambda b, n, a: [b.avg_pool2d(a[0], n.params)],
    "mean": lambda b, n, a: [b.mean(a[0], n.params)],
    "add": lambda b, n, a: [b.add(a[0], a[1], n.params)],
    "mul": lambda b, n, a: [b.mul(a[0], a[1], n.params)],
    "concat": lambda b, n, a: [b.concat(list(a), n.params)],
    "lookup": lambda b, n, a: [b.lookup(a[0], n.params)],
    "quantize": lambda b, n, a: [b.quantize(a[0], n.params)],
    "dequantize": lambda b, n, a: [b.dequantize(a[0], n.params)],
    "transpose": lambda b, n, a: [b.transpose(a[0], [int(p) for p in n.params["perm"]])],
    "reshape": _reshape,
    "pad": _pad,
    "pair_lookup": lambda b, n, a: [b.pair_lookup(a[0], a[1], n.params)],
    "avg_pool2d_float": lambda b, n, a: [b.avg_pool2d_float(a[0], n.params)],
    "softmax": lambda b, n, a: [b.softmax(a[0], n.params)],
    "softmax_float": lambda b, n, a: [b.softmax_float(a[0], n.params)],
    "float": _float_node,
}


def check_fixed_batch(model: IntegerModel, feeds: Mapping[str, Any]) -> None:
    """A model with ``metadata["fixed_batch"]`` (integer/model.py) runs only at the leading
    dimensions its inputs declare: ShapeError naming the input, both shapes and the reason."""
    reason = model.metadata.get("fixed_batch")
    if not reason:
        return
    for spec in model.inputs:
        shape = tuple(getattr(feeds.get(spec.name), "shape", ()))
        if spec.shape and shape and spec.shape[0] is not None and shape[0] != spec.shape[0]:
            raise ShapeError(
                f"input {spec.name!r} has shape {shape}, but model {model.name!r} runs only at "
                f"its declared batch {spec.shape[0]} (input shape {tuple(spec.shape)}): {reason}"
            )


def _last_uses(model: IntegerModel) -> dict[str, int]:
    last: dict[str, int] = {}
    for i, node in enumerate(model.nodes):
        for name in node.inputs:
            last[name] = i
    return last


def execute(
    model: IntegerModel,
    feeds: Mapping[str, Any],
    backend,
    keep: bool = False,
) -> dict[str, Array]:
    """Run ``model`` on ``backend`` and return its outputs (every tensor if ``keep``).

    ``feeds`` maps each model input name to an array in the model's input layout and dtype; the
    returned arrays are the backend's own. ``model.constants`` are loaded into the backend first.
    Raises ShapeError for a missing input, an input at another batch than a fixed-batch model
    declares, or a node whose kernel rejects its inputs (naming the node and the input shapes),
    and ModelFormatError for a node whose op or inputs are unknown.
    """
    env: dict[str, Array] = {name: backend.asarray(c) for name, c in model.constants.items()}
    for spec in model.inputs:
        if spec.name not in feeds:
            raise ShapeError(f"missing input {spec.name!r}; model inputs: "
                             f"{[s.name for s in model.inputs]}")
        env[spec.name] = backend.asarray(feeds[spec.name])
    check_fixed_batch(model, env)
    keep_names = {spec.name for spec in model.outputs}
    last = {} if keep else _last_uses(model)
    for i, node in enumerate(model.nodes):
        run = DISPATCH.get(node.op)
        if run is None:
            raise ModelFormatError(f"node {node.name!r}: unknown op {node.op!r}")
        missing = [n for n in node.inputs if n and n not in env]
        if missing:
            raise ModelFormatError(f"node {node.name!r} ({node.op}): inputs {missing} not computed")
        args = [env[n] if n else None for n in node.inputs]
        try:
            results = run(backend, node, args)
        except GpuquantError:
            raise
        except (ValueError, TypeError, IndexError) as exc:
            shapes = [None if a is None else tuple(a.shape) for a in args]
            raise ShapeError(
                f"node {node.name!r} ({node.op}) failed on input shapes {shapes}: {exc}"
            ) from exc
        for name, value in zip(node.outputs, results):
            env[name] = value
        if not keep:
            for name in node.inputs:
                if last.get(name) == i and name not in keep_names:
                    env.pop(name, None)
    if keep:
        return env
    return {spec.name: env[spec.name] for spec in model.outputs}

"""Float ONNX models (opsets 11-21) into the float graph IR (graph/ir.py).

What ``load_onnx`` does, in order:

1. parse the model; a missing, empty, corrupt or truncated file is a ModelFormatError naming
   the path and the parser's reason, and so is a gpuquant or TFLite integer model (told apart by
   content as ``gpuquant.load`` does, loader.model_kind);
2. sort the nodes topologically (stable: a sorted graph keeps its order), checking that node
   names are unique (unnamed nodes become ``OpType_index``), each tensor has one producer and
   every input is produced; then run onnx.checker;
3. infer static shapes with ``onnx.shape_inference`` (data propagation on), the first dimension
   of each graph input made symbolic so that the batch is None and is never frozen into
   constants;
4. normalise each node so consumers see one form (the attribute list in graph/float_ops.py):
   Clip bounds, Reshape shape, ReduceMean/Squeeze/Unsqueeze axes, Pad pads and value, Slice
   bounds move from constant inputs into attributes; Conv/pool ``auto_pad`` becomes explicit
   ``pads``; defaults are written out; Dropout becomes Identity;
5. fold constants: Constant nodes and nodes whose inputs are all constant become initializers,
   Shape of a fully static tensor becomes a constant; shape arithmetic over a dynamic batch
   (``x.view(x.size(0), -1)`` as exported: Shape, Gather, Unsqueeze, Concat, ...) is tracked
   with unknown entries, and a Reshape fed by it gets an equivalent constant target (0 copies
   the batch, -1 infers the one other unknown);
6. bypass Identity nodes and drop nodes and initializers no graph output depends on;
7. record shapes in ``Graph.shapes``: ONNX's inferred ones, and where ONNX gave up (after a
   computed Reshape target) the shapes seen running each node on zeros with unknown dimensions
   1, then 2 (a dimension that changes is None).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper, helper, numpy_helper

from ..errors import GpuquantError, ModelFormatError, UnsupportedOpError
from ..graph.executor import run_node
from ..graph.float_ops import REGISTRY
from ..graph.ir import Graph, Node, TensorInfo
from ..loader import model_kind

MIN_OPSET, MAX_OPSET = 11, 21
QUANTIZED_OPS = frozenset({
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QGemm", "MatMulInteger",
    "ConvInteger",
})
_BATCH = "gpuquant_batch"
_NEED_FLOAT = ("gpuquant.quantize_model, `gpuquant quantize` and `gpuquant compare` need a float "
               "ONNX model")
_NOT_ONNX = {  # what loader.model_kind found instead of ONNX
    "gq": f"this is an integer gpuquant model, not an ONNX model; {_NEED_FLOAT}: run it as it "
          f"is with gpuquant.load(...) or `gpuquant run`",
    "tflite": f"this is a TFLite model, not an ONNX model; {_NEED_FLOAT}: run it as it is with "
              f"gpuquant.load(...) or `gpuquant run`",
    "zip": f"this is a zip archive without gpuquant's model.json (an .npz data file?), not an "
           f"ONNX model; {_NEED_FLOAT}",
}

ModelSource = str | os.PathLike | bytes | onnx.ModelProto


def _parse(model: ModelSource) -> tuple[onnx.ModelProto, str]:
    """The ModelProto and how to name it in errors."""
    if isinstance(model, onnx.ModelProto):
        proto, where = model, "model"
    else:
        if isinstance(model, bytes):
            data, where = model, "model bytes"
        else:
            where = os.fspath(model)
            kind = model_kind(where)
            if kind != "onnx":
                raise ModelFormatError(f"{where}: {_NOT_ONNX[kind]}")
            try:
                with open(where, "rb") as f:
                    data = f.read()
            except OSError as exc:
                raise ModelFormatError(f"{where}: cannot read the model file ({exc})") from exc
        try:
            proto = onnx.load_model_from_string(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise ModelFormatError(f"{where}: not a valid ONNX file ({exc})") from exc
        external = any(external_data_helper.uses_external_data(t) for t in proto.graph.initializer)
        if external and not isinstance(model, bytes):
            try:
                external_data_helper.load_external_data_for_model(proto, os.path.dirname(where))
            except (OSError, ValueError, onnx.checker.ValidationError) as exc:
                raise ModelFormatError(
                    f"{where}: cannot read external tensor data ({exc})"
                ) from exc
    return proto, where


def _check(proto: onnx.ModelProto, where: str) -> None:
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(f"{where}: invalid ONNX model ({reason})") from exc


def _opset(proto: onnx.ModelProto, where: str) -> int:
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise ModelFormatError(f"{where}: the model imports no default-domain (ai.onnx) opset")
    if not MIN_OPSET <= versions[0] <= MAX_OPSET:
        raise ModelFormatError(
            f"{where}: ONNX opset {versions[0]} is not supported "
            f"(supported: {MIN_OPSET}-{MAX_OPSET})"
        )
    return versions[0]


def _dims(type_proto: onnx.TypeProto) -> tuple[int | None, ...] | None:
    tensor = type_proto.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)


def _np_dtype(elem_type: int) -> str:
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name


def _infer_shapes(proto: onnx.ModelProto,
                  initializer_names: set[str]) -> tuple[dict[str, tuple], dict[str, str]]:
    """Static shapes and dtypes of the tensors ONNX can infer, the first dimension of graph
    inputs made symbolic."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    for vi in model.graph.input:
        if vi.name in initializer_names:
            continue
        dims = vi.type.tensor_type.shape.dim
        if len(dims):
            dims[0].Clear()
            dims[0].dim_param = _BATCH
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError) as exc:
        raise ModelFormatError(f"ONNX shape inference failed: {exc}") from exc
    shapes: dict[str, tuple] = {}
    dtypes: dict[str, str] = {}
    g = inferred.graph
    for vi in list(g.output) + list(g.input) + list(g.value_info):
        dims = _dims(vi.type)
        if dims is not None and vi.name not in initializer_names:
            shapes[vi.name] = dims
            if vi.type.tensor_type.elem_type:
                dtypes[vi.name] = _np_dtype(vi.type.tensor_type.elem_type)
    for vi in g.output:
        # A declared output shape may pin the batch; the inferred one is symbolic.
        dims = shapes.get(vi.name)
        if dims:
            shapes[vi.name] = (None,) + dims[1:]
    return shapes, dtypes


def _attr_value(attr: onnx.AttributeProto) -> Any:
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    return value


def _topological_order(proto_nodes: list[onnx.NodeProto], available: set[str]) -> list[int]:
    """Indices of the nodes in a topological order (stable), after checking that node names
    are unique, each tensor has one producer and every input is produced."""
    names: set[str] = set()
    producer: dict[str, str] = {}
    for i, p in enumerate(proto_nodes):
        name = _node_name(p, i)
        if name in names:
            raise ModelFormatError(f"duplicate node name {name!r}")
        names.add(name)
        for out in p.output:
            if out in available or out in producer:
                first = producer.get(out, "a graph input or initializer")
                raise ModelFormatError(
                    f"tensor {out!r} is produced twice: by {first} and by node {name!r}"
                )
            if out:
                producer[out] = repr(name)
    for i, p in enumerate(proto_nodes):
        for inp in p.input:
            if inp and inp not in available and inp not in producer:
                raise ModelFormatError(
                    f"node {_node_name(p, i)!r} ({p.op_type}) reads tensor {inp!r}, which "
                    f"nothing produces"
                )
    # Kahn's algorithm taking the lowest-index ready node first: a sorted graph keeps its order.
    consumers: dict[str, list[int]] = {}
    missing = []
    for i, p in enumerate(proto_nodes):
        deps = {x for x in p.input if x and x not in available}
        missing.append(len(deps))
        for x in deps:
            consumers.setdefault(x, []).append(i)
    ready = [i for i, m in enumerate(missing) if m == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for out in proto_nodes[i].output:
            for j in consumers.get(out, ()):
                missing[j] -= 1
                if missing[j] == 0:
                    heapq.heappush(ready, j)
    if len(order) < len(proto_nodes):
        stuck = next(i for i, m in enumerate(missing) if m > 0)
        p = proto_nodes[stuck]
        raise ModelFormatError(
            f"the graph has a cycle through node {_node_name(p, stuck)!r} ({p.op_type})"
        )
    return order


def _node_name(p: onnx.NodeProto, index: int) -> str:
    return p.name or f"{p.op_type}_{index}"


def _node(p: onnx.NodeProto, name: str) -> Node:
    attrs = {a.name: _attr_value(a) for a in p.attribute}
    if p.domain not in ("", "ai.onnx"):
        attrs["domain"] = p.domain
    return Node(p.op_type, name, list(p.input), list(p.output), attrs)


@dataclass
class _Context:
    opset: int
    constants: dict[str, np.ndarray]
    shapes: dict[str, tuple]
    dtypes: dict[str, str]
    consumed: set[str] = field(default_factory=set)
    partial: dict[str, np.ndarray] = field(default_factory=dict)

    def const(self, node: Node, index: int, what: str) -> np.ndarray | None:
        """Constant input ``index`` of ``node`` (None when omitted); run-time values raise."""
        if index >= len(node.inputs) or node.inputs[index] == "":
            return None
        name = node.inputs[index]
        if name not in self.constants:
            raise UnsupportedOpError(
                f"node {node.name!r} ({node.op_type}): {what} ({name!r}) must be a constant"
            )
        return self.constants[name]

    def rank(self, node: Node, tensor: str) -> int:
        if tensor in self.constants:
            return self.constants[tensor].ndim
        if tensor not in self.shapes:
            raise UnsupportedOpError(
                f"node {node.name!r} ({node.op_type}): the rank of {tensor!r} is unknown"
            )
        return len(self.shapes[tensor])

    def spatial(self, node: Node) -> tuple[int, ...]:
        tensor = node.inputs[0]
        dims = self.constants[tensor].shape if tensor in self.constants else self.shapes.get(tensor)
        if dims is None or any(d is None for d in dims[2:]):
            raise UnsupportedOpError(
                f"node {node.name!r} ({node.op_type}): auto_pad needs the static spatial shape "
                f"of {tensor!r}, which is {dims}"
            )
        return tuple(dims[2:])


def _drop_unused_outputs(node: Node, ctx: _Context, keep: int = 1) -> None:
    for extra in node.outputs[keep:]:
        if extra and extra in ctx.consumed:
            raise UnsupportedOpError(
                f"node {node.name!r} ({node.op_type}): output {extra!r} is used, only the first "
                f"output is supported"
            )
    node.outputs = node.outputs[:keep]


def _explicit_pads(node: Node, ctx: _Context, kernel: list[int], strides: list[int],
                   dilations: list[int]) -> list[int]:
    """``pads`` as [top, left, bottom, right] from ``pads`` or ``auto_pad``; SAME pads split
    ``total = max(0, (ceil(in / s) - 1) * s + (k - 1) * d + 1 - in)`` with the odd cell at the
    end (SAME_UPPER) or the beginning (SAME_LOWER)."""
    auto = node.attrs.pop("auto_pad", "NOTSET")
    pads = node.attrs.pop("pads", None)
    if auto in ("NOTSET", "VALID"):
        pads = list(pads) if pads is not None and auto == "NOTSET" else [0] * 2 * len(kernel)
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for size, k, s, d in zip(ctx.spatial(node), kernel, strides, dilations):
            total = max(0, (-(-size // s) - 1) * s + (k - 1) * d + 1 - size)
            small = total // 2
            begins.append(small if auto == "SAME_UPPER" else total - small)
            ends.append(total - begins[-1])
        pads = begins + ends
    else:
        raise ModelFormatError(f"node {node.name!r}: unknown auto_pad {auto!r}")
    return [int(p) for p in pads]


def _need_2d(node: Node, kernel: list[int]) -> None:
    if len(kernel) != 2:
        raise UnsupportedOpError(
            f"node {node.name!r} ({node.op_type}): only 2-D (NCHW) is supported, "
            f"kernel_shape is {kernel}"
        )


def _conv(node: Node, ctx: _Context) -> Node:
    a = node.attrs
    if "kernel_shape" in a:
        kernel = list(a["kernel_shape"])
    elif node.inputs[1] in ctx.constants:
        kernel = list(ctx.constants[node.inputs[1]].shape[2:])
    else:
        kernel = list(ctx.shapes.get(node.inputs[1], (None, None))[2:])
    _need_2d(node, kernel)
    a["kernel_shape"] = [int(k) for k in kernel]
    a["strides"] = list(a.get("strides", [1, 1]))
    a["dilations"] = list(a.get("dilations", [1, 1]))
    a["group"] = int(a.get("group", 1))
    a["pads"] = _explicit_pads(node, ctx, kernel, a["strides"], a["dilations"])
    return node


def _pool(node: Node, ctx: _Context) -> Node:
    a = node.attrs
    kernel = list(a["kernel_shape"])
    _need_2d(node, kernel)
    a["strides"] = list(a.get("strides", [1, 1]))
    dilations = list(a.get("dilations", [1, 1]))
    if node.op_type == "MaxPool":
        a["dilations"] = dilations
        a.pop("storage_order", None)
        _drop_unused_outputs(node, ctx)
    else:
        if dilations != [1, 1]:
            raise UnsupportedOpError(f"node {node.name!r}: AveragePool dilations {dilations}")
        a.pop("dilations", None)
        a["count_include_pad"] = int(a.get("count_include_pad", 0))
    a["ceil_mode"] = int(a.get("ceil_mode", 0))
    a["pads"] = _explicit_pads(node, ctx, kernel, a["strides"], dilations)
    return node


def _gemm(node: Node, ctx: _Context) -> Node:
    a = node.attrs
    a["alpha"] = float(a.get("alpha", 1.0))
    a["beta"] = float(a.get("beta", 1.0))
    a["transA"] = int(a.get("transA", 0))
    a["transB"] = int(a.get("transB", 0))
    return node


def _clip(node: Node, ctx: _Context) -> Node:
    a = node.attrs
    lo = ctx.const(node, 1, "the min bound")
    hi = ctx.const(node, 2, "the max bound")
    a["min"] = float(lo) if lo is not None else float(a.get("min", -np.inf))
    a["max"] = float(hi) if hi is not None else float(a.get("max", np.inf))
    node.inputs = node.inputs[:1]
    return node


def _batch_norm(node: Node, ctx: _Context) -> Node:
    if node.attrs.pop("training_mode", 0):
        raise UnsupportedOpError(f"node {node.name!r}: BatchNormalization in training mode")
    node.attrs.pop("momentum", None)
    node.attrs.pop("spatial", None)
    node.attrs["epsilon"] = float(node.attrs.get("epsilon", 1e-5))
    _drop_unused_outputs(node, ctx)
    return node


def _dropout(node: Node, ctx: _Context) -> Node:
    _drop_unused_outputs(node, ctx)
    return Node("Identity", node.name, node.inputs[:1], node.outputs)


def _axis_default(default: int) -> Callable[[Node, _Context], Node]:
    def normalise(node: Node, ctx: _Context) -> Node:
        node.attrs["axis"] = int(node.attrs.get("axis", default))
        return node

    return normalise


def _softmax(node: Node, ctx: _Context) -> Node:
    if ctx.opset >= 13:
        node.attrs["axis"] = int(node.attrs.get("axis", -1))
        return node
    rank = ctx.rank(node, node.inputs[0])
    axis = int(node.attrs.get("axis", 1)) % rank
    if axis != rank - 1:
        raise UnsupportedOpError(
            f"node {node.name!r}: opset-{ctx.opset} Softmax over the flattened axes {axis}.."
            f"{rank - 1} (only the last axis is supported)"
        )
    node.attrs["axis"] = -1
    return node


def _reshape(node: Node, ctx: _Context) -> Node:
    a = node.attrs
    a["allowzero"] = int(a.get("allowzero", 0))
    shape_in = node.inputs[1]
    if shape_in in ctx.constants:
        a["shape"] = [int(d) for d in ctx.constants[shape_in]]
    else:
        target = _runtime_reshape_target(node, ctx)
        if target is None:
            raise UnsupportedOpError(
                f"node {node.name!r}: Reshape target {shape_in!r} is computed at run time with "
                f"more than one unknown entry ({ctx.partial.get(shape_in)}), output shape "
                f"{ctx.shapes.get(node.outputs[0])}"
            )
        a["shape"] = target
    node.inputs = node.inputs[:1]
    return node


def _runtime_reshape_target(node: Node, ctx: _Context) -> list[int] | None:
    """A constant target equivalent to a computed one: its partly known value (unknown
    entries None) with an unknown first entry copied from a dynamic input batch (0) and one
    other unknown entry inferred (-1); else the inferred output shape if it has at most one
    unknown dimension (-1)."""
    value = ctx.partial.get(node.inputs[1])
    if value is not None and value.ndim == 1:
        target = list(value)
        in_shape = ctx.shapes.get(node.inputs[0])
        if target and target[0] is None and in_shape and in_shape[0] is None:
            target[0] = 0
        unknown = [i for i, d in enumerate(target) if d is None]
        if len(unknown) == 1 and -1 not in target:
            target[unknown[0]] = -1
        if all(d is not None for d in target):
            return [int(d) for d in target]
    target = ctx.shapes.get(node.outputs[0])
    if target is None or sum(d is None for d in target) > 1:
        return None
    return [-1 if d is None else int(d) for d in target]


def _axes(node: Node, ctx: _Context, input_version: int, required: bool) -> Node:
    """Axes from the attribute (opset < input_version) or constant input 1 into ``axes``."""
    if ctx.opset >= input_version:
        value = ctx.const(node, 1, "axes")
        node.attrs["axes"] = None if value is None else [int(v) for v in value]
        node.inputs = node.inputs[:1]
    else:
        node.attrs["axes"] = node.attrs.get("axes")
    axes = node.attrs["axes"]
    if axes is not None and len(axes) == 0:
        node.attrs["axes"] = None
    if required and node.attrs["axes"] is None:
        raise ModelFormatError(f"node {node.name!r} ({node.op_type}) has no axes")
    return node


def _squeeze(node: Node, ctx: _Context) -> Node:
    return _axes(node, ctx, 13, required=False)


def _unsqueeze(node: Node, ctx: _Context) -> Node:
    return _axes(node, ctx, 13, required=True)


def _reduce_mean(node: Node, ctx: _Context) -> Node:
    node.attrs["keepdims"] = int(node.attrs.get("keepdims", 1))
    node.attrs["noop_with_empty_axes"] = int(node.attrs.get("noop_with_empty_axes", 0))
    return _axes(node, ctx, 18, required=False)


def _pad(node: Node, ctx: _Context) -> Node:
    a = node.attrs
    pads = [int(p) for p in ctx.const(node, 1, "pads")]
    value = ctx.const(node, 2, "the constant value")
    axes = ctx.const(node, 3, "axes")
    if axes is not None:
        rank = ctx.rank(node, node.inputs[0])
        full = [0] * (2 * rank)
        for i, ax in enumerate(int(v) % rank for v in axes):
            full[ax], full[rank + ax] = pads[i], pads[len(axes) + i]
        pads = full
    a["pads"] = pads
    a["mode"] = a.get("mode", "constant")
    if a["mode"] not in ("constant", "reflect", "edge", "wrap"):
        raise UnsupportedOpError(f"node {node.name!r}: Pad mode {a['mode']!r}")
    a["value"] = float(value) if value is not None and value.size else 0.0
    node.inputs = node.inputs[:1]
    return node


def _slice(node: Node, ctx: _Context) -> Node:
    a = node.attrs
    a["starts"] = [int(v) for v in ctx.const(node, 1, "starts")]
    a["ends"] = [int(v) for v in ctx.const(node, 2, "ends")]
    axes = ctx.const(node, 3, "axes")
    steps = ctx.const(node, 4, "steps")
    a["axes"] = [int(v) for v in axes] if axes is not None else list(range(len(a["starts"])))
    a["steps"] = [int(v) for v in steps] if steps is not None else [1] * len(a["starts"])
    node.inputs = node.inputs[:1]
    return node


def _cast(node: Node, ctx: _Context) -> Node:
    node.attrs = {"to": _np_dtype(int(node.attrs["to"]))}
    return node


def _hard_sigmoid(node: Node, ctx: _Context) -> Node:
    node.attrs["alpha"] = float(node.attrs.get("alpha", 0.2))
    node.attrs["beta"] = float(node.attrs.get("beta", 0.5))
    return node


def _transpose(node: Node, ctx: _Context) -> Node:
    if "perm" not in node.attrs:
        node.attrs["perm"] = list(range(ctx.rank(node, node.inputs[0])))[::-1]
    return node


def _shape(node: Node, ctx: _Context) -> Node:
    node.attrs["start"] = int(node.attrs.get("start", 0))
    if "end" in node.attrs:
        node.attrs["end"] = int(node.attrs["end"])
    return node


def _as_is(node: Node, ctx: _Context) -> Node:
    return node


_NORMALISE: dict[str, Callable[[Node, _Context], Node]] = {
    "Conv": _conv,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _as_is,
    "Gemm": _gemm,
    "MatMul": _as_is,
    "Add": _as_is,
    "Sub": _as_is,
    "Mul": _as_is,
    "Div": _as_is,
    "Relu": _as_is,
    "Clip": _clip,
    "Sigmoid": _as_is,
    "HardSigmoid": _hard_sigmoid,
    "HardSwish": _as_is,
    "Softmax": _softmax,
    "BatchNormalization": _batch_norm,
    "Flatten": _axis_default(1),
    "Reshape": _reshape,
    "Concat": _axis_default(0),
    "Pad": _pad,
    "ReduceMean": _reduce_mean,
    "Transpose": _transpose,
    "Identity": _as_is,
    "Dropout": _dropout,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Shape": _shape,
    "Gather": _axis_default(0),
    "Slice": _slice,
    "Cast": _cast,
    "ConstantOfShape": _as_is,
}


def _constant_value(node: Node) -> np.ndarray:
    a = node.attrs
    if "value" in a:
        return np.asarray(a["value"])
    if "value_float" in a:
        return np.array(a["value_float"], dtype=np.float32)
    if "value_floats" in a:
        return np.array(a["value_floats"], dtype=np.float32)
    if "value_int" in a:
        return np.array(a["value_int"], dtype=np.int64)
    if "value_ints" in a:
        return np.array(a["value_ints"], dtype=np.int64)
    raise UnsupportedOpError(f"node {node.name!r}: Constant with attributes {sorted(a)}")


def _fold(node: Node, ctx: _Context) -> np.ndarray | None:
    """The node's value when it can be computed now, else None."""
    if node.op_type == "Shape":
        dims = ctx.shapes.get(node.inputs[0])
        if node.inputs[0] in ctx.constants:
            dims = ctx.constants[node.inputs[0]].shape
        if dims is None or any(d is None for d in dims):
            return None
        return np.array(dims, dtype=np.int64)[node.attrs["start"]: node.attrs.get("end")]
    if node.op_type not in REGISTRY or len(node.outputs) != 1:
        return None
    if not all(i == "" or i in ctx.constants for i in node.inputs):
        return None
    return run_node(node, [None if i == "" else ctx.constants[i] for i in node.inputs])


def _unknown_aware(fn: Callable[[Any, Any], Any]) -> np.ufunc:
    return np.frompyfunc(lambda a, b: None if a is None or b is None else fn(a, b), 2, 1)


_PARTIAL_ARITHMETIC = {
    "Add": _unknown_aware(lambda a, b: a + b),
    "Sub": _unknown_aware(lambda a, b: a - b),
    "Mul": _unknown_aware(lambda a, b: a * b),
    "Div": _unknown_aware(lambda a, b: int(a / b)),
}
_PARTIAL_STRUCTURAL = ("Gather", "Unsqueeze", "Squeeze", "Concat", "Slice")


def _partial_value(node: Node, ctx: _Context) -> np.ndarray | None:
    """Shape arithmetic with unknown dimensions: an object array of ints and None (unknown),
    for Shape of a partly known shape and shape ops over such values and constants."""
    if node.op_type == "Shape":
        dims = ctx.shapes.get(node.inputs[0])
        if dims is None:
            return None
        return np.array(list(dims), dtype=object)[node.attrs["start"]: node.attrs.get("end")]
    if not any(i in ctx.partial for i in node.inputs):
        return None
    if not all(i == "" or i in ctx.partial or i in ctx.constants for i in node.inputs):
        return None
    args = [
        None if i == "" else ctx.partial[i] if i in ctx.partial else ctx.constants[i].astype(object)
        for i in node.inputs
    ]
    if node.op_type in _PARTIAL_ARITHMETIC:
        return np.asarray(_PARTIAL_ARITHMETIC[node.op_type](args[0], args[1]), dtype=object)
    if node.op_type == "Cast" and np.issubdtype(np.dtype(node.attrs["to"]), np.integer):
        return args[0]
    if node.op_type in _PARTIAL_STRUCTURAL:
        if node.op_type == "Gather":
            args[1] = args[1].astype(np.int64)
        return np.asarray(REGISTRY[node.op_type](node.attrs, *args), dtype=object)
    return None


def _fill_shapes(node: Node, ctx: _Context) -> None:
    """Shapes ONNX could not infer (after a run-time Reshape target or Pad amounts): when a
    kept node's output shape is missing or has unknown dimensions after the first, run the
    node on its constants and on zeros with every unknown dimension 1, then 2; a dimension
    that differs between the two runs is None. Left as it is when an input shape is unknown or
    the node does not run on such inputs."""
    out = node.outputs[0]
    known = ctx.shapes.get(out)
    if known is not None and all(d is not None for d in known[1:]):
        return
    if node.op_type not in REGISTRY or node.op_type == "ConstantOfShape":
        return
    runs = []
    for fill in (1, 2):
        args = []
        for name in node.inputs:
            if name == "":
                args.append(None)
            elif name in ctx.constants:
                args.append(ctx.constants[name])
            elif name in ctx.shapes:
                dims = [fill if d is None else d for d in ctx.shapes[name]]
                args.append(np.zeros(dims, dtype=ctx.dtypes.get(name, "float32")))
            else:
                return
        try:
            with np.errstate(all="ignore"):
                runs.append(np.asarray(run_node(node, args)))
        except GpuquantError:
            return
    one, two = runs
    if one.ndim == two.ndim:
        ctx.shapes[out] = tuple(a if a == b else None for a, b in zip(one.shape, two.shape))
        ctx.dtypes[out] = one.dtype.name


def _bypass_identities(nodes: list[Node], graph_outputs: set[str]) -> list[Node]:
    """Remove Identity nodes whose output is not a graph output; consumers read the input."""
    alias: dict[str, str] = {}
    kept: list[Node] = []
    for node in nodes:
        node.inputs = [alias.get(i, i) for i in node.inputs]
        if node.op_type == "Identity" and node.outputs[0] not in graph_outputs:
            alias[node.outputs[0]] = node.inputs[0]
        else:
            kept.append(node)
    return kept


def _live(nodes: list[Node], outputs: set[str]) -> list[Node]:
    needed = set(outputs)
    kept: list[Node] = []
    for node in reversed(nodes):
        if any(o in needed for o in node.outputs):
            kept.append(node)
            needed.update(i for i in node.inputs if i)
    return kept[::-1]


def is_quantized_op(op_type: str) -> bool:
    """Whether ``op_type`` belongs to a quantized ONNX model: QDQ (QuantizeLinear,
    DequantizeLinear) or QOperator (QLinear*, QGemm, MatMulInteger, ConvInteger)."""
    return op_type in QUANTIZED_OPS or op_type.startswith("QLinear")


def load_float_onnx(model: ModelSource) -> Graph:
    """``load_onnx`` for a model about to be quantized: an ONNX model that is already quantized
    (a node for which ``is_quantized_op``) is a ModelFormatError saying so and that
    ``gpuquant.load`` / ``gpuquant run`` run it as it is."""
    proto, where = _parse(model)
    quantized = [(_node_name(p, i), p.op_type) for i, p in enumerate(proto.graph.node)
                 if is_quantized_op(p.op_type) and p.domain in ("", "ai.onnx", "com.microsoft")]
    if quantized:
        name, op = quantized[0]
        raise ModelFormatError(
            f"{where!r} is an already quantized ONNX model ({len(quantized)} quantized nodes, "
            f"e.g. {name!r}, a {op}): run it as it is with gpuquant.load(...) or "
            f"`gpuquant run`; gpuquant.quantize_model and `gpuquant quantize` take a float model"
        )
    return _graph(proto, where, False)


def load_onnx(model: ModelSource, allow_unsupported: bool = False) -> Graph:
    """Float graph of an ONNX model given as a path, the file's bytes or a ModelProto.

    Steps and normal forms: module docstring. Ops outside ``_NORMALISE`` raise
    UnsupportedOpError naming the op and node, unless ``allow_unsupported``, which keeps them
    with their raw ONNX attributes (the float executor then fails on them if it cannot run them).
    """
    return _graph(*_parse(model), allow_unsupported)


def _graph(proto: onnx.ModelProto, where: str, allow_unsupported: bool) -> Graph:
    opset = _opset(proto, where)
    g = proto.graph
    try:
        constants = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    except (ValueError, OSError) as exc:
        raise ModelFormatError(f"{where}: cannot read an initializer: {exc}") from exc
    inputs = [
        TensorInfo(vi.name, _dims(vi.type) or (), _np_dtype(vi.type.tensor_type.elem_type))
        for vi in g.input
        if vi.name not in constants
    ]
    order = _topological_order(list(g.node), {t.name for t in inputs} | set(constants))
    names = [_node_name(p, i) for i, p in enumerate(g.node)]
    if order != sorted(order):
        ordered = onnx.ModelProto()
        ordered.CopyFrom(proto)
        del ordered.graph.node[:]
        ordered.graph.node.extend(g.node[i] for i in order)
        proto, g = ordered, ordered.graph
        names = [names[i] for i in order]
    _check(proto, where)
    shapes, dtypes = _infer_shapes(proto, set(constants))
    nodes = [_node(p, name) for p, name in zip(g.node, names)]
    output_names = {vi.name for vi in g.output}
    ctx = _Context(opset, constants, shapes, dtypes)
    ctx.consumed = {i for n in nodes for i in n.inputs} | output_names
    kept: list[Node] = []
    for node in nodes:
        if node.op_type == "Constant" and "domain" not in node.attrs:
            constants[node.outputs[0]] = _constant_value(node)
            continue
        normalise = _NORMALISE.get(node.op_type) if "domain" not in node.attrs else None
        if normalise is None:
            if not allow_unsupported:
                domain = node.attrs.get("domain", "ai.onnx")
                raise UnsupportedOpError(
                    f"node {node.name!r}: op {domain}:{node.op_type} is not supported"
                )
            kept.append(node)
            continue
        node = normalise(node, ctx)
        value = _fold(node, ctx)
        if value is None:
            kept.append(node)
            _fill_shapes(node, ctx)
            partial = _partial_value(node, ctx)
            if partial is not None:
                ctx.partial[node.outputs[0]] = partial
        else:
            constants[node.outputs[0]] = value
    kept = _live(_bypass_identities(kept, output_names), output_names)
    used = {i for n in kept for i in n.inputs} | output_names
    outputs = [
        TensorInfo(
            vi.name,
            _dims(vi.type) or shapes.get(vi.name, ()),
            _np_dtype(vi.type.tensor_type.elem_type),
        )
        for vi in g.output
    ]
    graph = Graph(
        name=g.name or "graph",
        nodes=kept,
        inputs=inputs,
        outputs=outputs,
        initializers={k: v for k, v in constants.items() if k in used},
        opset=opset,
    )
    live = {t.name for t in inputs} | {o for n in kept for o in n.outputs}
    graph.shapes = {k: v for k, v in shapes.items() if k in live}
    return graph

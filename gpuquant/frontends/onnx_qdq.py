"""QDQ ONNX models (QuantizeLinear/DequantizeLinear pairs) into an integer model, no calibration.

A QDQ model is a float model whose tensors pass through ``DequantizeLinear(QuantizeLinear(t))``
and whose weights are 8-bit initializers read through ``DequantizeLinear``. Import:

1. every ``DequantizeLinear`` of a constant (int8/uint8 weights, int32 biases; a constant
   ``QuantizeLinear`` of a float initializer is folded first, as ONNX defines it: round half to
   even, saturate) becomes the float initializer ``float32(q - zero_point) * scale`` and
   keeps its parameters under that initializer's name (the converter quantizes it back to
   the stored codes with them, or says why it cannot), as does the output of a layout op
   (Reshape, Transpose, ...) of it, which the float frontend folds into a constant. int32
   codes (biases) also travel as they are, moved by the layout ops like the values: float32
   holds an integer exactly only up to ``2**24`` in magnitude, so the converter takes a bias's
   codes from them, not from its float value;
2. every activation pair ``t -> QuantizeLinear -> DequantizeLinear -> t'`` is removed, readers
   of ``t'`` read ``t``, and ``t`` keeps the pair's scale and zero point (a pair that ends in a
   graph output renames ``t`` to the output's name); the output of a layout op of ``t``
   without a pair of its own takes them too;
3. the float model left is read by the float frontend (onnx_float.load_onnx) and converted
   (convert/converter.py) with those parameters as given, exactly: nothing is recomputed from
   ranges. uint8 activation parameters become the int8 ones with the same real values
   (``zero_point - 128``) when the integer model is int8.

Per-axis parameters follow a layout op to the output axis holding the same elements: through a
Transpose, ``perm.index(axis)``; through a Reshape, Flatten, Squeeze or Unsqueeze, the output
axis ``b`` with ``out_shape[b] == in_shape[axis]`` and ``prod(out_shape[:b]) ==
prod(in_shape[:axis])`` (then element ``i`` of the flat C-order data lies on index
``(i // prod(in_shape[axis+1:])) % in_shape[axis]`` of both); a layout op that spreads the
axis over several output axes, or merges it with others, is refused.

Bit widths below 8 in 8-bit containers (qat/export.py's ``gpuquant.num_bits`` metadata) narrow
each such tensor's parameters to its ``num_bits`` codes.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from ..convert.converter import convert
from ..errors import ModelFormatError, QuantizationError, UnsupportedOpError
from ..graph.ir import Graph
from ..integer.model import IntegerModel
from ..quant.params import QuantParams, dequantize, quantize, with_dtype
from .onnx_float import load_onnx

NUM_BITS_KEY = "gpuquant.num_bits"
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
ONNX_8BIT = {np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8"}
CONSTANT_DTYPES = {**ONNX_8BIT, np.dtype(np.int32): "int32"}
LAYOUT_OPS = ("Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose")

ModelSource = str | os.PathLike | bytes | onnx.ModelProto
Shape = tuple[int | str | None, ...]


def _load(model: ModelSource) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, bytes):
        return onnx.load_model_from_string(model)
    return onnx.load(os.fspath(model))


def _params(node: onnx.NodeProto, consts: dict[str, np.ndarray], dtype: np.dtype,
            shape: tuple[int, ...] | None = None,
            dtypes: dict[np.dtype, str] = ONNX_8BIT) -> QuantParams:
    """The node's scale/zero point as QuantParams (of one of ``dtypes``), per tensor or along
    ``axis``; with the quantized tensor's ``shape``, per-axis parameters must have one entry
    per index."""
    scale = consts.get(node.input[1])
    if scale is None:
        raise UnsupportedOpError(f"node {node.name!r}: scale {node.input[1]!r} is not a constant")
    if len(node.input) > 2 and node.input[2]:
        if node.input[2] not in consts:
            raise UnsupportedOpError(f"node {node.name!r}: zero point is not a constant")
        zp = consts[node.input[2]]
        dtype = zp.dtype
    else:
        zp = np.zeros(scale.shape, dtype)
    if np.dtype(dtype) not in dtypes:
        raise UnsupportedOpError(f"node {node.name!r}: {np.dtype(dtype).name} quantization "
                                 f"({', '.join(dtypes.values())} only)")
    axis = None
    if scale.size > 1 or scale.ndim == 1 and any(a.name == "axis" for a in node.attribute):
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if axis is None and scale.size != 1:
        raise ModelFormatError(f"node {node.name!r}: {scale.size} scales without an axis")
    if axis is not None and shape is not None and (
            not -len(shape) <= axis < len(shape) or shape[axis] != scale.size):
        raise ModelFormatError(f"node {node.name!r}: {scale.size} scales along axis {axis} of "
                               f"a tensor of shape {shape}")
    try:
        return QuantParams(scale.reshape(-1), zp.reshape(-1), dtypes[np.dtype(dtype)], axis)
    except QuantizationError as exc:
        raise ModelFormatError(f"node {node.name!r}: {exc}") from exc


def _constants(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    consts = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return consts


def _narrow(qp: QuantParams, bits: int) -> QuantParams:
    return QuantParams(qp.scale, qp.zero_point, qp.dtype, qp.axis, qp.narrow_range,
                       num_bits=bits)


def strip_qdq(
    model: ModelSource,
) -> tuple[onnx.ModelProto, dict[str, QuantParams], dict[str, np.ndarray]]:
    """The float model left after removing Q/DQ (module docstring, step 1-2), the parameters
    by tensor name (activations and dequantized constants) and the stored int32 codes by the
    name of the float constant they became."""
    proto = onnx.ModelProto()
    proto.CopyFrom(_load(model))
    g = proto.graph
    consts = _constants(proto)
    producer = {o: n for n in g.node for o in n.output}
    qparams: dict[str, QuantParams] = {}
    int32_codes: dict[str, np.ndarray] = {}
    rename: dict[str, str] = {}
    drop: set[int] = set()
    new_inits: dict[str, np.ndarray] = {}
    dequantized: dict[str, str] = {}  # 8-bit initializer -> its float initializer
    outputs = {o.name for o in g.output}
    for node in g.node:
        if node.op_type != "DequantizeLinear":
            continue
        src = node.input[0]
        q_node = producer.get(src)
        if src in consts or (q_node is not None and q_node.op_type == "QuantizeLinear"
                             and q_node.input[0] in consts):
            if src in consts:
                codes = consts[src]
            else:
                codes = quantize(consts[q_node.input[0]],
                                 _params(q_node, consts, np.uint8, consts[q_node.input[0]].shape))
                drop.add(id(q_node))
            qp = _params(node, consts, codes.dtype, codes.shape, CONSTANT_DTYPES)
            new_inits[node.output[0]] = dequantize(codes, qp)
            qparams[node.output[0]] = qp
            if qp.dtype == "int32":
                int32_codes[node.output[0]] = codes
            dequantized[src] = node.output[0]
            drop.add(id(node))
            continue
        if q_node is None or q_node.op_type != "QuantizeLinear":
            raise UnsupportedOpError(
                f"node {node.name!r}: DequantizeLinear of {src!r}, which is neither a constant "
                "nor a QuantizeLinear output (quantized model inputs are not supported)"
            )
        qp = _params(node, consts, np.uint8)
        qq = _params(q_node, consts, np.uint8)
        if not _same(qp, qq):
            raise ModelFormatError(f"Q/DQ pair {q_node.name!r}/{node.name!r} disagree on params")
        t = q_node.input[0]
        if node.output[0] in outputs:
            rename[t] = node.output[0]
            t = node.output[0]
        else:
            rename[node.output[0]] = t
        if t in qparams and not _same(qparams[t], qp):
            raise ModelFormatError(f"tensor {t!r} is quantized twice with different parameters")
        qparams[t] = qp
        drop.add(id(node))
        if all(id(n) in drop or src not in n.input for n in g.node if n is not node):
            drop.add(id(q_node))
    kept = [n for n in g.node if id(n) not in drop]
    for n in kept:
        if n.op_type in QDQ_OPS:
            raise UnsupportedOpError(f"node {n.name!r}: {n.op_type} outside a Q/DQ pair")
        n.input[:] = [rename.get(i, i) for i in n.input]
        n.output[:] = [rename.get(o, o) for o in n.output]
    del g.node[:]
    g.node.extend(kept)
    used = {i for n in kept for i in n.input}
    inits = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(inits)
    g.initializer.extend(numpy_helper.from_array(v.astype(np.float32), k)
                         for k, v in new_inits.items())
    for name, bits in _num_bits(proto).items():
        key = rename.get(name, dequantized.get(name, name))
        if key not in qparams:
            raise ModelFormatError(f"{NUM_BITS_KEY} names {name!r}, which is not quantized")
        qparams[key] = _narrow(qparams[key], bits)
    del g.value_info[:]
    _follow_layout_ops(kept, set(consts) | set(new_inits), qparams, int32_codes,
                       functools.cache(lambda: _shapes(proto)))
    return proto, qparams, int32_codes


def _follow_layout_ops(nodes: list[onnx.NodeProto], constants: set[str],
                       qparams: dict[str, QuantParams], codes: dict[str, np.ndarray],
                       shapes: Callable[[], dict[str, Shape]]) -> None:
    """Give the output of a layout op the parameters of its input: of a constant with
    parameters (which the float frontend folds into a new constant), and of an activation
    whose output has no Q/DQ pair of its own. The op moves values, so codes stay codes;
    per-axis parameters move to the output axis (module docstring). Stored ``codes`` go where
    the parameters go: transposed by a Transpose, else in the same (C) order, reshaped by
    load_qdq to the folded constant's shape. ``shapes`` gives the tensor shapes (inferred
    once, when per-axis parameters first meet a layout op)."""
    for n in nodes:
        src = n.input[0] if n.input else ""
        if n.op_type not in LAYOUT_OPS or src not in qparams or n.output[0] in qparams:
            continue
        constant = src in constants
        if constant and not all(i in constants for i in n.input[1:] if i):
            continue
        qp = qparams[src]
        if qp.axis is not None:
            qp = _moved_axis(n, qp, shapes().get(src), shapes().get(n.output[0]))
        qparams[n.output[0]] = qp
        if src in codes:
            codes[n.output[0]] = (np.transpose(codes[src], _perm(n, codes[src].ndim))
                                  if n.op_type == "Transpose" else codes[src])
        if constant:
            constants.add(n.output[0])


def _moved_axis(node: onnx.NodeProto, qp: QuantParams, in_shape: Shape | None,
                out_shape: Shape | None) -> QuantParams:
    """``qp`` (per axis) on the output of layout op ``node`` (module docstring); one scale
    along any axis is per tensor."""
    src, out = node.input[0], node.output[0]
    if node.op_type == "Identity":
        return qp
    if qp.scale.size == 1 and node.op_type != "Transpose":
        axis = None
    elif in_shape is None or out_shape is None:
        raise UnsupportedOpError(
            f"node {node.name!r} ({node.op_type}): tensor {src!r} has per-axis parameters "
            f"(axis {qp.axis}), and the shapes of {src!r} and {out!r} are not known")
    elif node.op_type == "Transpose":
        axis = _perm(node, len(in_shape)).index(qp.axis % len(in_shape))
    else:
        axis = _reshaped_axis(in_shape, qp.axis % len(in_shape), out_shape)
        if axis is None:
            raise UnsupportedOpError(
                f"node {node.name!r} ({node.op_type}): tensor {src!r} of shape "
                f"{_show(in_shape)} has {qp.scale.size} scales along axis {qp.axis}; no single "
                f"axis of {out!r} (shape {_show(out_shape)}) holds them, so its per-axis "
                "parameters cannot follow")
    return QuantParams(qp.scale, qp.zero_point, qp.dtype, axis, qp.narrow_range, qp.num_bits)


def _reshaped_axis(in_shape: Shape, axis: int, out_shape: Shape) -> int | None:
    """The axis ``b`` of ``out_shape`` with the elements of ``axis`` of ``in_shape``:
    ``out_shape[b] == in_shape[axis]`` and equal products of the dimensions before them
    (symbolic dimensions match by name); None if there is none, or if an unknown dimension
    precedes ``axis`` (its elements' place in the output cannot be known)."""
    before = _product(in_shape[:axis])
    if before is None:
        return None
    for b, d in enumerate(out_shape):
        if d == in_shape[axis] and isinstance(d, int) and _product(out_shape[:b]) == before:
            return b
    return None


def _product(dims: Shape) -> tuple[int, tuple[str, ...]] | None:
    """The product of ``dims`` as (integer part, sorted symbols); None if one is unknown."""
    if any(d is None for d in dims):
        return None
    return (math.prod(d for d in dims if isinstance(d, int)),
            tuple(sorted(d for d in dims if isinstance(d, str))))


def _perm(node: onnx.NodeProto, rank: int) -> list[int]:
    """A Transpose's ``perm``, by default the reversed axes."""
    perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
    return perm if perm else list(reversed(range(rank)))


def _show(shape: Shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _shapes(proto: onnx.ModelProto) -> dict[str, Shape]:
    """Tensor shapes by name, as ONNX shape inference gives them: a symbolic dimension by its
    name, an unknown one None."""
    try:
        g = onnx.shape_inference.infer_shapes(proto, data_prop=True).graph
    except (onnx.shape_inference.InferenceError, RuntimeError) as exc:
        raise ModelFormatError(f"ONNX shape inference failed: {exc}") from exc
    shapes: dict[str, Shape] = {t.name: tuple(t.dims) for t in g.initializer}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if vi.type.tensor_type.HasField("shape"):
            shapes[vi.name] = tuple(
                d.dim_value if d.HasField("dim_value") else d.dim_param or None
                for d in vi.type.tensor_type.shape.dim)
    return shapes


def _num_bits(proto: onnx.ModelProto) -> dict[str, int]:
    for prop in proto.metadata_props:
        if prop.key == NUM_BITS_KEY:
            return {k: int(v) for k, v in json.loads(prop.value).items()}
    return {}


def _same(a: QuantParams, b: QuantParams) -> bool:
    return (a.dtype == b.dtype and np.array_equal(a.scale, b.scale)
            and np.array_equal(a.zero_point, b.zero_point))


def load_qdq(
    model: ModelSource, activation_dtype: str = "int8"
) -> tuple[Graph, dict[str, QuantParams], dict[str, np.ndarray]]:
    """The float graph of a QDQ model, its given parameters (activations in
    ``activation_dtype``; constants, folded ones included, as stored) and the stored int32
    codes of its constants, each in its constant's shape."""
    proto, qparams, int32_codes = strip_qdq(model)
    graph = load_onnx(proto)
    constants = graph.initializers
    # int32 parameters are only a constant's; one the float frontend dropped (the input of a
    # folded Reshape, ...) is read by nothing
    acts = {k: with_dtype(v, activation_dtype) for k, v in qparams.items()
            if k not in constants and v.dtype != "int32"}
    weights = {k: v for k, v in qparams.items() if k in constants}
    codes = {k: v.reshape(np.shape(constants[k])) for k, v in int32_codes.items()
             if k in constants}
    return graph, {**acts, **weights}, codes


def import_qdq(
    model: ModelSource,
    *,
    activation_dtype: str = "int8",
    rounding: str = "gemmlowp",
    exclude: tuple[str, ...] = (),
) -> IntegerModel:
    """The integer model of a QDQ ONNX model, with the scales and zero points it carries."""
    graph, qparams, codes = load_qdq(model, activation_dtype)
    ranges = {name: _real_range(qp) for name, qp in qparams.items() if qp.axis is None}
    integer = convert(graph, ranges, activation_dtype=activation_dtype, rounding=rounding,
                      exclude=exclude, given_qparams=qparams, given_codes=codes)
    integer.metadata["source"] = {"format": "onnx qdq", "graph": graph.name}
    return integer


def _real_range(qp: QuantParams) -> tuple[float, float]:
    lo, hi = qp.bounds
    s, z = float(qp.scale[0]), int(qp.zero_point[0])
    return s * (lo - z), s * (hi - z)


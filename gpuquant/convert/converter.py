"""Float graph + calibrated ranges -> integer model (docs/quantization.md).

Passes: fold BatchNormalization (fold_bn.py), fuse Relu/ReLU6/Clip into their producers
(fuse.py), infer static shapes (shapes.py), then lower node by node (lower.py) into a Builder
that inserts quantize/dequantize/transpose where forms change (builder.py). A node without an
integer lowering, one whose lowering declines (KeepFloat, or an int32 overflow risk), and
every node named in ``exclude`` stays as a ``"float"`` node between dequantize and quantize;
``metadata["float_nodes"]`` says which and why. Graph outputs are dequantized to float32 in
ONNX order, so they line up with the float model's.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np

from ..errors import OverflowRiskError, QuantizationError
from ..graph.ir import Graph, Node
from ..integer.model import IntegerModel, TensorSpec
from ..quant.fixedpoint import ROUNDING_MODES
from ..quant.params import QuantParams
from .builder import FLOAT, Builder, KeepFloat
from .fold_bn import fold_batchnorm
from .fuse import Activation, fuse_activations
from .lower import LOWERINGS
from .shapes import infer_shapes

ACTIVATION_DTYPES = ("int8", "uint8")


def _emit_float(b: Builder, node: Node, reason: str) -> None:
    inputs = [b.need_float(name) if name else "" for name in node.inputs]
    outputs = [b.produce(name, FLOAT) if name else "" for name in node.outputs]
    b.emit("float", node.name, inputs, outputs, node)
    b.float_nodes.append({"name": node.name, "op_type": node.op_type, "reason": reason})


def _unfuse(node: Node, act: Activation) -> tuple[Node, Node]:
    """The producer with its original output, and the activation node it absorbed."""
    producer = Node(node.op_type, node.name, list(node.inputs), [act.pre_output], dict(node.attrs))
    return producer, act.node


LIST_ALL_NODES = 20


def check_exclude(graph: Graph, exclude: Iterable[str]) -> frozenset[str]:
    """The node names of ``exclude``; a name that is no node of ``graph`` raises
    QuantizationError listing the graph's node names (all up to LIST_ALL_NODES of them, else
    the closest ones to each unknown name, by containment and difflib, and their count)."""
    excluded = frozenset(exclude)
    names = [n.name for n in graph.nodes]
    unknown = sorted(excluded - set(names))
    if not unknown:
        return excluded
    if len(names) <= LIST_ALL_NODES:
        valid = f"the graph's nodes are {names}"
    else:
        close = []
        for name in unknown:
            close += [n for n in names if name.lower() in n.lower()]
            close += difflib.get_close_matches(name, names, n=5, cutoff=0.4)
        close = list(dict.fromkeys(close))[:10]
        valid = (f"closest node names: {close}; " if close else "") + \
            f"the graph has {len(names)} nodes"
    raise QuantizationError(f"exclude names nodes not in the graph: {unknown}; {valid}")


def _lower(b: Builder, node: Node, act: Activation | None, excluded: bool) -> None:
    reason = "excluded by the user"
    if not excluded:
        lowering = LOWERINGS.get(node.op_type)
        if lowering is None:
            reason = f"no integer kernel for {node.op_type}"
        else:
            try:
                lowering(b, node, act)
                return
            except (KeepFloat, OverflowRiskError) as exc:
                reason = str(exc)
            except QuantizationError as exc:
                raise QuantizationError(f"node {node.name!r} ({node.op_type}): {exc}") from exc
    if act is None:
        _emit_float(b, node, reason)
        return
    producer, activation = _unfuse(node, act)
    _emit_float(b, producer, reason)
    _emit_float(b, activation, f"its producer {node.name!r} stays in float")


def convert(
    graph: Graph,
    ranges: dict[str, tuple[float, float]],
    *,
    activation_dtype: str = "int8",
    per_channel: bool = True,
    rounding: str = "gemmlowp",
    exclude: Iterable[str] = (),
    name: str | None = None,
    given_qparams: dict[str, QuantParams] | None = None,
    given_codes: dict[str, np.ndarray] | None = None,
    input_means: dict[str, np.ndarray] | None = None,
) -> IntegerModel:
    """The integer model of ``graph`` with activation parameters from ``ranges`` (min, max).

    Weights: int8 symmetric narrow range, per output channel unless ``per_channel`` is False.
    Activations: asymmetric ``activation_dtype`` (int8 or uint8). Biases: int32 at scale
    ``s_in * s_w``. Requantization: ``rounding`` ("gemmlowp", "single", "float32_half_even").
    ``given_qparams`` (a QDQ model's parameters, by tensor name) are used exactly as given:
    activations' (per tensor, ``activation_dtype``) instead of their ranges; weight
    initializers' (int8 or uint8, any zero points, per output channel or per tensor) instead of
    the symmetric ones chosen here; biases' (int32, zero point 0, scale ``s_in * s_w``) for
    their codes; other constants' (per tensor, moved to ``activation_dtype`` with the same real
    values) instead of their own min/max. Parameters the kernels cannot take as they are raise
    QuantizationError naming the node and tensor.
    ``given_codes`` (a QDQ model's stored int32 codes, by constant name, in its shape): a bias
    with given int32 parameters takes its codes from these, exactly, rather than rounding its
    float value (float32 holds an integer exactly only up to ``2**24`` in magnitude).
    ``input_means`` (per-channel means of float tensors, calibrate_with_means): each Conv, Gemm
    and MatMul-by-constant layer whose input has one gets its bias corrected for the mean
    effect of weight rounding (docs/quantization.md, eq. 13; convert/weights.py); one whose
    bias codes are given raises QuantizationError, as stated codes are taken as they are.
    Raises QuantizationError for a tensor without a range or an unknown ``exclude`` name.
    """
    if activation_dtype not in ACTIVATION_DTYPES:
        raise QuantizationError(
            f"activation_dtype must be one of {ACTIVATION_DTYPES}, got {activation_dtype!r}"
        )
    if rounding not in ROUNDING_MODES:
        raise QuantizationError(f"rounding must be one of {ROUNDING_MODES}, got {rounding!r}")
    excluded = check_exclude(graph, exclude)
    folded, fused = fuse_activations(fold_batchnorm(graph, excluded), excluded)
    b = Builder(folded, ranges, infer_shapes(folded), activation_dtype, per_channel, rounding,
                given_qparams, given_codes, input_means)
    inputs = []
    for info in folded.inputs:
        b.produce(info.name, FLOAT)
        inputs.append(TensorSpec(info.name, tuple(info.shape), info.dtype,
                                 "NCHW" if len(info.shape) == 4 else None, None, info.name))
    b.tensors.update({t.name: t for t in inputs})
    for node in folded.nodes:
        _lower(b, node, fused.get(node.name), node.name in excluded)
    outputs = []
    for info in folded.outputs:
        b.need_float(info.name)
        outputs.append(b.tensors[info.name])
    return IntegerModel(
        name=name or graph.name,
        inputs=inputs,
        outputs=outputs,
        nodes=b.nodes,
        tensors=b.tensors,
        metadata={
            "source": {"graph": graph.name, "format": "float graph"},
            "converter": {
                "activation_dtype": activation_dtype,
                "per_channel": per_channel,
                "rounding": rounding,
                "bias_correction": input_means is not None,
                "exclude": sorted(excluded),
            },
            "float_nodes": b.float_nodes,
            "warnings": b.warnings,
            "op_counts": b.op_counts(),
        },
        constants=b.constants,
    )

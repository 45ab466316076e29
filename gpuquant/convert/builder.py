"""The integer model under construction: tensors in their forms, and the nodes that make them.

A float-graph tensor can exist in three forms: float32 in ONNX order (named as in the float
graph), 8-bit in ONNX order (``name:q``) and, for 4-D tensors, 8-bit NHWC (``name:q:nhwc``).
A lowering asks for the form it needs (``need_int``/``need_float``); the missing conversion
(quantize, dequantize, transpose) is emitted on the spot, once per tensor and form. Flatten and
Reshape of 8-bit tensors are aliases, materialised only when read (``need_flat_nhwc`` lets a
Gemm read a flattened NHWC tensor directly, its weight columns permuted to match).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import QuantizationError
from ..graph.ir import Graph
from ..integer.model import IntegerNode, TensorSpec
from ..ops import QuantizeParams, Requant, activation_bounds, make_requant
from ..quant.params import QuantParams, choose_qparams, quantize, with_dtype
from .fuse import Activation
from .layout import TO_NCHW, TO_NHWC, nhwc_constant, nhwc_shape

FLOAT, ONNX, NHWC, FLAT_NHWC = "float", "onnx", "nhwc", "flat_nhwc"
SUFFIX = {FLOAT: "", ONNX: ":q", NHWC: ":q:nhwc", FLAT_NHWC: ":q:flat_nhwc"}


class KeepFloat(Exception):
    """Raised by a lowering, before it emits anything, to leave its node in float (the reason)."""


@dataclass(frozen=True)
class Alias:
    """A Flatten/Reshape of an 8-bit tensor: ``source`` reshaped to ``shape`` (ONNX Reshape
    semantics); ``flat_nhwc`` when it flattens a 4-D tensor to (N, C*H*W)."""

    source: str
    shape: tuple[int, ...]
    flat_nhwc: bool


class Builder:
    """Collects nodes, tensor specs, constants, warnings and float-node reasons (module doc)."""

    def __init__(
        self,
        graph: Graph,
        ranges: dict[str, tuple[float, float]],
        shapes: dict[str, tuple[int | None, ...]],
        activation_dtype: str,
        per_channel: bool,
        rounding: str,
        given_qparams: dict[str, QuantParams] | None = None,
        given_codes: dict[str, np.ndarray] | None = None,
        input_means: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.graph = graph
        self.given = dict(given_qparams or {})
        self.given_codes = dict(given_codes or {})
        self.input_means = dict(input_means or {})
        self.ranges = ranges
        self.shapes = shapes
        self.dtype = activation_dtype
        self.per_channel = per_channel
        self.rounding = rounding
        self.nodes: list[IntegerNode] = []
        self.tensors: dict[str, TensorSpec] = {}
        self.constants: dict[str, np.ndarray] = {}
        self.warnings: list[str] = []
        self.float_nodes: list[dict[str, str]] = []
        self.forms: dict[str, dict[str, str]] = {}
        self.aliases: dict[str, Alias] = {}
        self._qparams: dict[str, QuantParams] = {}

    # -- parameters ---------------------------------------------------------------------------

    def qparams(self, name: str) -> QuantParams:
        """The 8-bit parameters of float tensor ``name``: given ones, else set by
        ``share_qparams``, else from its calibrated range (a constant's own min/max).

        A given constant's parameters (stored as int8 or uint8) are expressed in the activation
        dtype with the same real values (``with_dtype``), so its stored codes come back from its
        float value unchanged."""
        if name in self.given:
            return self._given_operand(name)
        if name not in self._qparams:
            if name in self.aliases:
                return self.qparams(self.aliases[name].source)
            if name in self.graph.initializers:
                value = np.asarray(self.graph.initializers[name], dtype=np.float64)
                lo, hi = float(value.min(initial=0.0)), float(value.max(initial=0.0))
            elif name in self.ranges:
                lo, hi = (float(v) for v in self.ranges[name])
            else:
                raise QuantizationError(f"tensor {name!r} has no calibrated range")
            self._qparams[name] = choose_qparams(lo, hi, self.dtype)
        return self._qparams[name]

    def _given_operand(self, name: str) -> QuantParams:
        qp = self.given[name]
        if qp.axis is not None and qp.scale.size == 1:
            qp = QuantParams(qp.scale, qp.zero_point, qp.dtype, None, qp.narrow_range,
                             qp.num_bits)
        kind = "constant" if name in self.graph.initializers else "activation"
        if qp.axis is not None or qp.dtype not in ("int8", "uint8") or (
                kind == "activation" and qp.dtype != self.dtype):
            raise QuantizationError(
                f"{kind} {name!r}: given parameters are {qp.dtype} per "
                f"{'axis ' + str(qp.axis) if qp.axis is not None else 'tensor'}; an operand of "
                f"an integer op has one {self.dtype} scale and zero point"
            )
        return with_dtype(qp, self.dtype)

    def weight_qparams(self, name: str, axis: int, scale: float = 1.0) -> QuantParams | None:
        """Given 8-bit parameters of weight initializer ``name`` whose output channels lie on
        ``axis``, as parameters along axis 0 with scales times ``scale``; None if not given.
        Any int8/uint8 zero points are kept (the kernels subtract one per output channel);
        parameters along another axis raise, as the kernels have one scale per output channel."""
        qp = self.given.get(name)
        if qp is None:
            return None
        if qp.dtype not in ("int8", "uint8") or (
                qp.axis is not None and qp.axis % self.graph.initializers[name].ndim != axis):
            raise QuantizationError(
                f"weight {name!r}: given parameters must be int8 or uint8, per tensor or "
                f"along the output-channel axis {axis} (got {qp.dtype}, axis {qp.axis})"
            )
        return QuantParams(qp.scale * np.float32(scale), qp.zero_point, qp.dtype,
                           None if qp.axis is None else 0, qp.narrow_range, qp.num_bits)

    def bias_qparams(self, name: str, scale: float = 1.0) -> QuantParams | None:
        """Given int32 parameters of bias initializer ``name`` (zero point 0, per tensor or one
        scale per output channel), flattened along axis 0 with scales times ``scale``; None if
        not given. A bias given in another dtype raises: the kernels add an int32 bias."""
        qp = self.given.get(name)
        if qp is None:
            return None
        if qp.dtype != "int32" or np.any(qp.zero_point != 0):
            raise QuantizationError(
                f"bias {name!r}: given parameters must be int32 with zero point 0, the form "
                f"the kernels add to the accumulator (got {qp.dtype}, zero point "
                f"{qp.zero_point.tolist()})"
            )
        return QuantParams(qp.scale * np.float32(scale), qp.zero_point, "int32",
                           None if qp.axis is None else 0)

    def bias_codes(self, name: str, channels: int) -> np.ndarray | None:
        """The stated int32 codes of bias initializer ``name``, one per output channel (a single
        code repeated for all ``channels``); None if not given. Any other number of codes
        raises QuantizationError."""
        codes = self.given_codes.get(name)
        if codes is None:
            return None
        codes = np.asarray(codes, np.int32).reshape(-1)
        if codes.size not in (1, channels):
            raise QuantizationError(
                f"bias {name!r}: {codes.size} stated int32 codes; the layer has {channels} "
                "output channels (one code per output channel, or one for all)"
            )
        return np.broadcast_to(codes, (channels,))

    def input_mean(self, name: str, channels: int) -> np.ndarray | None:
        """The calibrated per-channel mean of float tensor ``name`` (``channels`` values), for
        bias correction (weights.py); None when the converter was given none for it."""
        mean = self.input_means.get(name)
        if mean is None:
            return None
        mean = np.asarray(mean, np.float64).reshape(-1)
        if mean.size != channels:
            raise QuantizationError(
                f"input mean of {name!r} has {mean.size} values; the layer reading it has "
                f"{channels} input channels"
            )
        return mean

    def share_qparams(self, out: str, source: str) -> QuantParams:
        """Give ``out`` the parameters of ``source`` (pooling, layout ops) and return them."""
        self._qparams[out] = self.qparams(source)
        return self._qparams[out]

    def requant(
        self, real: np.ndarray | float, out: QuantParams, act: Activation | None = None
    ) -> Requant:
        """The requantization of ``real`` multipliers into ``out``, with the fused clamp."""
        bounds = None
        if act is not None:
            bounds = activation_bounds(out, act.kind, act.clip_min, act.clip_max)
        return make_requant(real, out, self.rounding, bounds)

    def constant(self, name: str, what: str) -> np.ndarray:
        """A constant input of a node, or KeepFloat if it is computed at run time."""
        if name not in self.graph.initializers:
            raise KeepFloat(f"{what} {name!r} is not a constant")
        return np.asarray(self.graph.initializers[name])

    def shape(self, name: str) -> tuple[int | None, ...]:
        return self.shapes[name]

    # -- tensors and nodes --------------------------------------------------------------------

    def has(self, name: str, form: str) -> bool:
        return form in self.forms.get(name, {})

    def produce(self, name: str, form: str, float_name: bool = True) -> str:
        """Declare float tensor ``name`` in ``form`` (made by the next node) and return its name."""
        tensor = name + SUFFIX[form]
        shape = self.shapes.get(name, np.shape(self.graph.initializers.get(name, ())))
        layout = "NCHW" if len(shape) == 4 else None
        if form == NHWC:
            shape, layout = (nhwc_shape(shape) if len(shape) == 4 else shape), "NHWC"
        elif form == FLAT_NHWC:
            layout = None
        qp = None if form == FLOAT else self.qparams(name)
        self.tensors[tensor] = TensorSpec(
            tensor, tuple(shape), "float32" if form == FLOAT else self.dtype, layout, qp,
            name if float_name and form != FLAT_NHWC else None,
        )
        self.forms.setdefault(name, {})[form] = tensor
        return tensor

    def emit(self, op: str, name: str, inputs: list[str], outputs: list[str], params: Any) -> None:
        self.nodes.append(IntegerNode(op, name, list(inputs), list(outputs), params))

    def need_float(self, name: str) -> str:
        """``name`` as float32 in ONNX order (a dequantize if only 8-bit forms exist)."""
        if self.has(name, FLOAT):
            return self.forms[name][FLOAT]
        if name in self.graph.initializers:
            self.constants[name] = np.asarray(self.graph.initializers[name])
            return self.produce(name, FLOAT)
        src = self.need_int(name, nhwc=False)
        self.emit("dequantize", f"{name}/dequantize", [src], [self.produce(name, FLOAT)],
                  self.qparams(name))
        return self.forms[name][FLOAT]

    def need_int(self, name: str, nhwc: bool) -> str:
        """``name`` as 8-bit, NHWC if ``nhwc`` (4-D tensors) else ONNX order."""
        form = NHWC if nhwc else ONNX
        if self.has(name, form):
            return self.forms[name][form]
        if name in self.graph.initializers:
            q = quantize(self.graph.initializers[name], self.qparams(name))
            tensor = self.produce(name, form)
            self.constants[tensor] = nhwc_constant(q) if nhwc else q
            self.tensors[tensor].shape = self.constants[tensor].shape
            return tensor
        if name in self.aliases:
            alias = self.aliases[name]
            if nhwc:
                raise QuantizationError(f"tensor {name!r} is a reshape, it has no NHWC form")
            src = self.need_int(alias.source, nhwc=False)
            self.emit("reshape", f"{name}/reshape", [src], [self.produce(name, ONNX)],
                      {"shape": list(alias.shape)})
            return self.forms[name][ONNX]
        other = ONNX if nhwc else NHWC
        if self.has(name, other):
            src = self.forms[name][other]
        elif self.has(name, FLOAT):
            src = self.produce(name, ONNX)
            self.emit("quantize", f"{name}/quantize", [self.forms[name][FLOAT]], [src],
                      QuantizeParams(f"{name}/quantize", self.qparams(name)))
            if not nhwc:
                return src
        else:
            raise QuantizationError(f"tensor {name!r} is read before it is computed")
        perm = TO_NHWC if nhwc else TO_NCHW
        self.emit("transpose", f"{name}/to_{form}", [src], [self.produce(name, form)],
                  {"perm": list(perm)})
        return self.forms[name][form]

    def flat_source(self, name: str) -> Alias | None:
        """The alias if ``name`` flattens a 4-D tensor that exists in NHWC, else None."""
        alias = self.aliases.get(name)
        if alias is None or not alias.flat_nhwc or not self.has(alias.source, NHWC):
            return None
        return alias

    def need_flat_nhwc(self, name: str) -> str:
        """A flattened 4-D tensor as (N, H*W*C): its NHWC source reshaped to [0, H*W*C] (a
        static width, so that a batch of 0 samples reshapes too)."""
        if self.has(name, FLAT_NHWC):
            return self.forms[name][FLAT_NHWC]
        alias = self.aliases[name]
        src = self.need_int(alias.source, nhwc=True)
        self.emit("reshape", f"{name}/reshape_nhwc", [src], [self.produce(name, FLAT_NHWC)],
                  {"shape": [0, int(alias.shape[1])]})
        return self.forms[name][FLAT_NHWC]

    def op_counts(self) -> dict[str, int]:
        return dict(Counter(n.op for n in self.nodes))

"""The integer model file: one zip holding ``model.json`` and ``arrays/NNNN.npy`` members.

``model.json`` has ``format`` ("gpuquant-integer-model"), ``format_version`` (1), the model's
name, inputs, outputs, tensor specs, metadata, constants and nodes. Values are JSON, with
tagged objects for what JSON lacks:

- ``{"$array": "arrays/0007.npy", "dtype": "int8", "shape": [3, 4]}``: a NumPy array member;
- ``{"$type": "GemmParams", "fields": {...}}``: a params dataclass from ``REGISTRY`` (its init
  fields only; derived fields are recomputed by the constructor, which reruns every check);
- ``{"$tuple": [...]}``, ``{"$dict": {...}}`` and ``{"$float": "inf" | "-inf" | "nan"}``.

Loading trusts nothing: no pickle (``allow_pickle=False``), only registry types, member count
and sizes bounded before reading (zip bombs), each array's dtype and shape checked against the
JSON, every node's op, params type and input tensors validated. Any fault raises
ModelFormatError naming the file and the problem.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GpuquantError, ModelFormatError
from ..graph.ir import Node
from ..ops import (
    AddParams,
    ConcatParams,
    Conv2DParams,
    GemmParams,
    LookupParams,
    MatMulParams,
    MeanParams,
    MulParams,
    PoolParams,
    QuantizeParams,
    Requant,
)
from ..ops.float_pool import FloatAvgPoolParams
from ..ops.float_softmax import FloatSoftmaxParams
from ..ops.pair_lookup import PairLookupParams
from ..ops.softmax import SoftmaxParams
from ..quant.params import QuantParams
from .model import NODE_OPS, IntegerModel, IntegerNode, TensorSpec

FORMAT_NAME = "gpuquant-integer-model"
FORMAT_VERSION = 1
JSON_MEMBER = "model.json"
ARRAY_MEMBER = re.compile(r"arrays/\d{4,8}\.npy")
MAX_MEMBERS = 100_000
MAX_JSON_BYTES = 64 * 2**20
MAX_TOTAL_BYTES = 8 * 2**30
ARRAY_DTYPES = ("int8", "uint8", "int16", "int32", "int64", "float16", "float32", "float64",
                "bool")

REGISTRY: dict[str, type] = {
    cls.__name__: cls
    for cls in (AddParams, ConcatParams, Conv2DParams, FloatAvgPoolParams, FloatSoftmaxParams,
                GemmParams,
                LookupParams, MatMulParams, MeanParams, MulParams, PairLookupParams, PoolParams,
                QuantizeParams, Requant, SoftmaxParams, QuantParams, Node)
}

PARAMS_TYPE = {
    "gemm": GemmParams, "matmul": MatMulParams, "conv2d": Conv2DParams,
    "max_pool2d": PoolParams, "avg_pool2d": PoolParams, "mean": MeanParams, "add": AddParams,
    "mul": MulParams, "concat": ConcatParams, "lookup": LookupParams,
    "quantize": QuantizeParams, "dequantize": QuantParams, "pair_lookup": PairLookupParams,
    "avg_pool2d_float": FloatAvgPoolParams, "softmax": SoftmaxParams,
    "softmax_float": FloatSoftmaxParams, "float": Node,
}
LAYOUT_PARAMS = {"transpose": {"perm"}, "reshape": {"shape"}, "pad": {"pads", "value"}}


class _Writer:
    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.count = 0

    def encode(self, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return self.array(value)
        if isinstance(value, np.generic):
            return self.encode(value.item())
        if isinstance(value, float) and not math.isfinite(value):
            return {"$float": repr(value)}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(v) for v in value]}
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            return {"$dict": {str(k): self.encode(v) for k, v in value.items()}}
        if dataclasses.is_dataclass(value) and type(value).__name__ in REGISTRY:
            fields = {f.name: self.encode(getattr(value, f.name))
                      for f in dataclasses.fields(value) if f.init}
            return {"$type": type(value).__name__, "fields": fields}
        raise ModelFormatError(f"cannot store a value of type {type(value).__name__}: {value!r}")

    def array(self, a: np.ndarray) -> dict[str, Any]:
        if a.dtype.name not in ARRAY_DTYPES:
            raise ModelFormatError(f"cannot store an array of dtype {a.dtype}")
        name = f"arrays/{self.count:04d}.npy"
        self.count += 1
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
        self.zf.writestr(name, buf.getvalue())
        return {"$array": name, "dtype": a.dtype.name, "shape": list(a.shape)}


def _spec(w: _Writer, spec: TensorSpec) -> dict[str, Any]:
    return {f.name: w.encode(getattr(spec, f.name)) for f in dataclasses.fields(spec)}


def save(model: IntegerModel, path: str | Path) -> None:
    """Write ``model`` to ``path`` as one zip file (module docstring)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        w = _Writer(zf)
        doc = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "name": model.name,
            "inputs": [_spec(w, s) for s in model.inputs],
            "outputs": [_spec(w, s) for s in model.outputs],
            "tensors": {k: _spec(w, s) for k, s in model.tensors.items()},
            "metadata": w.encode(model.metadata),
            "constants": {k: w.array(np.asarray(v)) for k, v in model.constants.items()},
            "nodes": [
                {"op": n.op, "name": n.name, "inputs": list(n.inputs),
                 "outputs": list(n.outputs), "params": w.encode(n.params)}
                for n in model.nodes
            ],
        }
        zf.writestr(JSON_MEMBER, json.dumps(doc, allow_nan=False))


class _Reader:
    def __init__(self, zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> None:
        self.zf = zf
        self.members = members

    def decode(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            return [self.decode(v, where) for v in value]
        if not isinstance(value, dict):
            return value
        if "$array" in value:
            return self.array(value, where)
        if set(value) == {"$float"}:
            if value["$float"] not in ("inf", "-inf", "nan"):
                raise ModelFormatError(f"{where}: bad float {value['$float']!r}")
            return float(value["$float"])
        if set(value) == {"$tuple"}:
            return tuple(self.decode(v, where) for v in _typed(value["$tuple"], list, where))
        if set(value) == {"$dict"}:
            items = _typed(value["$dict"], dict, where)
            return {k: self.decode(v, where) for k, v in items.items()}
        if set(value) == {"$type", "fields"}:
            return self.dataclass(value, where)
        raise ModelFormatError(f"{where}: unknown JSON object with keys {sorted(value)}")

    def dataclass(self, value: dict[str, Any], where: str) -> Any:
        cls = REGISTRY.get(value["$type"])
        if cls is None:
            raise ModelFormatError(f"{where}: type {value['$type']!r} is not allowed")
        fields = _typed(value["fields"], dict, where)
        expected = {f.name for f in dataclasses.fields(cls) if f.init}
        if set(fields) != expected:
            raise ModelFormatError(
                f"{where}: {cls.__name__} fields {sorted(fields)} differ from {sorted(expected)}"
            )
        kwargs = {k: self.decode(v, f"{where}.{k}") for k, v in fields.items()}
        try:
            return cls(**kwargs)
        except (GpuquantError, ValueError, TypeError) as exc:
            raise ModelFormatError(f"{where}: invalid {cls.__name__}: {exc}") from exc

    def array(self, ref: dict[str, Any], where: str) -> np.ndarray:
        name, dtype, shape = ref.get("$array"), ref.get("dtype"), ref.get("shape")
        if set(ref) != {"$array", "dtype", "shape"} or name not in self.members:
            raise ModelFormatError(f"{where}: array reference {ref!r} names no array member")
        if dtype not in ARRAY_DTYPES:
            raise ModelFormatError(f"{where}: array dtype {dtype!r} is not allowed")
        try:
            a = np.load(io.BytesIO(self.zf.read(name)), allow_pickle=False)
        except ValueError as exc:
            raise ModelFormatError(f"{where}: array member {name} is not a plain .npy: {exc}") \
                from exc
        if a.dtype.name != dtype or list(a.shape) != list(_typed(shape, list, where)):
            raise ModelFormatError(
                f"{where}: array member {name} is {a.dtype} {tuple(a.shape)}, the model "
                f"declares {dtype} {tuple(shape)}"
            )
        return a


def _typed(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        raise ModelFormatError(f"{where}: expected a JSON {kind.__name__}, got {value!r}")
    return value


def _members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFormatError(f"{len(infos)} members, more than {MAX_MEMBERS}")
    total = sum(i.file_size for i in infos)
    if total > MAX_TOTAL_BYTES:
        raise ModelFormatError(f"{total} bytes uncompressed, more than {MAX_TOTAL_BYTES}")
    if JSON_MEMBER not in {i.filename for i in infos}:
        raise ModelFormatError(
            f"not a gpuquant model file: a zip without {JSON_MEMBER} "
            f"(members {[i.filename for i in infos[:5]]})"
        )
    members = {}
    for info in infos:
        if info.filename != JSON_MEMBER and not ARRAY_MEMBER.fullmatch(info.filename):
            raise ModelFormatError(f"unexpected member {info.filename!r}")
        if info.filename in members:
            raise ModelFormatError(f"member {info.filename!r} appears twice")
        members[info.filename] = info
    if members[JSON_MEMBER].file_size > MAX_JSON_BYTES:
        raise ModelFormatError(f"{JSON_MEMBER} is larger than {MAX_JSON_BYTES} bytes")
    return members


def _decode_spec(r: _Reader, value: Any, where: str) -> TensorSpec:
    fields = _typed(value, dict, where)
    expected = {f.name for f in dataclasses.fields(TensorSpec)}
    if set(fields) != expected:
        raise ModelFormatError(f"{where}: tensor spec fields {sorted(fields)} differ from "
                               f"{sorted(expected)}")
    spec = TensorSpec(**{k: r.decode(v, f"{where}.{k}") for k, v in fields.items()})
    if not isinstance(spec.name, str) or not isinstance(spec.dtype, str):
        raise ModelFormatError(f"{where}: tensor name and dtype must be strings")
    if spec.qparams is not None and not isinstance(spec.qparams, QuantParams):
        raise ModelFormatError(f"{where}: qparams must be QuantParams")
    spec.shape = tuple(_typed(spec.shape, tuple, where))
    return spec


def _decode_node(r: _Reader, value: Any, i: int) -> IntegerNode:
    fields = _typed(value, dict, f"node {i}")
    if set(fields) != {"op", "name", "inputs", "outputs", "params"}:
        raise ModelFormatError(f"node {i}: fields {sorted(fields)}")
    op, name = fields["op"], fields["name"]
    where = f"node {i} ({name!r})"
    if op not in NODE_OPS:
        raise ModelFormatError(f"{where}: unknown op {op!r}")
    inputs = _typed(fields["inputs"], list, where)
    outputs = _typed(fields["outputs"], list, where)
    if not all(isinstance(t, str) for t in inputs + outputs):
        raise ModelFormatError(f"{where}: tensor names must be strings")
    params = r.decode(fields["params"], where)
    if op in LAYOUT_PARAMS:
        if not isinstance(params, dict) or set(params) != LAYOUT_PARAMS[op]:
            raise ModelFormatError(f"{where}: {op} params must have keys {LAYOUT_PARAMS[op]}")
        _check_layout(op, params, where)
    elif type(params) is not PARAMS_TYPE[op]:
        raise ModelFormatError(f"{where}: {op} needs {PARAMS_TYPE[op].__name__} params, got "
                               f"{type(params).__name__}")
    return IntegerNode(op, name, inputs, outputs, params)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_layout(op: str, params: dict[str, Any], where: str) -> None:
    """transpose: ``perm`` a permutation of 0..n-1; reshape: ``shape`` integers >= -1; pad:
    ``pads`` (before, after) pairs of integers >= 0 and an integer ``value``."""
    if op == "transpose":
        perm = params["perm"]
        ok = isinstance(perm, (list, tuple)) and all(map(_is_int, perm)) and sorted(
            perm) == list(range(len(perm)))
    elif op == "reshape":
        shape = params["shape"]
        ok = isinstance(shape, (list, tuple)) and all(_is_int(d) and d >= -1 for d in shape)
    else:
        pads = params["pads"]
        ok = _is_int(params["value"]) and isinstance(pads, (list, tuple)) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(_is_int(v) and v >= 0 for v in p)
            for p in pads)
    if not ok:
        raise ModelFormatError(f"{where}: invalid {op} params {params!r}")


def _check_references(model: IntegerModel) -> None:
    known = {s.name for s in model.inputs} | set(model.constants)
    for node in model.nodes:
        for t in node.inputs:
            if t and t not in known:
                raise ModelFormatError(
                    f"node {node.name!r} reads tensor {t!r}, which no input, constant or "
                    f"earlier node provides"
                )
        known.update(node.outputs)
    for spec in model.outputs:
        if spec.name not in known:
            raise ModelFormatError(f"model output {spec.name!r} is never computed")


def _read(zf: zipfile.ZipFile) -> IntegerModel:
    members = _members(zf)
    try:
        doc = json.loads(zf.read(JSON_MEMBER).decode("utf-8"))
    except ValueError as exc:
        raise ModelFormatError(f"{JSON_MEMBER} is not valid JSON: {exc}") from exc
    doc = _typed(doc, dict, JSON_MEMBER)
    if doc.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"format is {doc.get('format')!r}, expected {FORMAT_NAME!r}")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(
            f"format_version {doc.get('format_version')!r} is not supported (this gpuquant "
            f"reads version {FORMAT_VERSION})"
        )
    r = _Reader(zf, members)
    model = IntegerModel(
        name=str(doc.get("name", "")),
        inputs=[_decode_spec(r, s, "inputs") for s in _typed(doc.get("inputs"), list, "inputs")],
        outputs=[_decode_spec(r, s, "outputs")
                 for s in _typed(doc.get("outputs"), list, "outputs")],
        nodes=[_decode_node(r, n, i) for i, n in enumerate(_typed(doc.get("nodes"), list, "nodes"))],
        tensors={k: _decode_spec(r, s, f"tensor {k!r}")
                 for k, s in _typed(doc.get("tensors"), dict, "tensors").items()},
        metadata=_typed(r.decode(doc.get("metadata", {"$dict": {}}), "metadata"), dict,
                        "metadata"),
        constants={k: r.array(_typed(v, dict, f"constant {k!r}"), f"constant {k!r}")
                   for k, v in _typed(doc.get("constants"), dict, "constants").items()},
    )
    _check_references(model)
    return model


def load(path: str | Path) -> IntegerModel:
    """Read an integer model written by ``save``; ModelFormatError if anything is wrong."""
    try:
        with zipfile.ZipFile(path) as zf:
            return _read(zf)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{path}: {exc}") from exc
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            struct.error, NotImplementedError, ValueError, KeyError, TypeError) as exc:
        raise ModelFormatError(f"{path}: corrupt or truncated model file: {exc}") from exc

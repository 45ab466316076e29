"""Write small TFLite flatbuffers (one subgraph) with the ``tflite`` package's builders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import numpy as np
import tflite

TYPES = {"float32": tflite.TensorType.FLOAT32, "int32": tflite.TensorType.INT32,
         "uint8": tflite.TensorType.UINT8, "int8": tflite.TensorType.INT8,
         "int64": tflite.TensorType.INT64}


@dataclass
class T:
    """A tensor: shape, dtype, optional constant data and quantization."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None = None
    scale: list[float] | None = None
    zero_point: list[int] | None = None
    axis: int = 0


@dataclass
class Op:
    """An operator: builtin name, tensor indices, options (type name, builder of fields)."""

    name: str
    inputs: list[int]
    outputs: list[int]
    options: str | None = None
    fields: dict = field(default_factory=dict)


def _vector(b: flatbuffers.Builder, start: Callable, values, prepend: str) -> int:
    start(b, len(values))
    for v in reversed(list(values)):
        getattr(b, prepend)(v)
    return b.EndVector()


def _options(b: flatbuffers.Builder, op: Op) -> int:
    mod = op.options
    vectors = {k: v for k, v in op.fields.items() if isinstance(v, (list, tuple))}
    made = {}
    for k, v in vectors.items():
        made[k] = _vector(b, getattr(tflite, f"{mod}Start{k}Vector"), v, "PrependInt32")
    getattr(tflite, f"{mod}Start")(b)
    for k, v in op.fields.items():
        getattr(tflite, f"{mod}Add{k}")(b, made.get(k, v))
    return getattr(tflite, f"{mod}End")(b)


def write(path: Path, tensors: list[T], ops: list[Op], inputs: list[int], outputs: list[int],
          deprecated_codes: bool = False) -> Path:
    b = flatbuffers.Builder(1024)
    opnames = sorted({op.name for op in ops})
    codes = []
    for name in opnames:
        code = getattr(tflite.BuiltinOperator, name)
        tflite.OperatorCodeStart(b)
        if deprecated_codes:
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, code)
        else:
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, 1)
        codes.append(tflite.OperatorCodeEnd(b))
    buffers = []
    tensor_offsets = []
    for i, t in enumerate(tensors):
        data_vec = None
        if t.data is not None:
            raw = np.ascontiguousarray(t.data, dtype=np.dtype(t.dtype)).tobytes()
            data_vec = b.CreateByteVector(raw)
        tflite.BufferStart(b)
        if data_vec is not None:
            tflite.BufferAddData(b, data_vec)
        buffers.append(tflite.BufferEnd(b))
        quant = None
        if t.scale is not None:
            sv = _vector(b, tflite.QuantizationParametersStartScaleVector, t.scale,
                         "PrependFloat32")
            zv = _vector(b, tflite.QuantizationParametersStartZeroPointVector, t.zero_point,
                         "PrependInt64")
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, sv)
            tflite.QuantizationParametersAddZeroPoint(b, zv)
            tflite.QuantizationParametersAddQuantizedDimension(b, t.axis)
            quant = tflite.QuantizationParametersEnd(b)
        name = b.CreateString(t.name)
        shape = _vector(b, tflite.TensorStartShapeVector, t.shape, "PrependInt32")
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, TYPES[t.dtype])
        tflite.TensorAddBuffer(b, i + 1)
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        tensor_offsets.append(tflite.TensorEnd(b))
    tflite.BufferStart(b)
    empty = tflite.BufferEnd(b)
    op_offsets = []
    for op in ops:
        opts = _options(b, op) if op.options else None
        iv = _vector(b, tflite.OperatorStartInputsVector, op.inputs, "PrependInt32")
        ov = _vector(b, tflite.OperatorStartOutputsVector, op.outputs, "PrependInt32")
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, opnames.index(op.name))
        tflite.OperatorAddInputs(b, iv)
        tflite.OperatorAddOutputs(b, ov)
        if opts is not None:
            tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, op.options))
            tflite.OperatorAddBuiltinOptions(b, opts)
        op_offsets.append(tflite.OperatorEnd(b))
    tv = _vector(b, tflite.SubGraphStartTensorsVector, tensor_offsets, "PrependUOffsetTRelative")
    opv = _vector(b, tflite.SubGraphStartOperatorsVector, op_offsets, "PrependUOffsetTRelative")
    iv = _vector(b, tflite.SubGraphStartInputsVector, inputs, "PrependInt32")
    ov = _vector(b, tflite.SubGraphStartOutputsVector, outputs, "PrependInt32")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tv)
    tflite.SubGraphAddOperators(b, opv)
    tflite.SubGraphAddInputs(b, iv)
    tflite.SubGraphAddOutputs(b, ov)
    subgraph = tflite.SubGraphEnd(b)
    cv = _vector(b, tflite.ModelStartOperatorCodesVector, codes, "PrependUOffsetTRelative")
    sv = _vector(b, tflite.ModelStartSubgraphsVector, [subgraph], "PrependUOffsetTRelative")
    bv = _vector(b, tflite.ModelStartBuffersVector, [empty] + buffers, "PrependUOffsetTRelative")
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, cv)
    tflite.ModelAddSubgraphs(b, sv)
    tflite.ModelAddBuffers(b, bv)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    return path

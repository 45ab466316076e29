"""Single-node ONNX QOperator models run in onnxruntime (the reference) and in gpuquant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from gpuquant.backends.numpy import NumpyBackend
from gpuquant.frontends.onnx_qoperator import load_qoperator_onnx
from gpuquant.runtime.executor import execute

MS = "com.microsoft"
_TYPES = {np.dtype(np.int8): TensorProto.INT8, np.dtype(np.uint8): TensorProto.UINT8,
          np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int32): TensorProto.INT32}


def const(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def scalar(name: str, value, dtype) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


def build(tmp: Path, node: onnx.NodeProto, inputs: dict[str, np.ndarray],
          initializers: list[onnx.TensorProto], out_dtype, name: str = "model") -> Path:
    """A model around ``node`` with graph inputs ``inputs`` and one output ``y``."""
    graph = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info(k, _TYPES[v.dtype], v.shape) for k, v in inputs.items()],
        [helper.make_tensor_value_info("y", _TYPES[np.dtype(out_dtype)], None)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(MS, 1)])
    model.ir_version = 8
    path = tmp / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def run_both(path: Path, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(onnxruntime's y, gpuquant's y) for the same feeds."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    expected = session.run(["y"], feeds)[0]
    model = load_qoperator_onnx(path)
    got = np.asarray(execute(model, feeds, NumpyBackend())["y"])
    return expected, got

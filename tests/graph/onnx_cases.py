"""Small ONNX models built with onnx.helper, and a check that the float executor agrees with
onnxruntime on them."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from gpuquant.frontends.onnx_float import load_onnx
from gpuquant.graph.executor import run_graph


def make_model(nodes, inputs, outputs, initializers=None, opset=13, check=True):
    """A checked ModelProto; ``inputs``/``outputs`` are (name, shape[, elem_type]) of tensors,
    float32 unless an ONNX elem_type is given
    (a None dimension is dynamic; a None shape is inferred), ``initializers`` maps names to
    arrays; ``check=False`` skips onnx.checker (for models it rejects on purpose)."""
    def info(name, shape, elem_type=TensorProto.FLOAT):
        return helper.make_tensor_value_info(name, elem_type, shape)

    graph = helper.make_graph(
        nodes,
        "case",
        [info(*spec) for spec in inputs],
        [info(*spec) for spec in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if check:
        # Inference fills the output shapes left None (the checker wants them).
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
        onnx.checker.check_model(model)
    return model


def onnxruntime_outputs(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def assert_matches_onnxruntime(model, feeds, rtol=1e-5):
    """Our outputs equal onnxruntime's to ``rtol``, with an absolute floor of ``rtol`` times
    the largest output magnitude (float32 sums in another order differ near zero)."""
    expected = onnxruntime_outputs(model, feeds)
    got = run_graph(load_onnx(model), feeds)
    assert set(got) == set(expected)
    for name, ref in expected.items():
        assert got[name].shape == ref.shape, name
        assert got[name].dtype == ref.dtype, name
        scale = float(np.abs(ref).max()) if ref.size else 1.0
        np.testing.assert_allclose(got[name], ref, rtol=rtol, atol=rtol * scale, err_msg=name)
    return got

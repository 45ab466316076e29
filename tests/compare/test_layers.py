"""Per-layer comparison on a hand-made integer model: dequantize, NHWC -> NCHW, sums."""

import math

import numpy as np
import pytest

from gpuquant.compare.layers import LayerComparison, compared_tensors
from gpuquant.integer.model import IntegerModel, IntegerNode, TensorSpec
from gpuquant.quant.params import QuantParams


def _model() -> IntegerModel:
    qp = QuantParams(scale=np.array([0.5]), zero_point=np.array([1]), dtype="int8")
    tensors = {
        "x_q": TensorSpec("x_q", (None, 2, 1, 3), "int8", "NHWC", qp, float_name="x"),
        "x_q2": TensorSpec("x_q2", (None, 6), "int8", None, qp, float_name="x"),
        "y": TensorSpec("y", (None, 6), "float32", None, None, float_name="y"),
    }
    nodes = [
        IntegerNode("quantize", "q", ["x"], ["x_q"], None),
        IntegerNode("reshape", "r", ["x_q"], ["x_q2"], {"shape": [0, -1]}),
        IntegerNode("dequantize", "d", ["x_q2"], ["y"], qp),
    ]
    return IntegerModel("m", [tensors["x_q"]], [tensors["y"]], nodes, tensors)


def test_one_entry_per_float_tensor_in_order():
    pairs = compared_tensors(_model())
    assert [(spec.name, op) for spec, op in pairs] == [("x_q", "quantize")]


def test_dequantized_nhwc_compared_in_nchw():
    float_x = np.arange(6, dtype=np.float32).reshape(1, 3, 2, 1)  # NCHW: C=3, H=2, W=1
    q_nhwc = (float_x.transpose(0, 2, 3, 1) / 0.5 + 1).astype(np.int8)  # exact codes
    q_nhwc[0, 0, 0, 0] += 1  # one code off: error 0.5 on element (c=0, h=0)
    comparison = LayerComparison(_model())
    comparison.add({"x": float_x}, {"x_q": q_nhwc})
    (layer,) = comparison.results()
    signal = float(np.sum(float_x.astype(np.float64) ** 2))  # 0+1+4+9+16+25 = 55
    assert layer.tensor == "x" and layer.int8_tensor == "x_q"
    assert layer.sqnr_db == pytest.approx(10 * math.log10(signal / 0.25))
    assert layer.float_sample.size == 6 and layer.int8_sample.size == 6


def test_missing_or_mismatched_tensors_are_skipped():
    comparison = LayerComparison(_model())
    comparison.add({"x": np.zeros((1, 3, 2, 2), np.float32)},
                   {"x_q": np.zeros((1, 2, 1, 3), np.int8)})
    comparison.add({}, {})
    assert comparison.results() == []


def test_per_tensor_shortcut_equals_dequantize():
    from gpuquant.compare.layers import dequantized_like_float
    from gpuquant.quant.params import dequantize

    for dtype, zp in (("int8", -7), ("uint8", 131)):
        qp = QuantParams(scale=np.array([0.0371]), zero_point=np.array([zp]), dtype=dtype)
        spec = TensorSpec("t", (None, 256), dtype, None, qp, float_name="f")
        info = np.iinfo(dtype)
        q = np.arange(info.min, info.max + 1, dtype=dtype).reshape(1, 256)
        np.testing.assert_array_equal(dequantized_like_float(q, spec), dequantize(q, qp))

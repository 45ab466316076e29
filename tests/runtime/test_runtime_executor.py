import numpy as np
import pytest

from gpuquant.errors import ModelFormatError, ShapeError
from gpuquant.integer.model import IntegerModel, IntegerNode, TensorSpec
from gpuquant.ops import QuantizeParams
from gpuquant.quant.params import QuantParams, dequantize, quantize
from gpuquant.runtime.executor import execute, resolve_reshape


class HostLayoutBackend:
    """The layout ops and quantize/dequantize on NumPy: enough to drive the dispatcher."""

    name = "host-layout"

    def asarray(self, x):
        return np.asarray(x)

    def to_numpy(self, x):
        return np.array(x)

    def quantize(self, x, p):
        return quantize(x, p.params, p.rounding)

    def dequantize(self, x, p):
        return dequantize(x, p)

    def transpose(self, x, perm):
        return np.ascontiguousarray(x.transpose(perm))

    def reshape(self, x, shape):
        return x.reshape(shape)

    def pad(self, x, pads, value):
        return np.pad(x, pads, constant_values=value)


QP = QuantParams(np.float32(0.5), np.int32(3), "int8")


def _model(nodes, out="y"):
    return IntegerModel(
        name="m",
        inputs=[TensorSpec("x", (None, 2, 3), "float32")],
        outputs=[TensorSpec(out, (None, 3, 2), "float32")],
        nodes=nodes,
        tensors={},
    )


def test_resolve_reshape_follows_onnx_zero_and_minus_one():
    assert resolve_reshape((2, 3, 4), [0, -1]) == (2, 12)
    assert resolve_reshape((2, 3, 4), [-1, 4]) == (6, 4)
    with pytest.raises(ShapeError):
        resolve_reshape((2, 3, 4), [-1, -1])
    with pytest.raises(ShapeError):
        resolve_reshape((2, 3, 4), [5, -1])


def test_layout_ops_run_in_order_and_intermediates_are_dropped():
    nodes = [
        IntegerNode("quantize", "q", ["x"], ["xq"], QuantizeParams("q", QP)),
        IntegerNode("transpose", "t", ["xq"], ["xt"], {"perm": [0, 2, 1]}),
        IntegerNode("pad", "p", ["xt"], ["xp"], {"pads": [[0, 0], [0, 0], [1, 0]], "value": 3}),
        IntegerNode("reshape", "r", ["xp"], ["xr"], {"shape": [0, -1]}),
        IntegerNode("reshape", "r2", ["xr"], ["xs"], {"shape": [0, 3, 3]}),
        IntegerNode("dequantize", "d", ["xs"], ["y"], QP),
    ]
    x = np.arange(12, dtype=np.float32).reshape(2, 2, 3) / 2
    out = execute(_model(nodes), {"x": x}, HostLayoutBackend())
    expected = np.pad(x.transpose(0, 2, 1), [(0, 0), (0, 0), (1, 0)])
    assert list(out) == ["y"]
    np.testing.assert_array_equal(out["y"], expected)
    every = execute(_model(nodes), {"x": x}, HostLayoutBackend(), keep=True)
    assert {"xq", "xt", "xp", "xr", "xs", "y"} <= set(every)


def test_missing_input_and_unknown_op_are_named():
    with pytest.raises(ShapeError, match="'x'"):
        execute(_model([]), {}, HostLayoutBackend())
    bad = [IntegerNode("fft", "f", ["x"], ["y"], None)]
    with pytest.raises(ModelFormatError, match="'f'.*'fft'"):
        execute(_model(bad), {"x": np.zeros((1, 2, 3), np.float32)}, HostLayoutBackend())


def test_a_node_that_rejects_its_inputs_is_named_with_the_shapes():
    # a transpose whose perm does not fit the rank: NumPy's ValueError, reported for the node
    bad = [IntegerNode("transpose", "t", ["x"], ["y"], {"perm": [0, 1]})]
    with pytest.raises(ShapeError, match="node 't' \\(transpose\\).*\\(1, 2, 3\\)"):
        execute(_model(bad), {"x": np.zeros((1, 2, 3), np.float32)}, HostLayoutBackend())

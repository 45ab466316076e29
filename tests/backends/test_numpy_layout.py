"""quantize/dequantize at the graph edges, and the layout ops."""

from __future__ import annotations

import numpy as np
import pytest

from gpuquant.backends.numpy import NumpyBackend
from gpuquant.errors import QuantizationError, ShapeError
from gpuquant.ops import QuantizeParams
from gpuquant.quant.params import QuantParams

nb = NumpyBackend()


@pytest.mark.parametrize(
    "rounding,want",
    # x / 0.5 = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 300, -300], zero point 1, int8.
    [("half_to_even", [-1, -1, 1, 1, 3, 3, 127, -128]),
     ("half_away_from_zero", [-2, -1, 0, 2, 3, 4, 127, -128])],
)
def test_quantize_rounds_and_saturates(rounding, want):
    x = np.array([-1.25, -0.75, -0.25, 0.25, 0.75, 1.25, 150.0, -150.0], np.float32)
    p = QuantizeParams("q", QuantParams(0.5, 1, "int8"), rounding)
    got = nb.quantize(x, p)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, want)


def test_quantize_per_axis_and_dequantize():
    params = QuantParams(np.array([0.5, 2.0], np.float32), np.array([10, 200]), "uint8", axis=1)
    x = np.array([[[1.0], [4.0]], [[-6.0], [1000.0]]], np.float32)  # (2, 2, 1), axis 1
    q = nb.quantize(x, QuantizeParams("q", params))
    np.testing.assert_array_equal(q[..., 0], [[12, 202], [0, 255]])
    r = nb.dequantize(q, params)
    assert r.dtype == np.float32
    np.testing.assert_array_equal(r[..., 0], np.array([[1.0, 4.0], [-5.0, 110.0]], np.float32))


def test_transpose_reshape_pad():
    x = np.arange(24, dtype=np.int16).astype(np.int8).reshape(1, 2, 3, 4)
    t = nb.transpose(x, (0, 2, 3, 1))
    assert t.flags.c_contiguous and t.shape == (1, 3, 4, 2)
    np.testing.assert_array_equal(t, x.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(nb.reshape(x, (6, -1)), x.reshape(6, 4))
    padded = nb.pad(x, [(0, 0), (1, 0), (0, 2), (0, 0)], -7)
    assert padded.shape == (1, 3, 5, 4) and padded.dtype == np.int8
    assert (padded[:, 0] == -7).all() and (padded[:, :, 3:] == -7).all()
    np.testing.assert_array_equal(padded[:, 1:, :3], x)
    with pytest.raises(ShapeError, match="300"):
        nb.pad(x, [(0, 0)] * 4, 300)


def test_quantize_refuses_nan_naming_the_layer_and_saturates_infinities():
    p = QuantizeParams("input_q", QuantParams(0.5, 1, "int8"))
    x = np.array([1.0, np.nan, -np.inf, np.nan, np.inf], np.float32)
    with pytest.raises(QuantizationError,
                       match=r"layer 'input_q': cannot quantize NaN \(2 values\)"):
        nb.quantize(x, p)
    # ONNX QuantizeLinear saturates: -inf and inf go to the int8 bounds.
    np.testing.assert_array_equal(nb.quantize(x[[0, 2, 4]], p), [3, -128, 127])

"""quantize_layer with a QDQ model's stated parameters: stated int32 bias codes are the bias."""

import numpy as np
import pytest

from gpuquant.convert.weights import quantize_layer
from gpuquant.errors import OverflowRiskError
from gpuquant.quant.params import QuantParams, dequantize

# the int32 extremes and a code beyond 2**24: float32 rounds them to 2**31, -2**31, 2**24 + 4
CODES = np.array([2**31 - 1, -(2**31), 2**24 + 3], np.int32)
S_IN = 0.02
W_SCALES = np.array([0.003, 0.01, 0.002], np.float32)


def _layer(codes=None):
    weight_qp = QuantParams(W_SCALES, np.zeros(3, np.int32), "int8", 0)
    weight = dequantize(np.ones((3, 4), np.int8), weight_qp)
    bias_qp = QuantParams(np.float32(S_IN) * W_SCALES, np.zeros(3, np.int32), "int32", 0)
    bias = dequantize(CODES, bias_qp)
    return quantize_layer("fc", weight, bias, S_IN, True, weight_qp, None, bias_qp, codes)


def test_stated_bias_codes_are_taken_exactly():
    layer = _layer(CODES)
    assert layer.bias.dtype == np.int32
    np.testing.assert_array_equal(layer.bias, CODES)
    assert layer.warnings == ()


def test_without_them_the_float32_bias_no_longer_fits_int32():
    with pytest.raises(OverflowRiskError,
                       match="layer 'fc': bias of output channel 1 .* does not fit int32"):
        _layer()

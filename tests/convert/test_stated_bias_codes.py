"""convert() with a bias whose int32 codes the model states (given_codes, a QDQ model's): the
codes are taken as they are, so a count that fits no output channel layout, and bias
correction of that layer, are QuantizationErrors."""

import numpy as np
import pytest
from convert_helpers import graph

from gpuquant.calibrate.calibrator import calibrate_with_means
from gpuquant.convert import convert
from gpuquant.errors import QuantizationError
from gpuquant.quant.params import QuantParams, dequantize

S_IN = 0.02
W_SCALES = np.array([0.01, 0.02], np.float32)


def _conv(bias_codes):
    """A 1x1 conv, 3 -> 2 channels, with the weight, bias parameters and bias codes stated as
    a QDQ import gives them (float constants = dequantized codes)."""
    w_qp = QuantParams(W_SCALES, np.zeros(2, np.int32), "int8", 0)
    w = dequantize(np.array([[1, -2, 3], [4, 5, -6]], np.int8).reshape(2, 3, 1, 1), w_qp)
    b_qp = QuantParams(np.float32(S_IN) * W_SCALES, np.zeros(2, np.int32), "int32", 0)
    codes = np.asarray(bias_codes, np.int32)
    b = dequantize(np.broadcast_to(codes, (2,)), b_qp)
    g = graph([("Conv", "conv", ["x", "w", "b"], ["y"], {"kernel_shape": [1, 1]})],
              {"x": (None, 3, 4, 4)}, {"y": (None, 2, 4, 4)}, {"w": w, "b": b})
    ranges = {"x": (-128 * S_IN, 127 * S_IN), "y": (-1.0, 1.0)}
    return g, ranges, {"w": w_qp, "b": b_qp}, {"b": codes}


def test_one_stated_code_serves_every_output_channel():
    g, ranges, given, codes = _conv([700])
    model = convert(g, ranges, given_qparams=given, given_codes=codes)
    conv = next(n for n in model.nodes if n.op == "conv2d")
    np.testing.assert_array_equal(conv.params.bias, [700, 700])


def test_a_code_count_other_than_one_or_the_channels_names_the_bias():
    g, ranges, given, _ = _conv([700])
    codes = {"b": np.array([1, 2, 3], np.int32)}
    with pytest.raises(QuantizationError,
                       match=r"bias 'b': 3 stated int32 codes; the layer has 2 output channels"):
        convert(g, ranges, given_qparams=given, given_codes=codes)


def test_bias_correction_of_a_layer_with_stated_bias_codes_is_refused():
    # the correction used to be computed and then dropped for the stated codes, while the
    # model's metadata said bias_correction: True
    g, ranges, given, codes = _conv([1000, -2000])
    x = np.random.default_rng(0).uniform(0, 2, (8, 3, 4, 4)).astype(np.float32)
    _, means = calibrate_with_means(g, x, progress=False, batch_size=4)
    with pytest.raises(QuantizationError,
                       match=r"layer 'conv': bias correction .* its bias 'b' are stated .* "
                             r"drop bias correction"):
        convert(g, ranges, given_qparams=given, given_codes=codes, input_means=means)
    plain = convert(g, ranges, given_qparams=given, given_codes=codes)
    np.testing.assert_array_equal(next(n for n in plain.nodes if n.op == "conv2d").params.bias,
                                  [1000, -2000])

"""NumPy reference fake-quant against TensorFlow's FakeQuantWithMinMaxVars(PerChannel).

Expected values are TensorFlow's own known answers (tensorflow/core/kernels/fake_quant_ops_test.cc)
or follow by hand from the op's definition, as each comment derives.
"""

from fractions import Fraction

import numpy as np
import pytest

from gpuquant.errors import QuantizationError
from gpuquant.qat.fake_quant import fake_quant, fake_quant_gradient, nudge, nudged_qparams
from gpuquant.quant.params import dequantize, quantize

# (num_bits, narrow_range, min, max, inputs, expected) from TensorFlow's kernel tests.
TF_CASES = [
    (8, False, -10.0, 53.75, [-10.1, -10.0, -9.9, -9.75, 53.75, 53.8],
     [-10.0, -10.0, -10.0, -9.75, 53.75, 53.75]),
    (8, True, -10.0, 53.5, [-10.1, -10.0, -9.9, -9.75, 53.5, 53.6],
     [-10.0, -10.0, -10.0, -9.75, 53.5, 53.5]),
    (8, False, -0.1, 63.65, [-0.1, 0.0, 0.1, 0.25, 63.75, 63.8],
     [0.0, 0.0, 0.0, 0.25, 63.75, 63.75]),
    (8, True, -0.1, 63.4, [-0.1, 0.0, 0.1, 0.25, 63.5, 63.6],
     [0.0, 0.0, 0.0, 0.25, 63.5, 63.5]),
    (8, False, -0.1275, 63.6225, [-0.26, -0.25, -0.24, 0.0, 63.5, 63.6],
     [-0.25, -0.25, -0.25, 0.0, 63.5, 63.5]),
    (8, True, -0.1275, 63.3725, [-0.26, -0.25, -0.24, 0.0, 63.25, 63.3],
     [-0.25, -0.25, -0.25, 0.0, 63.25, 63.25]),
    (8, False, -63.65, 0.1, [-63.8, -63.75, -63.7, -63.5, 0.0, 0.1],
     [-63.75, -63.75, -63.75, -63.5, 0.0, 0.0]),
    (8, True, -63.4, 0.1, [-63.6, -63.5, -63.4, -63.25, 0.0, 0.1],
     [-63.5, -63.5, -63.5, -63.25, 0.0, 0.0]),
    (4, False, -6.0, 1.5, [-6.1, -6.0, -5.9, -5.5, 1.5, 1.6], [-6.0, -6.0, -6.0, -5.5, 1.5, 1.5]),
    (4, True, -6.0, 1.0, [-6.1, -6.0, -5.9, -5.5, 1.0, 1.1], [-6.0, -6.0, -6.0, -5.5, 1.0, 1.0]),
    (4, False, -0.1, 7.4, [-0.1, 0.0, 0.1, 0.5, 7.5, 7.6], [0.0, 0.0, 0.0, 0.5, 7.5, 7.5]),
    (4, True, -0.1, 6.9, [-0.1, 0.0, 0.1, 0.5, 7.0, 7.1], [0.0, 0.0, 0.0, 0.5, 7.0, 7.0]),
    (4, False, -0.4, 7.1, [-0.6, -0.5, -0.24, 0.0, 7.0, 7.1], [-0.5, -0.5, 0.0, 0.0, 7.0, 7.0]),
    (4, True, -0.4, 6.6, [-0.6, -0.5, -0.24, 0.0, 6.5, 6.6], [-0.5, -0.5, 0.0, 0.0, 6.5, 6.5]),
    (4, False, -7.3, 0.2, [-7.6, -7.5, -7.4, -7.2, 0.0, 0.1], [-7.5, -7.5, -7.5, -7.0, 0.0, 0.0]),
    (4, True, -6.8, 0.2, [-7.1, -7.0, -6.9, -6.7, 0.0, 0.1], [-7.0, -7.0, -7.0, -6.5, 0.0, 0.0]),
    (2, False, -1.0, 0.5, [-1.1, -1.0, -0.9, -0.3, 0.1, 0.6], [-1.0, -1.0, -1.0, -0.5, 0.0, 0.5]),
    (2, True, -1.0, 0.0, [-1.1, -1.0, -0.9, -0.3, 0.0, 0.1], [-1.0, -1.0, -1.0, -0.5, 0.0, 0.0]),
]


@pytest.mark.parametrize("bits, narrow, lo, hi, x, expected", TF_CASES)
def test_tensorflow_known_answers(bits, narrow, lo, hi, x, expected):
    y = fake_quant(np.array(x, np.float32).reshape(2, 3), lo, hi, bits, narrow)
    np.testing.assert_allclose(y.ravel(), expected, rtol=0, atol=1e-5)
    assert y.dtype == np.float32


def test_per_channel_known_answer_dim4():
    # TensorFlow's WithVarsPerChannelDim4NudgedUp_4Bits_NarrowRange: four channels (last axis)
    # with range [-0.4, 6.6], 4 bits, narrow: zero point 1.8 nudged to 2, range [-0.5, 6.5].
    x = np.array([-0.6, -0.5, -0.4, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0,
                  5.5, 6.0, 6.4, 6.5, 6.6, 6.7, 100.0, 100.0, 100.0, 100.0, 100.0, 1000.0],
                 np.float32).reshape(1, 2, 3, 4)
    expected = [-0.5, -0.5, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0,
                5.5, 6.0, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5]
    y = fake_quant(x, [-0.4] * 4, [6.6] * 4, 4, True, axis=-1)
    np.testing.assert_allclose(y.ravel(), expected, rtol=0, atol=1e-5)


def test_per_channel_ranges_differ_by_channel():
    # axis 0 of a (2, 3) weight: channel 0 in [-1, 0.5] at 2 bits (step 0.5), channel 1 in
    # [-10, 53.75] at 2 bits (step 21.25, zero point 10/21.25 = 0.47 -> 0, range [0, 63.75]).
    w = np.array([[-0.3, 0.1, 0.6], [-5.0, 10.0, 40.0]], np.float32)
    y = fake_quant(w, [-1.0, -10.0], [0.5, 53.75], 2, axis=0)
    np.testing.assert_allclose(y, [[-0.5, 0.0, 0.5], [0.0, 0.0, 42.5]], rtol=0, atol=1e-5)


def test_range_excluding_zero_is_shifted_not_widened():
    # [1, 64.75]: scale 63.75/255 = 0.25, zero_point_from_min = -4 < 0 -> 0; the range moves to
    # [0, 63.75] (same width): 64 and 64.75 saturate to 63.75, 0.5 is a grid point.
    n = nudge(1.0, 64.75)
    assert (float(n.nudged_min[0]), float(n.nudged_max[0]), int(n.zero_point[0])) == (0, 63.75, 0)
    y = fake_quant(np.array([-1.0, 0.0, 0.5, 1.0, 64.0, 64.75], np.float32), 1.0, 64.75)
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.5, 1.0, 63.75, 63.75])
    # All-negative [-64.75, -1]: zero_point_from_min = 259 > 255 -> 255, range [-63.75, 0].
    y = fake_quant(np.array([-70.0, -64.75, -1.0, 0.5], np.float32), -64.75, -1.0)
    np.testing.assert_array_equal(y, [-63.75, -63.75, -1.0, 0.0])


def test_float32_rounding_decides_the_zero_point():
    # [-0.05, 25.45] in float32: max - min rounds to 25.5, scale to float32(0.1) = 0x3DCCCCCD,
    # and float32(0.05) = 0x3D4CCCCD has the same mantissa, so min / scale is exactly -0.5:
    # zero_point_from_min = 0.5, std::round -> 1. Exact arithmetic on the same float32 inputs
    # gives 0.4999999925 and would round to 0.
    lo, hi = np.float32(-0.05), np.float32(25.45)
    exact = -Fraction(float(lo)) * 255 / (Fraction(float(hi)) - Fraction(float(lo)))
    assert Fraction(49, 100) < exact < Fraction(1, 2)
    n = nudge(lo, hi)
    assert int(n.zero_point[0]) == 1
    assert n.scale[0] == np.float32(0.1)
    assert n.nudged_min[0] == -np.float32(0.1)
    # so -0.1 is representable and 25.45 saturates at 254 steps above it
    y = fake_quant(np.array([-0.1, 0.0, 25.45], np.float32), lo, hi)
    np.testing.assert_array_equal(y, [-np.float32(0.1), 0.0, np.float32(254) * np.float32(0.1)])


def test_zero_point_tie_rounds_away_from_zero():
    # TensorFlow's NudgedUp case [-0.125, 63.625]: zero_point_from_min = 0.5 exactly -> 1.
    n = nudge(-0.125, 63.625)
    assert int(n.zero_point[0]) == 1 and float(n.nudged_min[0]) == -0.25


def test_zero_is_exact_for_random_ranges():
    rng = np.random.default_rng(5)
    lo = -rng.uniform(0, 10, 200).astype(np.float32)
    hi = rng.uniform(0.01, 10, 200).astype(np.float32)
    for bits in (2, 4, 8):
        y = fake_quant(np.zeros((3, 200), np.float32), lo, hi, bits, axis=1)
        assert np.all(y == 0.0)


def test_zero_range_gives_zeros_and_passes_gradient():
    x = np.array([[-1.0, 2.0], [3.0, 0.5]], np.float32)
    y = fake_quant(x, [0.0, -1.0], [0.0, 1.0], axis=1)
    assert np.all(y[:, 0] == 0.0)
    g = np.ones_like(x)
    dx, dmin, dmax = fake_quant_gradient(g, x, [0.0, -1.0], [0.0, 1.0], axis=1)
    np.testing.assert_array_equal(dx, [[1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_array_equal(dmin, [0.0, 0.0])
    np.testing.assert_array_equal(dmax, [0.0, 1.0])


def test_gradient_tensorflow_nudged_up():
    # TensorFlow's WithVarsGradient_NudgedUp_RegularRange: [-0.125, 63.625] nudges to
    # [-0.25, 63.5]; -0.26 is below, 63.6 above, the rest inside (both ends included).
    x = np.array([[-0.26, -0.25, -0.24], [0.0, 63.5, 63.6]], np.float32)
    g = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    dx, dmin, dmax = fake_quant_gradient(g, x, -0.125, 63.625)
    np.testing.assert_array_equal(dx, [[0.0, 2.0, 3.0], [4.0, 5.0, 0.0]])
    np.testing.assert_array_equal(dmin, [1.0])
    np.testing.assert_array_equal(dmax, [6.0])


def test_gradient_per_channel_sums_per_channel():
    # Both channels (last axis) [-0.1, 63.65] -> nudged [0, 63.75]; each channel sums its own
    # below-range (d_min) and above-range (d_max) upstream gradients.
    x = np.array([[-0.1, 63.8], [0.0, 70.0], [-5.0, -1.0]], np.float32)
    g = np.array([[1.0, 10.0], [2.0, 20.0], [4.0, 40.0]], np.float32)
    dx, dmin, dmax = fake_quant_gradient(g, x, [-0.1, -0.1], [63.65, 63.65], axis=-1)
    np.testing.assert_array_equal(dx, [[0.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(dmin, [5.0, 40.0])
    np.testing.assert_array_equal(dmax, [0.0, 30.0])


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_nudged_qparams_dequantize_to_the_same_grid(bits, dtype):
    rng = np.random.default_rng(bits)
    x = rng.normal(0, 2, 1000).astype(np.float32)
    params = nudged_qparams(-3.1, 4.7, bits, dtype=dtype)
    q = quantize(x.clip(*_nudged_range(-3.1, 4.7, bits)), params, "half_away_from_zero")
    y = fake_quant(x, -3.1, 4.7, bits)
    np.testing.assert_allclose(dequantize(q, params), y, rtol=0, atol=1e-5)
    n = nudge(-3.1, 4.7, bits)
    offset = 2 ** (bits - 1) if dtype == "int8" else 0
    assert params.bounds == (n.quant_min - offset, n.quant_max - offset)
    # clamping to the bounds is the fake-quant saturation
    np.testing.assert_allclose(
        dequantize(quantize(x, params, "half_away_from_zero"), params), y, rtol=0, atol=1e-5)


def _nudged_range(lo, hi, bits):
    n = nudge(lo, hi, bits)
    return float(n.nudged_min[0]), float(n.nudged_max[0])


def test_symmetric_weights_map_to_narrow_int8():
    params = nudged_qparams([-2.54, -1.0], [2.54, 1.0], 8, narrow_range=True, axis=0)
    np.testing.assert_array_equal(params.zero_point, [0, 0])
    np.testing.assert_allclose(params.scale, [0.02, 1 / 127], rtol=1e-6)
    assert params.narrow_range


@pytest.mark.parametrize("lo, hi", [(1.0, 1.0), (2.0, -1.0), (np.nan, 1.0), (-1.0, np.inf)])
def test_bad_ranges_raise(lo, hi):
    with pytest.raises(QuantizationError):
        fake_quant(np.zeros(3, np.float32), lo, hi)


@pytest.mark.parametrize("bits", [1, 9])
def test_bad_num_bits_raise(bits):
    with pytest.raises(QuantizationError, match="num_bits"):
        nudge(-1.0, 1.0, bits)


def test_range_with_subnormal_scale_is_a_zero_range():
    x = np.array([-1.0, 0.0, 1e-45, 2.0], np.float32)
    n = nudge(0.0, 1e-44)
    assert n.zero_range.all() and np.isfinite(n.scale).all() and n.scale[0] == 1.0
    y = fake_quant(x, 0.0, 1e-44)
    np.testing.assert_array_equal(y, np.zeros(4, np.float32))
    dx, _, _ = fake_quant_gradient(np.ones_like(x), x, 0.0, 1e-44)
    np.testing.assert_array_equal(dx, np.ones(4, np.float32))


def test_torch_nudge_agrees_on_subnormal_scale():
    torch = pytest.importorskip("torch", reason="the PyTorch op is the optional QAT extra")
    from gpuquant.qat.torch_ops import nudge as torch_nudge

    _, _, scale, zero_range = torch_nudge(torch.tensor([0.0]), torch.tensor([1e-44]), 8, False)
    assert bool(zero_range.all()) and float(scale[0]) == 1.0

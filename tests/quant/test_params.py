"""Quantization parameters: nudged zero points, symmetric weights, round trips (N9)."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gpuquant import QuantizationError, choose_qparams, dequantize, quantize
from gpuquant.quant.params import QuantParams, int8_to_uint8, uint8_to_int8, with_dtype


def test_range_widened_to_include_zero_and_zero_exact():
    p = choose_qparams(0.5, 2.0, "uint8")  # widened to [0, 2]
    assert p.zero_point[0] == 0
    assert np.isclose(p.scale[0], 2.0 / 255)
    assert dequantize(quantize(np.float32(0.0), p), p) == 0.0


def test_tensorflow_nudging():
    # [-1, 2] on uint8: scale 3/255, zero point 1/scale = 85 exactly
    p = choose_qparams(-1.0, 2.0, "uint8")
    assert p.zero_point[0] == 85
    # [-0.3, 0.7] on int8: zp_real = -128 + 0.3 * 255 = -51.5 -> half away from zero -> -52
    p = choose_qparams(-0.3, 0.7, "int8")
    assert p.zero_point[0] == -52


def test_symmetric_narrow_range_weights():
    p = choose_qparams(-0.5, 1.27, "int8", symmetric=True)
    assert p.zero_point[0] == 0
    assert np.isclose(p.scale[0], 1.27 / 127)
    q = quantize(np.array([-10.0, 10.0], np.float32), p)
    np.testing.assert_array_equal(q, [-127, 127])


def test_n9_all_zero_weight_channel():
    w = np.array([[0, 0, 0], [1, -2, 3]], dtype=np.float32)
    p = choose_qparams(w.min(axis=1), w.max(axis=1), "int8", symmetric=True, axis=0)
    assert np.all(np.isfinite(p.scale)) and np.all(p.scale > 0)
    q = quantize(w, p)
    np.testing.assert_array_equal(q[0], 0)
    r = dequantize(q, p)
    assert np.all(r[0] == 0.0) and np.all(np.isfinite(r))
    np.testing.assert_array_equal(q[1], [42, -85, 127])


def test_rounding_modes_of_quantize():
    p = QuantParams(np.float32(1.0), 0, "int8")
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5], np.float32)
    np.testing.assert_array_equal(quantize(x, p), [0, 2, 2, 0, -2])
    np.testing.assert_array_equal(quantize(x, p, "half_away_from_zero"), [1, 2, 3, -1, -2])


def test_saturation_and_bad_input():
    p = QuantParams(np.float32(0.1), 10, "uint8")
    np.testing.assert_array_equal(quantize(np.array([-1e9, 1e9], np.float32), p), [0, 255])
    with pytest.raises(QuantizationError, match="NaN"):
        quantize(np.array([np.nan], np.float32), p)
    with pytest.raises(QuantizationError, match="finite"):
        choose_qparams(0.0, np.inf)
    with pytest.raises(QuantizationError, match="exceeds"):
        choose_qparams(1.0, -1.0)
    with pytest.raises(QuantizationError, match="zero point"):
        QuantParams(np.float32(1.0), 200, "int8")
    with pytest.raises(QuantizationError, match="scale"):
        QuantParams(np.float32(0.0), 0, "int8")


@settings(max_examples=300, deadline=None)
@given(
    lo=st.floats(-1e4, 0, allow_nan=False),
    hi=st.floats(0, 1e4, allow_nan=False),
    dtype=st.sampled_from(["int8", "uint8"]),
)
@example(lo=-3.58e-42, hi=0.0, dtype="int8")  # subnormal scale: degenerate
def test_zero_round_trips_and_values_within_half_step(lo, hi, dtype):
    p = choose_qparams(lo, hi, dtype)
    assert dequantize(quantize(np.float32(0.0), p), p) == 0.0
    x = np.linspace(lo, hi, 101, dtype=np.float32)
    err = np.abs(dequantize(quantize(x, p), p) - x)
    assert np.all(err <= p.scale[0] * 0.5 * (1 + 1e-5) + 1e-6 * np.abs(x))


@given(q=st.lists(st.integers(0, 255), min_size=1, max_size=50), zp=st.integers(0, 255))
def test_uint8_int8_conversion_keeps_real_values(q, zp):
    q = np.array(q, np.uint8)
    p = QuantParams(np.float32(0.25), zp, "uint8")
    q8, p8 = uint8_to_int8(q, p)
    assert q8.dtype == np.int8
    np.testing.assert_array_equal(dequantize(q8, p8), dequantize(q, p))
    back, pb = int8_to_uint8(q8, p8)
    np.testing.assert_array_equal(back, q)
    assert pb.zero_point[0] == zp


@pytest.mark.parametrize("axis", [[1], 1.0, True])
def test_axis_must_be_none_or_an_integer(axis):
    with pytest.raises(QuantizationError, match="axis must be None or an integer"):
        QuantParams(np.ones(2, np.float32), np.zeros(2), "int8", axis)


def test_per_axis_parameters_on_a_tensor_without_that_axis_are_refused():
    # axis 5 of a 4-D tensor used to wrap (5 % 4) to axis 1 silently
    qp = QuantParams(np.ones(2, np.float32), np.zeros(2), "int8", axis=5)
    with pytest.raises(QuantizationError, match="axis 5 .* 4-D"):
        quantize(np.zeros((1, 2, 1, 1), np.float32), qp)
    with pytest.raises(QuantizationError, match="axis 5 .* 4-D"):
        dequantize(np.zeros((1, 2, 1, 1), np.int8), qp)


@pytest.mark.parametrize("source, target, num_bits, narrow, zp, codes, moved_zp, moved", [
    # 8 bits move by 128: int8 [-127, 127] narrow <-> uint8 [1, 255]
    ("int8", "uint8", 8, True, [-3, 5], [-127, 0, 127], [125, 133], [1, 128, 255]),
    ("uint8", "int8", 8, False, [0, 255], [0, 7, 255], [-128, 127], [-128, -121, 127]),
    # 4 bits in an 8-bit container move by 8: int8 [-8, 7] <-> uint8 [0, 15]
    ("int8", "uint8", 4, False, [-8, 2], [-8, 0, 7], [0, 10], [0, 8, 15]),
])
def test_with_dtype_keeps_the_real_values(source, target, num_bits, narrow, zp, codes,
                                           moved_zp, moved):
    scale = np.array([0.5, 0.25], np.float32)
    p = QuantParams(scale, np.array(zp), source, 0, narrow, num_bits)
    q = with_dtype(p, target)
    assert (q.dtype, q.num_bits, q.narrow_range, q.axis) == (target, num_bits, narrow, 0)
    np.testing.assert_array_equal(q.zero_point, moved_zp)
    np.testing.assert_array_equal(q.scale, scale)
    a = np.tile(codes, (2, 1))  # axis 0: one row of codes per channel
    b = np.tile(moved, (2, 1))
    np.testing.assert_array_equal(dequantize(b, q), dequantize(a, p))
    assert with_dtype(p, source) is p


def test_with_dtype_refuses_a_non_8_bit_pair():
    with pytest.raises(QuantizationError, match="cannot express int32 parameters as int8"):
        with_dtype(QuantParams(0.5, 0, "int32"), "int8")


def test_8_bit_conversions_keep_axis_and_narrow_range():
    # uint8 narrow range [1, 255] is int8's [-127, 127] moved by 128, per channel on axis 0
    p = QuantParams(np.array([0.5, 0.25], np.float32), [1, 200], "uint8", 0, narrow_range=True)
    q = np.array([[1, 128, 255], [1, 200, 255]], np.uint8)
    q8, p8 = uint8_to_int8(q, p)
    np.testing.assert_array_equal(q8, [[-127, 0, 127], [-127, 72, 127]])
    assert (p8.dtype, p8.axis, p8.narrow_range, p8.num_bits) == ("int8", 0, True, 8)
    np.testing.assert_array_equal(p8.zero_point, [-127, 72])
    back, pb = int8_to_uint8(q8, p8)
    np.testing.assert_array_equal(back, q)
    assert (pb.dtype, pb.axis, pb.narrow_range) == ("uint8", 0, True)
    np.testing.assert_array_equal(pb.zero_point, [1, 200])

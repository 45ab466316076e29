"""Known-answer cases N1-N5 of shared/cases/numerics.md and TFLite's QuantizeMultiplier."""

import math

import numpy as np
import pytest

from gpuquant import multiply_by_quantized_multiplier, quantize_multiplier
from gpuquant.quant.fixedpoint import INT32_MAX, INT32_MIN


def mbqm(acc, m, s, mode):
    return int(multiply_by_quantized_multiplier(np.int32(acc), m, s, mode))


def test_n1_gemmlowp_rounds_twice():
    assert mbqm(7984, 1583594044, -9, "gemmlowp") == 12
    assert mbqm(7984, 1583594044, -9, "single") == 11


def test_n2_positive_tie():
    assert mbqm(1, 2**30, -1, "gemmlowp") == 1
    assert mbqm(1, 2**30, -1, "single") == 0
    assert mbqm(1, 2**30, -1, "float32_half_even") == 0


def test_n3_negative_tie():
    m, s = quantize_multiplier(0.5)
    assert mbqm(-3, m, s, "gemmlowp") == -1
    assert mbqm(-3, m, s, "single") == -2
    assert mbqm(-3, m, s, "float32_half_even") == -2


def test_n4_ties():
    quarter, half = quantize_multiplier(0.25), quantize_multiplier(0.5)
    assert mbqm(5, *quarter, "gemmlowp") == 2
    assert mbqm(5, *half, "gemmlowp") == 3
    assert mbqm(5, *quarter, "float32_half_even") == 1
    assert mbqm(5, *half, "float32_half_even") == 2


@pytest.mark.parametrize("mode", ["gemmlowp", "single", "float32_half_even"])
def test_n5_multipliers_at_and_above_one(mode):
    m, s = quantize_multiplier(1.5)
    assert s > 0
    assert mbqm(50, m, s, mode) == 75
    m, s = quantize_multiplier(1.0)
    values = np.arange(-(2**16), 2**16, dtype=np.int32)
    np.testing.assert_array_equal(multiply_by_quantized_multiplier(values, m, s, mode), values)
    m, s = quantize_multiplier(4.0)
    out = mbqm(100, m, s, mode)
    assert out == 400  # no int32 overflow on the way; clamping to int8 happens after
    assert min(max(out, -128), 127) == 127
    # huge accumulators saturate toward their sign, never wrap
    assert mbqm(INT32_MAX, m, s, mode) > 2**29
    assert mbqm(INT32_MIN, m, s, mode) < -(2**29)


def test_quantize_multiplier_convention():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(0.5) == (2**30, 0)
    assert quantize_multiplier(1.0) == (2**30, 1)
    m, s = quantize_multiplier(0.3)
    assert 2**30 <= m < 2**31
    assert abs(m * 2.0 ** (s - 31) - 0.3) < 2**-31
    # rounding of q * 2**31 reaches 2**31: halve and shift up
    assert quantize_multiplier(math.nextafter(1.0, 0.0)) == (2**30, 1)
    assert quantize_multiplier(2.0**-40) == (0, 0)  # underflow below shift -31
    assert quantize_multiplier(2.0**40) == (INT32_MAX, 30)
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            quantize_multiplier(bad)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="rounding"):
        multiply_by_quantized_multiplier(np.int32(1), 2**30, 0, "nearest")
    with pytest.raises(ValueError, match="multiplier"):
        multiply_by_quantized_multiplier(np.int32(1), 2**31, 0)
    with pytest.raises(ValueError, match="shift"):
        multiply_by_quantized_multiplier(np.int32(1), 2**30, 31)
    with pytest.raises(TypeError, match="acc"):
        multiply_by_quantized_multiplier(np.float32(1), 2**30, 0)

"""QuantParams.num_bits: 2-8 bit codes in 8-bit containers, and the clamps that honour them."""

import numpy as np
import pytest

from gpuquant.errors import QuantizationError
from gpuquant.ops import activation_bounds, make_requant
from gpuquant.quant.params import QuantParams, dequantize, dtype_bounds, quantize


@pytest.mark.parametrize("bits, int8, uint8", [(8, (-128, 127), (0, 255)), (4, (-8, 7), (0, 15)),
                                               (2, (-2, 1), (0, 3))])
def test_bounds_of_b_bit_codes(bits, int8, uint8):
    assert dtype_bounds("int8", num_bits=bits) == int8
    assert dtype_bounds("uint8", num_bits=bits) == uint8
    assert dtype_bounds("int8", True, bits) == (int8[0] + 1, int8[1])


def test_quantize_clamps_to_num_bits():
    qp = QuantParams(np.float32(0.5), -3, "int8", num_bits=3)  # codes [-4, 3]
    q = quantize(np.array([-10.0, 0.0, 1.0, 10.0], np.float32), qp)
    np.testing.assert_array_equal(q, [-4, -3, -1, 3])
    np.testing.assert_array_equal(dequantize(q, qp), [-0.5, 0.0, 1.0, 3.0])


def test_requant_and_relu_bounds_use_num_bits():
    qp = QuantParams(np.float32(0.5), -6, "int8", num_bits=4)  # codes [-8, 7]
    assert make_requant(0.5, qp).qmin == -8 and make_requant(0.5, qp).qmax == 7
    assert activation_bounds(qp, "relu") == (-6, 7)


@pytest.mark.parametrize("bits", [1, 9])
def test_num_bits_outside_2_to_8_is_refused(bits):
    with pytest.raises((QuantizationError, ValueError)):
        QuantParams(np.float32(1.0), 0, "int8", num_bits=bits)


def test_zero_point_must_lie_in_the_b_bit_codes():
    with pytest.raises(QuantizationError):
        QuantParams(np.float32(1.0), -100, "int8", num_bits=4)

"""cuda_src/fixedpoint.cuh (host build) against gpuquant/quant/fixedpoint.py and the numeric cases
N1-N5 of the shared case list, on edge values: +-2^i +- {0, 1, 2}, INT32_MIN/MAX, seeded random."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from host_module import HostModule

from gpuquant.backends.operands import ROUNDING_CODES
from gpuquant.quant.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    multiplier_to_float32,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
)

PROBE = Path(__file__).parent / "kernels" / "fixedpoint_probe.cu"


@pytest.fixture(scope="module")
def probe() -> HostModule:
    return HostModule(PROBE, ["gq_probe_multiply", "gq_probe_requantize"])


def _device_multiply(probe, acc, m, s, rounding):
    acc, m, s = (np.ascontiguousarray(np.broadcast_to(v, np.shape(acc)), np.int32)
                 for v in (acc, m, s))
    f = np.ascontiguousarray(multiplier_to_float32(m, s))
    y = np.empty_like(acc)
    probe.get_function("gq_probe_multiply")(
        (4,), (64,), (acc, m, s, f, np.int32(ROUNDING_CODES[rounding]), np.int64(acc.size), y))
    return y


def _edge_values() -> np.ndarray:
    vals = {INT32_MIN, INT32_MAX, 0}
    for i in range(31):
        for d in (-2, -1, 0, 1, 2):
            for sign in (1, -1):
                v = sign * (2**i) + d
                if INT32_MIN <= v <= INT32_MAX:
                    vals.add(v)
    rng = np.random.default_rng(0)
    vals.update(int(v) for v in rng.integers(INT32_MIN, INT32_MAX, 300, endpoint=True))
    return np.array(sorted(vals), dtype=np.int64)


@pytest.mark.parametrize("rounding", list(ROUNDING_CODES))
def test_multiply_matches_reference_on_edge_values(probe, rounding):
    accs = _edge_values()
    multipliers = np.array([0, 1, 2**30, 2**30 + 1, 1518500250, INT32_MAX - 1, INT32_MAX])
    for shift in (-31, -20, -9, -1, 0, 1, 5, 30):
        acc, m = np.meshgrid(accs, multipliers, indexing="ij")
        expected = multiply_by_quantized_multiplier(acc, m, shift, rounding)
        np.testing.assert_array_equal(_device_multiply(probe, acc, m, shift, rounding), expected)


@pytest.mark.parametrize("acc,m,s,expected", [
    (7984, 1583594044, -9, {"gemmlowp": 12, "single": 11}),                     # N1
    (1, 2**30, -1, {"gemmlowp": 1, "single": 0, "float32_half_even": 0}),       # N2
    (-3, 2**30, 0, {"gemmlowp": -1, "single": -2, "float32_half_even": -2}),    # N3
    (5, 2**30, -1, {"gemmlowp": 2, "float32_half_even": 1}),                    # N4, M = 0.25
    (5, 2**30, 0, {"gemmlowp": 3, "float32_half_even": 2}),                     # N4, M = 0.5
])
def test_numeric_cases(probe, acc, m, s, expected):
    for rounding, value in expected.items():
        assert _device_multiply(probe, np.array([acc]), m, s, rounding)[0] == value, rounding


@pytest.mark.parametrize("rounding", list(ROUNDING_CODES))
def test_n5_multipliers_of_one_and_above(probe, rounding):
    """N5: ratio 1.5 maps 50 to 75; ratio 1.0 is the identity; ratio 4.0 on 100 clamps to 127."""
    values = np.arange(-128, 128, dtype=np.int32)
    for ratio, acc, expected in ((1.5, np.array([50]), [75]), (1.0, values, values),
                                 (4.0, np.array([100]), [127])):
        m, s = quantize_multiplier(ratio)
        acc = np.ascontiguousarray(acc, np.int32)
        mm, ss = np.full(acc.size, m, np.int32), np.full(acc.size, s, np.int32)
        y = np.empty_like(acc)
        probe.get_function("gq_probe_requantize")(
            (2,), (64,), (acc, mm, ss, multiplier_to_float32(mm, ss), np.int32(0),
                          np.int32(-128), np.int32(127), np.int32(ROUNDING_CODES[rounding]),
                          np.int64(acc.size), y))
        np.testing.assert_array_equal(y, expected)

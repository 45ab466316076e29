"""Lookup tables and concatenation through per-input tables."""

from __future__ import annotations

import numpy as np
import pytest

from gpuquant.backends.numpy import NumpyBackend
from gpuquant.errors import QuantizationError, ShapeError
from gpuquant.ops import ConcatParams, LookupParams, build_table
from gpuquant.quant.params import QuantParams

nb = NumpyBackend()


@pytest.mark.parametrize(
    "in_dtype,out_dtype", [("int8", "int8"), ("uint8", "int8"), ("int8", "uint8")]
)
def test_lookup_indexes_by_code_minus_qmin(in_dtype, out_dtype):
    rng = np.random.default_rng(0)
    info = np.iinfo(in_dtype)
    table = rng.integers(0, 256, 256).astype(np.uint8).view(np.dtype(out_dtype))
    x = rng.integers(info.min, int(info.max) + 1, (3, 4, 5)).astype(in_dtype)
    x.reshape(-1)[:2] = info.min, info.max
    got = nb.lookup(x, LookupParams("lut", in_dtype, table))
    want = np.array([table[int(v) - int(info.min)] for v in x.reshape(-1)]).reshape(x.shape)
    assert got.dtype == np.dtype(out_dtype)
    np.testing.assert_array_equal(got, want)


def test_n8_concat_of_inputs_with_different_scales():
    out = QuantParams(0.1, 0, "int8")
    a_params, b_params = QuantParams(0.1, 0, "int8"), QuantParams(0.05, -10, "int8")
    tables = (None, LookupParams("b", "int8", build_table("identity", b_params, out)))
    got = nb.concat([np.array([10, 20], np.int8), np.array([30, -10], np.int8)],
                    ConcatParams("n8", 0, tables))
    assert a_params.scale == out.scale
    np.testing.assert_array_equal(got, [10, 20, 20, 0])
    assert got.dtype == np.int8


def test_concat_along_channels_with_tables_on_every_input():
    x = np.arange(-128, 128, dtype=np.int16).astype(np.int8).reshape(2, 2, 8, 8)
    shift = LookupParams("t", "int8", np.roll(np.arange(-128, 128), 1).astype(np.int8))
    got = nb.concat([x, x[..., :3]], ConcatParams("cat", -1, (shift, None)))
    np.testing.assert_array_equal(got[..., :8], shift.table[x.astype(np.int64) + 128])
    np.testing.assert_array_equal(got[..., 8:], x[..., :3])


def test_concat_rejects_a_missing_table():
    with pytest.raises(ShapeError, match="'cat'"):
        nb.concat([np.zeros(2, np.int8)], ConcatParams("cat", 0, (None, None)))


def test_table_clamps_to_the_output_num_bits_codes():
    # identity from 8-bit codes (scale 1) into 4-bit codes [-8, 7] (scale 1): 100 -> 7, -100 -> -8
    inp = QuantParams(1.0, 0, "int8")
    out = QuantParams(1.0, 0, "int8", num_bits=4)
    table = build_table("identity", inp, out)
    assert table[100 + 128] == 7 and table[-100 + 128] == -8 and table[3 + 128] == 3
    assert table.min() == -8 and table.max() == 7


@pytest.mark.parametrize("axis", [1.0, [0], True])
def test_concat_params_refuse_a_non_integer_axis(axis):
    with pytest.raises(QuantizationError, match="'cat': axis"):
        ConcatParams("cat", axis, (None, None))

"""The native cores' epilogue alone (``_igemm.requantize`` / ``requantize_avx2``): the same
integers as int_reference.py's requantization for every rounding mode, and the buffer checks
made before any pointer is read."""

from __future__ import annotations

import numpy as np
import pytest

from gpuquant.backends.numpy import native
from gpuquant.backends.operands import requant_operands
from gpuquant.ops import Requant
from gpuquant.quant.fixedpoint import ROUNDING_MODES
from int_reference import INT32_MAX, INT32_MIN, requant


@pytest.fixture(params=list(native.ISAS))
def isa(request) -> str:
    if request.param not in native.available():
        pytest.skip(f"native int8 core {request.param!r}: {native.status()[1]}")
    return request.param


def _entry(isa: str):
    module = native._module()
    return module.requantize if isa == "vnni" else module.requantize_avx2


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("n", [1, 7, 8, 15, 16, 17, 33])
def test_requantize_into_matches_reference(isa, rounding, dtype, n):
    rng = np.random.default_rng(n + len(rounding))
    wide = rng.integers(INT32_MIN, INT32_MAX, (9, n + 5), endpoint=True).astype(np.int32)
    acc = wide[:, 2:n + 2]  # row stride wider than a row
    acc[0, 0], acc[-1, -1] = INT32_MIN, INT32_MAX
    lo = -128 if dtype == "int8" else 0
    r = Requant(rng.integers(0, 2**31, n), rng.integers(-31, 31, n), rounding, lo + 7, lo + 2,
                lo + 250, dtype)
    out = np.full((9, n + 3), 99, dtype=dtype)
    native.requantize_into(acc, requant_operands(r, n), isa, out[:, 1:n + 1])
    np.testing.assert_array_equal(out[:, 1:n + 1], requant(acc.astype(np.int64), r))
    assert (out[:, 0] == 99).all() and (out[:, n + 1:] == 99).all()  # nothing past the row


def _args(n: int = 4, rows: int = 3) -> dict:
    return {"acc": np.zeros((rows, n), np.int32), "multiplier": np.full(n, 2**30, np.int32),
            "shift": np.zeros(n, np.int32), "multiplier_f32": np.full(n, 0.5, np.float32),
            "zero_point": 0, "qmin": -128, "qmax": 127, "rounding": 0,
            "out": np.zeros((rows, n), np.int8)}


def _call(isa: str, **changes) -> None:
    a = {**_args(), **changes}
    _entry(isa)(a["acc"], a["multiplier"], a["shift"], a["multiplier_f32"], a["zero_point"],
                a["qmin"], a["qmax"], a["rounding"], a["out"])


@pytest.mark.parametrize("changes, error, message", [
    ({"acc": np.zeros((3, 4), np.int64)}, ValueError, "acc: expected a 2-D buffer"),
    ({"acc": np.zeros((4, 3), np.int32).T}, ValueError, "acc: expected a 2-D buffer"),
    ({"acc": np.zeros(12, np.int32)}, ValueError, "acc: expected a 2-D buffer"),
    ({"acc": [[0] * 4] * 3}, TypeError, "acc: not a buffer"),
    ({"out": np.zeros((3, 4), np.int32)}, ValueError, "out: expected a 2-D buffer"),
    ({"out": np.zeros((3, 5), np.int8)}, ValueError, r"out is \(3, 5\), acc is \(3, 4\)"),
    ({"out": np.zeros((2, 4), np.int8)}, ValueError, r"out is \(2, 4\), acc is \(3, 4\)"),
    ({"out": np.broadcast_to(np.zeros(4, np.int8), (3, 4))}, TypeError, "out: not a buffer"),
    ({"out": np.zeros((3, 4), np.int8)[::-1][::-1][:, ::-1]}, ValueError, "out: expected"),
    ({"multiplier": np.zeros(3, np.int32)}, ValueError, "multiplier: expected 4 values"),
    ({"multiplier": np.zeros(4, np.int64)}, ValueError, "multiplier: expected 4 values"),
    ({"shift": np.zeros(8, np.int32)[::2]}, TypeError, "shift: not a buffer"),
    ({"multiplier_f32": np.zeros(4, np.float64)}, ValueError, "multiplier_f32: expected"),
    ({"rounding": 3}, ValueError, "unknown rounding code 3"),
    ({"zero_point": 128}, ValueError, r"zero point 128 and clamp bounds \[-128, 127\]"),
    ({"qmin": 5, "qmax": 4}, ValueError, r"clamp bounds \[5, 4\] must lie in \[-128, 127\]"),
    ({"qmax": 200}, ValueError, r"must lie in \[-128, 127\]"),
    ({"out": np.zeros((3, 4), np.uint8), "qmin": -1}, ValueError, r"must lie in \[0, 255\]"),
])
def test_requantize_refuses_bad_buffers(isa, changes, error, message):
    with pytest.raises(error, match=message):
        _call(isa, **changes)


def test_requantize_refuses_read_only_and_overlapping_out(isa):
    out = np.zeros((3, 4), np.int8)
    out.flags.writeable = False
    with pytest.raises(TypeError, match="out: not a buffer"):
        _call(isa, out=out)
    raw = np.zeros(3 * 4 * 4, np.int8)
    acc = raw.view(np.int32).reshape(3, 4)
    with pytest.raises(ValueError, match="out overlaps an input"):
        _call(isa, acc=acc, out=raw[:12].reshape(3, 4))
    rows_overlap = np.lib.stride_tricks.as_strided(np.zeros(8, np.int8), (3, 4), (1, 1))
    with pytest.raises(ValueError, match="out: expected .*rows apart"):
        _call(isa, out=rows_overlap)


def test_requantize_accepts_empty_rows(isa):
    _call(isa, acc=np.zeros((0, 4), np.int32), out=np.zeros((0, 4), np.int8))

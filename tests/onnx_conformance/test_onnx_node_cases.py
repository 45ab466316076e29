"""ONNX operator conformance of the 8-bit integer ops, from the onnx package's own generators.

Each case is rebuilt at test time from ``onnx.backend.test.case.node``; the expected outputs are
the values the ONNX specification's test data asserts. Non-8-bit variants (int16/uint16, int4,
int2, float8, float4, blocked quantization) are skipped with their reason.
"""

from __future__ import annotations

import numpy as np
import pytest

from gpuquant.backends.numpy import NumpyBackend
from onnx_node_cases import MODULES, collect, run_case, skip_reason

CASES = [case for op in MODULES for case in collect(op)]


@pytest.fixture(scope="module")
def backend():
    return NumpyBackend()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_onnx_node_case(backend, case):
    reason = skip_reason(case)
    if reason is not None:
        pytest.skip(reason)
    got = run_case(backend, case)
    assert len(got) == len(case.outputs)
    for g, want in zip(got, case.outputs):
        want = np.asarray(want)
        g = np.asarray(g)
        assert g.dtype == want.dtype, (case.name, g.dtype, want.dtype)
        assert g.shape == want.shape, (case.name, g.shape, want.shape)
        np.testing.assert_array_equal(g, want, err_msg=case.name)


def test_every_op_has_an_eight_bit_case():
    covered = {c.node.op_type for c in CASES if skip_reason(c) is None}
    assert covered == set(MODULES)

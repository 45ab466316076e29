"""The CuPy backend prepares and uploads a layer's constants once per params object, and drops
them when the params object goes away."""

from __future__ import annotations

import gc

import numpy as np
from host_kernels import HostKernels

from gpuquant.backends.cupy import CupyBackend
from gpuquant.backends.cupy import ops_gemm
from gpuquant.ops import GemmParams


def test_constants_are_uploaded_once_and_released(monkeypatch):
    calls = []
    real = ops_gemm.gemm_operands

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ops_gemm, "gemm_operands", counting)
    backend = CupyBackend(HostKernels(75))
    p = GemmParams("fc", np.ones((3, 5), np.int8), np.zeros(3), 0, "int8", np.arange(3), None)
    x = np.ones((2, 5), np.int8)
    first = backend.gemm(x, p)
    second = backend.gemm(x, p)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, [[5, 6, 7], [5, 6, 7]])
    assert len(calls) == 1
    del p
    gc.collect()
    assert not backend._uploads._items

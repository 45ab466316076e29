"""Fixtures of the CUDA tests: the CuPy backend on host builds of the kernels (and on a real device
when there is one), and the NumPy reference backend.

``host_backend`` runs ``CupyBackend`` with ``HostKernels``: "dp4a" (cc 75) takes the __dp4a GEMM
path, "mma" (cc 90) the tensor-core path with its mma emulated per the PTX fragment layouts;
"device" is the real CuPy backend on the GPU, skipped (with the reason) where none answers.
Results come back as NumPy arrays in every case.
"""

from __future__ import annotations

from typing import Any

import pytest
from host_kernels import HostKernels

from gpuquant.backends.cupy import CupyBackend, cupy_status
from gpuquant.backends.numpy import NumpyBackend

PATHS = {"dp4a": 75, "mma": 90}


class _NumpyResults:
    """A backend whose array results are copied to NumPy (for assertions)."""

    def __init__(self, backend: CupyBackend) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._backend, name)
        if not callable(method):
            return method

        def call(*args, **kwargs):
            out = method(*args, **kwargs)
            return self._backend.to_numpy(out) if hasattr(out, "shape") else out

        return call


@pytest.fixture(scope="session", params=[*sorted(PATHS), "device"])
def host_backend(request) -> Any:
    if request.param == "device":
        ok, why = cupy_status()
        if not ok:
            pytest.skip(f"CuPy backend on a GPU: {why}")
        return _NumpyResults(CupyBackend())
    return _NumpyResults(CupyBackend(HostKernels(PATHS[request.param])))


@pytest.fixture(scope="session")
def reference() -> NumpyBackend:
    return NumpyBackend()

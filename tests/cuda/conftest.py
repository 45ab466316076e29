"""Fixtures of the CUDA tests: the CuPy backend on host builds of the kernels, and the reference.

``host_backend`` runs ``CupyBackend`` with ``HostKernels``: cc 75 takes the __dp4a GEMM path,
cc 90 the tensor-core path (its mma emulated per the PTX fragment layouts).
"""

from __future__ import annotations

import pytest
from host_kernels import HostKernels

from gpuquant.backends.cupy import CupyBackend
from gpuquant.backends.numpy import NumpyBackend

PATHS = {"dp4a": 75, "mma": 90}


@pytest.fixture(scope="session", params=sorted(PATHS))
def host_backend(request) -> CupyBackend:
    return CupyBackend(HostKernels(PATHS[request.param]))


@pytest.fixture(scope="session")
def reference() -> NumpyBackend:
    return NumpyBackend()

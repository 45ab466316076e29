"""The ``nb`` fixture: the NumPy backend on each int8 core this machine runs (native.py)."""

from __future__ import annotations

import pytest

from gpuquant.backends.numpy import NumpyBackend, native


@pytest.fixture(params=["blas", *native.ISAS])
def nb(request) -> NumpyBackend:
    if request.param != "blas" and request.param not in native.available():
        pytest.skip(f"native int8 core {request.param!r}: {native.status()[1]}")
    return NumpyBackend(request.param)

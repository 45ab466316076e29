"""The ``nb`` fixture: the NumPy backend on each int8 core this machine runs (native.py)."""

from __future__ import annotations

import pytest

from gpuquant.backends.numpy import NumpyBackend, native


@pytest.fixture(params=["blas", "vnni"])
def nb(request) -> NumpyBackend:
    if request.param == "vnni" and not native.status()[0]:
        pytest.skip(f"native int8 core: {native.status()[1]}")
    return NumpyBackend(request.param)

import ctypes

import pytest

from gpuquant.compare.blas import _bundled_openblas, blas_threads_from_environment, set_blas_threads


def _get_threads() -> int:
    for path in _bundled_openblas():
        lib = ctypes.CDLL(str(path))
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads"):
            getter = getattr(lib, name, None)
            if getter is not None:
                return getter()
    pytest.skip("NumPy does not use a bundled OpenBLAS here")


def test_thread_count_is_set():
    before = _get_threads()
    try:
        assert set_blas_threads(1)
        assert _get_threads() == 1
    finally:
        set_blas_threads(before)


def test_environment_takes_precedence(monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert not blas_threads_from_environment()
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert blas_threads_from_environment()

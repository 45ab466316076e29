"""Backend choice (backends/__init__.py) and the CuPy availability reason (cupy/availability.py)."""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest

from gpuquant.backends import ENV_VAR, resolve_backend
from gpuquant.backends.cupy import availability
from gpuquant.errors import BackendUnavailableError


@pytest.mark.parametrize("name", ["tpu", "NumPy", "cuda"])
def test_an_unknown_name_in_the_environment_is_a_gpuquant_value_error(monkeypatch, name):
    monkeypatch.setenv(ENV_VAR, name)
    with pytest.raises(BackendUnavailableError, match=f"from {ENV_VAR}") as exc:
        resolve_backend(None)
    assert isinstance(exc.value, ValueError)
    assert "auto, numpy, cupy" in str(exc.value)


def test_a_wrongly_cased_name_says_names_are_lower_case(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "NumPy")
    with pytest.raises(BackendUnavailableError, match="names are lower case"):
        resolve_backend(None)


def test_an_unknown_argument_names_the_argument(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(BackendUnavailableError, match=r"got 'tpu' \(argument\)"):
        resolve_backend("tpu")


def test_the_argument_wins_over_a_bad_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "tpu")
    assert resolve_backend("numpy").name == "numpy"


class _FailingRuntime:
    @staticmethod
    def getDeviceCount():
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")


def _fail_runtime(monkeypatch):
    cupy = pytest.importorskip("cupy")
    monkeypatch.setattr(cupy.cuda, "runtime", _FailingRuntime)


def test_no_driver_library_is_reported_as_no_driver(monkeypatch):
    _fail_runtime(monkeypatch)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)

    def no_library(name, *args, **kwargs):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    assert availability.cupy_status() == (False, "no NVIDIA driver (libcuda not found)")


def test_other_runtime_errors_keep_cupys_text(monkeypatch):
    _fail_runtime(monkeypatch)
    monkeypatch.setattr(availability, "driver_library_found", lambda: True)
    ok, why = availability.cupy_status()
    assert not ok
    assert why == ("no CUDA device (RuntimeError: cudaErrorInsufficientDriver: CUDA driver "
                   "version is insufficient)")

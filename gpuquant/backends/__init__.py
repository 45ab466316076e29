"""Backends: the same integer ops on NumPy (reference, CPU) and CuPy (CUDA kernels).

Choice, in order: the ``name`` argument, else the ``GPUQUANT_BACKEND`` environment variable,
else ``"auto"``. ``auto`` takes CuPy when it imports and a CUDA device answers, else NumPy.
Asking for ``"cupy"`` where it cannot run, or for a name that is none of these, raises
BackendUnavailableError saying why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import BackendUnavailableError
from .base import Backend

BACKEND_NAMES = ("auto", "numpy", "cupy")
ENV_VAR = "GPUQUANT_BACKEND"


@dataclass(frozen=True)
class BackendChoice:
    """The backend a request resolves to, and the reason in words."""

    requested: str
    name: str
    reason: str


def cupy_status() -> tuple[bool, str]:
    """(True, device description) when CuPy imports and sees a device, else (False, why)."""
    from .cupy.availability import cupy_status as status

    return status()


def resolve_backend(name: str | None = None) -> BackendChoice:
    """Which backend ``name`` (or the environment, or auto) selects, and why."""
    requested = name or os.environ.get(ENV_VAR) or "auto"
    source = "argument" if name else (f"{ENV_VAR}" if os.environ.get(ENV_VAR) else "default")
    if requested not in BACKEND_NAMES:
        case = "; names are lower case" if requested.lower() in BACKEND_NAMES else ""
        raise BackendUnavailableError(
            f"backend must be one of {', '.join(BACKEND_NAMES)}, got {requested!r} "
            f"({'from ' + ENV_VAR if source == ENV_VAR else source}{case})"
        )
    if requested == "numpy":
        return BackendChoice(requested, "numpy", f"numpy requested ({source})")
    ok, why = cupy_status()
    if requested == "cupy":
        if not ok:
            raise BackendUnavailableError(f"cupy backend requested ({source}) but unusable: {why}")
        return BackendChoice(requested, "cupy", f"cupy requested ({source}); {why}")
    if ok:
        return BackendChoice(requested, "cupy", f"auto: CUDA device found: {why}")
    return BackendChoice(requested, "numpy", f"auto: {why}, using the NumPy reference backend")


_INSTANCES: dict[str, Backend] = {}


def get_backend(name: str | None = None) -> Backend:
    """The backend instance for ``name`` ("auto", "numpy", "cupy"; None reads the environment)."""
    choice = resolve_backend(name)
    if choice.name not in _INSTANCES:
        if choice.name == "cupy":
            from .cupy import CupyBackend

            _INSTANCES["cupy"] = CupyBackend()
        else:
            from .numpy import NumpyBackend

            _INSTANCES["numpy"] = NumpyBackend()
    return _INSTANCES[choice.name]


__all__ = ["BACKEND_NAMES", "Backend", "BackendChoice", "get_backend", "resolve_backend"]

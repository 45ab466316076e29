"""Whether the CuPy backend can run here, and why not."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

DRIVER_LIBRARY = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"


def driver_library_found() -> bool:
    """Whether the NVIDIA driver's CUDA library (libcuda) can be found or loaded; without it
    no CUDA runtime call can succeed, whatever error CuPy reports for it."""
    if ctypes.util.find_library("cuda"):
        return True
    try:
        ctypes.CDLL(DRIVER_LIBRARY)
    except OSError:
        return False
    return True


def cupy_status() -> tuple[bool, str]:
    """``(True, device description)`` when CuPy imports and a CUDA device answers, e.g.
    ``"NVIDIA H200 (sm_90), 1 device"``; else ``(False, reason)``, e.g. ``"cupy not installed"``,
    ``"no NVIDIA driver (libcuda not found)"`` or ``"no CUDA device (...)"``."""
    try:
        import cupy
    except ImportError as e:
        return False, f"cupy not installed ({e})"
    except Exception as e:  # a broken CUDA installation can fail the import in many ways
        return False, f"cupy failed to import ({type(e).__name__}: {e})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            return False, "no CUDA device (the runtime reports 0 devices)"
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    except Exception as e:
        if not driver_library_found():
            return False, "no NVIDIA driver (libcuda not found)"
        return False, f"no CUDA device ({type(e).__name__}: {e})"
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    plural = "s" if count > 1 else ""
    return True, f"{name} (sm_{props['major']}{props['minor']}), {count} device{plural}"

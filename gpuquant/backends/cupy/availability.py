"""Whether the CuPy backend can run here, and why not."""

from __future__ import annotations


def cupy_status() -> tuple[bool, str]:
    """``(True, "")`` when CuPy imports and a CUDA device answers; else ``(False, reason)``."""
    try:
        import cupy
    except ImportError as e:
        return False, f"cupy not installed ({e})"
    except Exception as e:  # a broken CUDA installation can fail the import in many ways
        return False, f"cupy failed to import ({type(e).__name__}: {e})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return False, f"no CUDA device ({type(e).__name__}: {e})"
    if count < 1:
        return False, "no CUDA device (the runtime reports 0 devices)"
    return True, ""

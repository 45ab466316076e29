"""The thread count of the OpenBLAS that NumPy's wheels bundle (scipy-openblas), set at run time.

NumPy's BLAS starts one thread per core for every matrix product. The products of the main job
are small (float im2col chunks of a few MB, int8 GEMMs in float32 chunks) and the NumPy backend
runs its own thread pool, so the BLAS threads mostly wait for each other: on a busy two-core
machine ``gpuquant compare`` took 24 s with one BLAS thread and 71 s with two. OpenBLAS reads
``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` when it loads; the command line leaves the count
alone when either is set.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
SETTERS = (
    "scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_", "openblas_set_num_threads",
)


def _bundled_openblas() -> list[Path]:
    root = Path(np.__file__).resolve().parent
    found: list[Path] = []
    for folder in (root.parent / "numpy.libs", root / ".dylibs"):
        if folder.is_dir():
            found += sorted(folder.glob("*openblas*"))
    return found


def set_blas_threads(count: int) -> bool:
    """Give NumPy's bundled OpenBLAS ``count`` threads; False when NumPy uses another BLAS."""
    for path in _bundled_openblas():
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        for name in SETTERS:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter(ctypes.c_int(count))
                return True
    return False


def blas_threads_from_environment() -> bool:
    """True when the user fixed the BLAS thread count through the environment."""
    return any(name in os.environ for name in ENV_VARS)

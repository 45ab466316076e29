"""The CuPy backend: the CUDA kernels of cuda_src/ behind the Backend protocol
(backends/base.py)."""

from .availability import cupy_status
from .backend import CupyBackend

__all__ = ["CupyBackend", "cupy_status"]

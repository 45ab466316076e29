"""The CuPy backend's kernel provider, on the CPU: NumPy arrays and host builds of cuda_src/.

``HostKernels(cc)`` has the attributes ``CupyBackend`` uses (``xp``, ``cc``, ``max_blocks``,
``function``, ``asarray``, ``to_numpy``, ``pointer``), so the backend's own launch code runs
unchanged; ``cc`` picks the instantiations (80 and above: the tensor-core path, emulated).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuquant.backends.cupy.kernels import name_expressions
from gpuquant.backends.cupy.sources import cuda_source_dir

from host_module import HostModule

_MODULES: dict[tuple[str, int], HostModule] = {}


class HostKernels:
    xp = np
    max_blocks = 4

    def __init__(self, cc: int) -> None:
        self.cc = cc

    def function(self, file: str, name: str):
        key = (file, self.cc)
        if key not in _MODULES:
            _MODULES[key] = HostModule(cuda_source_dir() / file, name_expressions(file, self.cc))
        return _MODULES[key].get_function(name)

    @staticmethod
    def asarray(x: Any) -> np.ndarray:
        return np.asarray(x)

    @staticmethod
    def to_numpy(x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    @staticmethod
    def pointer(x: np.ndarray) -> int:
        return int(x.ctypes.data)

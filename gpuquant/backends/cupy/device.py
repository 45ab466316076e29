"""The CUDA side of the CuPy backend: compiled modules per device, arrays, pointers.

``CudaKernels`` is what the backend launches through; tests substitute an object with the same
attributes that runs the same sources on the CPU (tests/cuda/host_module.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .kernels import OPTIONS, name_expressions
from .sources import cuda_source_dir, read_source


DLPACK_CUDA_DEVICES = (2, 13)  # kDLCUDA, kDLCUDAManaged; anything else is read on the host


def _sources_digest() -> str:
    """A hash of every source file, passed as a define: CuPy's compile cache keys on the options
    and the .cu text only, so a changed header must change the options."""
    h = hashlib.sha256()
    for path in sorted(cuda_source_dir().glob("*.cu*")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


class CudaKernels:
    """One ``cupy.RawModule`` per ``.cu`` file and device, with its name expressions."""

    def __init__(self) -> None:
        import cupy

        self.xp = cupy
        self._modules: dict[tuple[int, str], Any] = {}
        self._digest = _sources_digest()
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"]
        self.device_name = name.decode() if isinstance(name, bytes) else str(name)
        self.cc = 10 * int(props["major"]) + int(props["minor"])
        # Grid-stride kernels: enough blocks of 128 threads to fill every multiprocessor.
        self.max_blocks = 16 * int(props["multiProcessorCount"])

    def function(self, file: str, name: str):
        """The kernel ``name`` of ``file`` for the current device (compiled on first use)."""
        device = self.xp.cuda.Device().id
        key = (device, file)
        module = self._modules.get(key)
        if module is None:
            module = self.xp.RawModule(
                code=read_source(file),
                options=(*OPTIONS, f"-I{cuda_source_dir()}", f"-DGQ_SOURCES={self._digest}"),
                name_expressions=name_expressions(file, self.cc),
            )
            self._modules[key] = module
        return module.get_function(name)

    def asarray(self, x: Any):
        """A CuPy array for a NumPy/CuPy array, a ``__cuda_array_interface__`` or DLPack object."""
        if isinstance(x, self.xp.ndarray) or hasattr(x, "__cuda_array_interface__"):
            return self.xp.asarray(x)
        if hasattr(x, "__dlpack_device__") and x.__dlpack_device__()[0] in DLPACK_CUDA_DEVICES:
            return self.xp.from_dlpack(x)
        return self.xp.asarray(np.asarray(x))

    def to_numpy(self, x: Any) -> np.ndarray:
        return self.xp.asnumpy(x)

    @staticmethod
    def pointer(x: Any) -> int:
        return int(x.data.ptr)

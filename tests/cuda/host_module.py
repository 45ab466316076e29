"""Run the CUDA sources of cuda_src/ on the CPU: g++ builds them against shim/cuda_host_shim.h.

``HostModule`` is shaped like ``cupy.RawModule``: built from a ``.cu`` file and its
``name_expressions``; ``get_function(name)`` returns a callable ``(grid, block, args)`` whose
``args`` are NumPy arrays (passed as device pointers), NumPy scalars and one-element structured
arrays (both passed by value, the latter as a C struct), as CuPy's ``RawKernel`` takes them.
Two builds:

- a shared library loaded with ctypes (fast, the default);
- ``sanitize="thread"``: a ThreadSanitizer executable run in a subprocess per launch
  (ThreadSanitizer cannot be loaded into an uninstrumented Python); its report is kept in
  ``last_report``.

Builds are cached under ``build/cuda_host/`` keyed by a hash of every source and flag.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CUDA_SRC = REPO / "cuda_src"
SHIM_DIR = Path(__file__).resolve().parent / "shim"
BUILD_DIR = Path(os.environ.get("GPUQUANT_HOST_BUILD_DIR", REPO / "build" / "cuda_host"))
CXX = os.environ.get("CXX", "g++")

_DRIVER = r"""
#include <cstdio>
#include <cstdlib>
#include <vector>
typedef void (*gq_launcher)(const unsigned*, const unsigned*, void**);
static gq_launcher gq_launchers[] = {%(table)s};

// argv: launcher index, input file, output file. Input: grid[3] block[3] nargs, then per
// argument a kind byte (0 value, 1 buffer), a uint64 size and the bytes. Output: the buffers.
int main(int argc, char** argv) {
  if (argc != 4) return 2;
  FILE* in = std::fopen(argv[2], "rb");
  unsigned dims[6], nargs;
  if (std::fread(dims, 4, 6, in) != 6 || std::fread(&nargs, 4, 1, in) != 1) return 3;
  std::vector<std::vector<unsigned char>> storage(nargs);
  std::vector<void*> pointers(nargs), args(nargs);
  std::vector<unsigned char> kinds(nargs);
  for (unsigned i = 0; i < nargs; ++i) {
    unsigned long long size;
    if (std::fread(&kinds[i], 1, 1, in) != 1 || std::fread(&size, 8, 1, in) != 1) return 3;
    storage[i].resize(size + 16);
    if (size && std::fread(storage[i].data(), 1, size, in) != size) return 3;
    storage[i].resize(size);
    pointers[i] = storage[i].data();
    args[i] = kinds[i] ? (void*)&pointers[i] : storage[i].data();
  }
  std::fclose(in);
  gq_launchers[std::atoi(argv[1])](dims, dims + 3, args.data());
  FILE* out = std::fopen(argv[3], "wb");
  for (unsigned i = 0; i < nargs; ++i)
    if (kinds[i]) std::fwrite(storage[i].data(), 1, storage[i].size(), out);
  std::fclose(out);
  return 0;
}
"""


def _source_digest() -> str:
    h = hashlib.sha256()
    for path in sorted([*CUDA_SRC.glob("*.cu*"), *SHIM_DIR.glob("*.h")]):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


class HostModule:
    """A ``.cu`` file compiled for the host; ``get_function`` as ``cupy.RawModule``."""

    def __init__(
        self,
        path: str | os.PathLike,
        name_expressions: Sequence[str],
        defines: Sequence[str] = (),
        sanitize: str | None = None,
    ) -> None:
        self.path = Path(path).resolve()
        self.names = list(name_expressions)
        self.sanitize = sanitize
        self.last_report = ""
        flags = ["-std=c++20", "-ffp-contract=off", "-pthread", "-fPIC", "-w",
                 f"-I{CUDA_SRC}", f"-I{SHIM_DIR}"]
        flags += [f"-D{d}" for d in defines]
        flags += ["-O1", "-g", "-fsanitize=thread"] if sanitize == "thread" else ["-O2"]
        key = hashlib.sha256(
            "\0".join([_source_digest(), self.path.read_text(), *self.names, *flags, str(sanitize)])
            .encode()
        ).hexdigest()[:20]
        suffix = "exe" if sanitize else "so"
        self.binary = BUILD_DIR / f"{self.path.stem}-{key}.{suffix}"
        if not self.binary.exists():
            self._build(flags)
        self._lib = None if sanitize else ctypes.CDLL(str(self.binary))

    def _wrapper_source(self) -> str:
        lines = ['#include "cuda_host_shim.h"', f'#include "{self.path}"']
        for i, name in enumerate(self.names):
            lines.append(
                f'extern "C" void gq_launch_{i}(const unsigned* g, const unsigned* b, void** a) '
                f"{{ gq_host::launch(&({name}), g, b, a); }}"
            )
        if self.sanitize:
            table = ", ".join(f"gq_launch_{i}" for i in range(len(self.names)))
            lines.append(_DRIVER % {"table": table})
        return "\n".join(lines) + "\n"

    def _build(self, flags: list[str]) -> None:
        if shutil.which(CXX) is None:
            pytest.skip(f"host builds of the kernels need a C++20 compiler ({CXX} not found)")
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=BUILD_DIR) as tmp:
            src = Path(tmp) / "wrapper.cpp"
            src.write_text(self._wrapper_source())
            out = Path(tmp) / self.binary.name
            cmd = [CXX, *flags, str(src), "-o", str(out)]
            if not self.sanitize:
                cmd.insert(1, "-shared")
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode:
                raise RuntimeError(f"host build of {self.path.name} failed:\n{result.stderr}")
            os.replace(out, self.binary)

    def get_function(self, name: str) -> "HostFunction":
        if name not in self.names:
            raise KeyError(f"{name!r} is not among the name expressions of {self.path.name}")
        return HostFunction(self, self.names.index(name))


def _dim3(v: int | Sequence[int]) -> tuple[int, int, int]:
    t = (v,) if isinstance(v, int) else tuple(v)
    return tuple(int(x) for x in (*t, 1, 1, 1)[:3])  # type: ignore[return-value]


def _by_value(a) -> bool:
    return isinstance(a, np.generic) or a.dtype.names is not None


class HostFunction:
    """One kernel; ``fn(grid, block, args)`` runs it to completion on host threads."""

    def __init__(self, module: HostModule, index: int) -> None:
        self.module = module
        self.index = index

    def __call__(self, grid, block, args: Sequence, shared_mem: int = 0, stream=None) -> None:
        g, b = _dim3(grid), _dim3(block)
        for a in args:
            if not isinstance(a, (np.ndarray, np.generic)):
                raise TypeError(f"kernel arguments must be NumPy arrays or scalars, got {type(a)}")
            if not _by_value(a) and not a.flags.c_contiguous:
                raise ValueError("array arguments must be C-contiguous")
        if self.module.sanitize:
            self._run_subprocess(g, b, args)
        else:
            self._run_ctypes(g, b, args)

    def _run_ctypes(self, g, b, args) -> None:
        keep = []
        params = (ctypes.c_void_p * len(args))()
        for i, a in enumerate(args):
            if not _by_value(a):
                cell = ctypes.c_void_p(a.ctypes.data)
            else:
                cell = ctypes.create_string_buffer(np.asarray(a).tobytes(), np.asarray(a).nbytes)
            keep.append(cell)
            params[i] = ctypes.addressof(cell)
        fn = getattr(self.module._lib, f"gq_launch_{self.index}")
        fn.restype = None
        fn((ctypes.c_uint * 3)(*g), (ctypes.c_uint * 3)(*b), params)

    def _run_subprocess(self, g, b, args) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            inp, out = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
            with open(inp, "wb") as f:
                f.write(struct.pack("<7I", *g, *b, len(args)))
                for a in args:
                    data = np.ascontiguousarray(a).tobytes()
                    f.write(struct.pack("<BQ", not _by_value(a), len(data)))
                    f.write(data)
            env = dict(os.environ, TSAN_OPTIONS="halt_on_error=0 exitcode=0 report_signal_unsafe=0")
            result = subprocess.run(
                [str(self.module.binary), str(self.index), str(inp), str(out)],
                capture_output=True, text=True, env=env,
            )
            self.module.last_report = result.stderr
            if result.returncode:
                raise RuntimeError(f"host kernel exited with {result.returncode}:\n{result.stderr}")
            data = out.read_bytes()
        offset = 0
        for a in args:
            if not _by_value(a):
                a.reshape(-1).view(np.uint8)[:] = np.frombuffer(data, np.uint8, a.nbytes, offset)
                offset += a.nbytes

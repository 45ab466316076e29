"""Compile every kernel through CuPy's NVRTC bindings, for chosen architectures, without a GPU.

Used by ``gpuquant kernels --compile --arch sm_90``: each ``.cu`` file of cuda_src/ is compiled
with all its template instantiations (``name_expressions``) to a cubin for each ``sm_XY``.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from ...errors import BackendUnavailableError, GpuquantError
from .kernels import KERNEL_FILES, OPTIONS, name_expressions
from .sources import cuda_source_dir, read_source


def _arch_number(arch: str) -> int:
    digits = arch.removeprefix("sm_").removeprefix("compute_")
    if not digits.isdigit():
        raise GpuquantError(f"architecture must look like 'sm_90', got {arch!r}")
    return int(digits)


def _nvrtc():
    """CuPy's NVRTC bindings; BackendUnavailableError saying what to install when absent."""
    try:
        from cupy_backends.cuda.libs import nvrtc
    except ImportError as e:
        raise BackendUnavailableError(
            f"compiling kernels needs CuPy and NVRTC ({e}): pip install 'gpuquant[cuda12]' "
            f"(or cuda13); no GPU is needed"
        ) from e
    return nvrtc


def nvrtc_compile(file: str, arch: str) -> bytes:
    """The cubin of ``file`` for ``arch``; raises RuntimeError with NVRTC's log on failure."""
    nvrtc = _nvrtc()

    cc = _arch_number(arch)
    names = name_expressions(file, cc)
    prog = nvrtc.createProgram(read_source(file), file, [], [])
    try:
        for name in names:
            nvrtc.addNameExpression(prog, name)
        options = [*OPTIONS, f"-arch=sm_{cc}", f"-I{cuda_source_dir()}"]
        try:
            nvrtc.compileProgram(prog, options)
        except nvrtc.NVRTCError as e:
            raise RuntimeError(
                f"NVRTC failed on {file} for sm_{cc}: {e}\n{nvrtc.getProgramLog(prog)}"
            ) from None
        for name in names:
            nvrtc.getLoweredName(prog, name)
        return nvrtc.getCUBIN(prog)
    finally:
        nvrtc.destroyProgram(prog)


class CompileResult(NamedTuple):
    """One kernel file compiled for one architecture; ``error`` is NVRTC's message and log
    (empty when ``ok``)."""

    file: str
    arch: str
    ok: bool
    seconds: float
    error: str


def compile_all(archs: list[str]) -> list[CompileResult]:
    """A CompileResult for every kernel file and architecture in ``archs``."""
    _nvrtc()
    for arch in archs:
        _arch_number(arch)
    results = []
    for arch in archs:
        for file in KERNEL_FILES:
            start = time.perf_counter()
            try:
                nvrtc_compile(file, arch)
                error = ""
            except RuntimeError as e:
                error = str(e)
            results.append(CompileResult(file, arch, not error, time.perf_counter() - start,
                                         error))
    return results

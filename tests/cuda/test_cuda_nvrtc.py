"""Every kernel file, with every instantiation the backend uses, compiles through CuPy's NVRTC
bindings for each supported architecture (no GPU needed); the tensor-core instruction is emitted
for sm_80 and newer."""

from __future__ import annotations

import pytest

pytest.importorskip("cupy_backends.cuda.libs.nvrtc", reason="CuPy's NVRTC bindings not installed")

from gpuquant.backends.cupy.compile import compile_all  # noqa: E402
from gpuquant.backends.cupy.kernels import KERNEL_FILES, OPTIONS, gemm_name  # noqa: E402
from gpuquant.backends.cupy.sources import cuda_source_dir, read_source  # noqa: E402

ARCHS = ["sm_75", "sm_80", "sm_86", "sm_89", "sm_90"]
MMA = "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32"


@pytest.mark.parametrize("arch", ARCHS)
def test_all_kernels_compile(arch):
    results = compile_all([arch])
    assert {(r.file, r.arch) for r in results} == {(f, arch) for f in KERNEL_FILES}
    failed = [(r.file, r.arch, r.error) for r in results if not r.ok]
    assert not failed


def _ptx(file: str, cc: int, names: list[str]) -> str:
    from cupy_backends.cuda.libs import nvrtc

    prog = nvrtc.createProgram(read_source(file), file, [], [])
    try:
        for name in names:
            nvrtc.addNameExpression(prog, name)
        nvrtc.compileProgram(prog, [*OPTIONS, f"-arch=compute_{cc}", f"-I{cuda_source_dir()}"])
        ptx = nvrtc.getPTX(prog)
        return ptx.decode() if isinstance(ptx, bytes) else ptx
    finally:
        nvrtc.destroyProgram(prog)


def test_tensor_core_path_emits_mma_only_from_sm80():
    assert MMA in _ptx("gemm.cu", 80, [gemm_name(False, True)])
    dp4a = _ptx("gemm.cu", 75, [gemm_name(False, False)])
    assert MMA not in dp4a
    assert "dp4a.s32.s32" in dp4a

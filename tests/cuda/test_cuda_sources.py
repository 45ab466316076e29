"""The CUDA sources are found (checkout or installed package data), every kernel file with them."""

from __future__ import annotations

from gpuquant.backends.cupy.availability import cupy_status
from gpuquant.backends.cupy.kernels import KERNEL_FILES
from gpuquant.backends.cupy.sources import cuda_source_dir


def test_locator_finds_every_kernel_file():
    d = cuda_source_dir()
    assert (d / "fixedpoint.cuh").is_file()
    for file in KERNEL_FILES:
        assert (d / file).is_file(), file
    assert set(KERNEL_FILES) == {p.name for p in d.glob("*.cu")}


def test_cupy_status_says_which_device_or_why_not():
    ok, why = cupy_status()
    assert why and isinstance(ok, bool)

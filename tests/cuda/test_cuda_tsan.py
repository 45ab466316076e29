"""ThreadSanitizer over the host builds: the GEMM and conv kernels are race-free, and removing the
barrier between staging a tile in shared memory and reading it is caught.

Each kernel runs as a TSan-instrumented executable (host_module.py, ``sanitize="thread"``) with
the launch arguments the CuPy backend computes (recorded through a ``HostKernels`` subclass).
"""

from __future__ import annotations

import numpy as np
import pytest
from host_kernels import HostKernels
from host_module import HostModule

from gpuquant.backends.cupy import CupyBackend
from gpuquant.backends.cupy.sources import cuda_source_dir
from gpuquant.backends.numpy import NumpyBackend
from gpuquant.ops import Conv2DParams, GemmParams, Requant

pytestmark = pytest.mark.tsan

RACE = "WARNING: ThreadSanitizer: data race"


class _SanitizedKernels(HostKernels):
    """HostKernels whose launches run under ThreadSanitizer; reports collect in ``reports``."""

    def __init__(self, cc: int, defines: tuple[str, ...] = ()) -> None:
        super().__init__(cc)
        self.defines = defines
        self.reports: list[str] = []
        self._modules: dict[str, HostModule] = {}

    def function(self, file: str, name: str):
        if file not in self._modules:
            self._modules[file] = HostModule(
                cuda_source_dir() / file, [name], self.defines, sanitize="thread")
        module = self._modules[file]
        fn = module.get_function(name)

        def run(grid, block, args):
            fn(grid, block, args)
            self.reports.append(module.last_report)

        return run


def _gemm_case():
    rng = np.random.default_rng(0)
    rq = Requant(np.array([1 << 30]), np.array([-9]), "gemmlowp", 1, -128, 127, "int8")
    p = GemmParams("fc", rng.integers(-127, 128, (40, 70)).astype(np.int8), np.zeros(40), -3,
                   "int8", rng.integers(-999, 999, 40), rq)
    return p, rng.integers(-128, 128, (20, 70)).astype(np.int8)


def _conv_case():
    rng = np.random.default_rng(1)
    rq = Requant(np.array([1 << 30]), np.array([-8]), "single", 0, -128, 127, "int8")
    p = Conv2DParams("conv", rng.integers(-127, 128, (6, 3, 3, 4)).astype(np.int8), np.zeros(6),
                     5, "uint8", np.zeros(6), rq, padding=(1, 1, 1, 1), stride=(2, 1))
    return p, rng.integers(0, 256, (1, 7, 6, 4)).astype(np.uint8)


@pytest.mark.parametrize("cc", [75, 90])
def test_gemm_and_conv_are_race_free(cc):
    kernels = _SanitizedKernels(cc)
    backend, reference = CupyBackend(kernels), NumpyBackend()
    p, x = _gemm_case()
    np.testing.assert_array_equal(backend.gemm(x, p), reference.gemm(x, p))
    pc, xc = _conv_case()
    np.testing.assert_array_equal(backend.conv2d(xc, pc), reference.conv2d(xc, pc))
    assert len(kernels.reports) == 2
    for report in kernels.reports:
        assert "ThreadSanitizer" not in report, report


def test_dropping_the_tile_barrier_is_caught():
    """GQ_TEST_DROP_SYNC removes the __syncthreads between staging a tile and reading it."""
    kernels = _SanitizedKernels(75, ("GQ_TEST_DROP_SYNC",))
    p, x = _gemm_case()
    y = CupyBackend(kernels).gemm(x, p)
    mismatch = not np.array_equal(y, NumpyBackend().gemm(x, p))
    assert RACE in kernels.reports[0] or mismatch


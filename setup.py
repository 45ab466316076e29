"""The package list: every gpuquant* package found, plus the top-level cuda_src/ installed as the
package-data directory gpuquant/cuda_src (pyproject.toml holds everything else); and the NumPy
backend's native int8 cores (cpu_src/: AVX-512 VNNI and AVX2), optional: without a C++ compiler
the install goes on and the backend uses float32 BLAS."""

from setuptools import Extension, find_packages, setup

setup(
    packages=[*find_packages(include=["gpuquant*"]), "gpuquant.cuda_src"],
    package_dir={"gpuquant.cuda_src": "cuda_src"},
    ext_modules=[
        Extension(
            "gpuquant.backends.numpy._igemm",
            sources=["cpu_src/igemm_module.cpp"],
            # depends: rebuilt when a header changes, and shipped in the sdist.
            depends=["cpu_src/igemm_common.h", "cpu_src/igemm_vnni.h", "cpu_src/igemm_avx2.h",
                     "cuda_src/fixedpoint.cuh"],
            include_dirs=["cpu_src", "cuda_src"],
            # -Wno-maybe-uninitialized: GCC 12's AVX-512 headers trip it (GCC bug 105593).
            extra_compile_args=["-std=c++17", "-O3", "-ffp-contract=off",
                                "-Wno-maybe-uninitialized"],
            language="c++",
            optional=True,
        )
    ],
)

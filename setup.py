"""The package list: every gpuquant* package found, plus the top-level cuda_src/ installed as the
package-data directory gpuquant/cuda_src (pyproject.toml holds everything else)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["gpuquant*"]), "gpuquant.cuda_src"],
    package_dir={"gpuquant.cuda_src": "cuda_src"},
)

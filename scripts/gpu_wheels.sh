#!/usr/bin/env bash
# Wheels the GPU machine lacks for the test suite (it runs Python 3.12 and has no network; it
# already holds numpy, cupy-cuda13x, nvidia-cuda-nvrtc, onnx, onnxruntime, pytest, pytest-xdist,
# hypothesis, flatbuffers, setuptools and torch). Downloads them here into .whl/, which
# .git/info/exclude keeps out of git; pass `carry: [".whl"]` to the device tool, and
# scripts/gpu_check.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl tflite==2.18.0
ls -l .whl

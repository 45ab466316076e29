#!/usr/bin/env bash
# GPU check for a session on a machine with a CUDA device and no network: install this checkout
# over the packages already there (CuPy, NVRTC, pytest, optionally torch) plus the wheels that
# scripts/gpu_wheels.sh put in .whl/ (carried along), with the CuPy backend forced, then run the
# whole test suite (pytest -n $JOBS, default 8) and the int8 GEMM benchmark.
#
#   scripts/gpu_check.sh [OUT_DIR]      (default OUT_DIR: ./gpu_check_out)
#
# Writes OUT_DIR/pytest.txt, OUT_DIR/junit.xml, OUT_DIR/bench_gemm_gpu.txt and .json; exits
# non-zero when CuPy sees no device, the tests fail, or the benchmark fails.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT_DIR="${1:-gpu_check_out}"
PYTHON="${PYTHON:-python3}"
JOBS="${JOBS:-8}"
mkdir -p "$OUT_DIR"

if compgen -G ".whl/*.whl" >/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gpuquant-site .whl/*.whl
    export PYTHONPATH="/tmp/gpuquant-site${PYTHONPATH:+:$PYTHONPATH}"
fi

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
if ! "$PYTHON" -m pip install --no-deps --no-build-isolation -e . >"$OUT_DIR/pip.txt" 2>&1; then
    echo "editable install failed (see $OUT_DIR/pip.txt); using PYTHONPATH=$PWD instead"
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

"$PYTHON" - <<'PY'
from gpuquant.backends.cupy import cupy_status
ok, why = cupy_status()
print("cupy_status:", ok, why)
raise SystemExit(0 if ok else 1)
PY

export GPUQUANT_BACKEND=cupy
status=0
"$PYTHON" -m pytest -q -ra -n "$JOBS" --junitxml="$OUT_DIR/junit.xml" tests 2>&1 | tee "$OUT_DIR/pytest.txt" ||
    status=1
"$PYTHON" benchmarks/bench_gemm_gpu.py --json "$OUT_DIR/bench_gemm_gpu.json" 2>&1 |
    tee "$OUT_DIR/bench_gemm_gpu.txt" || status=1
exit "$status"

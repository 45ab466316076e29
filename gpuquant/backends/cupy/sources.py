"""Where the CUDA sources are: ``gpuquant/cuda_src`` in an installed wheel, ``cuda_src/`` in a
checkout (pyproject.toml maps the one onto the other)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ...errors import BackendUnavailableError

_CHECKOUT = Path(__file__).resolve().parents[3] / "cuda_src"


def cuda_source_dir() -> Path:
    """The directory holding the ``.cu``/``.cuh`` files; raises if neither location has them."""
    spec = importlib.util.find_spec("gpuquant.cuda_src")
    candidates = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    candidates.append(_CHECKOUT)
    for d in candidates:
        if (d / "fixedpoint.cuh").is_file():
            return d
    raise BackendUnavailableError(
        f"CUDA sources not found (looked in {', '.join(str(d) for d in candidates)})"
    )


def read_source(name: str) -> str:
    """The text of ``name`` (e.g. ``"gemm.cu"``) from ``cuda_source_dir()``."""
    return (cuda_source_dir() / name).read_text()

"""``gpuquant info``: version, the backend ``auto`` selects and why, the device, the NumPy
backend's int8 core, packages, and what progress bars are drawn with (tqdm, else plain text)."""

from __future__ import annotations

import argparse
import importlib.metadata
from collections.abc import Sequence

from .. import __version__
from ..errors import GpuquantError
from .common import add_json, say, write_json

PACKAGES = {
    "numpy": ("numpy",),
    "cupy": ("cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x", "cupy"),
    "onnx": ("onnx",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "tflite": ("tflite",),
    "matplotlib": ("matplotlib",),
}


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="version, backend choice, device, installed packages")
    add_json(p)


def _package_version(names: Sequence[str]) -> str:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..backends import cupy_status, resolve_backend
    from ..backends.numpy import native
    from ..compare.tables import format_table
    from ..progress import bar_kind

    try:
        choice = resolve_backend(None)
        backend, reason = choice.name, choice.reason
    except GpuquantError as exc:
        backend, reason = "none", str(exc)
    has_device, device = cupy_status()
    native_core, core_reason = native.status()
    core = native_core or "blas"
    packages = {name: _package_version(dists) for name, dists in PACKAGES.items()}
    bars = bar_kind()
    rows = [("gpuquant", __version__), ("backend", backend), ("backend choice", reason),
            ("CUDA device", device),
            ("CPU int8 core", f"{core} ({core_reason})" if native_core
             else f"{core} (float32 BLAS; {core_reason})")]
    rows += [(name, version) for name, version in packages.items()]
    rows.append(("progress bars", bars))
    say(format_table(["item", "value"], rows))
    write_json(args.json, {
        "version": __version__, "backend": backend, "backend_reason": reason,
        "device": device if has_device else None, "device_status": device,
        "cpu_int8_core": core, "cpu_int8_core_reason": core_reason,
        "packages": packages, "progress_bars": bars,
    })
    return 0

"""``gpuquant info``: version, the backend ``auto`` selects and why, the device, packages."""

from __future__ import annotations

import argparse
import importlib.metadata
from collections.abc import Sequence

from .. import __version__
from ..errors import GpuquantError
from .common import say, write_json

PACKAGES = {
    "numpy": ("numpy",),
    "cupy": ("cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x", "cupy"),
    "onnx": ("onnx",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "matplotlib": ("matplotlib",),
    "tqdm": ("tqdm",),
}


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="version, backend choice, device, installed packages")
    p.add_argument("--json", metavar="PATH")


def _package_version(names: Sequence[str]) -> str:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..backends import cupy_status, resolve_backend
    from ..compare.tables import format_table

    try:
        choice = resolve_backend(None)
        backend, reason = choice.name, choice.reason
    except GpuquantError as exc:
        backend, reason = "none", str(exc)
    has_device, device = cupy_status()
    packages = {name: _package_version(dists) for name, dists in PACKAGES.items()}
    rows = [("gpuquant", __version__), ("backend", backend), ("backend choice", reason),
            ("CUDA device", device)]
    rows += [(name, version) for name, version in packages.items()]
    say(format_table(["item", "value"], rows))
    write_json(args.json, {
        "version": __version__, "backend": backend, "backend_reason": reason,
        "device": device if has_device else None, "device_status": device,
        "packages": packages,
    })
    return 0

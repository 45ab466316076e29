"""``gpuquant kernels``: list the CUDA kernel files, or compile each with NVRTC for chosen GPU
architectures (no GPU needed), as a build check."""

from __future__ import annotations

import argparse

from ..errors import GpuquantError
from .common import say, write_json

ALL_ARCHS = ("sm_75", "sm_80", "sm_86", "sm_89", "sm_90")


def add_parser(sub) -> None:
    p = sub.add_parser("kernels", help="list the CUDA kernel files, or compile them with NVRTC "
                       "for chosen GPU architectures (no GPU needed)")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--arch", nargs="+", default=["sm_90"],
                   help=f"sm_XY ... or 'all' ({', '.join(ALL_ARCHS)})")
    p.add_argument("--json", metavar="PATH")


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..backends.cupy.compile import compile_all
    from ..backends.cupy.kernels import KERNEL_FILES
    from ..compare.tables import format_table

    if not args.compile:
        say(format_table(["kernel file"], [(f,) for f in KERNEL_FILES]))
        write_json(args.json, {"kernel_files": list(KERNEL_FILES)})
        return 0
    archs = list(ALL_ARCHS) if args.arch == ["all"] else args.arch
    results = compile_all(archs)
    say(format_table(["file", "arch", "result", "seconds"], [
        (f, a, "ok" if ok else "FAILED", f"{s:.2f}") for f, a, ok, s in results
    ], title="NVRTC compile check"))
    write_json(args.json, {"results": [
        {"file": f, "arch": a, "ok": ok, "seconds": s} for f, a, ok, s in results
    ]})
    failed = [f"{f} ({a})" for f, a, ok, _ in results if not ok]
    if failed:
        raise GpuquantError(f"kernels failed to compile: {', '.join(failed)}")
    return 0

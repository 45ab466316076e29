"""``gpuquant kernels``: list the CUDA kernel files, or compile each with NVRTC for chosen GPU
architectures (no GPU needed), as a build check."""

from __future__ import annotations

import argparse

from ..errors import GpuquantError
from .common import add_json, say, write_json

ALL_ARCHS = ("sm_75", "sm_80", "sm_86", "sm_89", "sm_90")
REASON_WIDTH = 80


def add_parser(sub) -> None:
    p = sub.add_parser("kernels", help="list the CUDA kernel files, or compile them with NVRTC "
                       "for chosen GPU architectures (no GPU needed)")
    p.add_argument("--compile", action="store_true",
                   help="compile each kernel file with NVRTC for each --arch instead of listing "
                   "the files (needs CuPy, not a GPU)")
    p.add_argument("--arch", nargs="+", default=["sm_90"],
                   help=f"architectures for --compile: sm_XY ... or 'all' "
                   f"({', '.join(ALL_ARCHS)}; default: sm_90)")
    add_json(p)


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
        (r.file, r.arch, "ok" if r.ok else f"FAILED: {short_reason(r.error)}", f"{r.seconds:.2f}")
        for r in results
    ], title="NVRTC compile check"))
    write_json(args.json, {"results": [r._asdict() for r in results]})
    failed = [f"{r.file} ({r.arch})" for r in results if not r.ok]
    if failed:
        more = " (--json PATH keeps NVRTC's full logs)" if args.json is None else ""
        raise GpuquantError(f"kernels failed to compile: {', '.join(failed)}{more}")
    return 0


def short_reason(error: str) -> str:
    """The first compiler error line of an NVRTC failure (its path cut to the file name), else
    the message's first line, within REASON_WIDTH characters."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    reason = next((line for line in lines if ": error" in line), lines[0] if lines else "?")
    reason = reason.rsplit("/", 1)[-1] if ": error" in reason else reason
    return reason if len(reason) <= REASON_WIDTH else reason[:REASON_WIDTH - 3] + "..."

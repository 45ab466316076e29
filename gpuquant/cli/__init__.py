"""The ``gpuquant`` command: info, quantize, run, compare, bench, kernels.

Each subcommand is a module with ``add_parser(subparsers)`` and ``command(args, parser)``
(``parser``: the subcommand's own, so that its usage errors print its usage), registered in
COMMANDS; it imports optional or heavy packages only when it runs. Each prints
readable tables and takes ``--json PATH`` for a machine-readable copy. A GpuquantError (bad
model, data, shape, backend) or an OSError (an output path that cannot be written) prints
``gpuquant: error: <message>`` on stderr and exits with status 2, without a traceback; argparse
usage errors exit 2 as well.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import GpuquantError
from . import bench, compare, info, kernels, quantize, run

COMMANDS = {
    "info": info, "quantize": quantize, "run": run, "compare": compare, "bench": bench,
    "kernels": kernels,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpuquant", description="8-bit integer inference of float ONNX models: quantize, "
        "run, and compare with float (CUDA through CuPy, or the NumPy reference)")
    parser.add_argument("--version", action="version", version=f"gpuquant {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.add_parser(sub)
        sub.choices[name].set_defaults(command_parser=sub.choices[name])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gpuquant`` command; returns the exit status.

    Unless OPENBLAS_NUM_THREADS or OMP_NUM_THREADS is set, NumPy's bundled OpenBLAS runs one
    thread per product (compare/blas.py says why).
    """
    from ..compare.blas import blas_threads_from_environment, set_blas_threads

    parser = build_parser()
    args = parser.parse_args(argv)
    if not blas_threads_from_environment():
        set_blas_threads(1)
    try:
        return COMMANDS[args.command].command(args, args.command_parser)
    except (GpuquantError, OSError) as exc:
        print(f"gpuquant: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gpuquant: interrupted", file=sys.stderr)
        return 130

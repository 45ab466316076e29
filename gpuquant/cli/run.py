"""``gpuquant run``: an integer model file on the inputs of an .npz file, outputs to another."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..errors import DataError, ShapeError
from .common import BACKEND_HELP, existing, positive, save_npz, say, write_json

TFLITE_ROUNDINGS = ("reference", "xnnpack")


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run an integer model file on inputs from an .npz file")
    p.add_argument("model", metavar="MODEL", help="an integer model: gpuquant's .gq, a quantized "
                   "ONNX model (QDQ or QOperator) or a full-integer .tflite model")
    p.add_argument("--input", required=True, metavar="X.npz",
                   help="arrays named after the model inputs")
    p.add_argument("-o", "--output", required=True, metavar="Y.npz")
    p.add_argument("--backend", choices=("auto", "numpy", "cupy"), help=BACKEND_HELP)
    p.add_argument("--batch-size", type=positive, default=256)
    p.add_argument("--rounding", choices=TFLITE_ROUNDINGS,
                   help="TFLite models only: the reference kernels' requantization rounding "
                   "(default) or XNNPack's")
    p.add_argument("--json", metavar="PATH")


def _input_feed(
    arrays: dict[str, np.ndarray], names: list[str], path: Path
) -> dict[str, np.ndarray]:
    if len(names) == 1 and names[0] not in arrays and len(arrays) == 1:
        return {names[0]: next(iter(arrays.values()))}
    missing = [n for n in names if n not in arrays]
    if missing:
        raise DataError(f"input file {str(path)!r} lacks model input(s) {missing} "
                        f"(its arrays: {sorted(arrays)})")
    return {n: arrays[n] for n in names}


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..backends import get_backend, resolve_backend
    from ..compare.datasets import read_npz
    from ..graph.executor import check_input_values
    from ..loader import load
    from ..progress import progress
    from ..compare.tables import format_table
    from ..runtime.session import InferenceSession

    backend = resolve_backend(args.backend).name
    model = load(existing(args.model, "model file"), rounding=args.rounding)
    session = InferenceSession(model, backend=get_backend(backend))
    in_path = existing(args.input, "input file")
    feeds = _input_feed(read_npz(in_path), [i.name for i in session.get_inputs()], in_path)
    check_input_values(model.inputs, feeds, "model")
    sizes = {name: a.shape[0] if a.ndim else 0 for name, a in feeds.items()}
    if len(set(sizes.values())) != 1 or 0 in sizes.values():
        raise ShapeError(f"inputs need the same non-zero number of samples along axis 0: {sizes}")
    total = next(iter(sizes.values()))
    names = [o.name for o in session.get_outputs()]
    steps = range(0, total, args.batch_size)
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    start = time.perf_counter()
    for i in progress(steps, len(steps), "run", True):
        results = session.run(names, {n: a[i:i + args.batch_size] for n, a in feeds.items()})
        for name, value in zip(names, results):
            parts[name].append(np.asarray(value))
    seconds = time.perf_counter() - start
    outputs = {n: np.concatenate(v) for n, v in parts.items()}
    out = Path(args.output)
    save_npz(out, outputs)
    say(format_table(["output", "shape", "dtype"],
                      [(n, "x".join(map(str, v.shape)), str(v.dtype)) for n, v in outputs.items()]))
    say(f"{total} samples in {seconds:.2f} s ({total / seconds:,.0f}/s) on {backend}; "
         f"written to {out}")
    write_json(args.json, {
        "model": args.model, "input": args.input, "output": str(out), "samples": total,
        "backend": backend, "seconds": seconds,
        "outputs": {n: {"shape": list(v.shape), "dtype": str(v.dtype)} for n, v in outputs.items()},
    })
    return 0

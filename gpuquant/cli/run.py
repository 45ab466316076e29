"""``gpuquant run``: an integer model file on the inputs of an .npz file, outputs to another."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..errors import DataError, ShapeError
from ..integer.model import IntegerModel
from .common import BACKEND_HELP, add_json, existing, positive, save_npz, say, write_json

TFLITE_ROUNDINGS = ("reference", "xnnpack")
BATCH_SIZE = 256


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run an integer model file on inputs from an .npz file")
    p.add_argument("model", metavar="MODEL", help="an integer model: gpuquant's .gq, a quantized "
                   "ONNX model (QDQ or QOperator) or a full-integer .tflite model")
    p.add_argument("--input", required=True, metavar="X.npz",
                   help="arrays named after the model inputs (for a one-input model, "
                   "also the file's only array)")
    p.add_argument("-o", "--output", required=True, metavar="Y.npz",
                   help="the .npz file to write, one array per model output, named after it")
    p.add_argument("--backend", choices=("auto", "numpy", "cupy"), help=BACKEND_HELP)
    p.add_argument("--batch-size", type=positive, metavar="N",
                   help=f"samples per run (default: {BATCH_SIZE}, or the batch a model's graph "
                   "fixes)")
    p.add_argument("--rounding", choices=TFLITE_ROUNDINGS,
                   help="TFLite models only: the reference kernels' requantization rounding "
                   "(default) or XNNPack's")
    add_json(p)


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


def _batch_size(model: IntegerModel, requested: int | None, total: int) -> int:
    """Samples per ``session.run``: ``requested`` (default BATCH_SIZE) for a model that runs at
    any batch. A model whose graph fixes the batch (``metadata["fixed_batch"]``) runs at its
    inputs' leading dimension B only, so ``requested`` must be B (or absent), ``total`` a
    multiple of B, and, when that takes more than one run, every output must lead with B for
    the runs' outputs to be joined along axis 0: ShapeError naming B otherwise."""
    reason = model.metadata.get("fixed_batch")
    leading = {spec.shape[0] for spec in model.inputs if spec.shape}
    if not reason or len(leading) != 1 or None in leading:
        return BATCH_SIZE if requested is None else requested
    (fixed,) = leading
    why = f"model {model.name!r} runs only at batch {fixed} (its graph fixes the batch: {reason})"
    if requested is not None and requested != fixed:
        raise ShapeError(f"--batch-size {requested}: pass --batch-size {fixed} or leave it out; "
                         f"{why}")
    if total % fixed:
        raise ShapeError(f"the input has {total} samples, not a multiple of {fixed}; {why}")
    if total > fixed:
        for spec in model.outputs:
            if not spec.shape or spec.shape[0] != fixed:
                raise ShapeError(
                    f"output {spec.name!r} (shape {tuple(spec.shape)}) does not lead with the "
                    f"batch, so the outputs of runs of {fixed} samples cannot be joined along "
                    f"axis 0; give the input only {fixed} (the fixed batch); {why}")
    return fixed


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..backends import get_backend, resolve_backend
    from ..compare.datasets import read_npz
    from ..graph.batches import batches_of, sample_count
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
    total = sample_count(feeds)
    if not total:
        raise ShapeError(f"input file {str(in_path)!r}: inputs {list(feeds)} hold 0 samples")
    batches = batches_of(feeds, _batch_size(model, args.batch_size, total))
    names = [o.name for o in session.get_outputs()]
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    start = time.perf_counter()
    for batch in progress(batches, len(batches), "run", True):
        results = session.run(names, batch)
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

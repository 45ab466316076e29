"""``gpuquant bench``: images per second of the float graph and the integer model, on one batch
repeated, on the backend of ``--backend`` or ``GPUQUANT_BACKEND`` if either is set, else on
each available backend."""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from .common import (
    add_batch_size,
    add_json,
    add_quant_options,
    load_model_and_data,
    positive,
    quant_settings,
    quantize,
    rate,
    say,
    write_json,
)


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="images/s of float and int8 on each available backend")
    p.add_argument("model", nargs="?", metavar="MODEL.onnx",
                   help="default: the built-in MNIST model")
    p.add_argument("--calib", metavar="CALIB.npz",
                   help="calibration samples (needed with MODEL; also the timed inputs)")
    add_batch_size(p, 256, "samples in the timed batch")
    p.add_argument("--repeat", type=positive, default=5, metavar="N",
                   help="timed runs per measurement (default: %(default)s)")
    p.add_argument("--backend", choices=("auto", "numpy", "cupy"),
                   help="time only this backend (default: GPUQUANT_BACKEND if set, else every "
                   "available one)")
    add_quant_options(p)
    add_json(p)


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..backends import ENV_VAR, resolve_backend
    from ..compare.evaluate import available_backends
    from ..compare.tables import format_table
    from ..compare.timing import bench_timing, timing_lines
    from ..graph.executor import run_graph
    from ..runtime.session import InferenceSession

    if args.model is not None and args.calib is None:
        parser.error("bench MODEL needs --calib CALIB.npz")
    if args.backend or os.environ.get(ENV_VAR):
        names = [resolve_backend(args.backend).name]
    else:
        names = available_backends()
    graph, onnx_path, evaluation, calib = load_model_and_data(args, need_eval=args.model is None)
    model, calib_used = quantize(onnx_path, calib, args, {})
    source = evaluation if evaluation is not None else calib
    feeds = {source.input_name: source.inputs[np.arange(args.batch_size) % len(source)]}
    output = graph.outputs[0].name

    def images_per_s(fn) -> float:
        fn()
        start = time.perf_counter()
        for _ in range(args.repeat):
            fn()
        return args.batch_size * args.repeat / (time.perf_counter() - start)

    rows = []
    for name in names:
        session = InferenceSession(model, backend=name)
        float_rate = images_per_s(lambda: run_graph(graph, feeds)) if name == "numpy" else None
        int8_rate = images_per_s(lambda: np.asarray(session.run([output], feeds)[0]))
        rows.append({"backend": name, "float_images_per_s": float_rate,
                     "int8_images_per_s": int8_rate,
                     "speedup": None if float_rate is None else int8_rate / float_rate})
    timing = bench_timing(names, args.batch_size, args.repeat)
    say(f"gpuquant bench: {onnx_path.name}, batch {args.batch_size}")
    say(format_table(["backend", "float images/s", "int8 images/s", "int8/float"], [
        (r["backend"], rate(r["float_images_per_s"]), rate(r["int8_images_per_s"]),
         "n/a" if r["speedup"] is None else f"{r['speedup']:.2f}x") for r in rows
    ]))
    for line in timing_lines("bench", timing):
        say(line)
    write_json(args.json, {"model": str(onnx_path), "batch_size": args.batch_size,
                            "repeat": args.repeat, "throughput": rows, "throughput_timing": timing,
                            "settings": quant_settings(args, calib_used)})
    return 0

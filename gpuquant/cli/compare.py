"""``gpuquant compare``: the main job, float vs int8 side by side (compare/evaluate.py), printed
as tables, optionally written as JSON and as an HTML report."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .common import (
    BACKEND_HELP,
    add_batch_size,
    add_json,
    add_quant_options,
    float_node_rows,
    load_model_and_data,
    non_negative,
    pct,
    positive,
    quant_settings,
    quantize,
    rate,
    say,
    write_json,
)


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="float vs int8 side by side (default: the built-in "
                       "MNIST model on the 10,000 MNIST test images)")
    p.add_argument("model", nargs="?", metavar="MODEL.onnx",
                   help="a float ONNX model (needs --data and --calib; default: the built-in "
                   "MNIST model)")
    p.add_argument("--data", metavar="TEST.npz", help="evaluation samples (and 'labels')")
    p.add_argument("--calib", metavar="CALIB.npz", help="calibration samples")
    p.add_argument("--limit", type=positive, metavar="N", help="evaluate the first N samples")
    add_batch_size(p, 500, "samples per float and int8 run of the evaluation")
    p.add_argument("--layer-images", type=non_negative, default=500, metavar="N",
                   help="samples for the per-layer SQNR table (0: skip it)")
    p.add_argument("--backend", choices=("auto", "numpy", "cupy"), help=BACKEND_HELP)
    add_quant_options(p)
    add_json(p)
    p.add_argument("--report", metavar="DIR", help="write an HTML report with plots (needs "
                   "matplotlib: pip install 'gpuquant[report]')")


def _print_comparison(c, settings: dict[str, Any], model_name: str) -> None:
    from ..compare.tables import format_bytes, format_db, format_table
    from ..compare.timing import timing_lines

    say(f"gpuquant compare: {model_name} on {c.dataset}, {c.images} images; "
         f"int8 on {c.backend} ({c.backend_reason})")
    say(f"quantized with {settings['method']} calibration on {settings['calibration_images']} "
         f"samples of {settings['calibration']}, {settings['activation_dtype']} activations, "
         f"{'per-channel' if settings['per_channel'] else 'per-tensor'} int8 weights, "
         f"{settings['rounding']} rounding")
    say()
    say(format_table(["", "float", "int8"], [
        ("top-1 accuracy", pct(c.float_accuracy), pct(c.int8_accuracy)),
        ("top-1 agreement", "", pct(c.agreement)),
        ("output cosine", "", f"{c.output.cosine:.6f}"),
        ("output SQNR (dB)", "", format_db(c.output.sqnr_db)),
    ], title="Outputs"))
    say()
    if c.layers:
        say(format_table(
            ["tensor", "int8 op", "SQNR (dB)", "cosine"],
            [(l.tensor, l.op, format_db(l.sqnr_db), f"{l.cosine:.6f}") for l in c.layers],
            title=f"Per-layer SQNR, each 8-bit tensor dequantized vs float "
                  f"({c.layer_images} images)",
        ))
        say()
    if c.float_nodes:
        say(format_table(["node", "op", "why"], float_node_rows(c.float_nodes),
                          title="Left in float"))
        say()
    ratio = c.sizes["float_weights_bytes"] / c.sizes["int8_file_bytes"]
    say(format_table(["", "size"], [
        (k.removesuffix("_bytes").replace("_", " "), format_bytes(v)) for k, v in c.sizes.items()
    ], title=f"Model size (int8 file {ratio:.1f}x smaller than the float weights)"))
    say()
    say(format_table(["backend", "float", "int8"], [
        (t.backend, rate(t.float_images_per_s), rate(t.int8_images_per_s)) for t in c.throughput
    ], title="Throughput (images/s)"))
    for line in timing_lines("compare", c.timing):
        say(line)


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..backends import resolve_backend
    from ..compare.evaluate import compare_models, model_sizes

    if args.model is not None and (args.data is None or args.calib is None):
        parser.error("compare MODEL needs --data TEST.npz and --calib CALIB.npz")
    if args.model is None and (args.data is not None or args.calib is not None):
        parser.error("--data and --calib go with a MODEL argument (without one the built-in "
                     "MNIST model and data are used)")
    resolve_backend(args.backend)
    if args.report is not None:
        from ..compare.report import figure_class

        figure_class()
    total_start = time.perf_counter()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    graph, onnx_path, evaluation, calib = load_model_and_data(args, need_eval=True)
    evaluation = evaluation.head(args.limit)
    timings["load"] = time.perf_counter() - start
    model, calib = quantize(onnx_path, calib, args, timings)
    start = time.perf_counter()
    comparison = compare_models(graph, model, evaluation, backend=args.backend,
                                batch_size=args.batch_size, layer_images=args.layer_images)
    timings["evaluate"] = time.perf_counter() - start
    comparison.sizes = model_sizes(graph, model, onnx_path)
    comparison.settings = quant_settings(args, calib)
    comparison.seconds.update(timings)
    if args.report is not None:
        from ..compare.report import write_report

        page = write_report(comparison, args.report)
    timings["total"] = time.perf_counter() - total_start
    comparison.seconds["total"] = timings["total"]
    _print_comparison(comparison, comparison.settings, onnx_path.name)
    say()
    say("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    if args.report is not None:
        say(f"report written to {page}")
    result = {"model": str(onnx_path), **comparison.to_json()}
    write_json(args.json, result)
    return 0

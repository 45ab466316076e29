"""``gpuquant quantize``: calibrate a float ONNX model and write its integer model file, with a
summary of what was quantized, what stays in float and why, sizes and warnings."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from .common import (
    add_json,
    add_quant_options,
    float_node_rows,
    load_model_and_data,
    quant_settings,
    quantize,
    say,
    write_json,
)


def add_parser(sub) -> None:
    p = sub.add_parser("quantize", help="calibrate and convert a float ONNX model to an integer "
                       "model file")
    p.add_argument("model", metavar="MODEL.onnx", help="the float ONNX model")
    p.add_argument("--calib", required=True, metavar="DATA.npz", help="calibration samples")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.gq",
                   help="the integer model file to write")
    add_quant_options(p)
    add_json(p)


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from collections import Counter

    from ..compare.tables import format_bytes, format_table
    from ..integer.file import save

    timings: dict[str, float] = {}
    graph, onnx_path, _, calib = load_model_and_data(args, need_eval=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, calib = quantize(onnx_path, calib, args, timings)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    save(model, out)

    ops = Counter(node.op for node in model.nodes)
    float_rows = float_node_rows(model.metadata.get("float_nodes", []))
    sizes = {"float_weights_bytes": int(sum(a.nbytes for a in graph.initializers.values())),
             "onnx_file_bytes": onnx_path.stat().st_size, "int8_file_bytes": out.stat().st_size}
    quantized = len(graph.nodes) - len(float_rows)
    say(f"{onnx_path.name}: {quantized} of {len(graph.nodes)} nodes quantized (activations "
         f"fused into their producers included), {len(float_rows)} left in float; calibrated "
         f"on {len(calib)} samples of {calib.name} ({args.method})")
    say()
    say(format_table(["integer op", "count"], sorted(ops.items()),
                      title=f"Integer model: {len(model.nodes)} nodes"))
    say()
    if float_rows:
        say(format_table(["node", "op", "why"], float_rows, title="Left in float"))
    else:
        say("Left in float: none")
    say()
    say(format_table(["", "size"], [(k.removesuffix("_bytes").replace("_", " "), format_bytes(v))
                                     for k, v in sizes.items()], title="Model size"))
    messages = list(model.metadata.get("warnings", []))
    messages += [str(w.message) for w in caught if str(w.message) not in messages]
    if messages:
        say()
        say("Warnings:")
        for message in messages:
            say(f"  {message}")
    say()
    say(f"quantized in {timings['quantize']:.2f} s; integer model written to {out}")
    write_json(args.json, {
        "model": str(onnx_path), "output": str(out), "nodes": len(graph.nodes),
        "quantized_nodes": quantized, "ops": dict(ops),
        "float_nodes": model.metadata.get("float_nodes", []), "sizes": sizes,
        "warnings": messages, "settings": quant_settings(args, calib), "seconds": timings,
    })
    return 0

"""Helpers shared by the subcommands: printing, JSON, files, data loading, quantization."""

from __future__ import annotations

import argparse
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..calibrate.calibrator import CALIBRATION_BATCH_SIZE
from ..errors import DataError, ShapeError

METHODS = ("minmax", "moving_average", "percentile", "entropy", "mse")
ROUNDINGS = ("gemmlowp", "single", "float32_half_even")
BACKEND_HELP = "auto (default: CuPy if a CUDA device is usable, else NumPy), numpy or cupy"


def say(text: str = "") -> None:
    print(text, flush=True)


def write_json(path: str | None, value: dict[str, Any]) -> None:
    if path is None:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(value, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    say(f"JSON written to {path}")


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed .npz with one ``NAME.npy`` member per array, whatever the names are
    (``np.savez`` keyword arguments cannot be called ``file`` or ``allow_pickle``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, value in arrays.items():
            with zf.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)


def existing(path: str, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what} {path!r} not found")
    return p


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_json(p: argparse.ArgumentParser) -> None:
    """``--json PATH``: the command's results, also written as a JSON file."""
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH "
                   "(missing folders are created)")


def add_batch_size(p: argparse.ArgumentParser, default: int, what: str) -> None:
    """``--batch-size``: samples per inference run, as in ``run`` (whose default follows a model
    that fixes its batch); the calibration batch is ``--calib-batch-size``."""
    p.add_argument("--batch-size", type=positive, default=default, metavar="N",
                   help=f"{what} (default: %(default)s)")


def add_quant_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("quantization")
    g.add_argument("--input-name", metavar="NAME", help="array of the .npz files that feeds the "
                   "model's input (default: the array named after that input, or the only "
                   "array besides 'labels')")
    g.add_argument("--method", choices=METHODS, default="minmax", help="calibration method")
    g.add_argument("--activation-dtype", choices=("int8", "uint8"), default="int8",
                   help="activation codes (default: %(default)s)")
    g.add_argument("--per-tensor", action="store_true",
                   help="one weight scale per layer instead of per output channel")
    g.add_argument("--rounding", choices=ROUNDINGS, default="gemmlowp",
                   help="requantization rounding")
    g.add_argument("--exclude", nargs="+", default=[], metavar="NODE",
                   help="float-graph nodes to keep in float")
    g.add_argument("--bias-correction", action="store_true",
                   help="correct Conv/Gemm biases for the mean effect of weight rounding, "
                   "from the calibration data's per-channel input means")
    g.add_argument("--calib-limit", type=positive, metavar="N",
                   help="calibrate on the first N samples only")
    g.add_argument("--calib-batch-size", type=positive, default=CALIBRATION_BATCH_SIZE,
                   metavar="N", help="calibration batch size (default: %(default)s, as "
                   "quantize_model)")


def single_input(graph) -> Any:
    if len(graph.inputs) != 1:
        raise ShapeError(
            f"this command handles models with one input; the model has {len(graph.inputs)}: "
            f"{[t.name for t in graph.inputs]}"
        )
    return graph.inputs[0]


def load_data(path: str, graph, input_name: str | None, what: str):
    from ..compare.datasets import as_model_input, load_npz
    from ..graph.executor import check_feeds

    info = single_input(graph)
    data = load_npz(existing(path, f"{what} file"), info.name, key=input_name)
    data = as_model_input(data, info.dtype)
    try:
        check_feeds(graph, {info.name: data.inputs})
    except ShapeError as exc:
        raise ShapeError(f"{what} file {path!r}: {exc}") from exc
    return data


def load_model_and_data(args: argparse.Namespace, need_eval: bool):
    """(graph, onnx path, evaluation set or None, calibration set) for compare/bench/quantize."""
    from ..compare.datasets import MNIST_MODEL, load_mnist
    from ..convert.converter import check_exclude
    from ..extras import requires_extra

    with requires_extra("onnx", "reading an ONNX model"):
        from ..frontends.onnx_float import load_float_onnx

    path = MNIST_MODEL if args.model is None else existing(args.model, "model file")
    graph = load_float_onnx(path)
    check_exclude(graph, args.exclude)
    if args.model is None:
        return graph, path, load_mnist("test") if need_eval else None, load_mnist("calib")
    evaluation = load_data(args.data, graph, args.input_name, "data") if need_eval else None
    return graph, path, evaluation, load_data(args.calib, graph, args.input_name, "calibration")


def quantize(onnx_path: Path, calib, args: argparse.Namespace, timings: dict[str, float]):
    """The integer model of ``onnx_path``, calibrated on the first ``--calib-limit`` samples of
    ``calib`` (the model is read again by quantize_model so its metadata names the file)."""
    from ..convert.api import quantize_model

    calib = calib.head(args.calib_limit)
    start = time.perf_counter()
    model = quantize_model(
        onnx_path, calib.inputs, args.method, activation_dtype=args.activation_dtype,
        per_channel=not args.per_tensor, rounding=args.rounding, exclude=tuple(args.exclude),
        batch_size=args.calib_batch_size, progress=True, bias_correction=args.bias_correction,
    )
    timings["quantize"] = time.perf_counter() - start
    return model, calib


def quant_settings(args: argparse.Namespace, calib) -> dict[str, Any]:
    return {
        "calibration": calib.name, "calibration_images": len(calib),
        "calibration_batch_size": args.calib_batch_size, "method": args.method,
        "activation_dtype": args.activation_dtype, "per_channel": not args.per_tensor,
        "rounding": args.rounding, "exclude": list(args.exclude),
        "bias_correction": args.bias_correction,
    }


def float_node_rows(entries: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    """(node, op type, why) for each entry of ``IntegerModel.metadata["float_nodes"]``."""
    return [(e["name"], e["op_type"], e["reason"]) for e in entries]

"""The ``gpuquant`` command: info, quantize, run, compare, bench, kernels.

Each subcommand prints readable tables and takes ``--json PATH`` for a machine-readable copy.
A GpuquantError (bad model, data, shape, backend) prints ``gpuquant: error: <message>`` on
stderr and exits with status 2, without a traceback; argparse usage errors exit 2 as well.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import DataError, GpuquantError, ShapeError

METHODS = ("minmax", "moving_average", "percentile", "entropy", "mse")
ROUNDINGS = ("gemmlowp", "single", "float32_half_even")
ALL_ARCHS = ("sm_75", "sm_80", "sm_86", "sm_89", "sm_90")
PACKAGES = {
    "numpy": ("numpy",),
    "cupy": ("cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x", "cupy"),
    "onnx": ("onnx",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "matplotlib": ("matplotlib",),
    "tqdm": ("tqdm",),
}


def _say(text: str = "") -> None:
    print(text, flush=True)


def _write_json(path: str | None, value: dict[str, Any]) -> None:
    if path is None:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(value, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    _say(f"JSON written to {path}")


def _existing(path: str, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what} {path!r} not found")
    return p


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


# ---- info -------------------------------------------------------------------------------------

def _package_version(names: Sequence[str]) -> str:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def cmd_info(args: argparse.Namespace) -> int:
    from .backends import cupy_status, resolve_backend
    from .compare.tables import format_table

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
    _say(format_table(["item", "value"], rows))
    _write_json(args.json, {
        "version": __version__, "backend": backend, "backend_reason": reason,
        "device": device if has_device else None, "device_status": device,
        "packages": packages,
    })
    return 0


# ---- shared model / data preparation ----------------------------------------------------------

def _single_input(graph) -> Any:
    if len(graph.inputs) != 1:
        raise ShapeError(
            f"this command handles models with one input; the model has {len(graph.inputs)}: "
            f"{[t.name for t in graph.inputs]}"
        )
    return graph.inputs[0]


def _load_data(path: str, graph, input_name: str | None, what: str):
    from .compare.datasets import as_model_input, load_npz
    from .graph.executor import check_feeds

    info = _single_input(graph)
    data = load_npz(_existing(path, f"{what} file"), info.name, key=input_name)
    data = as_model_input(data, info.dtype)
    try:
        check_feeds(graph, {info.name: data.inputs})
    except ShapeError as exc:
        raise ShapeError(f"{what} file {path!r}: {exc}") from exc
    return data


def _load_model_and_data(args: argparse.Namespace, need_eval: bool):
    """(graph, onnx path, evaluation set or None, calibration set) for compare/bench/quantize."""
    from .compare.datasets import MNIST_MODEL, load_mnist
    from .frontends.onnx_float import load_onnx

    if args.model is None:
        graph = load_onnx(MNIST_MODEL)
        return graph, MNIST_MODEL, load_mnist("test") if need_eval else None, load_mnist("calib")
    path = _existing(args.model, "model file")
    graph = load_onnx(path)
    evaluation = _load_data(args.data, graph, args.input_name, "data") if need_eval else None
    return graph, path, evaluation, _load_data(args.calib, graph, args.input_name, "calibration")


def _quantize(onnx_path: Path, calib, args: argparse.Namespace, timings: dict[str, float]):
    """The integer model of ``onnx_path``, calibrated on the first ``--calib-limit`` samples of
    ``calib`` (the model is read again by quantize_model so its metadata names the file)."""
    from .convert.api import quantize_model

    calib = calib.head(args.calib_limit)
    start = time.perf_counter()
    model = quantize_model(
        onnx_path, calib.inputs, args.method, activation_dtype=args.activation_dtype,
        per_channel=not args.per_tensor, rounding=args.rounding, exclude=tuple(args.exclude),
        batch_size=args.batch_size, progress=True,
    )
    timings["quantize"] = time.perf_counter() - start
    return model, calib


def _quant_settings(args: argparse.Namespace, calib) -> dict[str, Any]:
    return {
        "calibration": calib.name, "calibration_images": len(calib), "method": args.method,
        "activation_dtype": args.activation_dtype, "per_channel": not args.per_tensor,
        "rounding": args.rounding, "exclude": list(args.exclude),
    }


def _float_node_rows(entries: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    """(node, op type, why) for each entry of ``IntegerModel.metadata["float_nodes"]``."""
    return [(e["name"], e["op_type"], e["reason"]) for e in entries]


# ---- quantize ---------------------------------------------------------------------------------

def cmd_quantize(args: argparse.Namespace) -> int:
    from collections import Counter

    from .compare.tables import format_bytes, format_table
    from .integer.file import save

    timings: dict[str, float] = {}
    graph, onnx_path, _, calib = _load_model_and_data(args, need_eval=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, calib = _quantize(onnx_path, calib, args, timings)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    save(model, out)

    ops = Counter(node.op for node in model.nodes)
    float_rows = _float_node_rows(model.metadata.get("float_nodes", []))
    sizes = {"float_weights_bytes": int(sum(a.nbytes for a in graph.initializers.values())),
             "onnx_file_bytes": onnx_path.stat().st_size, "int8_file_bytes": out.stat().st_size}
    quantized = len(graph.nodes) - len(float_rows)
    _say(f"{onnx_path.name}: {quantized} of {len(graph.nodes)} nodes quantized (activations "
         f"fused into their producers included), {len(float_rows)} left in float; calibrated "
         f"on {len(calib)} samples of {calib.name} ({args.method})")
    _say()
    _say(format_table(["integer op", "count"], sorted(ops.items()),
                      title=f"Integer model: {len(model.nodes)} nodes"))
    _say()
    if float_rows:
        _say(format_table(["node", "op", "why"], float_rows, title="Left in float"))
    else:
        _say("Left in float: none")
    _say()
    _say(format_table(["", "size"], [(k.removesuffix("_bytes").replace("_", " "), format_bytes(v))
                                     for k, v in sizes.items()], title="Model size"))
    messages = list(model.metadata.get("warnings", []))
    messages += [str(w.message) for w in caught if str(w.message) not in messages]
    if messages:
        _say()
        _say("Warnings:")
        for message in messages:
            _say(f"  {message}")
    _say()
    _say(f"quantized in {timings['quantize']:.2f} s; integer model written to {out}")
    _write_json(args.json, {
        "model": str(onnx_path), "output": str(out), "nodes": len(graph.nodes),
        "quantized_nodes": quantized, "ops": dict(ops),
        "float_nodes": model.metadata.get("float_nodes", []), "sizes": sizes,
        "warnings": messages, "settings": _quant_settings(args, calib), "seconds": timings,
    })
    return 0


# ---- run --------------------------------------------------------------------------------------

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


def cmd_run(args: argparse.Namespace) -> int:
    from .backends import get_backend, resolve_backend
    from .compare.datasets import read_npz
    from .compare.progress import progress
    from .compare.tables import format_table
    from .runtime.session import InferenceSession

    backend = resolve_backend(args.backend).name
    session = InferenceSession(str(_existing(args.model, "model file")),
                               backend=get_backend(backend))
    in_path = _existing(args.input, "input file")
    feeds = _input_feed(read_npz(in_path), [i.name for i in session.get_inputs()], in_path)
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
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **outputs)
    _say(format_table(["output", "shape", "dtype"],
                      [(n, "x".join(map(str, v.shape)), str(v.dtype)) for n, v in outputs.items()]))
    _say(f"{total} samples in {seconds:.2f} s ({total / seconds:,.0f}/s) on {backend}; "
         f"written to {out}")
    _write_json(args.json, {
        "model": args.model, "input": args.input, "output": str(out), "samples": total,
        "backend": backend, "seconds": seconds,
        "outputs": {n: {"shape": list(v.shape), "dtype": str(v.dtype)} for n, v in outputs.items()},
    })
    return 0


# ---- compare ----------------------------------------------------------------------------------

def _print_comparison(c, settings: dict[str, Any], model_name: str) -> None:
    from .compare.tables import format_bytes, format_db, format_table

    _say(f"gpuquant compare: {model_name} on {c.dataset}, {c.images} images; "
         f"int8 on {c.backend} ({c.backend_reason})")
    _say(f"quantized with {settings['method']} calibration on {settings['calibration_images']} "
         f"samples of {settings['calibration']}, {settings['activation_dtype']} activations, "
         f"{'per-channel' if settings['per_channel'] else 'per-tensor'} int8 weights, "
         f"{settings['rounding']} rounding")
    _say()
    _say(format_table(["", "float", "int8"], [
        ("top-1 accuracy", _pct(c.float_accuracy), _pct(c.int8_accuracy)),
        ("top-1 agreement", "", _pct(c.agreement)),
        ("output cosine", "", f"{c.output.cosine:.6f}"),
        ("output SQNR (dB)", "", format_db(c.output.sqnr_db)),
    ], title="Outputs"))
    _say()
    if c.layers:
        _say(format_table(
            ["tensor", "int8 op", "SQNR (dB)", "cosine"],
            [(l.tensor, l.op, format_db(l.sqnr_db), f"{l.cosine:.6f}") for l in c.layers],
            title=f"Per-layer SQNR, each 8-bit tensor dequantized vs float "
                  f"({c.layer_images} images)",
        ))
        _say()
    if c.float_nodes:
        _say(format_table(["node", "op", "why"], _float_node_rows(c.float_nodes),
                          title="Left in float"))
        _say()
    ratio = c.sizes["float_weights_bytes"] / c.sizes["int8_file_bytes"]
    _say(format_table(["", "size"], [
        (k.removesuffix("_bytes").replace("_", " "), format_bytes(v)) for k, v in c.sizes.items()
    ], title=f"Model size (int8 file {ratio:.1f}x smaller than the float weights)"))
    _say()
    _say(format_table(["backend", "float", "int8"], [
        (t.backend, _rate(t.float_images_per_s), _rate(t.int8_images_per_s)) for t in c.throughput
    ], title="Throughput (images/s)"))


def cmd_compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .backends import resolve_backend
    from .compare.evaluate import compare_models, model_sizes

    if args.model is not None and (args.data is None or args.calib is None):
        parser.error("compare MODEL needs --data TEST.npz and --calib CALIB.npz")
    if args.model is None and (args.data is not None or args.calib is not None):
        parser.error("--data and --calib go with a MODEL argument (without one the built-in "
                     "MNIST model and data are used)")
    resolve_backend(args.backend)
    if args.report is not None:
        from .compare.report import figure_class

        figure_class()
    total_start = time.perf_counter()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    graph, onnx_path, evaluation, calib = _load_model_and_data(args, need_eval=True)
    evaluation = evaluation.head(args.limit)
    timings["load"] = time.perf_counter() - start
    model, calib = _quantize(onnx_path, calib, args, timings)
    start = time.perf_counter()
    comparison = compare_models(graph, model, evaluation, backend=args.backend,
                                batch_size=args.batch_size, layer_images=args.layer_images)
    timings["evaluate"] = time.perf_counter() - start
    comparison.sizes = model_sizes(graph, model, onnx_path)
    comparison.settings = _quant_settings(args, calib)
    comparison.seconds.update(timings)
    if args.report is not None:
        from .compare.report import write_report

        page = write_report(comparison, args.report)
    timings["total"] = time.perf_counter() - total_start
    comparison.seconds["total"] = timings["total"]
    _print_comparison(comparison, comparison.settings, onnx_path.name)
    _say()
    _say("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    if args.report is not None:
        _say(f"report written to {page}")
    result = {"model": str(onnx_path), **comparison.to_json()}
    _write_json(args.json, result)
    return 0


# ---- bench ------------------------------------------------------------------------------------

def cmd_bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .backends import resolve_backend
    from .compare.evaluate import available_backends
    from .compare.tables import format_table
    from .graph.executor import run_graph
    from .runtime.session import InferenceSession

    if args.model is not None and args.calib is None:
        parser.error("bench MODEL needs --calib CALIB.npz")
    names = [resolve_backend(args.backend).name] if args.backend else available_backends()
    graph, onnx_path, evaluation, calib = _load_model_and_data(args, need_eval=args.model is None)
    model, calib_used = _quantize(onnx_path, calib, args, {})
    source = evaluation if evaluation is not None else calib
    feeds = {source.input_name: source.inputs[np.arange(args.batch) % len(source)]}
    output = graph.outputs[0].name

    def rate(fn) -> float:
        fn()
        start = time.perf_counter()
        for _ in range(args.repeat):
            fn()
        return args.batch * args.repeat / (time.perf_counter() - start)

    rows = []
    for name in names:
        session = InferenceSession(model, backend=name)
        float_rate = rate(lambda: run_graph(graph, feeds)) if name == "numpy" else None
        int8_rate = rate(lambda: np.asarray(session.run([output], feeds)[0]))
        rows.append({"backend": name, "float_images_per_s": float_rate,
                     "int8_images_per_s": int8_rate,
                     "speedup": None if float_rate is None else int8_rate / float_rate})
    _say(f"gpuquant bench: {onnx_path.name}, batch {args.batch}, {args.repeat} timed runs "
         f"after one warm-up (float runs on NumPy only)")
    _say(format_table(["backend", "float images/s", "int8 images/s", "int8/float"], [
        (r["backend"], _rate(r["float_images_per_s"]), _rate(r["int8_images_per_s"]),
         "n/a" if r["speedup"] is None else f"{r['speedup']:.2f}x") for r in rows
    ]))
    _write_json(args.json, {"model": str(onnx_path), "batch": args.batch, "repeat": args.repeat,
                            "throughput": rows, "settings": _quant_settings(args, calib_used)})
    return 0


# ---- kernels ----------------------------------------------------------------------------------

def cmd_kernels(args: argparse.Namespace) -> int:
    from .backends.cupy.compile import compile_all
    from .backends.cupy.kernels import KERNEL_FILES
    from .compare.tables import format_table

    if not args.compile:
        _say(format_table(["kernel file"], [(f,) for f in KERNEL_FILES]))
        _write_json(args.json, {"kernel_files": list(KERNEL_FILES)})
        return 0
    archs = list(ALL_ARCHS) if args.arch == ["all"] else args.arch
    results = compile_all(archs)
    _say(format_table(["file", "arch", "result", "seconds"], [
        (f, a, "ok" if ok else "FAILED", f"{s:.2f}") for f, a, ok, s in results
    ], title="NVRTC compile check"))
    _write_json(args.json, {"results": [
        {"file": f, "arch": a, "ok": ok, "seconds": s} for f, a, ok, s in results
    ]})
    failed = [f"{f} ({a})" for f, a, ok, _ in results if not ok]
    if failed:
        raise GpuquantError(f"kernels failed to compile: {', '.join(failed)}")
    return 0


# ---- parser -----------------------------------------------------------------------------------

def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _quant_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("quantization")
    g.add_argument("--input-name", metavar="NAME", help="array of the .npz files that feeds the "
                   "model's input (default: the array named after that input, or the only "
                   "array besides 'labels')")
    g.add_argument("--method", choices=METHODS, default="minmax", help="calibration method")
    g.add_argument("--activation-dtype", choices=("int8", "uint8"), default="int8")
    g.add_argument("--per-tensor", action="store_true",
                   help="one weight scale per layer instead of per output channel")
    g.add_argument("--rounding", choices=ROUNDINGS, default="gemmlowp",
                   help="requantization rounding")
    g.add_argument("--exclude", nargs="+", default=[], metavar="NODE",
                   help="float-graph nodes to keep in float")
    g.add_argument("--calib-limit", type=_positive, metavar="N",
                   help="calibrate on the first N samples only")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpuquant", description="8-bit integer inference of float ONNX models: quantize, "
        "run, and compare with float (CUDA through CuPy, or the NumPy reference)")
    parser.add_argument("--version", action="version", version=f"gpuquant {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    backend_help = "auto (default: CuPy if a CUDA device is usable, else NumPy), numpy or cupy"

    p = sub.add_parser("info", help="version, backend choice, device, installed packages")
    p.add_argument("--json", metavar="PATH")

    p = sub.add_parser("quantize", help="calibrate and convert a float ONNX model to an integer "
                       "model file")
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--calib", required=True, metavar="DATA.npz", help="calibration samples")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.gq")
    p.add_argument("--batch-size", type=_positive, default=500, help="calibration batch size")
    _quant_options(p)
    p.add_argument("--json", metavar="PATH")

    p = sub.add_parser("run", help="run an integer model file on inputs from an .npz file")
    p.add_argument("model", metavar="MODEL.gq")
    p.add_argument("--input", required=True, metavar="X.npz",
                   help="arrays named after the model inputs")
    p.add_argument("-o", "--output", required=True, metavar="Y.npz")
    p.add_argument("--backend", choices=("auto", "numpy", "cupy"), help=backend_help)
    p.add_argument("--batch-size", type=_positive, default=256)
    p.add_argument("--json", metavar="PATH")

    p = sub.add_parser("compare", help="float vs int8 side by side (default: the built-in "
                       "MNIST model on the 10,000 MNIST test images)")
    p.add_argument("model", nargs="?", metavar="MODEL.onnx")
    p.add_argument("--data", metavar="TEST.npz", help="evaluation samples (and 'labels')")
    p.add_argument("--calib", metavar="CALIB.npz", help="calibration samples")
    p.add_argument("--limit", type=_positive, metavar="N", help="evaluate the first N samples")
    p.add_argument("--batch-size", type=_positive, default=500)
    p.add_argument("--layer-images", type=_non_negative, default=500, metavar="N",
                   help="samples for the per-layer SQNR table (0: skip it)")
    p.add_argument("--backend", choices=("auto", "numpy", "cupy"), help=backend_help)
    _quant_options(p)
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--report", metavar="DIR", help="write an HTML report with plots (needs "
                   "matplotlib: pip install 'gpuquant[report]')")

    p = sub.add_parser("bench", help="images/s of float and int8 on each available backend")
    p.add_argument("model", nargs="?", metavar="MODEL.onnx",
                   help="default: the built-in MNIST model")
    p.add_argument("--calib", metavar="CALIB.npz",
                   help="calibration samples (needed with MODEL; also the timed inputs)")
    p.add_argument("--batch", type=_positive, default=256, help="images per run")
    p.add_argument("--repeat", type=_positive, default=5, help="timed runs per measurement")
    p.add_argument("--batch-size", type=_positive, default=500, help="calibration batch size")
    p.add_argument("--backend", choices=("numpy", "cupy"),
                   help="time only this backend (default: every available one)")
    _quant_options(p)
    p.add_argument("--json", metavar="PATH")

    p = sub.add_parser("kernels", help="list the CUDA kernel files, or compile them with NVRTC "
                       "for chosen GPU architectures (no GPU needed)")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--arch", nargs="+", default=["sm_90"],
                   help=f"sm_XY ... or 'all' ({', '.join(ALL_ARCHS)})")
    p.add_argument("--json", metavar="PATH")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gpuquant`` command; returns the exit status.

    Unless OPENBLAS_NUM_THREADS or OMP_NUM_THREADS is set, NumPy's bundled OpenBLAS runs one
    thread per product (compare/blas.py says why).
    """
    from .compare.blas import blas_threads_from_environment, set_blas_threads

    parser = build_parser()
    args = parser.parse_args(argv)
    if not blas_threads_from_environment():
        set_blas_threads(1)
    handlers = {
        "info": lambda: cmd_info(args),
        "quantize": lambda: cmd_quantize(args),
        "run": lambda: cmd_run(args),
        "compare": lambda: cmd_compare(args, parser),
        "bench": lambda: cmd_bench(args, parser),
        "kernels": lambda: cmd_kernels(args),
    }
    try:
        return handlers[args.command]()
    except GpuquantError as exc:
        print(f"gpuquant: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gpuquant: interrupted", file=sys.stderr)
        return 130

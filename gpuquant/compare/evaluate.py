"""The main job: run a float graph and its integer model on the same samples, side by side.

One pass over the data runs the float graph (NumPy float32 executor) and the integer model (on
the chosen backend) batch by batch, keeping both outputs: accuracy, agreement, cosine and SQNR
come from them (metrics.py), and the time each side takes gives its images per second (float on
NumPy, int8 on the chosen backend). The first batches also keep every tensor of both runs for
the per-layer table (layers.py). The integer model on every other available backend is timed
on a few batches after a warm-up batch. timing.py says what is timed, in words.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ..backends import cupy_status, get_backend, resolve_backend
from ..graph.executor import check_feeds, run_graph
from ..graph.ir import Graph
from ..integer.file import save
from ..integer.model import IntegerModel
from ..runtime.executor import execute
from ..runtime.session import InferenceSession
from .datasets import Dataset
from .layers import LayerComparison
from .metrics import ErrorSums, top1_accuracy, top1_agreement
from ..progress import progress
from .result import Comparison, Throughput
from .timing import TIMING_BATCHES, compare_timing


def available_backends() -> list[str]:
    """``numpy``, plus ``cupy`` when it imports and sees a CUDA device."""
    ok, _ = cupy_status()
    return ["numpy", "cupy"] if ok else ["numpy"]


def model_sizes(
    graph: Graph, model: IntegerModel, onnx_path: str | Path | None = None
) -> dict[str, int]:
    """Bytes: float weights (sum of initializer sizes), the ONNX file if given, and the saved
    integer model file."""
    sizes = {"float_weights_bytes": int(sum(a.nbytes for a in graph.initializers.values()))}
    if onnx_path is not None:
        sizes["onnx_file_bytes"] = Path(onnx_path).stat().st_size
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.gq"
        save(model, path)
        sizes["int8_file_bytes"] = path.stat().st_size
    return sizes


def _run_int8(session: InferenceSession, output: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(session.run([output], feeds)[0])


def _time_int8(session: InferenceSession, output: str, data: Dataset, batch_size: int) -> float:
    """Images per second of ``session`` over up to TIMING_BATCHES batches after a warm-up one."""
    batches = data.batches(batch_size)[:TIMING_BATCHES + 1]
    _run_int8(session, output, {data.input_name: data.inputs[batches[0]]})
    timed = batches[1:] or batches
    start = time.perf_counter()
    for s in timed:
        _run_int8(session, output, {data.input_name: data.inputs[s]})
    return sum(s.stop - s.start for s in timed) / (time.perf_counter() - start)


def compare_models(
    graph: Graph,
    model: IntegerModel,
    data: Dataset,
    backend: str | None = None,
    batch_size: int = 500,
    layer_images: int = 500,
    show_progress: bool = True,
) -> Comparison:
    """Float ``graph`` vs integer ``model`` on ``data`` (module docstring).

    The graph must have one input (``data.input_name``) and its first output is compared with
    the integer model's output of the same name. The first batches covering ``layer_images``
    samples keep every tensor of both runs for the per-layer comparison (0: none); their
    integer run goes through ``runtime.execute(keep=True)``, the executor the session wraps.
    """
    choice = resolve_backend(backend)
    output = graph.outputs[0].name
    check_feeds(graph, {data.input_name: data.inputs[:1]})
    session = InferenceSession(model, backend=choice.name)
    backend_obj = get_backend(choice.name)
    batches = data.batches(batch_size)
    _run_int8(session, output, {data.input_name: data.inputs[:1]})  # CuPy compiles on first use

    layers = LayerComparison(model)
    layer_count = 0
    float_out, int8_out = [], []
    float_s = int8_s = 0.0
    for s in progress(batches, len(batches), "float vs int8", show_progress):
        feeds = {data.input_name: data.inputs[s]}
        keep = s.start < layer_images
        start = time.perf_counter()
        float_all = run_graph(graph, feeds, keep=keep)
        middle = time.perf_counter()
        if keep:
            int_all = execute(model, feeds, backend_obj, keep=True)
            int8_out.append(np.asarray(backend_obj.to_numpy(int_all[output])))
        else:
            int8_out.append(_run_int8(session, output, feeds))
        int8_s += time.perf_counter() - middle
        float_s += middle - start
        float_out.append(float_all[output])
        if keep:
            layers.add(float_all, {k: backend_obj.to_numpy(v) for k, v in int_all.items()})
            layer_count += s.stop - s.start
    f, q = np.concatenate(float_out), np.concatenate(int8_out)

    rows = {name: Throughput(name) for name in available_backends()}
    rows["numpy"].float_images_per_s = len(data) / float_s
    rows[choice.name].int8_images_per_s = len(data) / int8_s
    for name, row in rows.items():
        if row.int8_images_per_s is None:
            row.int8_images_per_s = _time_int8(
                InferenceSession(model, backend=name), output, data, batch_size
            )

    labels = data.labels
    return Comparison(
        dataset=data.name,
        images=len(data),
        backend=choice.name,
        backend_reason=choice.reason,
        float_accuracy=None if labels is None else top1_accuracy(f, labels),
        int8_accuracy=None if labels is None else top1_accuracy(q, labels),
        agreement=top1_agreement(f, q),
        output=ErrorSums().add(f, q),
        layers=layers.results(),
        layer_images=layer_count,
        throughput=list(rows.values()),
        timing=compare_timing(choice.name, [n for n in rows if n != choice.name], batch_size,
                              len(data), layer_count),
        float_nodes=list(model.metadata.get("float_nodes", [])),
        seconds={"float": float_s, "int8": int8_s},
    )

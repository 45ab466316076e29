"""Calibration: run the float graph over sample batches and observe every float activation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import nullcontext

import numpy as np

from ..errors import CalibrationError, ShapeError
from ..graph.batches import batches_of
from ..graph.executor import run_graph
from ..graph.ir import Graph
from ..progress import progress as show_progress
from .observers import (
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    Observer,
    PercentileObserver,
    non_finite_message,
)

METHODS = ("minmax", "moving_average", "percentile", "entropy", "mse")
CALIBRATION_BATCH_SIZE = 256  # samples per calibration batch, everywhere (API and CLI)
CalibrationData = Iterable[dict[str, np.ndarray]] | Mapping[str, np.ndarray] | np.ndarray


def make_observer(method: str, name: str, **kwargs) -> Observer:
    """The observer of ``method`` (METHODS) for tensor ``name``, with observer options."""
    if method == "minmax":
        return MinMaxObserver(name, **kwargs)
    if method == "moving_average":
        return MovingAverageMinMaxObserver(name, **kwargs)
    if method == "percentile":
        return PercentileObserver(name, **kwargs)
    if method in ("entropy", "mse"):
        return HistogramObserver(name, method=method, **kwargs)
    raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")


def _batches(graph: Graph, data: CalibrationData,
             batch_size: int) -> Iterable[dict[str, np.ndarray]]:
    if not isinstance(data, (np.ndarray, Mapping)):
        return data
    if isinstance(data, np.ndarray):
        if len(graph.inputs) != 1:
            raise CalibrationError(
                f"an array feeds a graph with one input; this one has "
                f"{[t.name for t in graph.inputs]}: pass a dict of arrays"
            )
        if data.ndim == 0:
            raise CalibrationError(
                f"calibration data is a 0-d array; input {graph.inputs[0].name!r} needs an "
                f"array of all its samples along axis 0"
            )
        data = {graph.inputs[0].name: data}
    for name, value in data.items():
        if not isinstance(value, np.ndarray) or value.ndim == 0:
            got = "a 0-d array" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"
            raise CalibrationError(
                f"calibration data given as one dict maps each input name to an array of all "
                f"its samples along axis 0, but {name!r} is {got}; pass such a dict or an "
                f"iterable of feed dicts, one per batch"
            )
    try:
        return batches_of(data, batch_size)
    except ValueError as exc:
        raise CalibrationError(str(exc)) from exc


def _non_finite_inputs(feeds: dict[str, np.ndarray]) -> list[tuple[str, int, int]]:
    """(input name, count of NaN or +-inf, size) of each float input array holding any."""
    found = []
    for name, value in feeds.items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            bad = value.size - int(np.count_nonzero(np.isfinite(value)))
            if bad:
                found.append((name, bad, value.size))
    return found


MEAN_OPS = ("Conv", "Gemm", "MatMul")


def calibrate(
    graph: Graph,
    batches: CalibrationData,
    method: str = "minmax",
    tensors: list[str] | None = None,
    progress: bool = True,
    batch_size: int = CALIBRATION_BATCH_SIZE,
    **observer_kwargs,
) -> dict[str, tuple[float, float]]:
    """Range ``(rmin, rmax)`` of each float activation of ``graph`` over ``batches``
    (``calibrate_with_means`` without the means)."""
    ranges, _ = calibrate_with_means(graph, batches, method, tensors, progress, batch_size,
                                     means=False, **observer_kwargs)
    return ranges


def calibrate_with_means(
    graph: Graph,
    batches: CalibrationData,
    method: str = "minmax",
    tensors: list[str] | None = None,
    progress: bool = True,
    batch_size: int = CALIBRATION_BATCH_SIZE,
    means: bool = True,
    **observer_kwargs,
) -> tuple[dict[str, tuple[float, float]], dict[str, np.ndarray]]:
    """Range ``(rmin, rmax)`` of each float activation of ``graph`` over ``batches`` and, when
    ``means``, the per-channel mean (float64, over every axis but axis 1, all batches' values
    weighted alike) of each float first input of a Conv, Gemm or MatMul node, for bias
    correction (docs/quantization.md, eq. 13).

    ``batches`` yields feed dicts (input name -> array, one dict per batch), or is one dict of
    whole arrays (input name -> all its samples, as ``InferenceSession.run`` takes them) or one
    array for a one-input graph, cut into ``batch_size`` slices along the first axis. A batch
    whose float inputs hold NaN or +-inf is refused (naming the input, the batch, the count and
    the batch's size) before it runs, unless ``skip_nonfinite=True``. Each batch runs through
    the float executor keeping every tensor; each float tensor (graph inputs and node outputs;
    ``tensors`` restricts the set) has an observer of ``method`` ("minmax", "moving_average",
    "percentile", "entropy", "mse"; options in ``observer_kwargs``, see observers.py).

    Raises CalibrationError for no batches, a batch that does not fit the graph's inputs
    (naming the input), a dict of arrays of different lengths, an unknown tensor name, or data
    an observer rejects (non-finite, naming the batch).
    """
    make_observer(method, "check", **observer_kwargs)
    known = {t.name for t in graph.inputs} | {o for n in graph.nodes for o in n.outputs}
    for name in tensors or ():
        if name not in known:
            raise CalibrationError(f"tensor {name!r} is not an activation of the graph")
    observers: dict[str, Observer] = {}
    mean_inputs = {n.inputs[0] for n in graph.nodes if n.op_type in MEAN_OPS} if means else set()
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    seen = 0
    items = _batches(graph, batches, batch_size)
    total = len(items) if hasattr(items, "__len__") else None
    for index, feeds in enumerate(show_progress(items, total, "calibrating", enabled=progress)):
        if not isinstance(feeds, dict):
            raise CalibrationError(
                f"calibration batch {index} is a {type(feeds).__name__}, expected a dict of "
                f"input name -> array"
            )
        non_finite = _non_finite_inputs(feeds)
        if non_finite and not observer_kwargs.get("skip_nonfinite", False):
            raise CalibrationError(
                f"calibration batch {index}: {non_finite_message(*non_finite[0])}"
            )
        # Skipped non-finite inputs make NaN and inf in the float ops (observers drop them).
        quiet = np.errstate(all="ignore") if non_finite else nullcontext()
        try:
            with quiet:
                values = run_graph(graph, feeds, outputs=list(tensors or []),
                                   keep=tensors is None)
        except ShapeError as exc:
            raise CalibrationError(
                f"calibration batch {index} does not fit the model: {exc}"
            ) from exc
        for name, value in values.items():
            if not np.issubdtype(value.dtype, np.floating):
                continue
            if name not in observers:
                observers[name] = make_observer(method, name, **observer_kwargs)
            try:
                observers[name].observe(value)
            except CalibrationError as exc:
                raise CalibrationError(f"calibration batch {index}: {exc}") from exc
            if name in mean_inputs and value.ndim >= 2:
                axes = (0, *range(2, value.ndim))
                batch_sum = value.sum(axis=axes, dtype=np.float64)
                sums[name] = sums[name] + batch_sum if name in sums else batch_sum
                counts[name] = counts.get(name, 0) + value.size // value.shape[1]
        seen += 1
    if seen == 0:
        raise CalibrationError("no calibration batches were given")
    ranges = {name: obs.compute_range() for name, obs in observers.items()}
    return ranges, {name: sums[name] / counts[name] for name in sums}

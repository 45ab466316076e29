"""``quantize_model``: ONNX float model + calibration data -> integer model, in one call."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..calibrate.calibrator import CALIBRATION_BATCH_SIZE, CalibrationData, calibrate_with_means
from ..extras import requires_extra
from ..graph.ir import Graph
from ..integer.model import IntegerModel
from .converter import check_exclude, convert


def quantize_model(
    model: str | Path | Graph,
    calibration_data: CalibrationData,
    method: str = "minmax",
    *,
    activation_dtype: str = "int8",
    per_channel: bool = True,
    rounding: str = "gemmlowp",
    exclude: Iterable[str] = (),
    batch_size: int = CALIBRATION_BATCH_SIZE,
    progress: bool = False,
    bias_correction: bool = False,
    **observer_kwargs,
) -> IntegerModel:
    """Load an ONNX float model (or take a float Graph), calibrate it on ``calibration_data``
    with observer ``method`` (calibrate/calibrator.py), and convert it (convert/converter.py).

    ``calibration_data``: feed dicts (one per batch), or one dict of whole arrays (input name
    -> all its samples, as ``InferenceSession.run`` takes them), or one array for a one-input
    model, cut into ``batch_size`` slices along axis 0. ``bias_correction``: also collect the
    calibration data's per-channel means of layer inputs and correct each Conv/Gemm/MatMul bias
    for the mean effect of weight rounding (docs/quantization.md, eq. 13). The result's
    metadata records the source and the calibration.
    """
    if isinstance(model, Graph):
        graph = model
    else:
        with requires_extra("onnx", "reading an ONNX model"):
            from ..frontends.onnx_float import load_float_onnx

        graph = load_float_onnx(str(model))
    check_exclude(graph, exclude)
    ranges, means = calibrate_with_means(graph, calibration_data, method=method,
                                         progress=progress, batch_size=batch_size,
                                         means=bias_correction, **observer_kwargs)
    result = convert(graph, ranges, activation_dtype=activation_dtype, per_channel=per_channel,
                     rounding=rounding, exclude=exclude,
                     input_means=means if bias_correction else None)
    result.metadata["source"] = (
        {"graph": graph.name, "format": "float graph"}
        if isinstance(model, Graph)
        else {"graph": graph.name, "format": "onnx", "file": Path(model).name}
    )
    result.metadata["calibration"] = {"method": method, **{
        k: v for k, v in observer_kwargs.items() if isinstance(v, (bool, int, float, str))}}
    return result

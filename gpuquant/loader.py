"""``gpuquant.load``: any integer model file into an IntegerModel, chosen by the file's content.

- a zip (``PK\\x03\\x04``, or ``PK\\x05\\x06`` for an empty one): gpuquant's own integer model
  file (integer/file.py);
- a FlatBuffer with the identifier ``TFL3``: a full-integer TFLite model
  (frontends/tflite_model.py, TFLite reference-kernel rounding, or ``rounding="xnnpack"``);
- otherwise ONNX: a QOperator model (QLinearConv, QGemm, ...; onnxruntime's arithmetic) or a QDQ
  model (QuantizeLinear/DequantizeLinear pairs; their scales used as given). A float ONNX model
  is refused with a pointer to ``gpuquant.quantize_model``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from .errors import ModelFormatError
from .extras import requires_extra
from .integer.model import IntegerModel

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first entry, or an empty zip's end record
TFLITE_IDENTIFIER = b"TFL3"


def load(path: str | Path, *, rounding: str | None = None) -> IntegerModel:
    """The integer model stored in ``path`` (module docstring).

    ``rounding`` applies to TFLite files only ("reference" or "xnnpack"; default "reference").
    """
    path = Path(path)
    kind = model_kind(path)
    if rounding is not None and kind != "tflite":
        raise ModelFormatError(
            f"rounding={rounding!r} applies to TFLite models only, not {str(path)!r}"
        )
    if kind in ("gq", "zip"):
        from .integer.file import load as load_gq

        return load_gq(path)
    if kind == "tflite":
        with requires_extra("tflite", "reading a TFLite model"):
            from .frontends.tflite_model import load_tflite

        return load_tflite(path, rounding=rounding or "reference")
    return _load_onnx_integer(path)


def model_kind(path: str | Path) -> str:
    """The format of a model file from its content (module docstring): "gq" (a zip holding
    ``model.json``), "zip" (any other zip, readable or not), "tflite" or "onnx" (anything
    else). ModelFormatError naming the file if it is unreadable or empty."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ModelFormatError(f"cannot read model file {str(path)!r}: {e}") from e
    if not head:
        raise ModelFormatError(f"model file {str(path)!r} is empty")
    if head.startswith(ZIP_MAGICS):
        from .integer.file import JSON_MEMBER

        try:
            with zipfile.ZipFile(path) as zf:
                return "gq" if JSON_MEMBER in zf.namelist() else "zip"
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            return "zip"
    if head[4:8] == TFLITE_IDENTIFIER:
        return "tflite"
    return "onnx"


def _load_onnx_integer(path: Path) -> IntegerModel:
    with requires_extra("onnx", "reading an ONNX model"):
        import onnx

        from .frontends.onnx_qdq import QDQ_OPS, import_qdq
        from .frontends.onnx_qoperator import is_qoperator_onnx, load_qoperator_onnx

    try:
        proto = onnx.load(str(path))
    except Exception as e:
        raise ModelFormatError(
            f"{str(path)!r} is neither a gpuquant model, a TFLite model nor a readable ONNX "
            f"model ({e})"
        ) from e
    if is_qoperator_onnx(proto):
        return load_qoperator_onnx(path)
    if any(node.op_type in QDQ_OPS for node in proto.graph.node):
        return import_qdq(proto)
    raise ModelFormatError(
        f"{str(path)!r} is a float ONNX model: quantize it first with "
        f"gpuquant.quantize_model(...) or `gpuquant quantize`"
    )

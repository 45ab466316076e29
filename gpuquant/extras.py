"""Optional dependencies: an import that fails for want of an extra's package becomes a
MissingDependencyError naming the extra (``pip install 'gpuquant[NAME]'``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .errors import MissingDependencyError

EXTRA_PACKAGES = {
    "onnx": ("onnx", "google"),  # google.protobuf comes with onnx
    "tflite": ("tflite", "flatbuffers"),
}
PIP_NAMES = {"google": "protobuf"}


@contextmanager
def requires_extra(extra: str, purpose: str) -> Iterator[None]:
    """Run the imports in the ``with`` body; a package of ``extra`` (EXTRA_PACKAGES) that is
    missing raises MissingDependencyError saying that ``purpose`` needs it. A missing module
    of any other package is re-raised as it is."""
    try:
        yield
    except ModuleNotFoundError as exc:
        package = (exc.name or "").partition(".")[0]
        if package not in EXTRA_PACKAGES[extra]:
            raise
        pip_name = PIP_NAMES.get(package, package)
        raise MissingDependencyError(
            f"{purpose} needs {pip_name}, which is not installed; install it with "
            f"pip install 'gpuquant[{extra}]' (or pip install {pip_name})"
        ) from exc

"""An inference session over an integer model, shaped like onnxruntime's ``InferenceSession``.

``InferenceSession(path_or_model, backend="auto").run(output_names, input_feed)`` returns host
NumPy arrays in the model's own layout (NCHW for models converted from ONNX). Any batch size is
accepted unless the model's graph fixes it (``metadata["fixed_batch"]`` says why; then the
leading dimension must be the declared one); every other dimension, the rank and the dtype must
match the model's input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import Backend, get_backend
from ..errors import ShapeError
from ..graph.executor import check_input_values
from ..integer.model import IntegerModel, TensorSpec
from ..loader import load
from .executor import execute

ONNX_TYPE_NAMES = {
    "float32": "float", "float64": "double", "float16": "float16", "int8": "int8",
    "uint8": "uint8", "int16": "int16", "int32": "int32", "int64": "int64", "bool": "bool",
}


@dataclass(frozen=True)
class NodeArg:
    """A model input or output as onnxruntime describes it: name, shape (None for a dynamic
    dimension), and type such as ``"tensor(float)"``."""

    name: str
    shape: list[int | None]
    type: str


def _node_arg(spec: TensorSpec) -> NodeArg:
    return NodeArg(spec.name, list(spec.shape),
                   f"tensor({ONNX_TYPE_NAMES.get(spec.dtype, spec.dtype)})")


class InferenceSession:
    """Runs an IntegerModel (or a model file) on a backend: "auto", "numpy", "cupy", a backend
    object, or None for the ``GPUQUANT_BACKEND`` environment variable, else auto."""

    def __init__(
        self, path_or_model: str | Path | IntegerModel, backend: str | Backend | None = None
    ) -> None:
        self.model = (
            path_or_model if isinstance(path_or_model, IntegerModel) else load(path_or_model)
        )
        self.backend = (
            get_backend(backend) if backend is None or isinstance(backend, str) else backend
        )

    def get_inputs(self) -> list[NodeArg]:
        return [_node_arg(s) for s in self.model.inputs]

    def get_outputs(self) -> list[NodeArg]:
        return [_node_arg(s) for s in self.model.outputs]

    def _check_feed(self, input_feed: Mapping[str, Any]) -> dict[str, Any]:
        feeds = {name: self.backend.asarray(value) for name, value in input_feed.items()}
        check_input_values(self.model.inputs, feeds, "model")
        return feeds

    def run(
        self,
        output_names: list[str] | None,
        input_feed: Mapping[str, Any],
        *,
        device_outputs: bool = False,
    ) -> list[Any]:
        """The named outputs (all when None) for ``input_feed``.

        Inputs may be NumPy arrays, CuPy arrays, or objects exposing ``__cuda_array_interface__``
        or DLPack (e.g. torch tensors); each is moved to the backend once. Outputs are host NumPy
        arrays, or the backend's own arrays (CuPy on the GPU) with ``device_outputs=True``.
        """
        if isinstance(output_names, str):
            raise ShapeError(f"output_names must be a list of names, got the string "
                             f"{output_names!r}")
        if not isinstance(input_feed, Mapping):
            raise ShapeError(f"input_feed must map input names to arrays, got "
                             f"{type(input_feed).__name__}")
        known = [s.name for s in self.model.outputs]
        names = known if output_names is None else list(output_names)
        for name in names:
            if name not in known:
                raise ShapeError(f"unknown output {name!r}; the model's outputs are {known}")
        results = execute(self.model, self._check_feed(input_feed), self.backend)
        if device_outputs:
            return [results[name] for name in names]
        return [self.backend.to_numpy(results[name]) for name in names]

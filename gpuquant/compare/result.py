"""What a comparison produces: plain data, with its JSON form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .layers import LayerError
from .metrics import ErrorSums


@dataclass
class Throughput:
    """Images per second of the float graph and the integer model on one backend (None: not
    run there; the float executor runs on NumPy only)."""

    backend: str
    float_images_per_s: float | None = None
    int8_images_per_s: float | None = None


@dataclass
class Comparison:
    """Everything ``gpuquant compare`` reports (``to_json`` gives the JSON form); ``timing``
    says in words what the throughput numbers time (timing.compare_timing)."""

    dataset: str
    images: int
    backend: str
    backend_reason: str
    float_accuracy: float | None
    int8_accuracy: float | None
    agreement: float
    output: ErrorSums
    layers: list[LayerError]
    layer_images: int
    throughput: list[Throughput]
    sizes: dict[str, int] = field(default_factory=dict)
    float_nodes: list[Any] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values; an infinite SQNR (exact match) is written as null."""
        return {
            "dataset": self.dataset,
            "images": self.images,
            "backend": self.backend,
            "backend_reason": self.backend_reason,
            "float_accuracy": self.float_accuracy,
            "int8_accuracy": self.int8_accuracy,
            "agreement": self.agreement,
            "cosine": self.output.cosine,
            "sqnr_db": _finite(self.output.sqnr_db),
            "per_layer_sqnr": [
                {"tensor": l.tensor, "int8_tensor": l.int8_tensor, "op": l.op,
                 "sqnr_db": _finite(l.sqnr_db), "cosine": l.cosine}
                for l in self.layers
            ],
            "per_layer_images": self.layer_images,
            "sizes": dict(self.sizes),
            "throughput": [vars(t).copy() for t in self.throughput],
            "throughput_timing": dict(self.timing),
            "float_nodes": list(self.float_nodes),
            "settings": dict(self.settings),
            "seconds": dict(self.seconds),
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None

"""Per-layer error: every 8-bit tensor of the integer model, dequantized, against the float
tensor it approximates (``TensorSpec.float_name``), on the same input batch.

The dequantized value is ``scale * (q - zero_point)``; NHWC tensors are transposed back to the
float graph's NCHW order first. Sums run over all compared batches, so a layer's SQNR is
``10 * log10(sum f^2 / sum (f - q)^2)`` over every element seen (metrics.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..integer.model import IntegerModel, TensorSpec
from ..quant.params import dequantize
from .metrics import ErrorSums

TO_NCHW = (0, 3, 1, 2)
EIGHT_BIT = ("int8", "uint8")
SAMPLE_SIZE = 20000


@dataclass
class LayerError:
    """Error of one 8-bit tensor against its float counterpart, plus a sample of value pairs
    (same positions in both) for histograms; ``step`` is the tensor's scale (the spacing of
    its dequantized values, all integer multiples of it)."""

    tensor: str
    int8_tensor: str
    op: str
    step: float = 1.0
    sums: ErrorSums = field(default_factory=ErrorSums)
    float_sample: np.ndarray | None = None
    int8_sample: np.ndarray | None = None

    @property
    def sqnr_db(self) -> float:
        return self.sums.sqnr_db

    @property
    def cosine(self) -> float:
        return self.sums.cosine


def compared_tensors(model: IntegerModel) -> list[tuple[TensorSpec, str]]:
    """(8-bit tensor spec, producing op) for each float tensor, in execution order.

    When several 8-bit tensors approximate the same float tensor (e.g. one before and one after
    a layout change), the first produced is taken.
    """
    seen: set[str] = set()
    pairs = []
    producers = [(name, node.op) for node in model.nodes for name in node.outputs]
    for name, op in producers:
        spec = model.tensors.get(name)
        if (spec is None or spec.dtype not in EIGHT_BIT or spec.qparams is None
                or spec.float_name is None or spec.float_name in seen):
            continue
        seen.add(spec.float_name)
        pairs.append((spec, op))
    return pairs


def dequantized_like_float(q: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """``scale * (q - zero_point)`` as float32, in the float graph's NCHW order.

    Per-tensor parameters take a float32 shortcut with the same result as ``dequantize``:
    ``q - zero_point`` of 8-bit values is exact in float32.
    """
    qp = spec.qparams
    if qp.axis is None:
        real = (np.asarray(q).astype(np.float32) - np.float32(qp.zero_point[0])) * qp.scale[0]
    else:
        real = dequantize(np.asarray(q), qp).astype(np.float32)
    if spec.layout == "NHWC" and real.ndim == 4:
        real = real.transpose(TO_NCHW)
    return real


class LayerComparison:
    """Accumulates per-layer errors over batches of (float tensors, integer tensors)."""

    def __init__(self, model: IntegerModel, seed: int = 0) -> None:
        self.pairs = compared_tensors(model)
        self.layers = {
            spec.name: LayerError(spec.float_name, spec.name, op, float(spec.qparams.scale[0]))
            for spec, op in self.pairs
        }
        self.rng = np.random.default_rng(seed)

    def add(self, float_tensors: dict[str, np.ndarray], int_tensors: dict[str, np.ndarray]) -> None:
        """Add one batch: every float tensor and every 8-bit tensor (NumPy) of the same run.

        A tensor missing from either side, or whose shape differs from its float counterpart's
        (a tensor the converter reshaped), is skipped.
        """
        for spec, _ in self.pairs:
            if spec.name not in int_tensors or spec.float_name not in float_tensors:
                continue
            f = np.asarray(float_tensors[spec.float_name], dtype=np.float32)
            q = dequantized_like_float(int_tensors[spec.name], spec)
            if f.shape != q.shape:
                continue
            layer = self.layers[spec.name]
            layer.sums.add(f, q)
            if layer.float_sample is None:
                n = min(SAMPLE_SIZE, f.size)
                picks = self.rng.choice(f.size, size=n, replace=False)
                layer.float_sample = f.reshape(-1)[picks]
                layer.int8_sample = q.reshape(-1)[picks]

    def results(self) -> list[LayerError]:
        """Layers that were compared at least once, in execution order."""
        return [layer for layer in self.layers.values() if layer.sums.count]

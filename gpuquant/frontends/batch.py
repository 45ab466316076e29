"""Which tensors of an imported int8 model follow the batch, so that a model declared at one
batch (ONNX ``[1, 3, 224, 224]``, TFLite ``[1, 224, 224, 3]``) runs at any batch.

An importer traces the model at the batch ``B`` its file declares: the leading dimension every
graph input shares. A tensor *follows the batch with factor f* when, fed ``N`` samples, its
leading dimension is ``f * N`` (``f * B`` as declared) and its leading rows ``[f*i, f*(i+1))``
are computed from sample ``i`` alone, exactly as a batch-1 run of that sample computes them.
Graph inputs follow with factor 1; constants do not follow (factor None). Each op's rule (in the
importers) gives its output's factor from its inputs'. An op that reads a following tensor and
cannot prove that its output follows *loses the batch* (softmax over axis 0, a transpose moving
axis 0, a reshape changing the leading dimension, ...): such a model keeps its declared batch.

A reshape from factor ``p`` to factor ``q`` gets the target ``[0, d1, ...]`` when ``p == q``
(ONNX: 0 copies the input's leading dimension, ``p * N``), ``[-1, d1, ...]`` when they differ
(the leading dimension ``q * N`` inferred from the element count), else the static shape.

A squeeze or unsqueeze (ONNX Squeeze/Unsqueeze, TFLite SQUEEZE) runs as a reshape and keeps
the input's factor when it leaves axis 0 in place. One that removes axis 0 or inserts an axis
before it loses the batch, even where the shape would allow it (``[1, 1, 128] -> [1, 128]``):
the model names its batch axis as the one to remove, or moves it to axis 1 (fed ``N`` samples,
the source runtime gives ``[1, N, ...]`` for an Unsqueeze at axis 0, and refuses to squeeze
axis 0 of length ``N``), so no batch-``N`` result of the model's own is there to reproduce.

``BatchTrace.finish`` then marks the model: when every graph output follows with factor 1 and no
op lost the batch, every following tensor's spec gets a None leading dimension (inputs and
outputs included) and the model runs at any batch; otherwise ``metadata["fixed_batch"]`` says
which node is at fault, and the executor refuses inputs at another batch (runtime/executor.py).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from ..integer.model import IntegerModel, TensorSpec

Shape = tuple[int, ...]


def reshape_target(out_shape: Sequence[int], p: int | None, q: int | None) -> list[int]:
    """The reshape target from a tensor following with factor ``p`` to ``out_shape`` following
    with factor ``q`` (module docstring); the static ``out_shape`` when either is None."""
    out = [int(d) for d in out_shape]
    if not out or p is None or q is None:
        return out
    if p == q:
        return [0] + out[1:]
    if math.prod(out[1:]) > 0:
        return [-1] + out[1:]
    return out


def broadcast_factor(operands: Sequence[tuple[Sequence[int], int | None]]) -> int | None:
    """The factor of a NumPy-broadcast result of ``(shape, factor)`` operands: every operand of
    the result's rank either follows (all with one factor) or has leading dimension 1, and no
    operand of lower rank follows (its leading axis would meet a non-batch axis)."""
    rank = max(len(shape) for shape, _ in operands)
    factors = set()
    for shape, factor in operands:
        if len(shape) < rank:
            if factor is not None:
                return None
        elif factor is not None:
            factors.add(factor)
        elif shape[0] != 1:
            return None
    return factors.pop() if len(factors) == 1 else None


def squeeze_shape(shape: Sequence[int], axes: Sequence[int] | None,
                  unsqueeze: bool) -> tuple[Shape, list[int]]:
    """``shape`` with the length-1 ``axes`` removed (every length-1 axis when ``axes`` is None),
    or with length-1 axes inserted at ``axes`` (output positions) when ``unsqueeze``; and those
    axes, sorted and non-negative. Negative axes count from the end of the input (squeeze) or
    output (unsqueeze). Raises ValueError naming an axis out of range or of another length."""
    out = [int(d) for d in shape]
    rank = len(out) + (len(axes) if unsqueeze else 0)
    if axes is None:
        moved = [i for i, d in enumerate(out) if d == 1]
    else:
        if any(not -rank <= int(a) < rank for a in axes):
            raise ValueError(f"axes {list(axes)} out of range for rank {rank}")
        moved = sorted({int(a) % rank for a in axes})
    if unsqueeze:
        for a in moved:
            out.insert(a, 1)
        return tuple(out), moved
    if any(out[a] != 1 for a in moved):
        raise ValueError(f"cannot squeeze axes {moved} of shape {tuple(out)}: "
                         "only axes of length 1")
    return tuple(d for i, d in enumerate(out) if i not in moved), moved


class BatchTrace:
    """Factors of the tensors traced so far (by name), the declared batch, and why the model
    keeps its declared batch (``lost``; None while the batch is kept)."""

    def __init__(self, inputs: Sequence[tuple[str, Shape]]) -> None:
        leading = {int(shape[0]) for _, shape in inputs if len(shape)}
        self.batch = leading.pop() if len(leading) == 1 else None
        self.lost: str | None = None
        if self.batch is None or self.batch < 1:
            self.batch = None
            self.lost = (f"the graph inputs share no batch axis (shapes "
                         f"{[tuple(s) for _, s in inputs]})")
        self.factors: dict[str, int | None] = {
            name: 1 if self.batch is not None and len(shape) else None for name, shape in inputs
        }

    def get(self, name: str) -> int | None:
        return self.factors.get(name)

    def lose(self, why: str) -> None:
        """The batch is lost for the reason ``why`` (kept if an earlier loss is recorded)."""
        if self.lost is None:
            self.lost = why

    def record(self, where: str, inputs: Sequence[tuple[str, Shape]], output: str,
               shape: Shape, factor: int | None) -> None:
        """``output`` (of ``shape``, made by ``where`` from ``inputs``) follows with ``factor``;
        a factor that disagrees with the shape counts as None, and a None output of an op that
        reads a following input records the loss."""
        if factor is not None and (self.batch is None or not shape
                                   or shape[0] != factor * self.batch):
            factor = None
        if factor is None and any(self.get(name) is not None for name, _ in inputs):
            self.lose(f"{where} does not keep the batch as the leading axis of its output "
                      f"(input shapes {[tuple(s) for _, s in inputs]} -> output shape "
                      f"{tuple(shape)})")
        self.factors[output] = factor

    def squeeze_factor(self, where: str, x_shape: Shape, p: int | None, axes: Sequence[int],
                       unsqueeze: bool) -> int | None:
        """The factor of a squeeze or unsqueeze (``where``) of a tensor of ``x_shape``
        following with ``p``, by the ``axes`` squeeze_shape returns: ``p`` unless they include
        0, then None, recording that it removes or displaces the batch axis (module
        docstring)."""
        if 0 not in axes:
            return p
        if p is not None:
            moved = "inserts an axis before" if unsqueeze else "removes"
            self.lose(f"{where} does not keep the batch as the leading axis of its output: it "
                      f"{moved} axis 0, the batch axis (input shape {tuple(x_shape)}, axes "
                      f"{list(axes)})")
        return None

    def finish(self, model: IntegerModel) -> None:
        """Batch-agnostic specs, or ``metadata["fixed_batch"]`` (module docstring)."""
        reason = self.lost
        for spec in model.outputs:
            if reason is None and self.get(spec.name) != 1:
                reason = (f"graph output {spec.name!r} (shape {tuple(spec.shape)}) does not "
                          "follow the batch of the inputs")
        if reason is not None:
            model.metadata["fixed_batch"] = reason
            return
        model.inputs = [self._dynamic(s) for s in model.inputs]
        model.outputs = [self._dynamic(s) for s in model.outputs]
        model.tensors = {name: self._dynamic(s) for name, s in model.tensors.items()}

    def _dynamic(self, spec: TensorSpec) -> TensorSpec:
        if self.get(spec.name) is None:
            return spec
        return dataclasses.replace(spec, shape=(None,) + tuple(spec.shape[1:]))

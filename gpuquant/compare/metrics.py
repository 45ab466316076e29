"""Float vs 8-bit agreement measures, accumulated in float64 over any number of batches.

For a reference ``f`` (float model) and an approximation ``q`` (int8 model, dequantized):

- SQNR (dB) = ``10 * log10(sum(f^2) / sum((f - q)^2))``; +inf when ``q == f`` exactly, -inf
  when ``f`` is all zero and ``q`` is not;
- cosine similarity = ``sum(f * q) / sqrt(sum(f^2) * sum(q^2))`` over all elements; 1.0 when
  both are all zero, 0.0 when only one is;
- top-1 = index of the largest logit of each sample (the first on ties, as ``argmax``);
  accuracy = fraction of samples whose top-1 is the label; agreement = fraction of samples
  whose top-1 is the same for both models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError

CHUNK = 1 << 16


def _dot(a: np.ndarray, b: np.ndarray) -> np.floating:
    return np.einsum("i,i->", a, b)


@dataclass
class ErrorSums:
    """Running sums over (reference, approximation) pairs of equal shape."""

    signal: float = 0.0
    noise: float = 0.0
    dot: float = 0.0
    approx_power: float = 0.0
    count: int = 0

    def add(self, reference: np.ndarray, approx: np.ndarray) -> ErrorSums:
        """Add one pair (any shapes, equal to each other); returns self.

        The sums run in float64 over chunks of CHUNK elements, so no full-size float64 copy
        of a large activation tensor is made; the dot products use einsum's own loop rather
        than BLAS, whose threads cost more to start than these short vectors take.
        """
        f = np.asarray(reference)
        q = np.asarray(approx)
        if f.shape != q.shape:
            raise ShapeError(f"cannot compare shapes {f.shape} and {q.shape}")
        f, q = f.reshape(-1), q.reshape(-1)
        for start in range(0, f.size, CHUNK):
            fc = f[start:start + CHUNK].astype(np.float64)
            qc = q[start:start + CHUNK].astype(np.float64)
            self.signal += float(_dot(fc, fc))
            self.dot += float(_dot(fc, qc))
            self.approx_power += float(_dot(qc, qc))
            np.subtract(fc, qc, out=fc)
            self.noise += float(_dot(fc, fc))
        self.count += f.size
        return self

    @property
    def sqnr_db(self) -> float:
        if self.noise == 0.0:
            return math.inf
        if self.signal == 0.0:
            return -math.inf
        return 10.0 * math.log10(self.signal / self.noise)

    @property
    def cosine(self) -> float:
        if self.signal == 0.0 and self.approx_power == 0.0:
            return 1.0
        if self.signal == 0.0 or self.approx_power == 0.0:
            return 0.0
        return self.dot / math.sqrt(self.signal * self.approx_power)


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    """``10 * log10(sum(f^2) / sum((f - q)^2))`` in dB (module docstring for the edge cases)."""
    return ErrorSums().add(reference, approx).sqnr_db


def cosine_similarity(reference: np.ndarray, approx: np.ndarray) -> float:
    """Cosine of the angle between the two arrays flattened (module docstring)."""
    return ErrorSums().add(reference, approx).cosine


def top1(logits: np.ndarray) -> np.ndarray:
    """Index of the largest value per sample: argmax over all but the first axis."""
    logits = np.asarray(logits)
    if logits.ndim < 2 or logits.shape[0] == 0:
        raise ShapeError(f"top-1 needs (samples, classes...) scores, got shape {logits.shape}")
    return np.argmax(logits.reshape(logits.shape[0], -1), axis=1)


def top1_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples whose top-1 class equals the label."""
    predicted = top1(logits)
    labels = np.asarray(labels).reshape(-1)
    if labels.shape != predicted.shape:
        raise ShapeError(f"{predicted.size} predictions but {labels.size} labels")
    return float(np.mean(predicted == labels))


def top1_agreement(reference: np.ndarray, approx: np.ndarray) -> float:
    """Fraction of samples on which both score arrays have the same top-1 class."""
    a, b = top1(reference), top1(approx)
    if a.shape != b.shape:
        raise ShapeError(f"cannot compare {a.size} with {b.size} predictions")
    return float(np.mean(a == b))

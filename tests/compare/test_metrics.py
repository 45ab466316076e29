"""Metrics against values computed by hand from their definitions."""

import math

import numpy as np
import pytest

from gpuquant.compare.metrics import (
    ErrorSums,
    cosine_similarity,
    sqnr_db,
    top1,
    top1_accuracy,
    top1_agreement,
)
from gpuquant.errors import ShapeError


def test_sqnr_hand_computed():
    # signal 3^2 + 4^2 = 25, noise (4 - 3)^2 = 1 -> 10*log10(25) = 13.979400086720377 dB
    assert sqnr_db(np.array([3.0, 4.0]), np.array([3.0, 3.0])) == pytest.approx(13.979400086720377)


def test_sqnr_ten_to_one_is_ten_db():
    f = np.array([[1.0, -2.0], [3.0, 0.0]], dtype=np.float32)  # signal 14
    q = f + np.array([[1.0, 0.0], [0.0, np.sqrt(0.4)]], dtype=np.float32)  # noise 1.4
    assert sqnr_db(f, q) == pytest.approx(10.0, abs=1e-6)


def test_sqnr_edge_cases():
    assert sqnr_db(np.ones(3), np.ones(3)) == math.inf
    assert sqnr_db(np.zeros(3), np.ones(3)) == -math.inf


def test_cosine_hand_computed():
    assert cosine_similarity(np.array([1.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(
        1 / math.sqrt(2)
    )
    assert cosine_similarity(np.array([1.0, 2.0]), np.array([-2.0, 1.0])) == pytest.approx(0.0)
    assert cosine_similarity(np.array([1.0, 2.0]), np.array([-1.0, -2.0])) == pytest.approx(-1.0)
    assert cosine_similarity(np.zeros(2), np.zeros(2)) == 1.0
    assert cosine_similarity(np.zeros(2), np.ones(2)) == 0.0


def test_sums_over_batches_equal_one_pass():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(10, 7))
    q = f + rng.normal(scale=0.1, size=f.shape)
    sums = ErrorSums().add(f[:4], q[:4]).add(f[4:], q[4:])
    assert sums.sqnr_db == pytest.approx(sqnr_db(f, q))
    assert sums.cosine == pytest.approx(cosine_similarity(f, q))
    assert sums.count == 70


def test_shape_mismatch_is_an_error():
    with pytest.raises(ShapeError, match=r"\(2,\) and \(3,\)"):
        sqnr_db(np.zeros(2), np.zeros(3))


def test_top1_accuracy_and_agreement():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.5, 0.5]])
    assert top1(logits).tolist() == [1, 0, 1, 0]  # ties go to the first index
    assert top1_accuracy(logits, np.array([1, 1, 1, 0])) == 0.75
    other = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    assert top1_agreement(logits, other) == 0.5


def test_top1_flattens_trailing_axes():
    logits = np.zeros((2, 1, 3))
    logits[0, 0, 2] = 1.0
    logits[1, 0, 1] = 1.0
    assert top1(logits).tolist() == [2, 1]


def test_accuracy_needs_one_label_per_sample():
    with pytest.raises(ShapeError, match="2 predictions but 3 labels"):
        top1_accuracy(np.zeros((2, 4)), np.zeros(3, dtype=int))

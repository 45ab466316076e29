"""Range tracking: moving averages for activations, current ranges for weights, freezing."""

import numpy as np
import pytest

from gpuquant.errors import CalibrationError
from gpuquant.qat.ranges import RangeTracker, batch_range


def test_ema_first_batch_sets_then_averages():
    t = RangeTracker("ema", decay=0.75)
    t.observe(np.array([-2.0, 4.0], np.float32))
    assert [float(v[0]) for v in t.range()] == [-2.0, 4.0]
    t.observe(np.array([-6.0, 8.0], np.float32))
    # 0.75 * -2 + 0.25 * -6 = -3; 0.75 * 4 + 0.25 * 8 = 5
    assert [float(v[0]) for v in t.range()] == [-3.0, 5.0]


def test_batch_range_includes_zero():
    lo, hi = batch_range(np.array([1.0, 3.0], np.float32))
    assert (float(lo[0]), float(hi[0])) == (0.0, 3.0)
    lo, hi = batch_range(np.array([-3.0, -1.0], np.float32))
    assert (float(lo[0]), float(hi[0])) == (-3.0, 0.0)


def test_last_value_per_channel_symmetric_weights():
    t = RangeTracker("last", axis=0, symmetric=True)
    t.observe(np.array([[-1.0, 0.5], [0.25, 2.0]], np.float32))
    t.observe(np.array([[-0.5, 0.25], [0.25, -3.0]], np.float32))
    lo, hi = t.range()
    np.testing.assert_array_equal(lo, [-0.5, -3.0])
    np.testing.assert_array_equal(hi, [0.5, 3.0])


def test_freeze_after_n_steps():
    t = RangeTracker("ema", decay=0.5, freeze_after=2)
    for v in (2.0, 4.0, 100.0):
        t.observe(np.array([v], np.float32))
    assert t.frozen and t.steps == 2
    assert float(t.range()[1][0]) == 3.0


def test_non_finite_batch_is_refused_with_count():
    t = RangeTracker(name="conv1.out")
    with pytest.raises(CalibrationError, match=r"'conv1.out': 2 of 4 values not finite"):
        t.observe(np.array([1.0, np.nan, np.inf, -2.0], np.float32))
    with pytest.raises(CalibrationError, match="no batch observed"):
        t.range()


def test_minmax_keeps_the_extremes_of_all_batches():
    t = RangeTracker("minmax")
    for batch in ([-1.0, 2.0], [-3.0, 1.0], [0.5, 1.5]):
        t.observe(np.array(batch, np.float32))
    assert [float(v[0]) for v in t.range()] == [-3.0, 2.0]

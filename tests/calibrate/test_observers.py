"""Observers against hand-computed ranges, known distributions and case N11 (non-finite data)."""

import numpy as np
import pytest

from gpuquant.calibrate.observers import (
    AbsHistogram,
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    PercentileObserver,
)
from gpuquant.errors import CalibrationError
from gpuquant.quant.params import choose_qparams

NAN, INF = float("nan"), float("inf")
RNG = np.random.default_rng(7)


def entropy(**kw):
    return HistogramObserver(method="entropy", **kw)


def mse(**kw):
    return HistogramObserver(method="mse", **kw)


ALL = [MinMaxObserver, MovingAverageMinMaxObserver, PercentileObserver, entropy, mse]


def test_minmax():
    obs = MinMaxObserver()
    obs.observe(np.array([1.0, 5.0, -3.0], np.float32))
    obs.observe(np.array([[2.0], [7.0]], np.float32))
    assert obs.compute_range() == (-3.0, 7.0)


def test_moving_average_follows_tensorflow_update():
    obs = MovingAverageMinMaxObserver(averaging_constant=0.5)
    obs.observe(np.array([0.0, 4.0]))
    assert obs.compute_range() == (0.0, 4.0)
    obs.observe(np.array([-2.0, 8.0]))  # min = 0 + 0.5 * (-2 - 0), max = 4 + 0.5 * (8 - 4)
    assert obs.compute_range() == (-1.0, 6.0)
    obs.observe(np.array([1.0, 2.0]))  # min = -1 + 0.5 * (1 + 1), max = 6 + 0.5 * (2 - 6)
    assert obs.compute_range() == (0.0, 4.0)


def test_percentile_of_abs_values_both_tails():
    # |x| = 1..1000 twice; 1000 bins of width 1: bin k holds k (k < 999), bin 999 holds 999
    # and 1000. 90% of 2000 values = 1800 values are reached at the end of bin 900 -> t = 901.
    values = np.arange(1, 1001, dtype=np.float32)
    obs = PercentileObserver(percentile=90.0, bins=1000)
    obs.observe(np.concatenate([values, -values]))
    assert obs.compute_range() == (-901.0, 901.0)
    assert abs(901.0 - np.percentile(values, 90.0)) <= 1.0 + 1e-9


def test_percentile_of_non_negative_tensor_keeps_its_minimum():
    obs = PercentileObserver(percentile=50.0, bins=1000)
    obs.observe(np.arange(1, 1001, dtype=np.float32))  # 500 values reached at bin 500 -> 501
    assert obs.compute_range() == (1.0, 501.0)


def test_abs_histogram_merges_bins_exactly_when_the_range_grows():
    first = RNG.uniform(-1, 1, 5000)
    second = RNG.uniform(-3, 3, 5000)
    first[0] = 1.0
    hist = AbsHistogram(2048)
    hist.add(first)
    assert hist.width == 1.0 / 2048
    hist.add(second)
    assert hist.width == 4.0 / 2048  # doubled twice to cover max|x| < 3 < 4
    expected, _ = np.histogram(np.abs(np.concatenate([first[1:], second])), bins=2048,
                               range=(0.0, 2048 * hist.width))
    expected[511] += 1  # 1.0 was the top edge, counted in the last bin, merged twice: 2047 // 4
    np.testing.assert_array_equal(hist.counts, expected)


def test_entropy_clips_gaussian_outliers():
    x = RNG.standard_normal(100_000).astype(np.float32)
    x[:20] = 50.0
    obs = entropy()
    obs.observe(x)
    lo, hi = obs.compute_range()
    assert 2.5 < hi < 10.0  # far below max|x| = 50
    assert lo == max(float(x.min()), -hi)


def test_entropy_keeps_uniform_range():
    x = RNG.uniform(-1, 1, 100_000).astype(np.float32)
    obs = entropy()
    obs.observe(x)
    lo, hi = obs.compute_range()
    assert hi >= 0.99 * np.abs(x).max()


def test_mse_threshold_of_laplace_matches_aciq():
    # Banner et al. (ACIQ, 2019): the MSE-optimal 8-bit clip of Laplace(b) is about 9.89 b.
    x = RNG.laplace(scale=1.0, size=1_000_000).astype(np.float32)
    obs = mse()
    obs.observe(x)
    lo, hi = obs.compute_range()
    assert 9.0 < hi < 10.8
    assert lo == -hi


@pytest.mark.parametrize("make", ALL)
def test_all_zero_data_gives_zero_range_and_finite_qparams(make):
    obs = make()
    obs.observe(np.zeros((4, 3), np.float32))
    assert obs.compute_range() == (0.0, 0.0)
    params = obs.compute_qparams()
    assert params.scale[0] == 1.0


@pytest.mark.parametrize("make", ALL)
def test_constant_data_gives_a_valid_range(make):
    obs = make()
    obs.observe(np.full(10, 5.0, np.float32))
    lo, hi = obs.compute_range()
    assert lo <= hi and abs(hi - 5.0) < 5.0 / 256


@pytest.mark.parametrize("make", ALL)
def test_subnormal_data_gives_its_range(make):
    # |x| / width in float32 underflowed width to 0 and indexed the histogram with -2**63.
    tiny = float(np.float32(1e-45))
    obs = make()
    obs.observe(np.array([tiny, -tiny, 0.0], np.float32))
    lo, hi = obs.compute_range()
    assert -tiny <= lo <= 0.0 < hi <= tiny


def test_compute_qparams_uses_choose_qparams():
    obs = MinMaxObserver()
    obs.observe(np.array([-1.0, 3.0]))
    got = obs.compute_qparams("uint8")
    expected = choose_qparams(-1.0, 3.0, "uint8")
    assert got.scale[0] == expected.scale[0] and got.zero_point[0] == expected.zero_point[0]


@pytest.mark.parametrize("make", ALL)
@pytest.mark.parametrize(
    "batch,bad", [([1.0, NAN, 3.0, -2.0], "1 of 4"), ([NAN, NAN], "2 of 2"), ([1.0, INF], "1 of 2")]
)
def test_n11_non_finite_values_raise_naming_tensor_and_count(make, batch, bad):
    obs = make(name="conv1_out")
    with pytest.raises(CalibrationError) as info:
        obs.observe(np.array(batch, np.float32))
    assert "'conv1_out'" in str(info.value) and bad in str(info.value)


@pytest.mark.parametrize("make", [MinMaxObserver, MovingAverageMinMaxObserver])
def test_n11_skip_nonfinite_gives_range_of_the_finite_values(make):
    obs = make(skip_nonfinite=True)
    obs.observe(np.array([1.0, NAN, 3.0, -2.0], np.float32))
    assert obs.compute_range() == (-2.0, 3.0)


@pytest.mark.parametrize("make", ALL)
def test_n11_skip_nonfinite_never_gives_nan_scale(make):
    obs = make(skip_nonfinite=True)
    obs.observe(np.array([1.0, NAN, 3.0, -2.0, INF, -INF], np.float32))
    lo, hi = obs.compute_range()
    assert np.isfinite(lo) and np.isfinite(hi)
    assert np.isfinite(obs.compute_qparams().scale[0])


@pytest.mark.parametrize("make", ALL)
def test_no_finite_data_raises(make):
    obs = make(name="t", skip_nonfinite=True)
    with pytest.raises(CalibrationError, match="'t'"):
        obs.compute_range()
    obs.observe(np.array([], np.float32))
    obs.observe(np.array([NAN, NAN], np.float32))
    with pytest.raises(CalibrationError, match="no finite"):
        obs.compute_range()

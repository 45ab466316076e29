"""Observers: each watches the values of one float tensor over calibration batches and gives a
real range [rmin, rmax] for it.

Every observer has two methods: ``observe(batch)`` and ``compute_range()``;
``compute_qparams(...)`` turns the range into QuantParams with ``quant.params.choose_qparams``.

Common rules:

- non-finite values (NaN, +-inf) raise CalibrationError naming the tensor and how many values
  were not finite, unless ``skip_nonfinite=True``, which drops them before observing;
- a range is only computed from at least one finite value, else CalibrationError;
- degenerate data is fine: all values equal to v give [v, v] (all zeros: [0, 0]);
  ``choose_qparams`` widens every range to include 0 and gives scale 1 to [0, 0].
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..errors import CalibrationError
from ..quant.params import QuantParams, choose_qparams


def non_finite_message(name: str, bad: int, size: int) -> str:
    """The error for ``bad`` non-finite values among the ``size`` values of one batch of tensor
    ``name``."""
    return (f"tensor {name!r}: {bad} of {size} values in this batch are not finite (NaN or inf); "
            f"pass skip_nonfinite=True to ignore them")


class Observer(ABC):
    """Shared checks (non-finite values, empty data) and the QuantParams helper."""

    def __init__(self, name: str = "tensor", skip_nonfinite: bool = False) -> None:
        self.name = name
        self.skip_nonfinite = skip_nonfinite
        self.count = 0

    def _finite(self, batch: np.ndarray) -> np.ndarray:
        """The batch as flat float32 without non-finite values (which raise unless skipped)."""
        x = np.asarray(batch, dtype=np.float32).ravel()
        finite = np.isfinite(x)
        bad = x.size - int(np.count_nonzero(finite))
        if bad:
            if not self.skip_nonfinite:
                raise CalibrationError(non_finite_message(self.name, bad, x.size))
            x = x[finite]
        self.count += x.size
        return x

    def _require_data(self) -> None:
        if self.count == 0:
            raise CalibrationError(f"tensor {self.name!r}: no finite calibration values observed")

    @abstractmethod
    def observe(self, batch: np.ndarray) -> None:
        """Take one batch of values of the tensor (any shape)."""

    @abstractmethod
    def compute_range(self) -> tuple[float, float]:
        """``(rmin, rmax)`` of everything observed so far."""

    def compute_qparams(self, dtype: str = "int8", symmetric: bool = False) -> QuantParams:
        """``choose_qparams(rmin, rmax, dtype, symmetric)`` of ``compute_range()``."""
        lo, hi = self.compute_range()
        return choose_qparams(lo, hi, dtype=dtype, symmetric=symmetric)


class MinMaxObserver(Observer):
    """``rmin = min(x)``, ``rmax = max(x)`` over every observed value."""

    def __init__(self, name: str = "tensor", skip_nonfinite: bool = False) -> None:
        super().__init__(name, skip_nonfinite)
        self.min = np.inf
        self.max = -np.inf

    def observe(self, batch: np.ndarray) -> None:
        x = self._finite(batch)
        if x.size:
            self.min = min(self.min, float(x.min()))
            self.max = max(self.max, float(x.max()))

    def compute_range(self) -> tuple[float, float]:
        self._require_data()
        return self.min, self.max


class MovingAverageMinMaxObserver(Observer):
    """Exponential moving average of per-batch extremes (TensorFlow's fake-quant ranges).

    The first batch sets ``min = min(batch)``, ``max = max(batch)``; each later batch updates
    ``min += c * (min(batch) - min)`` and ``max += c * (max(batch) - max)`` with
    ``c = averaging_constant`` in (0, 1]. A batch with no finite value (when skipped) changes
    nothing.
    """

    def __init__(self, name: str = "tensor", skip_nonfinite: bool = False,
                 averaging_constant: float = 0.01) -> None:
        if not 0.0 < averaging_constant <= 1.0:
            raise ValueError(f"averaging_constant must be in (0, 1], got {averaging_constant}")
        super().__init__(name, skip_nonfinite)
        self.averaging_constant = averaging_constant
        self.min: float | None = None
        self.max: float | None = None

    def observe(self, batch: np.ndarray) -> None:
        x = self._finite(batch)
        if not x.size:
            return
        lo, hi = float(x.min()), float(x.max())
        if self.min is None:
            self.min, self.max = lo, hi
        else:
            c = self.averaging_constant
            self.min += c * (lo - self.min)
            self.max += c * (hi - self.max)

    def compute_range(self) -> tuple[float, float]:
        self._require_data()
        return self.min, self.max


class AbsHistogram:
    """Counts of |x| in ``bins`` equal bins over [0, bins * width].

    The first batch with a nonzero value sets ``width = max|x| / bins``; when a later batch
    holds a larger |x|, adjacent bins are merged in pairs (the width doubles) until it fits, so
    bin edges stay exact multiples of the first width and no count is spread by interpolation.
    A value on a bin edge counts in the bin above it, except the top edge ``bins * width``,
    which counts in the last bin (and stays in the bins it merges into).
    Zeros seen before any nonzero value are kept aside and put in bin 0.
    """

    def __init__(self, bins: int) -> None:
        if bins < 2 or bins % 2:
            raise ValueError(f"bins must be even and >= 2, got {bins}")
        self.bins = bins
        self.width = 0.0
        self.counts = np.zeros(bins, dtype=np.int64)
        self.zeros = 0

    def add(self, x: np.ndarray) -> None:
        a = np.abs(x.astype(np.float64))  # float32 |x| / width underflows for tiny |x|
        amax = float(a.max()) if a.size else 0.0
        if self.width == 0.0:
            if amax == 0.0:
                self.zeros += a.size
                return
            self.width = amax / self.bins
            self.counts[0] += self.zeros
        while amax > self.bins * self.width:
            self.counts = np.concatenate(
                [self.counts.reshape(-1, 2).sum(axis=1), np.zeros(self.bins // 2, np.int64)]
            )
            self.width *= 2
        index = np.minimum((a / self.width).astype(np.int64), self.bins - 1)
        self.counts += np.bincount(index, minlength=self.bins)


class _ClippedRange(Observer):
    """Observers that pick a clipping threshold t on |x|: the range is the observed
    [min, max] clipped to [-t, t], i.e. ``hi = min(max, t)``, ``lo = min(max(min, -t), hi)``
    (the last min for data all above t, e.g. a constant between two bin edges)."""

    def __init__(self, name: str, skip_nonfinite: bool, bins: int) -> None:
        super().__init__(name, skip_nonfinite)
        self.hist = AbsHistogram(bins)
        self.min = np.inf
        self.max = -np.inf

    def observe(self, batch: np.ndarray) -> None:
        x = self._finite(batch)
        if x.size:
            self.min = min(self.min, float(x.min()))
            self.max = max(self.max, float(x.max()))
            self.hist.add(x)

    @abstractmethod
    def threshold(self) -> float:
        """The clipping threshold t on |x| (at least one nonzero value was observed)."""

    def compute_range(self) -> tuple[float, float]:
        self._require_data()
        if self.hist.width == 0.0:
            return 0.0, 0.0
        t = self.threshold()
        hi = min(self.max, t)
        return min(max(self.min, -t), hi), hi


class PercentileObserver(_ClippedRange):
    """Clip |x| at its ``percentile``-th percentile (over |x|, so both tails at once).

    t is the upper edge of the first histogram bin (``bins`` bins over [0, max|x|]; see
    AbsHistogram) at which the cumulative count of |x| reaches ``percentile / 100`` of all
    values: t is within one bin width above the exact percentile. Range: ``[max(min, -t),
    min(max, t)]``, so a non-negative tensor gets [min, t].
    """

    def __init__(self, name: str = "tensor", skip_nonfinite: bool = False,
                 percentile: float = 99.99, bins: int = 2048) -> None:
        if not 0.0 < percentile <= 100.0:
            raise ValueError(f"percentile must be in (0, 100], got {percentile}")
        super().__init__(name, skip_nonfinite, bins)
        self.percentile = percentile

    def threshold(self) -> float:
        cumulative = np.cumsum(self.hist.counts)
        target = self.percentile / 100.0 * cumulative[-1]
        index = int(np.searchsorted(cumulative, target - 1e-9 * cumulative[-1]))
        return (index + 1) * self.hist.width


class HistogramObserver(_ClippedRange):
    """Clip |x| at the threshold t that best preserves the histogram of |x|.

    The histogram has ``bins`` (2048) bins of |x| (AbsHistogram). Candidate thresholds are the
    bin edges ``t_i = i * width`` for ``i = quantized_bins .. bins`` (128 .. 2048).

    ``method="entropy"`` (TensorRT's KL-divergence calibration) picks the i minimising
    ``KL(P || Q)``:

    - the count of bin 0 is replaced by that of bin 1 first (bin 0 holds the exact zeros of
      ReLU outputs and padding, which quantize exactly and would otherwise dominate P; NVIDIA's
      pytorch-quantization entropy calibrator does the same);
    - reference P: the first i bins, with every count beyond t_i added to bin i-1 (clipping);
    - candidate Q: the first i bins quantized into ``quantized_bins`` (128) levels: consecutive
      groups of ``i // 128`` bins (the last group takes the remainder) are summed, and each
      group's sum is spread equally over the group's bins where P is nonzero (0 where P is 0);
    - both are smoothed (as counts, each zero entry becomes 1e-4 of one count), normalised to
      sum 1, and ``KL = sum P log(P / Q)``.

    ``method="mse"`` picks the i minimising the expected squared error of quantizing |x| to
    ``quantized_bins`` levels on [0, t_i], each bin represented by its centre c:
    ``err(c) = (c - s * round(min(c, t_i) / s))^2`` with step ``s = t_i / (quantized_bins - 1)``,
    weighted by the bin counts (clipping error and rounding error together).

    Ties go to the smaller threshold. Range: ``[max(min, -t), min(max, t)]``.
    """

    METHODS = ("entropy", "mse")

    def __init__(self, name: str = "tensor", skip_nonfinite: bool = False,
                 method: str = "entropy", bins: int = 2048, quantized_bins: int = 128) -> None:
        if method not in self.METHODS:
            raise ValueError(f"method must be one of {self.METHODS}, got {method!r}")
        if not 2 <= quantized_bins <= bins:
            raise ValueError(f"quantized_bins must be in [2, bins={bins}], got {quantized_bins}")
        super().__init__(name, skip_nonfinite, bins)
        self.method = method
        self.quantized_bins = quantized_bins

    def threshold(self) -> float:
        counts = self.hist.counts.astype(np.float64)
        candidates = range(self.quantized_bins, self.hist.bins + 1)
        if self.method == "entropy":
            counts[0] = counts[1]
            scores = [_kl_divergence(counts, i, self.quantized_bins) for i in candidates]
        else:
            scores = [_quantization_mse(counts, i, self.quantized_bins) for i in candidates]
        return (self.quantized_bins + int(np.argmin(scores))) * self.hist.width


def _smoothed_distribution(counts: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """``counts`` with zeros replaced by ``eps``, normalised to sum 1."""
    smoothed = np.where(counts == 0, eps, counts)
    return smoothed / smoothed.sum()


def _kl_divergence(counts: np.ndarray, i: int, levels: int) -> float:
    """KL(P || Q) of threshold bin count ``i`` (HistogramObserver docstring)."""
    p = counts[:i].copy()
    p[-1] += counts[i:].sum()
    nonzero = p != 0
    group = np.minimum(np.arange(i) // (i // levels), levels - 1)
    sums = np.bincount(group, weights=counts[:i], minlength=levels)
    members = np.bincount(group, weights=nonzero, minlength=levels)
    q = np.where(nonzero, sums[group] / np.maximum(members[group], 1), 0.0)
    p = _smoothed_distribution(p)
    q = _smoothed_distribution(q)
    return float(np.sum(p * np.log(p / q)))


def _quantization_mse(counts: np.ndarray, i: int, levels: int) -> float:
    """Expected squared error of threshold bin count ``i`` (HistogramObserver docstring),
    in units of the bin width."""
    centres = np.arange(counts.size) + 0.5
    step = i / (levels - 1)
    q = step * np.round(np.minimum(centres, i) / step)
    return float(np.dot(counts, (centres - q) ** 2))

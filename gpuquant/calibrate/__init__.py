"""Calibration: observers that turn sample activations into real ranges, and the driver that
runs the float graph over calibration batches."""

from .calibrator import METHODS, calibrate, calibrate_with_means, make_observer
from .observers import (
    AbsHistogram,
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    Observer,
    PercentileObserver,
)

__all__ = [
    "METHODS", "AbsHistogram", "HistogramObserver", "MinMaxObserver",
    "MovingAverageMinMaxObserver", "Observer", "PercentileObserver", "calibrate",
    "calibrate_with_means",
    "make_observer",
]

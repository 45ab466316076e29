"""Parameters of pooling on NHWC 8-bit activations (input and output share scale and zero point).

max pool: ``y = clamp(max over the window of x)``; padded positions are ignored.
average pool (TFLite): ``y = clamp(round_half_away_from_zero(sum x / count))`` where the sum is
over raw codes ``x`` (not ``x - zp``) and ``count`` is the number of valid, unpadded positions.
mean over axes (global average pool): ``y = requant(sum (x - zx))`` with the multiplier
``s_x / (s_y * count)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import QuantizationError
from ..quant.params import dtype_bounds
from .conv import conv_output_hw
from .requant import Requant, check_int


@dataclass(frozen=True)
class PoolParams:
    """Window (kh, kw), stride, explicit (top, bottom, left, right) padding, clamp bounds."""

    name: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    dtype: str
    qmin: int
    qmax: int

    def __post_init__(self) -> None:
        lo, hi = dtype_bounds(self.dtype)
        if not lo <= self.qmin <= self.qmax <= hi:
            raise QuantizationError(
                f"layer {self.name!r}: clamp [{self.qmin}, {self.qmax}] invalid for {self.dtype}"
            )
        if min(self.kernel) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise QuantizationError(
                f"layer {self.name!r}: bad window {self.kernel}, stride {self.stride} "
                f"or padding {self.padding}"
            )
        # Every window holds an input position iff pad_begin < k (the first window ends at
        # k - 1 - pad_begin) and pad_end < k (the last one starts at most at in + pad_end - k).
        top, bottom, left, right = self.padding
        if max(top, bottom) >= self.kernel[0] or max(left, right) >= self.kernel[1]:
            raise QuantizationError(
                f"layer {self.name!r}: padding {self.padding} would give windows with no input"
            )

    def output_hw(self, in_hw: tuple[int, int]) -> tuple[int, int]:
        return conv_output_hw(in_hw, self.kernel, self.stride, (1, 1), self.padding)


@dataclass(frozen=True)
class MeanParams:
    """Mean of ``x - zx`` over ``axes`` (kept as size-1 dims if ``keepdims``), requantized."""

    name: str
    axes: tuple[int, ...]
    keepdims: bool
    input_zero_point: int
    input_dtype: str
    requant: Requant  # multiplier s_x / (s_y * count), count = product of reduced sizes

    def __post_init__(self) -> None:
        lo, hi = dtype_bounds(self.input_dtype)
        where = f"layer {self.name!r}:"
        zp = check_int(f"{where} input zero point", self.input_zero_point, lo, hi)
        axes = tuple(check_int(f"{where} axis", a, -64, 63) for a in self.axes)
        if len(set(axes)) != len(axes) or not isinstance(self.keepdims, bool):
            raise QuantizationError(f"{where} bad axes {self.axes} or keepdims {self.keepdims!r}")
        object.__setattr__(self, "input_zero_point", zp)
        object.__setattr__(self, "axes", axes)

"""Parameters of 2-D convolution on NHWC activations (depthwise is ``groups == C_in``).

Weights are OHWI: (C_out, KH, KW, C_in / groups). Output channel o of group
``g = o // (C_out / groups)`` reads input channels ``g * C_in/groups ...``; a depthwise conv with
depth multiplier m has ``groups = C_in``, ``C_out = m * C_in``. Padded positions hold the input
zero point (real 0), so each output is a GEMM row over ``K = KH*KW*C_in/groups`` values and the
fully connected folding applies unchanged (ops/gemm.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import QuantizationError, ShapeError
from .gemm import WEIGHT_DTYPES, _check_int_array, _check_requant_channels, _check_zero_point
from .gemm import _per_channel, fold_weights
from .requant import Requant

PADDING_MODES = ("VALID", "SAME_UPPER", "SAME_LOWER")


def resolve_padding(
    mode: str,
    in_hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> tuple[int, int, int, int]:
    """Explicit (top, bottom, left, right) padding for VALID or SAME padding.

    SAME: output size ``ceil(in / stride)``, total padding
    ``max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0)``; SAME_UPPER (TensorFlow's SAME)
    puts the odd pixel at the bottom/right, SAME_LOWER at the top/left.
    """
    if mode not in PADDING_MODES:
        raise ValueError(f"padding mode must be one of {PADDING_MODES}, got {mode!r}")
    if mode == "VALID":
        return (0, 0, 0, 0)
    pads = []
    for size, k, s, d in zip(in_hw, kernel, stride, dilation):
        out = math.ceil(size / s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        pads.append((small, big) if mode == "SAME_UPPER" else (big, small))
    return (pads[0][0], pads[0][1], pads[1][0], pads[1][1])


def conv_output_hw(
    in_hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: tuple[int, int, int, int],
) -> tuple[int, int]:
    """``floor((in + pad_begin + pad_end - ((k - 1) * dilation + 1)) / stride) + 1`` per axis."""
    out = []
    for size, k, s, d, p0, p1 in zip(
        in_hw, kernel, stride, dilation, padding[0::2], padding[1::2]
    ):
        span = size + p0 + p1 - ((k - 1) * d + 1)
        if span < 0:
            raise ShapeError(
                f"window {k} (dilation {d}) larger than padded input {size + p0 + p1}"
            )
        out.append(span // s + 1)
    return out[0], out[1]


@dataclass(frozen=True)
class Conv2DParams:
    """Integer conv2d: ``y[n,h,w,o] = requant(sum (x - zx)(w[o] - zw[o]) + bias[o])`` on NHWC."""

    name: str
    weight: np.ndarray  # (C_out, KH, KW, C_in / groups) int8 or uint8
    weight_zero_point: np.ndarray  # int32 (C_out,)
    input_zero_point: int
    input_dtype: str
    bias: np.ndarray  # int32 (C_out,)
    requant: Requant | None
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, bottom, left, right
    groups: int = 1
    folded_bias: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        wdtype = WEIGHT_DTYPES.get(np.asarray(self.weight).dtype.name, np.int8)
        w = _check_int_array(self.name, "weight", self.weight, wdtype, 4)
        c_out = w.shape[0]
        if self.groups < 1 or c_out % self.groups:
            raise QuantizationError(
                f"layer {self.name!r}: {c_out} output channels not divisible by groups {self.groups}"
            )
        for what, vals, lo in (("stride", self.stride, 1), ("dilation", self.dilation, 1),
                               ("padding", self.padding, 0)):
            if any(int(v) < lo for v in vals):
                raise QuantizationError(f"layer {self.name!r}: {what} {tuple(vals)} must be >= {lo}")
        zw = _per_channel(self.name, "weight zero point", self.weight_zero_point, c_out)
        bias = _per_channel(self.name, "bias", 0 if self.bias is None else self.bias, c_out)
        _check_zero_point(self.name, "input", self.input_zero_point, self.input_dtype)
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "weight_zero_point", zw.astype(np.int32))
        object.__setattr__(self, "bias", bias.astype(np.int32))
        object.__setattr__(self, "input_zero_point", int(self.input_zero_point))
        object.__setattr__(self, "stride", tuple(int(v) for v in self.stride))
        object.__setattr__(self, "dilation", tuple(int(v) for v in self.dilation))
        object.__setattr__(self, "padding", tuple(int(v) for v in self.padding))
        folded = fold_weights(
            self.name, w.reshape(c_out, -1), zw, self.input_zero_point, self.input_dtype, bias
        )
        object.__setattr__(self, "folded_bias", folded)
        _check_requant_channels(self.name, self.requant, c_out)

    @property
    def kernel(self) -> tuple[int, int]:
        return self.weight.shape[1], self.weight.shape[2]

    @property
    def in_channels(self) -> int:
        return self.weight.shape[3] * self.groups

    @property
    def is_depthwise(self) -> bool:
        return self.weight.shape[3] == 1 and self.groups > 1

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """NHWC output shape for an NHWC input; raises ShapeError on a channel mismatch."""
        if len(input_shape) != 4 or input_shape[3] != self.in_channels:
            raise ShapeError(
                f"layer {self.name!r}: expected NHWC input with {self.in_channels} channels, "
                f"got shape {tuple(input_shape)}"
            )
        oh, ow = conv_output_hw(
            input_shape[1:3], self.kernel, self.stride, self.dilation, self.padding
        )
        return input_shape[0], oh, ow, self.weight.shape[0]

"""PyTorch fake quantization: the autograd function, the range-tracking module, and the layers
(convolution with batch norm folded, fully connected) whose weights the converter quantizes.

The arithmetic is fake_quant.py's, step for step in float32 (TensorFlow's Nudge and
FakeQuantWithMinMaxVars, gradients of FakeQuantWithMinMaxVarsGradient); range tracking follows
ranges.py. Everything here runs on whatever device the tensors are on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CalibrationError, QuantizationError
from .fake_quant import quant_bounds, nudged_qparams
from .ranges import MODES, ema_update, minmax_update, symmetric_range
from ..quant.params import QuantParams


def nudge(
    min_val: torch.Tensor, max_val: torch.Tensor, num_bits: int, narrow_range: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(nudged_min, nudged_max, scale, zero_range)`` in float32 (fake_quant.py step 1-5)."""
    quant_min, quant_max = quant_bounds(num_bits, narrow_range)
    lo, hi = min_val.float(), max_val.float()
    zero_range = (lo == 0) & (hi == 0)
    if bool((~zero_range & ~(lo < hi)).any()):
        raise QuantizationError(
            f"fake-quant range needs min < max (or both 0), got min {lo.tolist()} max {hi.tolist()}"
        )
    scale = (hi - lo) / float(quant_max - quant_min)
    zero_range = zero_range | (scale < torch.finfo(torch.float32).tiny)
    scale = torch.where(zero_range, torch.ones_like(scale), scale)
    zp_from_min = float(quant_min) - lo / scale
    # std::round of the float32 value, computed exactly in float64
    z64 = zp_from_min.double()
    rounded = (torch.sign(z64) * torch.floor(z64.abs() + 0.5)).float()
    zero_point = rounded.clamp(float(quant_min), float(quant_max))
    zero_point = torch.where(zp_from_min < quant_min, torch.full_like(zp_from_min, quant_min),
                             zero_point)
    zero_point = torch.where(zp_from_min > quant_max, torch.full_like(zp_from_min, quant_max),
                             zero_point)
    nudged_min = (float(quant_min) - zero_point) * scale
    nudged_max = (float(quant_max) - zero_point) * scale
    return nudged_min, nudged_max, scale, zero_range


def _shape(x: torch.Tensor, axis: int | None) -> list[int]:
    if axis is None:
        return [1] * x.dim()
    ax = axis % x.dim()
    return [x.shape[ax] if i == ax else 1 for i in range(x.dim())]


class FakeQuantFunction(torch.autograd.Function):
    """``fake_quant(x, min, max)`` with TensorFlow's gradients for x, min and max."""

    @staticmethod
    def forward(ctx, x, min_val, max_val, num_bits, narrow_range, axis):  # noqa: D102
        nmin, nmax, scale, zero_range = nudge(min_val, max_val, num_bits, narrow_range)
        shape = _shape(x, axis)
        nmin, nmax = nmin.reshape(shape), nmax.reshape(shape)
        scale, zero_range = scale.reshape(shape), zero_range.reshape(shape)
        xf = x.float()
        shifted = torch.minimum(torch.maximum(xf, nmin), nmax) - nmin
        y = torch.floor(shifted / scale + 0.5) * scale + nmin
        y = torch.where(zero_range, torch.zeros_like(y), y)
        ctx.save_for_backward(xf, nmin, nmax, zero_range)
        ctx.axis = axis
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        x, nmin, nmax, zero_range = ctx.saved_tensors
        below = (x < nmin) & ~zero_range
        above = (x > nmax) & ~zero_range
        zero = torch.zeros_like(grad)
        d_x = torch.where(below | above, zero, grad)
        dims = [i for i in range(x.dim()) if nmin.shape[i] == 1 or ctx.axis is None]
        d_min = torch.where(below, grad, zero).sum(dim=dims).reshape(-1)
        d_max = torch.where(above, grad, zero).sum(dim=dims).reshape(-1)
        return d_x, d_min, d_max, None, None, None


def fake_quant(
    x: torch.Tensor,
    min_val: torch.Tensor,
    max_val: torch.Tensor,
    num_bits: int = 8,
    narrow_range: bool = False,
    axis: int | None = None,
) -> torch.Tensor:
    """Differentiable fake quantization (fake_quant.py); ``min_val``/``max_val`` 1-D tensors."""
    return FakeQuantFunction.apply(x, min_val.reshape(-1), max_val.reshape(-1), num_bits,
                                   narrow_range, axis)


class FakeQuantize(nn.Module):
    """Tracks a tensor's range (ranges.py) and fake-quantizes the tensor with it.

    ``mode="ema"`` (activations) and ``mode="minmax"`` (calibration) update the range only in
    training mode; ``mode="last"`` (weights) takes the tensor's own range at every call.
    ``freeze_after`` stops updates after that many observed calls. ``enabled = False`` makes
    the module the identity (it still observes in training mode unless frozen).
    """

    def __init__(
        self,
        num_bits: int = 8,
        narrow_range: bool = False,
        mode: str = "ema",
        decay: float = 0.99,
        freeze_after: int | None = None,
        axis: int | None = None,
        channels: int = 1,
        symmetric: bool = False,
    ) -> None:
        super().__init__()
        quant_bounds(num_bits, narrow_range)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.num_bits, self.narrow_range = num_bits, narrow_range
        self.mode, self.decay = mode, decay
        self.freeze_after, self.axis, self.symmetric = freeze_after, axis, symmetric
        self.enabled = True
        self.register_buffer("min_val", torch.zeros(channels))
        self.register_buffer("max_val", torch.zeros(channels))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @property
    def frozen(self) -> bool:
        return self.freeze_after is not None and int(self.steps) >= self.freeze_after

    def observe(self, x: torch.Tensor) -> None:
        """Fold ``x`` into the range (ranges.py), unless frozen."""
        if self.frozen:
            return
        x = x.detach().float()
        if not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            raise CalibrationError(f"fake-quant input: {bad} of {x.numel()} values not finite")
        if self.axis is None:
            lo, hi = x.min().reshape(1), x.max().reshape(1)
        else:
            flat = x.movedim(self.axis, 0).reshape(x.shape[self.axis], -1)
            lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
        lo, hi = lo.clamp(max=0.0), hi.clamp(min=0.0)
        if self.symmetric:
            lo, hi = symmetric_range(lo, hi)
        if self.mode == "ema" and int(self.steps) > 0:
            lo, hi = ema_update(self.min_val, self.max_val, lo, hi, self.decay)
        elif self.mode == "minmax" and int(self.steps) > 0:
            lo, hi = minmax_update(self.min_val, self.max_val, lo, hi)
        self.min_val.copy_(lo)
        self.max_val.copy_(hi)
        self.steps += 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "last" or self.training:
            self.observe(x)
        if not self.enabled:
            return x
        if int(self.steps) == 0:
            raise CalibrationError(
                "fake-quant used before any range was observed (run it in training mode first)"
            )
        return fake_quant(x, self.min_val, self.max_val, self.num_bits, self.narrow_range,
                          self.axis)

    def qparams(self, dtype: str = "int8") -> QuantParams:
        """The grid as 8-bit parameters (fake_quant.nudged_qparams) of the current range."""
        return nudged_qparams(self.min_val.cpu().numpy(), self.max_val.cpu().numpy(),
                              self.num_bits, self.narrow_range, dtype, self.axis)

    def extra_repr(self) -> str:
        return (f"num_bits={self.num_bits}, narrow_range={self.narrow_range}, mode={self.mode}, "
                f"axis={self.axis}")


class SharedFakeQuantize(nn.Module):
    """An average pool's output on its input's grid, rounded as the integer kernel rounds.

    The converter gives an average pool's output its input's parameters, and the integer
    kernel (ops/pool.py) computes ``round_half_away_from_zero(sum(codes) / count)`` on int8
    codes. Here the mean code ``k`` of each window is recovered from the float average ``a``
    as ``round((a - nudged_min) / scale * count) / count`` (exact: ``a`` is a mean of grid
    points), moved to int8 codes (``- 2**(num_bits - 1)``), rounded half away from zero, and
    mapped back. ``count`` is the window size (unpadded windows). Gradient: straight through.
    Observes nothing; the source FakeQuantize owns the range.
    """

    def __init__(self, source: FakeQuantize, count: int) -> None:
        super().__init__()
        self.source = [source]  # a list, so that the source is not registered twice
        self.count = int(count)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        src = self.source[0]
        if not src.enabled:
            return x
        with torch.no_grad():
            nmin, nmax, scale, _ = nudge(src.min_val, src.max_val, src.num_bits, src.narrow_range)
            offset = 2 ** (src.num_bits - 1)
            mean_code = torch.round((x - nmin) / scale * self.count) / self.count - offset
            code = torch.sign(mean_code) * torch.floor(mean_code.abs() + 0.5) + offset
            y = torch.clamp(code * scale + nmin, nmin, nmax)
        return x + (y - x).detach()


def scale_of(fq: FakeQuantize) -> torch.Tensor:
    """The nudged scale(s) of a FakeQuantize's current range (no gradient)."""
    with torch.no_grad():
        return nudge(fq.min_val, fq.max_val, fq.num_bits, fq.narrow_range)[2]


def bias_fake_quant(bias: torch.Tensor, input_fq: FakeQuantize | None,
                    weight_fq: FakeQuantize) -> torch.Tensor:
    """The bias on the converter's int32 grid, ``round_half_to_even(b / s) * s`` with
    ``s = s_in * s_w`` per output channel, and a straight-through gradient; ``bias`` itself
    when the input's quantizer is unknown or disabled."""
    if input_fq is None or not input_fq.enabled or not weight_fq.enabled or int(
            input_fq.steps) == 0:
        return bias
    s = scale_of(input_fq) * scale_of(weight_fq)
    return bias + (torch.round(bias.detach() / s) * s - bias.detach())


def weight_fake_quant(channels: int, num_bits: int, axis: int = 0) -> FakeQuantize:
    """Per-output-channel symmetric narrow-range weights, as the converter quantizes them."""
    return FakeQuantize(num_bits, narrow_range=True, mode="last", axis=axis, channels=channels,
                        symmetric=True)


class QuantConv2d(nn.Module):
    """Conv2d (+ BatchNorm2d folded) with fake-quantized folded weights.

    With batch norm, the folded weights are ``w * gamma / sqrt(running_var + eps)`` and the folded
    bias ``beta + (b - running_mean) * gamma / sqrt(running_var + eps)`` (what the converter
    folds). In training, until ``freeze_bn_after`` steps, the output is still normalised with
    the batch's statistics: ``conv(x, fq(w_fold)) / factor`` is the unfolded convolution, which
    is normalised by batch mean and variance while the running statistics are updated (the
    scheme of Jacob et al. 2018, section 3.2); afterwards, and in eval mode, the output is
    ``conv(x, fq(w_fold)) + bq_fold`` with the bias on the converter's int32 grid
    (bias_fake_quant), which at low bit widths is coarse enough to matter.
    """

    def __init__(
        self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, num_bits: int,
        freeze_bn_after: int | None = None,
    ) -> None:
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise QuantizationError(f"conv padding {conv.padding!r} ({conv.padding_mode}) not "
                                    "supported; give explicit zero padding")
        self.conv, self.bn, self.freeze_bn_after = conv, bn, freeze_bn_after
        self.weight_fq = weight_fake_quant(conv.out_channels, num_bits)
        self.input_fq: list[FakeQuantize] = []  # set by prepare; a list keeps it unregistered
        self.register_buffer("bn_steps", torch.zeros((), dtype=torch.long))

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Folded float weight (OIHW) and bias, from the running statistics."""
        w = self.conv.weight
        b = self.conv.bias if self.conv.bias is not None else torch.zeros_like(w[:, 0, 0, 0])
        if self.bn is None:
            return w, b
        factor = self._factor()
        beta = self.bn.bias if self.bn.bias is not None else torch.zeros_like(factor)
        return w * factor.reshape(-1, 1, 1, 1), beta + (b - self.bn.running_mean) * factor

    def _factor(self) -> torch.Tensor:
        gamma = self.bn.weight if self.bn.weight is not None else torch.ones_like(
            self.bn.running_var)
        return gamma / torch.sqrt(self.bn.running_var + self.bn.eps)

    def _conv(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        c = self.conv
        return F.conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups)

    @property
    def bn_frozen(self) -> bool:
        return self.freeze_bn_after is not None and int(self.bn_steps) >= self.freeze_bn_after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.folded()
        wq = self.weight_fq(w)
        if self.bn is None or not self.training or self.bn_frozen:
            return self._conv(x, wq, bias_fake_quant(b, _first(self.input_fq), self.weight_fq))
        self.bn_steps += 1
        factor = self._factor()
        bias = self.conv.bias if self.conv.bias is not None else torch.zeros_like(factor)
        y = self._conv(x, wq, None) / factor.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1)
        mean = y.mean(dim=(0, 2, 3))
        var = y.var(dim=(0, 2, 3), unbiased=False)
        with torch.no_grad():
            n = y.numel() / y.shape[1]
            m = self.bn.momentum if self.bn.momentum is not None else 0.1
            self.bn.running_mean.mul_(1 - m).add_(m * mean)
            self.bn.running_var.mul_(1 - m).add_(m * var * n / max(n - 1, 1))
            self.bn.num_batches_tracked += 1
        gamma = self.bn.weight if self.bn.weight is not None else torch.ones_like(mean)
        beta = self.bn.bias if self.bn.bias is not None else torch.zeros_like(mean)
        scale = gamma / torch.sqrt(var + self.bn.eps)
        return (y - mean.reshape(1, -1, 1, 1)) * scale.reshape(1, -1, 1, 1) + beta.reshape(
            1, -1, 1, 1)


class QuantLinear(nn.Module):
    """Linear with fake-quantized weights (per output channel, symmetric, narrow range) and
    the bias on the int32 grid of ``s_in * s_w`` (bias_fake_quant)."""

    def __init__(self, linear: nn.Linear, num_bits: int) -> None:
        super().__init__()
        self.linear = linear
        self.weight_fq = weight_fake_quant(linear.out_features, num_bits)
        self.input_fq: list[FakeQuantize] = []  # set by prepare; a list keeps it unregistered

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.linear.weight
        b = self.linear.bias if self.linear.bias is not None else torch.zeros_like(w[:, 0])
        return w, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.folded()
        wq = self.weight_fq(w)
        return F.linear(x, wq, bias_fake_quant(b, _first(self.input_fq), self.weight_fq))


def _first(modules: list[FakeQuantize]) -> FakeQuantize | None:
    return modules[0] if modules else None

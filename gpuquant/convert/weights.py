"""Weights to int8 and biases to int32 (docs/quantization.md, eq. 1-4).

Weights: symmetric, narrow range [-127, 127], zero point 0, one scale per output channel (axis
0) or one per tensor: ``s_w = max|w| / 127``, ``q = round_half_to_even(w / s_w)``.
Biases: int32 with scale ``s_in * s_w``: ``q_b = round_half_to_even(b / (s_in * s_w))``.
If ``|b| / (s_in * s_w)`` exceeds ``2**31 - 1`` for a channel (tiny weights under a large
bias, numerics case N10), that channel's weight scale is raised to
``|b| / (s_in * (2**31 - 1))`` (plus 0.1 %) and its weights requantized, with a warning, rather
than letting the bias wrap or refusing the layer. Given weight parameters (a QDQ model's) are
kept as they are, so there such a bias is an OverflowRiskError. Stated int32 bias codes (a QDQ
model's) are the bias as they are: no rounding, no correction, and they fit int32; asking for
bias correction of such a layer is a QuantizationError, not a silent skip.

Bias correction (eq. 13, Nagel et al. 2019, "Data-Free Quantization", empirical variant): given
``input_mean``, the mean float input that each weight multiplies, the expected output shift
that weight rounding causes, ``sum_k (dequant(q)[o, k] - w[o, k]) * E[x_k]``, is subtracted from
the float bias before it is quantized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import OverflowRiskError, QuantizationError
from ..ops import check_bias
from ..ops.accumulator import INT32_MAX
from ..quant.params import QuantParams, choose_qparams, dequantize, quantize

BIAS_SCALE_MARGIN = 1.001
BIAS_SCALE_RTOL = 2.0**-22  # a stated float32 s_in * s_w: one rounding, 2**-24, and slack


@dataclass(frozen=True)
class QuantizedLayer:
    """int8 weights and their parameters, the int32 bias, and warnings (plain strings)."""

    weight: np.ndarray
    weight_qparams: QuantParams
    bias: np.ndarray
    warnings: tuple[str, ...]

    def weight_scales(self, channels: int) -> np.ndarray:
        """The weight scale of every output channel (float64), per-tensor ones repeated."""
        return np.broadcast_to(self.weight_qparams.scale.astype(np.float64), (channels,)).copy()


def weight_qparams(weight: np.ndarray, per_channel: bool) -> QuantParams:
    """Symmetric int8 parameters of ``weight`` (output channels on axis 0)."""
    if per_channel:
        flat = weight.reshape(weight.shape[0], -1)
        return choose_qparams(flat.min(axis=1), flat.max(axis=1), "int8", symmetric=True, axis=0)
    return choose_qparams(float(weight.min()), float(weight.max()), "int8", symmetric=True)


def weight_rounding_shift(weight: np.ndarray, qp: QuantParams,
                          input_mean: np.ndarray) -> np.ndarray:
    """Expected output shift of each output channel from rounding ``weight`` with ``qp``
    (eq. 13): ``sum_k (dequantize(quantize(w))[o, k] - w[o, k]) * input_mean[o, k]``, float64.
    """
    error = dequantize(quantize(weight, qp), qp).astype(np.float64) - weight.astype(np.float64)
    product = error * np.broadcast_to(np.asarray(input_mean, np.float64), weight.shape)
    return product.reshape(weight.shape[0], -1).sum(axis=1)


def quantize_layer(
    layer: str,
    weight: np.ndarray,
    bias: np.ndarray | None,
    input_scale: float,
    per_channel: bool,
    given: QuantParams | None = None,
    input_mean: np.ndarray | None = None,
    given_bias: QuantParams | None = None,
    given_bias_codes: np.ndarray | None = None,
    bias_name: str = "",
) -> QuantizedLayer:
    """Quantize a layer's float weights (axis 0 = output channel) and bias (module docstring).

    ``given`` parameters (a QDQ model's, per tensor or along axis 0) replace the chosen ones;
    they are never raised: a bias that does not fit int32 at them raises OverflowRiskError.
    ``given_bias`` (int32, zero point 0): the bias codes are ``round_half_to_even(b / s_b)``
    with the stated scale ``s_b``, which must be ``s_in * s_w`` to float32 rounding
    (``BIAS_SCALE_RTOL``), else QuantizationError. ``given_bias_codes`` (with ``given_bias``,
    one int32 per output channel): the bias codes as stored, taken exactly instead of rounding
    ``b / s_b`` (float32 ``b`` holds them exactly only up to ``2**24`` in magnitude).
    ``input_mean``, broadcastable against ``weight``: the mean input each weight multiplies
    over the calibration data; the bias is then corrected for weight rounding (eq. 13), which
    stated bias codes cannot be: both together raise QuantizationError naming ``bias_name``.
    """
    if input_mean is not None and given_bias is not None and given_bias_codes is not None:
        raise QuantizationError(
            f"layer {layer!r}: bias correction was asked for, but the int32 codes of its bias "
            f"{bias_name!r} are stated by the model and are taken as they are; drop bias "
            "correction (convert without input_means)"
        )
    channels = weight.shape[0]
    qp = weight_qparams(weight, per_channel) if given is None else given
    float_bias = (np.zeros(channels) if bias is None
                  else np.asarray(bias, dtype=np.float64).reshape(-1))
    b = float_bias
    if input_mean is not None:
        b = float_bias - weight_rounding_shift(weight, qp, input_mean)
    s_in = float(np.float32(input_scale))
    scales = np.broadcast_to(qp.scale.astype(np.float64), (channels,))
    needed = np.abs(b) / (s_in * INT32_MAX)
    low = (scales < needed) if given_bias_codes is None else np.zeros(channels, bool)
    warnings: tuple[str, ...] = ()
    if low.any() and given is not None:
        ch = int(np.flatnonzero(low)[0])
        raise OverflowRiskError(
            f"layer {layer!r}: bias of output channel {ch} ({b[ch]:.6g}) does not fit int32 at "
            f"the given weight scale {scales[ch]:.6g} times input scale {s_in:.6g}"
        )
    if low.any():
        raised = np.where(low, needed * BIAS_SCALE_MARGIN, scales)
        if not per_channel:
            raised = np.full(1, raised.max())
        new = QuantParams(raised.astype(np.float32), np.zeros(raised.size, np.int32), "int8",
                          0 if per_channel else None, narrow_range=qp.narrow_range,
                          num_bits=qp.num_bits)
        channels_raised = np.flatnonzero(low).tolist()
        warnings = (
            f"layer {layer!r}: weight scale of output channel(s) {channels_raised} raised from "
            f"{scales[low].min():.4g} to up to {float(new.scale.max()):.4g} so that the int32 "
            f"bias (scale input scale {s_in:.4g} * weight scale) fits",
        )
        if input_mean is not None:
            b = float_bias - weight_rounding_shift(weight, new, input_mean)
        qp = new
        scales = np.broadcast_to(qp.scale.astype(np.float64), (channels,))
    q = quantize(weight, qp)
    bias_scale = s_in * scales
    if given_bias is not None:
        stated = np.broadcast_to(given_bias.scale.astype(np.float64), (channels,))
        off = ~np.isclose(stated, bias_scale, rtol=BIAS_SCALE_RTOL, atol=0.0)
        if off.any():
            ch = int(np.flatnonzero(off)[0])
            raise QuantizationError(
                f"layer {layer!r}: given bias scale {stated[ch]:.8g} of output channel {ch} is "
                f"not input scale * weight scale = {bias_scale[ch]:.8g}, the scale at which "
                "the int32 accumulator adds the bias"
            )
        bias_scale = stated
        if given_bias_codes is not None:
            return QuantizedLayer(q, qp, np.array(given_bias_codes, np.int32), warnings)
    bias_q = check_bias(layer, b, bias_scale)
    return QuantizedLayer(q, qp, bias_q, warnings)

"""Bias correction for weight rounding (docs/quantization.md, eq. 13) on a tiny conv."""

import numpy as np
import pytest
from convert_helpers import graph, run_both

from gpuquant.convert import quantize_model

RNG = np.random.default_rng(11)


def _case(groups: int):
    """A 3x3 conv whose weights all round the same way: per output channel one weight 1.27
    (scale 1.27 / 127 = 0.01), the others ``0.01 k + 0.004`` (k integer), which round down
    by 0.004 each; the input has mean about 5, so the rounding shifts every output by about
    -0.004 * 5 * (weights - 1)."""
    c_in, c_out = 2, 4
    k = RNG.integers(-60, 60, (c_out, c_in // groups, 3, 3))
    w = 0.01 * k + 0.004
    w[:, 0, 1, 1] = 1.27
    b = RNG.normal(0, 0.1, c_out)
    g = graph([("Conv", "conv", ["x", "w", "b"], ["y"],
                {"kernel_shape": [3, 3], "group": groups, "pads": [0, 0, 0, 0]})],
              {"x": (None, c_in, 8, 8)}, {"y": (None, c_out, 6, 6)}, {"w": w, "b": b})
    x = (5 + RNG.uniform(-1, 1, (16, c_in, 8, 8))).astype(np.float32)
    return g, x, w.astype(np.float32), b


def _mean_error(g, model, x):
    f, q = run_both(g, model, {"x": x})
    return (q["y"] - f["y"]).mean(axis=(0, 2, 3))


@pytest.mark.parametrize("groups", [1, 2])
def test_bias_correction_removes_the_mean_weight_rounding_error(groups):
    g, x, w, b = _case(groups)
    plain = quantize_model(g, x, batch_size=5)
    corrected = quantize_model(g, x, batch_size=5, bias_correction=True)
    assert corrected.metadata["converter"]["bias_correction"]

    # Eq. 13 from the data and the weights alone: E[x] per input channel, channel
    # g * (C_in / groups) + c feeding weight w[o, c] of an output o in group g.
    scale = (np.abs(w).reshape(4, -1).max(axis=1) / np.float32(127)).astype(np.float32)
    w_q = np.round(w / scale[:, None, None, None]) * scale[:, None, None, None]
    mean_x = x.astype(np.float64).mean(axis=(0, 2, 3))
    per_group = 2 // groups
    fed = mean_x.reshape(groups, per_group)[np.arange(4) // (4 // groups)]
    shift = ((w_q.astype(np.float64) - w) * fed[:, :, None, None]).sum(axis=(2, 3)).sum(axis=1)
    assert np.all(np.abs(shift) > 0.1)

    conv = next(n for n in corrected.nodes if n.op == "conv2d")
    s_in = np.float64(corrected.tensors["x:q"].qparams.scale[0])
    expect = np.round((b - shift) / (s_in * scale.astype(np.float64)))
    np.testing.assert_array_equal(conv.params.bias, expect.astype(np.int32))

    err_plain = np.abs(_mean_error(g, plain, x))
    err_corrected = np.abs(_mean_error(g, corrected, x))
    assert np.all(err_corrected < 0.25 * err_plain), (err_plain, err_corrected)

"""Converter behaviour on small hand-built graphs: each op family, fusion, folding, fallbacks."""

import numpy as np
import pytest

from convert_helpers import graph, output_scale, ranges_of, run_both
from gpuquant.convert import convert
from gpuquant.convert.fold_bn import fold_batchnorm
from gpuquant.convert.layout import nhwc_flatten_columns
from gpuquant.errors import QuantizationError
from gpuquant.graph.executor import run_graph
from gpuquant.ops import activation_bounds
from gpuquant.quant.params import QuantParams

RNG = np.random.default_rng(7)


def _conv_graph(act_nodes=(), out="y", extra_inits=None):
    nodes = [("Conv", "conv", ["x", "w", "b"], ["c"],
              {"kernel_shape": [3, 3], "strides": [1, 1], "dilations": [1, 1], "group": 1,
               "pads": [1, 1, 1, 1]})] + list(act_nodes)
    inits = {"w": RNG.normal(0, 0.3, (4, 3, 3, 3)), "b": RNG.normal(0, 0.1, 4)}
    inits.update(extra_inits or {})
    return graph(nodes, {"x": (None, 3, 6, 6)}, {out: (None, 4, 6, 6)}, inits)


def _x(shape=(2, 3, 6, 6)):
    return RNG.normal(0, 1, shape).astype(np.float32)


def _close(g, feeds, rel=0.03, **kwargs):
    model = convert(g, ranges_of(g, feeds), **kwargs)
    f, q = run_both(g, model, feeds)
    for name in f:
        err = np.abs(f[name] - q[name]).max()
        assert err <= rel * max(np.abs(f[name]).max(), 1e-6), (name, err)
    return model


@pytest.mark.parametrize("act, expect", [
    (("Relu", {}), ("relu", None, None)),
    (("Clip", {"min": 0.0, "max": 6.0}), ("relu6", None, None)),
    (("Clip", {"min": -0.5, "max": 0.75}), ("clip", -0.5, 0.75)),
    (("Clip", {"min": -3.4e38, "max": 3.4e38}), ("clip", -3.4e38, 3.4e38)),
])
def test_activation_fused_into_conv_clamp(act, expect):
    g = _conv_graph([(act[0], "act", ["c"], ["y"], act[1])])
    x = _x() * 4
    model = convert(g, ranges_of(g, {"x": x}))
    f, q = run_both(g, model, {"x": x})
    pre = run_graph(g, {"x": x}, keep=True)["c"]
    # the error is set by the input and pre-activation resolution, not the clamped output's
    assert np.abs(f["y"] - q["y"]).max() <= 0.02 * np.abs(pre).max()
    conv = [n for n in model.nodes if n.op == "conv2d"]
    assert len(conv) == 1 and "lookup" not in model.metadata["op_counts"]
    out_qp = model.tensors[conv[0].outputs[0]].qparams
    assert (conv[0].params.requant.qmin, conv[0].params.requant.qmax) == activation_bounds(
        out_qp, *expect)


def test_clip_bounds_beyond_float32_leave_the_dtype_bounds():
    # 3.4e38 / 0.02 overflows float32 to inf: the clamp is the whole int8 range.
    qp = QuantParams(np.float32(0.02), 5, "int8")
    assert activation_bounds(qp, "clip", -3.4e38, 3.4e38) == (-128, 127)
    assert activation_bounds(qp, "clip", 0.0, 3.4e38) == (5, 127)


def test_batchnorm_folds_into_conv_exactly_in_float():
    bn = ("BatchNormalization", "bn", ["c", "g", "beta", "mean", "var"], ["y"], {"epsilon": 1e-3})
    g = _conv_graph([bn], extra_inits={"g": [1.5, 0.5, 2.0, 1.0], "beta": [0.1, -0.2, 0.0, 0.3],
                                       "mean": [0.2, 0.0, -0.1, 0.5], "var": [1.0, 4.0, 0.25, 2.0]})
    folded = fold_batchnorm(g)
    assert [n.op_type for n in folded.nodes] == ["Conv"]
    x = _x()
    np.testing.assert_allclose(run_graph(folded, {"x": x})["y"], run_graph(g, {"x": x})["y"],
                               rtol=1e-5, atol=1e-5)
    model = _close(g, {"x": x})
    assert model.metadata["float_nodes"] == []


def test_flatten_columns_permutation_matches_nchw_flatten():
    x = RNG.normal(size=(2, 3, 4, 5))
    w = RNG.normal(size=(6, 60))
    nchw = x.reshape(2, -1) @ w.T
    nhwc = x.transpose(0, 2, 3, 1).reshape(2, -1) @ nhwc_flatten_columns(w, (3, 4, 5)).T
    np.testing.assert_allclose(nhwc, nchw, rtol=1e-12)


def test_flatten_gemm_on_nhwc_equals_transposing_activations():
    """Permuting the Gemm's weight columns gives bit-identical integers to transposing back."""
    from gpuquant.backends.numpy import NumpyBackend
    from gpuquant.runtime.executor import execute

    nodes = [
        ("Conv", "conv", ["x", "w", "b"], ["c"], {"kernel_shape": [3, 3], "pads": [0, 0, 0, 0]}),
        ("Flatten", "flat", ["c"], ["f"], {"axis": 1}),
        ("Gemm", "fc", ["f", "w2", "b2"], ["y"], {"transB": 1}),
    ]
    inits = {"w": RNG.normal(0, 0.3, (4, 3, 3, 3)), "b": RNG.normal(0, 0.1, 4),
             "w2": RNG.normal(0, 0.1, (5, 64)), "b2": RNG.normal(0, 0.1, 5)}
    g = graph(nodes, {"x": (None, 3, 6, 6)}, {"y": (None, 5)}, inits)
    x = _x()
    model = convert(g, ranges_of(g, {"x": x}))
    assert [n.op for n in model.nodes] == ["quantize", "transpose", "conv2d", "reshape", "gemm",
                                           "dequantize"]
    env = execute(model, {"x": x}, NumpyBackend(), keep=True)
    gemm = model.nodes[4]
    conv_nchw = np.asarray(env[model.nodes[2].outputs[0]]).transpose(0, 3, 1, 2).reshape(2, -1)
    w = gemm.params.weight.astype(np.int64)
    acc_permuted = np.asarray(env[gemm.inputs[0]]).astype(np.int64) @ w.T
    unpermuted = w.reshape(5, 4, 4, 4).transpose(0, 3, 1, 2).reshape(5, -1)
    acc_nchw = conv_nchw.astype(np.int64) @ unpermuted.T
    np.testing.assert_array_equal(acc_permuted, acc_nchw)
    f, q = run_both(g, model, {"x": x})
    assert np.abs(f["y"] - q["y"]).max() < 0.05 * np.abs(f["y"]).max()


def test_bias_overflow_raises_weight_scale_with_warning_n10():
    """N10: input scale 0.5, weight scale 7.843e-10, bias [5.0, -4.5]."""
    w = np.array([[127 * 7.843e-10, -50 * 7.843e-10], [100 * 7.843e-10, 127 * 7.843e-10]])
    g = graph([("Gemm", "fc_big_bias", ["x", "w", "b"], ["y"], {"transB": 1})],
              {"x": (None, 2)}, {"y": (None, 2)}, {"w": w, "b": [5.0, -4.5]})
    ranges = {"x": (-64.0, 63.5), "y": (-10.0, 10.0)}
    model = convert(g, ranges)
    gemm = next(n for n in model.nodes if n.op == "gemm")
    assert float(model.tensors[gemm.inputs[0]].qparams.scale[0]) == 0.5
    assert any("fc_big_bias" in w for w in model.metadata["warnings"])
    s_w = np.asarray(gemm.params.weight_zero_point)  # zero points stay 0
    assert not s_w.any()
    bias = gemm.params.bias.astype(np.int64)
    assert np.abs(bias).max() <= 2**31 - 1
    from gpuquant.convert.weights import quantize_layer

    layer = quantize_layer("fc_big_bias", w.astype(np.float32), np.array([5.0, -4.5]), 0.5, True)
    np.testing.assert_allclose(layer.bias * 0.5 * layer.weight_scales(2), [5.0, -4.5], rtol=1e-6)
    assert (layer.weight_qparams.scale >= np.float32(7.843e-10)).all()
    y = run_both(g, model, {"x": np.array([[0.0, 0.0]], np.float32)})[1]["y"]
    np.testing.assert_allclose(y, [[5.0, -4.5]], atol=2 * output_scale(model, "y"))


def test_per_tensor_weights_and_uint8_activations():
    g = _conv_graph([("Relu", "relu", ["c"], ["y"], {})])
    model = _close(g, {"x": _x()}, per_channel=False, activation_dtype="uint8")
    conv = next(n for n in model.nodes if n.op == "conv2d")
    assert conv.params.input_dtype == "uint8"
    assert len(set(conv.params.requant.multiplier.tolist())) == 1


def test_softmax_and_excluded_nodes_stay_float_and_run():
    nodes = [
        ("Conv", "conv", ["x", "w", "b"], ["c"], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
        ("Relu", "relu", ["c"], ["r"], {}),
        ("GlobalAveragePool", "gap", ["r"], ["p"], {}),
        ("Flatten", "flat", ["p"], ["f"], {"axis": 1}),
        ("Gemm", "fc", ["f", "w2", "b2"], ["z"], {"transB": 1}),
        ("Softmax", "sm", ["z"], ["y"], {"axis": -1}),
    ]
    inits = {"w": RNG.normal(0, 0.3, (4, 3, 3, 3)), "b": RNG.normal(0, 0.1, 4),
             "w2": RNG.normal(0, 0.5, (5, 4)), "b2": RNG.normal(0, 0.1, 5)}
    g = graph(nodes, {"x": (None, 3, 6, 6)}, {"y": (None, 5)}, inits)
    x = _x((3, 3, 6, 6))
    model = _close(g, {"x": x}, rel=0.05)
    assert [d["name"] for d in model.metadata["float_nodes"]] == ["sm"]
    assert model.metadata["float_nodes"][0]["op_type"] == "Softmax"
    assert "mean" in model.metadata["op_counts"]
    model = _close(g, {"x": x}, rel=0.05, exclude=["conv"])
    reasons = {d["name"]: d["reason"] for d in model.metadata["float_nodes"]}
    assert reasons["conv"] == "excluded by the user" and set(reasons) == {"conv", "sm"}
    assert "lookup" in model.metadata["op_counts"]  # the Relu no longer fuses: a table
    with pytest.raises(QuantizationError, match="nope"):
        convert(g, ranges_of(g, {"x": x}), exclude=["nope"])


def test_missing_range_names_the_tensor():
    g = _conv_graph([("Relu", "relu", ["c"], ["y"], {})])
    ranges = ranges_of(g, {"x": _x()})
    del ranges["y"]
    with pytest.raises(QuantizationError, match="'y'"):
        convert(g, ranges)


def test_elementwise_lookup_concat_pad_matmul_reducemean():
    nodes = [
        ("Sigmoid", "sig", ["a"], ["s"], {}),
        ("Sub", "sub", ["a", "b"], ["d"], {}),
        ("Mul", "mul", ["d", "k"], ["m"], {}),
        ("Concat", "cat", ["s", "m"], ["c"], {"axis": 1}),
        ("Pad", "pad", ["c"], ["p"], {"pads": [0, 0, 1, 1, 0, 0, 1, 0], "mode": "constant",
                                      "value": 0.0}),
        ("ReduceMean", "rm", ["p"], ["r"], {"axes": [2, 3], "keepdims": 0}),
        ("MatMul", "mm", ["r", "r2"], ["y"], {}),
        ("Transpose", "tr", ["r"], ["r2"], {"perm": [1, 0]}),
    ]
    nodes = nodes[:6] + [nodes[7], nodes[6]]
    g = graph(nodes, {"a": (4, 2, 3, 3), "b": (4, 2, 3, 3)}, {"y": (4, 4)},
              {"k": RNG.uniform(0.5, 2.0, (2, 1, 1))})
    feeds = {"a": _x((4, 2, 3, 3)) * 2, "b": _x((4, 2, 3, 3))}
    model = _close(g, feeds, rel=0.06)
    assert model.metadata["float_nodes"] == []
    assert {"lookup", "add", "mul", "concat", "pad", "mean", "matmul", "transpose"} <= set(
        model.metadata["op_counts"])
    cat = next(n for n in model.nodes if n.op == "concat")
    assert cat.params.axis == 3 and any(t is not None for t in cat.params.tables)


def test_average_pool_counting_pads_stays_float():
    nodes = [("AveragePool", "ap", ["x"], ["y"],
              {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1],
               "count_include_pad": 1})]
    g = graph(nodes, {"x": (None, 2, 4, 4)}, {"y": (None, 2, 4, 4)})
    model = _close(g, {"x": _x((2, 2, 4, 4))})
    assert [d["name"] for d in model.metadata["float_nodes"]] == ["ap"]
    assert "count_include_pad" in model.metadata["float_nodes"][0]["reason"]


def test_every_8bit_tensor_has_qparams_and_a_float_name():
    g = _conv_graph([("Relu", "relu", ["c"], ["y"], {})])
    model = convert(g, ranges_of(g, {"x": _x()}))
    for spec in model.tensors.values():
        if spec.dtype in ("int8", "uint8"):
            assert spec.qparams is not None and spec.float_name in ("x", "y")
    assert model.tensors["y:q:nhwc"].layout == "NHWC"
    assert model.tensors["y:q:nhwc"].shape == (None, 6, 6, 4)

"""QDQ import of constants read through DequantizeLinear: the integer model keeps the codes and
the scale/zero point the model states (never ones re-chosen from the constant's range), and its
outputs match onnxruntime running the same hand-built QDQ model."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from ort_weights import int8_weights

from gpuquant.backends import get_backend
from gpuquant.errors import QuantizationError, UnsupportedOpError
from gpuquant.frontends.onnx_qdq import _reshaped_axis, import_qdq, strip_qdq
from gpuquant.runtime.executor import execute

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the reference runtime")

SX, ZX, SY, ZY = 0.02, 3, 0.03, -5


def _qdq_model(op, x_shape, y_shape, codes, scale, zero_point, const_axis=None, bias=None,
               **attrs):
    """x -> Q/DQ -> op(x', DequantizeLinear(codes, scale, zero_point[, const_axis])[, bias])
    -> Q/DQ; ``attrs`` are the op's.

    ``bias``: (int32 codes, scales) read through a DequantizeLinear along axis 0."""
    inits = [numpy_helper.from_array(np.asarray(v), name) for name, v in (
        ("sx", np.float32(SX)), ("zx", np.int8(ZX)), ("sy", np.float32(SY)), ("zy", np.int8(ZY)),
        ("cq", codes), ("cs", np.asarray(scale, np.float32)),
        ("cz", np.asarray(zero_point, codes.dtype)))]
    axis_attr = {} if const_axis is None else {"axis": const_axis}
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"], name="qx"),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"], name="dqx"),
             helper.make_node("DequantizeLinear", ["cq", "cs", "cz"], ["c"], name="dqc",
                              **axis_attr)]
    inputs = ["xd", "c"]
    if bias is not None:
        bq, bs = bias
        inits += [numpy_helper.from_array(bq, "bq"),
                  numpy_helper.from_array(np.asarray(bs, np.float32), "bs")]
        nodes.append(helper.make_node("DequantizeLinear", ["bq", "bs"], ["b"], name="dqb",
                                      axis=0))
        inputs.append("b")
    nodes += [helper.make_node(op, inputs, ["y"], name="op", **attrs),
              helper.make_node("QuantizeLinear", ["y", "sy", "zy"], ["yq"], name="qy"),
              helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["out"], name="dqy")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, y_shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _ort_codes(model, xs):
    """onnxruntime's output codes ``yq``, recovered from the model's output ``out`` =
    ``(yq - zy) * sy``: making ``yq`` a graph output would keep onnxruntime from fusing the
    Q/DQ groups into its QLinear kernels."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = np.concatenate([session.run(["out"], {"x": x[None]})[0] for x in xs])
    return (np.rint(out / inits["sy"]) + inits["zy"]).astype(np.int32)


def _our_codes(integer, xs):
    """The integer model's 8-bit output ``y`` (the tensor ``out`` dequantizes), ONNX order."""
    backend = get_backend("numpy")
    spec = next(s for s in integer.tensors.values()
                if s.float_name == "out" and s.qparams is not None)
    out = []
    for x in xs:
        q = np.asarray(backend.to_numpy(execute(integer, {"x": x[None]}, backend,
                                                keep=True)[spec.name]))
        out.append(q.transpose(0, 3, 1, 2) if spec.layout == "NHWC" else q)
    return np.concatenate(out).astype(np.int32)


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).uniform(-3, 3, (8, *shape[1:])).astype(np.float32)


def _constant(integer, name="c"):
    """The 8-bit constant the integer model made of float tensor ``name``, in ONNX order."""
    for key, value in integer.constants.items():
        if integer.tensors[key].float_name == name and value.dtype != np.float32:
            return value.transpose(0, 3, 1, 2) if key.endswith(":nhwc") else value
    raise AssertionError(f"no 8-bit constant of {name!r}")


RNG = np.random.default_rng(7)
# stored codes whose range min/max parameters would not reproduce: they use few of the codes
ELEMENTWISE = {
    "Add": ([1, 3, 4, 4], [1, 3, 4, 4], RNG.integers(-40, 90, (1, 3, 1, 1)), 0.013, 7, {}),
    "Mul": ([1, 3, 4, 4], [1, 3, 4, 4], RNG.integers(-60, 30, (1, 3, 4, 4)), 0.011, -3, {}),
    "Concat": ([1, 3, 4, 4], [1, 5, 4, 4], RNG.integers(-128, 50, (1, 2, 4, 4)), 0.024, 2,
               {"axis": 1}),
}


@pytest.mark.parametrize("stored", ["int8", "uint8"])
@pytest.mark.parametrize("op", sorted(ELEMENTWISE))
def test_constant_operand_keeps_stored_codes_and_matches_onnxruntime(op, stored):
    x_shape, y_shape, codes, scale, zero_point, attrs = ELEMENTWISE[op]
    shift = 128 if stored == "uint8" else 0
    model = _qdq_model(op, x_shape, y_shape, (codes + shift).astype(stored), scale,
                       zero_point + shift, **attrs)
    integer = import_qdq(model)
    assert integer.metadata["float_nodes"] == []
    # int8 model: a uint8 constant's codes and zero point move by -128, its real values stay
    np.testing.assert_array_equal(_constant(integer), codes)
    xs = _inputs(x_shape)
    theirs = _ort_codes(model, xs).astype(np.int32)
    ours = _our_codes(integer, xs)
    # onnxruntime (1.x CPU) runs these ops in float32 between DequantizeLinear and
    # QuantizeLinear: one rounding of the real result. A concat input is one requantization of
    # each code, (q - z) * s_in / s_out rounded half to even (in float64 here, float32 there):
    # equal unless a value lies within float32 error of a .5 tie. The ratios here, 0.02/0.03
    # and 0.024/0.03, put every value on a multiple of 1/3 or 1/5, at least 0.1 from a tie.
    # Add and Mul requantize in fixed point (TFLite's kernels: the rescaled operands, then the
    # sum or product, are each rounded), so a result next to a tie can round the other way:
    # at most one step.
    bound = 0 if op == "Concat" else 1
    assert np.abs(ours - theirs).max() <= bound


def test_uint8_activations_take_a_stored_int8_constant_with_the_same_reals():
    x_shape, y_shape, codes, scale, zero_point, attrs = ELEMENTWISE["Concat"]
    model = _qdq_model("Concat", x_shape, y_shape, codes.astype(np.int8), scale, zero_point,
                       **attrs)
    integer = import_qdq(model, activation_dtype="uint8")
    np.testing.assert_array_equal(_constant(integer), codes + 128)
    assert integer.tensors["c:q:nhwc"].qparams.zero_point[0] == zero_point + 128


def _conv_model(weight_scale):
    """Conv 3 -> 4 channels, 3x3, per-channel int8 weights at ``weight_scale``, int32 bias at
    s_x * s_w (as onnxruntime's quantizer states it: the float32 product)."""
    rng = np.random.default_rng(3)
    w = rng.integers(-60, 61, (4, 3, 3, 3)).astype(np.int8)
    bias = rng.integers(-3000, 3000, 4).astype(np.int32)
    bias_scale = np.float32(SX) * weight_scale
    model = _qdq_model("Conv", [1, 3, 5, 5], [1, 4, 3, 3], w, weight_scale, np.zeros(4, np.int8),
                       const_axis=0, bias=(bias, bias_scale))
    return model, w, bias


# max|w| / 127 per channel would be about half these: min/max would pick other codes
CONV_SCALES = np.array([0.003, 0.01, 0.002, 0.02], np.float32)


@pytest.mark.parametrize("rounding, bound", [("float32_half_even", 0), ("gemmlowp", 1)])
def test_per_channel_weight_keeps_stated_scales_and_matches_qlinearconv(rounding, bound):
    model, w, bias = _conv_model(CONV_SCALES)
    integer = import_qdq(model, rounding=rounding)
    conv = next(n for n in integer.nodes if n.op == "conv2d").params
    np.testing.assert_array_equal(conv.weight, w.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(conv.bias, bias)
    np.testing.assert_array_equal(conv.weight_zero_point, 0)
    xs = _inputs([1, 3, 5, 5])
    # onnxruntime fuses DQ -> Conv -> Q into QLinearConv: int32 accumulation, then one float32
    # multiply and round half to even, which "float32_half_even" is; gemmlowp's two roundings
    # (docs/quantization.md) can differ from it by one step.
    assert np.abs(_our_codes(integer, xs) - _ort_codes(model, xs).astype(np.int32)).max() \
        <= bound


def _matmul_uint8():
    """MatMul by uint8 weight codes (K, N) with zero point 131: onnxruntime's QUInt8 weights are
    asymmetric; the kernels subtract one weight zero point per output column."""
    w = np.random.default_rng(5).integers(0, 256, (6, 5)).astype(np.uint8)
    return _qdq_model("MatMul", [1, 6], [1, 5], w, 0.004, 131), w.T, 131, None


def _gemm_per_row():
    """Gemm (transB) by int8 weight rows with their own scales and an int32 bias at
    s_x * s_w."""
    rng = np.random.default_rng(2)
    w = int8_weights(rng, (5, 6))
    scales = np.array([0.004, 0.002, 0.01, 0.003, 0.005], np.float32)
    bias = rng.integers(-20000, 20000, 5).astype(np.int32)
    model = _qdq_model("Gemm", [1, 6], [1, 5], w, scales, np.zeros(5, np.int8), const_axis=0,
                       bias=(bias, np.float32(SX) * scales), transB=1)
    return model, w, 0, bias


@pytest.mark.parametrize("rounding, bound", [("float32_half_even", 0), ("gemmlowp", 1)])
@pytest.mark.parametrize("make", [_matmul_uint8, _gemm_per_row])
def test_fully_connected_weight_is_kept_and_matches_onnxruntime(make, rounding, bound):
    model, weight, zero_point, bias = make()
    integer = import_qdq(model, rounding=rounding)
    gemm = next(n for n in integer.nodes if n.op == "gemm").params
    np.testing.assert_array_equal(gemm.weight, weight)
    np.testing.assert_array_equal(gemm.weight_zero_point, zero_point)
    if bias is not None:
        np.testing.assert_array_equal(gemm.bias, bias)
    xs = _inputs([1, 6])
    # fused by onnxruntime into QLinearMatMul / QGemm: as for QLinearConv above
    theirs = _ort_codes(model, xs).astype(np.int32)
    assert np.abs(_our_codes(integer, xs) - theirs).max() <= bound


def _through(model, op, out, node_name, attrs=None, extra=(), operand=1):
    """``model`` with ``op`` (name ``node_name``) between a constant's DequantizeLinear and
    the op that reads it as input ``operand`` (1: ``c``, 2: the bias ``b``); ``extra``:
    initializers of its further inputs."""
    model.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in extra)
    reader = next(n for n in model.graph.node if n.name == "op")
    source = reader.input[operand]
    reader.input[operand] = out
    index = list(model.graph.node).index(reader)
    model.graph.node.insert(index, helper.make_node(
        op, [source, *(k for k, _ in extra)], [out], name=node_name, **(attrs or {})))
    return model


def test_a_layout_op_between_dequantize_and_reader_keeps_the_codes():
    # the float frontend folds Unsqueeze(DequantizeLinear(codes)) into a new constant: it
    # takes the constant's parameters, not ones chosen from its min/max
    codes = np.array([[[5]], [[-7]], [[20]]], np.int8)
    model = _through(_qdq_model("Add", [1, 3, 4, 4], [1, 3, 4, 4], codes, 0.013, 7),
                     "Unsqueeze", "c2", "unsqueeze", extra=[("axes", np.array([0]))])
    integer = import_qdq(model)
    np.testing.assert_array_equal(_constant(integer, "c2"), codes[None])
    xs = _inputs([1, 3, 4, 4])
    assert np.abs(_our_codes(integer, xs) - _ort_codes(model, xs).astype(np.int32)).max() <= 1


@pytest.mark.parametrize("attrs", [{"perm": [1, 0]}, {}])
def test_per_axis_weight_follows_a_transpose(attrs):
    # weight codes (N, K) with one scale per row, transposed to the (K, N) MatMul operand: the
    # scales now lie along axis 1, the output columns (no perm: ONNX reverses the axes)
    w = int8_weights(np.random.default_rng(9), (5, 6))
    scales = np.array([0.004, 0.002, 0.01, 0.003, 0.005], np.float32)
    model = _through(_qdq_model("MatMul", [1, 6], [1, 5], w, scales, np.zeros(5, np.int8),
                                const_axis=0),
                     "Transpose", "wt", "transpose", attrs)
    integer = import_qdq(model, rounding="float32_half_even")
    gemm = next(n for n in integer.nodes if n.op == "gemm").params
    np.testing.assert_array_equal(gemm.weight, w)
    xs = _inputs([1, 6])
    # onnxruntime folds the Transpose into the weight of its fused QLinearMatMul
    np.testing.assert_array_equal(_our_codes(integer, xs), _ort_codes(model, xs))


ROW_SCALES = np.array([0.004, 0.002, 0.01, 0.003, 0.005], np.float32)
# weight codes stored in another shape than the reader's, per-axis along the axis that a Reshape
# maps to the reader's output-channel axis, as exporters write them: (op, x shape, y shape,
# stored codes, scales, axis, Reshape target, the reader's codes)
_W_CONV = int8_weights(np.random.default_rng(11), (4, 27))
_W_MATMUL = int8_weights(np.random.default_rng(12), (1, 6, 5))
_W_GEMM = int8_weights(np.random.default_rng(13), (5, 6, 1, 1))
RESHAPED_WEIGHTS = {
    # (C_out, C_in * kh * kw) axis 0 -> (C_out, C_in, kh, kw) axis 0
    "Conv": ([1, 3, 5, 5], [1, 4, 3, 3], _W_CONV, CONV_SCALES, 0, [4, 3, 3, 3],
             _W_CONV.reshape(4, 3, 3, 3).transpose(0, 2, 3, 1)),
    # (1, K, N) axis 2 -> (K, N) axis 1
    "MatMul": ([1, 6], [1, 5], _W_MATMUL, ROW_SCALES, 2, [6, 5], _W_MATMUL[0].T),
    # (N, K, 1, 1) axis 0 -> (N, K) axis 0 (0 copies N, -1 infers K)
    "Gemm": ([1, 6], [1, 5], _W_GEMM, ROW_SCALES, 0, [0, -1], _W_GEMM[:, :, 0, 0]),
}


@pytest.mark.parametrize("rounding, bound", [("float32_half_even", 0), ("gemmlowp", 1)])
@pytest.mark.parametrize("op", sorted(RESHAPED_WEIGHTS))
def test_per_axis_weight_follows_a_reshape(op, rounding, bound):
    # the per-axis parameters used to stay behind at the Reshape: the converter re-chose
    # symmetric max|w| / 127 scales, other codes (up to 2 steps off onnxruntime's Conv output)
    x_shape, y_shape, codes, scales, axis, target, weight = RESHAPED_WEIGHTS[op]
    model = _qdq_model(op, x_shape, y_shape, codes, scales, np.zeros(scales.size, np.int8),
                       const_axis=axis, **({"transB": 1} if op == "Gemm" else {}))
    model = _through(model, "Reshape", "w2", "reshape", extra=[("shape", np.array(target))])
    integer = import_qdq(model, rounding=rounding)
    layer = next(n for n in integer.nodes if n.op in ("conv2d", "gemm")).params
    np.testing.assert_array_equal(layer.weight, weight)
    np.testing.assert_array_equal(layer.weight_zero_point, 0)
    xs = _inputs(x_shape)
    # onnxruntime runs DequantizeLinear -> Reshape -> op -> QuantizeLinear: an exact int32
    # sum of code products at s_x * s_w, one float32 multiply by 1 / s_y rounded half to even,
    # which "float32_half_even" reproduces; gemmlowp's two roundings can differ by one step
    theirs = _ort_codes(model, xs).astype(np.int32)
    assert np.abs(_our_codes(integer, xs) - theirs).max() <= bound


def test_per_axis_weight_spread_by_a_reshape_is_refused_naming_node_and_tensor():
    # (N, K) rows with their own scales reshaped (not transposed) to (K, N): the 5 rows' codes
    # spread over rows and columns of the MatMul operand, no single axis holds one scale each
    w = np.random.default_rng(9).integers(-127, 128, (5, 6)).astype(np.int8)
    model = _through(_qdq_model("MatMul", [1, 6], [1, 5], w, ROW_SCALES, np.zeros(5, np.int8),
                                const_axis=0),
                     "Reshape", "w2", "reshape", extra=[("shape", np.array([6, 5]))])
    with pytest.raises(UnsupportedOpError,
                       match=r"node 'reshape' \(Reshape\): tensor 'c' of shape \(5, 6\) has 5 "
                             r"scales along axis 0; no single axis of 'w2' \(shape \(6, 5\)\)"):
        import_qdq(model)


def _activation_reshape(scales, axis, x_shape, target, reader):
    """x -> Q/DQ (``scales`` along ``axis``, zero point 0) -> Reshape(``target``) -> r, read
    by ``reader``: (op type, input names after r, initializers, output shape)."""
    op, operands, extra, y_shape = reader
    inits = [numpy_helper.from_array(np.asarray(scales, np.float32), "s"),
             numpy_helper.from_array(np.zeros(np.shape(scales), np.int8), "z"),
             numpy_helper.from_array(np.array(target), "shape"),
             numpy_helper.from_array(np.float32(SY), "sy"),
             numpy_helper.from_array(np.int8(ZY), "zy"),
             *(numpy_helper.from_array(v, k) for k, v in extra)]
    axis_attr = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="qx", **axis_attr),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dqx",
                              **axis_attr),
             helper.make_node("Reshape", ["xd", "shape"], ["r"], name="reshape")]
    if op == "MatMul":
        nodes.append(helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"], name="dqw"))
    nodes += [helper.make_node(op, ["r", *operands], ["y"], name="op"),
              helper.make_node("QuantizeLinear", ["y", "sy", "zy"], ["yq"], name="qy"),
              helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["out"], name="dqy")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, y_shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _matmul_reader():
    w = int8_weights(np.random.default_rng(4), (12, 5))
    return "MatMul", ["w"], [("wq", w), ("ws", np.float32(0.01))], [1, 5]


def test_activation_parameters_follow_a_reshape_to_its_reader():
    # the Reshape of a graph input stays in float; the MatMul reading its output used to find
    # no parameters for it ("tensor 'r' has no calibrated range")
    model = _activation_reshape(SX, None, [1, 3, 4], [1, 12], _matmul_reader())
    integer = import_qdq(model, rounding="float32_half_even")
    assert [n.op for n in integer.nodes if n.op != "float"] == ["quantize", "gemm", "dequantize"]
    xs = _inputs([1, 3, 4])
    # the codes of r are those of x, moved: as for the weights above, equal to onnxruntime's
    np.testing.assert_array_equal(_our_codes(integer, xs), _ort_codes(model, xs))


@pytest.mark.parametrize("target, axis", [([1, 3, 2, 2], 1), ([3, 4], 0), ([3, 1, 4], 0)])
def test_per_axis_activation_parameters_move_to_the_reshaped_axis(target, axis):
    model = _activation_reshape([0.02, 0.03, 0.05], 1, [1, 3, 4], target,
                                ("Identity", [], [], target))
    _, qparams, _ = strip_qdq(model)
    assert qparams["r"].axis == axis
    np.testing.assert_array_equal(qparams["r"].scale, qparams["x"].scale)


@pytest.mark.parametrize("in_shape, axis, out_shape, expected", [
    (("N", 4, 2), 1, ("N", 8), None),     # axis 1 merged with axis 2
    (("N", 4, 2), 1, ("N", 4, 2, 1), 1),  # symbolic dimensions match by name
    ((None, 4, 2), 1, (None, 4), None),   # an unknown dimension before the axis: no match
    ((None, 4, 2), 1, (None, 4, 2), None),
    ((2, 4, None), 1, (8, None), None),   # merged, the unknown dimension after the axis
    ((2, 4, None), 1, (2, 4, None), 1),
])
def test_reshaped_axis_needs_known_elements_before_the_axis(in_shape, axis, out_shape,
                                                            expected):
    assert _reshaped_axis(in_shape, axis, out_shape) == expected


def test_per_axis_activation_merged_by_a_reshape_is_refused_naming_node_and_tensor():
    model = _activation_reshape([0.02, 0.03, 0.05], 1, [1, 3, 4], [1, 12], _matmul_reader())
    with pytest.raises(UnsupportedOpError,
                       match=r"node 'reshape' \(Reshape\): tensor 'x' of shape \(1, 3, 4\) has "
                             r"3 scales along axis 1; no single axis of 'r' \(shape \(1, 12\)\)"):
        import_qdq(model)


def test_per_axis_constant_of_an_add_is_refused_naming_node_and_tensor():
    # an integer add takes one scale and zero point per operand: per-channel codes of a
    # constant operand cannot be used as they are
    codes = np.array([[[[5]], [[-7]], [[20]]]], np.int8)
    model = _qdq_model("Add", [1, 3, 4, 4], [1, 3, 4, 4], codes, [0.01, 0.02, 0.03],
                       [0, 0, 0], const_axis=1)
    with pytest.raises(QuantizationError,
                       match="node 'op' \\(Add\\): constant 'c': given parameters are int8 "
                             "per axis 1"):
        import_qdq(model)


def test_bias_at_another_scale_than_input_times_weight_is_refused():
    model, _, _ = _conv_model(CONV_SCALES)
    bias_scale = next(t for t in model.graph.initializer if t.name == "bs")
    bias_scale.CopyFrom(numpy_helper.from_array(np.float32(2 * SX) * CONV_SCALES, "bs"))
    with pytest.raises(QuantizationError,
                       match="node 'op' \\(Conv\\): layer 'op': given bias scale .* of output "
                             "channel 0 is not input scale \\* weight scale"):
        import_qdq(model)


def test_weight_scales_along_the_reduction_axis_are_refused():
    # MatMul weight (K, N) with one scale per row k: the kernels have one per output column
    w = np.ones((6, 5), np.int8)
    model = _qdq_model("MatMul", [1, 6], [1, 5], w, np.full(6, 0.01), np.zeros(6), const_axis=0)
    with pytest.raises(QuantizationError,
                       match="node 'op' \\(MatMul\\): weight 'c': .*output-channel axis 1"):
        import_qdq(model)


# int32 bias codes beyond 2**24, where float32 no longer holds every integer, each with the k
# of its channel's output multiplier s_x * s_w / s_y = 2**-k (powers of two throughout, so
# onnxruntime's float32 multiplier and ours are the same number). Each channel reads one input
# code x in [-128, 127] with weight code 1, so its accumulator is bias + x and its output
# round_half_to_even(float32(bias + x) * 2**-k), about 64 in magnitude. None of these codes
# survives a float32 round trip: +-(2**24 + 1), +-(2**30 - 3), +-(2**31 - 129) (the largest
# that leave room for x: |bias| + 128 <= 2**31 - 1) and codes a few steps from a rounding tie
# of 2**-k (2**24 + 2**17 = 64.5 * 2**18, 2**30 - 2**23 = 63.5 * 2**24), where sweeping x
# makes some outputs tell the stored codes from any other.
BIG_BIASES = [(2**24 + 1, 18), (-(2**24 + 1), 18), (2**30 - 3, 24), (-(2**30 - 3), 24),
              (2**24 + 2**17 + 3, 18), (-(2**24 + 2**17 + 3), 18),
              (2**30 - 2**23 + 37, 24), (-(2**30 - 2**23 + 37), 24),
              (2**31 - 129, 25), (-(2**31 - 129), 25)]
BIG_SX, BIG_SY = 2.0**-6, 2.0**-3


def _with_initializers(model, **values):
    """``model`` with the named initializers replaced by ``values``."""
    for t in model.graph.initializer:
        if t.name in values:
            t.CopyFrom(numpy_helper.from_array(np.asarray(values[t.name]), t.name))
    return model


def _big_bias_model(op, per_tensor=False):
    """Conv (1x1, on 16x16) or Gemm (transB) with identity int8 weights, one channel per
    BIG_BIASES entry, and its int32 bias codes (per_tensor: all at the first channel's scales,
    the bias codes stored as a (1, N) row)."""
    codes = np.array([q for q, _ in BIG_BIASES], np.int32)
    k = np.array([k for _, k in BIG_BIASES])
    n = len(codes)
    w_scales = np.ldexp(BIG_SY / BIG_SX, -k).astype(np.float32)
    zeros = np.zeros(n, np.int8)
    bias = (codes, np.float32(BIG_SX) * w_scales)
    if per_tensor:
        w_scales, zeros, bias = w_scales[0], np.int8(0), (codes[None], bias[1][0])
    if op == "Conv":
        model = _qdq_model("Conv", [1, n, 16, 16], [1, n, 16, 16],
                           np.eye(n, dtype=np.int8).reshape(n, n, 1, 1), w_scales, zeros,
                           const_axis=0, bias=bias)
    else:
        model = _qdq_model("Gemm", [1, n], [1, n], np.eye(n, dtype=np.int8), w_scales, zeros,
                           const_axis=0, bias=bias, transB=1)
    return _with_initializers(model, sx=np.float32(BIG_SX), zx=np.int8(0),
                              sy=np.float32(BIG_SY), zy=np.int8(0)), codes


def _sweep(op, channels):
    """Inputs whose codes (zero point 0) run through all of int8 on every channel: the 256
    pixels of one 16x16 image (Conv), 256 rows (Gemm)."""
    codes = np.arange(-128, 128, dtype=np.float32) * np.float32(BIG_SX)
    if op == "Conv":
        return np.broadcast_to(codes.reshape(1, 1, 16, 16), (1, channels, 16, 16)).copy()
    return np.repeat(codes[:, None], channels, axis=1)


@pytest.mark.parametrize("op", ["Conv", "Gemm"])
def test_int32_bias_codes_beyond_float32_are_kept_and_match_onnxruntime_exactly(op):
    model, codes = _big_bias_model(op)
    integer = import_qdq(model, rounding="float32_half_even")
    assert integer.metadata["float_nodes"] == []
    layer = next(n for n in integer.nodes if n.op in ("conv2d", "gemm")).params
    np.testing.assert_array_equal(layer.bias, codes)
    xs = _sweep(op, len(codes))
    # onnxruntime fuses these into QLinearConv / QGemm, which add the stored int32 codes to the
    # int32 accumulator; its requantization is "float32_half_even" (as above). Codes rounded
    # through float32 differ here, by one step, on 56 of the 2560 outputs.
    np.testing.assert_array_equal(_our_codes(integer, xs), _ort_codes(model, xs))


@pytest.mark.parametrize("layout, per_tensor, attrs, extra", [
    ("Transpose", False, {"perm": [1, 0]}, ()),
    ("Reshape", True, {}, [("shape", np.array([-1]))]),
])
def test_int32_bias_codes_follow_a_layout_op(layout, per_tensor, attrs, extra):
    # per-channel bias codes stored as a column (N, 1), transposed to the Gemm's (1, N) row;
    # per-tensor ones stored as a (1, N) row, reshaped to (N,)
    model, codes = _big_bias_model("Gemm", per_tensor)
    if not per_tensor:
        model = _with_initializers(model, bq=codes[:, None])
    model = _through(model, layout, "b2", "layout", attrs, extra, operand=2)
    integer = import_qdq(model, rounding="float32_half_even")
    assert integer.metadata["float_nodes"] == []
    gemm = next(n for n in integer.nodes if n.op == "gemm").params
    np.testing.assert_array_equal(gemm.bias, codes)

"""Imported int8 models declared at batch 1 run at any batch where every op provably keeps the
batch as the leading axis (frontends/batch.py): rows equal the batch-1 run of each row, and
onnxruntime's output on the same file with a dynamic leading dimension. Models with an op that
moves, drops or mixes the batch axis run at batch 1 only and say which node is at fault."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from ort_weights import int8_weights
from qoperator_helpers import MS, build, const, helper, scalar
from tflite_builder import Op, T, write

from gpuquant.backends.numpy import NumpyBackend
from gpuquant.errors import ShapeError, UnsupportedOpError
from gpuquant.frontends.batch import broadcast_factor, reshape_target, squeeze_shape
from gpuquant.frontends.onnx_qoperator import load_qoperator_onnx
from gpuquant.frontends.tflite_model import load_tflite
from gpuquant.integer.file import save
from gpuquant.runtime import InferenceSession, execute

RNG = np.random.default_rng(20261203)
BATCH = 4


def codes(shape, dtype=np.int8) -> np.ndarray:
    lo = -128 if dtype == np.int8 else 0
    return RNG.integers(lo, lo + 256, shape).astype(dtype)


def qparams(*names: str, dtype=np.int8) -> list[onnx.TensorProto]:
    """Scale and zero point initializers ``<name>s``, ``<name>z`` for each name."""
    out = []
    for n in names:
        out += [scalar(f"{n}s", float(np.float32(RNG.uniform(0.01, 0.1))), np.float32),
                scalar(f"{n}z", int(RNG.integers(-10, 10)), dtype)]
    return out


def stacked(rows: int, one: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``rows`` random samples shaped like the batch-1 feeds ``one``."""
    return {k: codes((rows,) + v.shape[1:], v.dtype) for k, v in one.items()}


def dynamic_copy(path: Path) -> Path:
    """The same model with leading input/output dimensions "N", as exporters write them."""
    proto = onnx.load(str(path))
    for vi in proto.graph.input:
        vi.type.tensor_type.shape.dim[0].dim_param = "N"
    out = path.with_name(path.stem + "_dynamic.onnx")
    onnx.save(proto, str(out))
    return out


def onnxruntime_y(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        ["y"], feeds)[0]


def gpuquant_y(model, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(execute(model, feeds, NumpyBackend())["y"])


def matmul_const_b():
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                            ["y"])
    init = qparams("a", "y") + [const("b", int8_weights(RNG, (8, 5))),
                                scalar("bs", 0.01, np.float32), scalar("bz", 0, np.int8)]
    return node, {"a": codes((1, 3, 8))}, init


def matmul_two_activations():
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                            ["y"])
    return node, {"a": codes((1, 2, 6)), "b": codes((1, 6, 3))}, qparams("a", "b", "y")


def add_constant():
    node = helper.make_node("QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"],
                            domain=MS)
    return node, {"a": codes((1, 4, 3, 3))}, qparams("a", "b", "y") + [
        const("b", codes((1, 4, 1, 1)))]


def concat_axis1():
    node = helper.make_node("QLinearConcat", ["ys", "yz", "a", "as", "az", "b", "bs", "bz"],
                            ["y"], domain=MS, axis=1)
    return node, {"a": codes((1, 2, 4)), "b": codes((1, 3, 4))}, qparams("y", "a", "b")


def softmax(shape, axis, opset):
    def make():
        node = helper.make_node("QLinearSoftmax", ["x", "xs", "xz", "ys", "yz"], ["y"],
                                domain=MS, axis=axis, opset=opset)
        init = qparams("x") + [scalar("ys", 1.0 / 256, np.float32), scalar("yz", -128, np.int8)]
        return node, {"x": codes(shape)}, init
    return make


def shape_op(op, x_shape, attrs=None, **init):
    def make():
        inputs = ["x"] + list(init)
        node = helper.make_node(op, inputs, ["y"], name="shape_op", **(attrs or {}))
        return node, {"x": codes(x_shape)}, [const(k, np.array(v, np.int64))
                                             for k, v in init.items()]
    return make


KEEP = {
    "matmul_3d_by_constant": matmul_const_b,  # rows 3 x batch: targets [-1, 8], [-1, 3, 5]
    "matmul_two_activations": matmul_two_activations,
    "add_constant_broadcast": add_constant,
    "concat_axis_1": concat_axis1,
    "softmax_opset12_rows": softmax((1, 2, 3, 4), 2, 12),
    "softmax_opset13_transposed": softmax((1, 3, 5), 1, 13),
    "reshape_copying_dim_0": shape_op("Reshape", (1, 2, 6), shape=[0, 3, 4]),
    "flatten": shape_op("Flatten", (1, 2, 3, 4)),
    "unsqueeze_axis_1": shape_op("Unsqueeze", (1, 3, 4), axes=[1]),
    "transpose_keeping_axis_0": shape_op("Transpose", (1, 3, 4), {"perm": [0, 2, 1]}),
}


@pytest.mark.parametrize("case", sorted(KEEP))
def test_qoperator_op_keeping_the_batch_runs_at_any_batch(tmp_path, case):
    node, one, init = KEEP[case]()
    path = build(tmp_path, node, one, init, np.int8)
    model = load_qoperator_onnx(path)
    assert "fixed_batch" not in model.metadata
    assert all(s.shape[0] is None for s in model.inputs + model.outputs)
    np.testing.assert_array_equal(gpuquant_y(model, one), onnxruntime_y(path, one))
    feeds = stacked(BATCH, one)
    got = gpuquant_y(model, feeds)
    np.testing.assert_array_equal(got, onnxruntime_y(dynamic_copy(path), feeds))
    for i in range(BATCH):
        row = {k: v[i:i + 1] for k, v in feeds.items()}
        np.testing.assert_array_equal(got[i:i + 1], gpuquant_y(model, row))


def test_reshape_to_a_literal_batch_1_target_follows_the_batch(tmp_path):
    """Reshape to [1, 12] keeps the leading dimension: at batch N each row is reshaped alone
    (onnxruntime itself would refuse batch N with this target)."""
    node, one, init = shape_op("Reshape", (1, 3, 4), shape=[1, 12])()
    model = load_qoperator_onnx(build(tmp_path, node, one, init, np.int8))
    reshape = next(n for n in model.nodes if n.op == "reshape")
    assert reshape.params["shape"] == [0, 12]
    feeds = stacked(BATCH, one)
    np.testing.assert_array_equal(gpuquant_y(model, feeds), feeds["x"].reshape(BATCH, 12))


FIXED = {
    "transpose_moving_axis_0": (shape_op("Transpose", (1, 3, 4), {"perm": [1, 0, 2]}),
                                "Transpose"),
    "squeeze_axis_0": (shape_op("Squeeze", (1, 3, 4), axes=[0]), "Squeeze"),
    "unsqueeze_axis_0": (shape_op("Unsqueeze", (1, 3, 4), axes=[0]), "Unsqueeze"),
    "reshape_changing_dim_0": (shape_op("Reshape", (1, 3, 4), shape=[3, 4]), "Reshape"),
    "flatten_axis_0": (shape_op("Flatten", (1, 3, 4), {"axis": 0}), "Flatten"),
    "softmax_over_axis_0": (softmax((1, 5), 0, 12), "QLinearSoftmax"),
}


@pytest.mark.parametrize("case", sorted(FIXED))
def test_qoperator_op_moving_the_batch_runs_at_batch_1_only(tmp_path, case):
    make, op_type = FIXED[case]
    node, one, init = make()
    path = build(tmp_path, node, one, init, np.int8)
    model = load_qoperator_onnx(path)
    assert f"({op_type}) does not keep the batch" in model.metadata["fixed_batch"]
    assert model.inputs[0].shape[0] == 1
    np.testing.assert_array_equal(gpuquant_y(model, one), onnxruntime_y(path, one))
    name = next(iter(one))
    feeds = stacked(3, one)
    with pytest.raises(ShapeError, match=rf"input '{name}' has shape \(3, .*declared batch 1"
                                         rf".*node 0 '[^']*' \({op_type}\)"):
        gpuquant_y(model, feeds)


def test_qlinear_add_whose_onnxruntime_kernel_depends_on_the_batch_runs_at_batch_1_only(
        tmp_path):
    """A constant first operand of one value plus a one-value sample: at batch 1 onnxruntime
    takes its general kernel, at batch N its scalar-a kernel (the operands swap roles)."""
    node = helper.make_node("QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"],
                            domain=MS, name="add")
    init = qparams("a", "b", "y") + [const("a", codes((1,)))]
    one = {"b": codes((1,))}
    path = build(tmp_path, node, one, init, np.int8)
    model = load_qoperator_onnx(path)
    np.testing.assert_array_equal(gpuquant_y(model, one), onnxruntime_y(path, one))
    with pytest.raises(ShapeError, match=r"'b' has shape \(3,\).*'add' \(QLinearAdd\): "
                                         "onnxruntime picks its QLinearAdd kernel"):
        gpuquant_y(model, stacked(3, one))


def test_fixed_batch_survives_the_model_file_and_the_session_says_so(tmp_path):
    node, one, init = shape_op("Transpose", (1, 3, 4), {"perm": [1, 0, 2]})()
    model = load_qoperator_onnx(build(tmp_path, node, one, init, np.int8))
    save(model, tmp_path / "fixed.gq")
    session = InferenceSession(tmp_path / "fixed.gq", backend="numpy")
    assert session.get_inputs()[0].shape == [1, 3, 4]
    np.testing.assert_array_equal(session.run(None, one)[0], one["x"].transpose(1, 0, 2))
    with pytest.raises(ShapeError, match=r"'x' has shape \(2, 3, 4\).*'shape_op' \(Transpose\)"):
        session.run(None, stacked(2, one))

    node, one, init = shape_op("Flatten", (1, 2, 3, 4))()
    save(load_qoperator_onnx(build(tmp_path, node, one, init, np.int8)), tmp_path / "any.gq")
    session = InferenceSession(tmp_path / "any.gq", backend="numpy")
    assert session.get_inputs()[0].shape == [None, 2, 3, 4]
    feeds = stacked(BATCH, one)
    np.testing.assert_array_equal(session.run(None, feeds)[0], feeds["x"].reshape(BATCH, 24))


def q8(name, shape, data=None):
    return T(name, shape, "int8", data, [0.05], [3])


def _fully_connected_3d(tmp_path) -> Path:
    """FULLY_CONNECTED with keep_num_dims on a (1, 3, 8) input: 3 GEMM rows per sample."""
    w = codes((5, 8))
    tensors = [q8("x", (1, 3, 8)), T("w", (5, 8), "int8", w, [0.01], [0]), q8("y", (1, 3, 5))]
    op = Op("FULLY_CONNECTED", [0, 1], [2], "FullyConnectedOptions",
            {"FusedActivationFunction": 0, "KeepNumDims": True})
    return write(tmp_path / "fc.tflite", tensors, [op], [0], [2])


def test_tflite_fully_connected_with_rows_per_sample_runs_at_any_batch(tmp_path):
    model = load_tflite(_fully_connected_3d(tmp_path))
    assert "fixed_batch" not in model.metadata
    targets = [n.params["shape"] for n in model.nodes if n.op == "reshape"]
    assert targets == [[-1, 8], [-1, 3, 5]]
    x = codes((BATCH, 3, 8))
    got = np.asarray(execute(model, {"x": x}, NumpyBackend())["y"])
    assert got.shape == (BATCH, 3, 5)
    for i in range(BATCH):
        one = execute(model, {"x": x[i:i + 1]}, NumpyBackend())["y"]
        np.testing.assert_array_equal(got[i:i + 1], np.asarray(one))


@pytest.mark.parametrize("case", ["reshape", "concatenation_axis_0", "pad_axis_0"])
def test_tflite_operator_moving_the_batch_runs_at_batch_1_only(tmp_path, case):
    if case == "reshape":
        tensors = [q8("x", (1, 3, 4)), T("shape", (2,), "int32", np.array([3, 4], np.int32)),
                   q8("y", (3, 4))]
        op = Op("RESHAPE", [0, 1], [2])
    elif case == "concatenation_axis_0":
        tensors = [q8("x", (1, 3, 4)), q8("y", (2, 3, 4))]
        op = Op("CONCATENATION", [0, 0], [1], "ConcatenationOptions",
                {"Axis": 0, "FusedActivationFunction": 0})
    else:
        pads = np.array([[1, 0], [0, 0], [0, 0]], np.int32)
        tensors = [q8("x", (1, 3, 4)), T("pads", (3, 2), "int32", pads), q8("y", (2, 3, 4))]
        op = Op("PAD", [0, 1], [2])
    model = load_tflite(write(tmp_path / f"{case}.tflite", tensors, [op], [0], [len(tensors) - 1]))
    assert model.inputs[0].shape == (1, 3, 4)
    x = codes((1, 3, 4))
    execute(model, {"x": x}, NumpyBackend())
    with pytest.raises(ShapeError, match=rf"'x' has shape \(3, 3, 4\).*operator 0 \({op.name}\) "
                                         r"does not keep the batch"):
        execute(model, {"x": codes((3, 3, 4))}, NumpyBackend())


def _reshapes(tmp_path, x_shape, *targets) -> Path:
    """RESHAPE ops in a chain from an int8 input ``x`` of ``x_shape`` through ``targets`` (each
    also the shape operand), the last output ``y``."""
    tensors, ops = [q8("x", x_shape)], []
    for i, target in enumerate(targets):
        name = "y" if i == len(targets) - 1 else f"r{i}"
        tensors += [T(f"shape{i}", (len(target),), "int32", np.array(target, np.int32)),
                    q8(name, target)]
        ops.append(Op("RESHAPE", [len(tensors) - 3, len(tensors) - 2], [len(tensors) - 1]))
    return write(tmp_path / "reshape.tflite", tensors, ops, [0], [len(tensors) - 1])


def test_tflite_reshape_keeping_the_leading_dimension_runs_at_any_batch(tmp_path):
    """[1, 4, 4, 8] -> [1, 128]: the leading dimension is the batch and stays the batch, so the
    target copies it (0); RESHAPE moves codes, so the output is the input in the new shape."""
    model = load_tflite(_reshapes(tmp_path, (1, 4, 4, 8), (1, 128)))
    assert "fixed_batch" not in model.metadata
    assert [n.params["shape"] for n in model.nodes] == [[0, 128]]
    assert model.inputs[0].shape == (None, 4, 4, 8) and model.outputs[0].shape == (None, 128)
    x = codes((BATCH, 4, 4, 8))
    np.testing.assert_array_equal(gpuquant_y(model, {"x": x}), x.reshape(BATCH, 128))


@pytest.mark.parametrize("x_shape, targets, at_fault", [
    ((1, 128), [(2, 64)], 0),                    # splits each sample over two rows
    ((2, 128), [(1, 256)], 0),                   # folds the declared batch of 2 into one row
    ((1, 4, 4, 8), [(1, 128), (2, 64)], 1),      # keeps the batch, then splits it
])
def test_tflite_reshape_splitting_or_folding_the_batch_keeps_the_declared_batch(
        tmp_path, x_shape, targets, at_fault):
    model = load_tflite(_reshapes(tmp_path, x_shape, *targets))
    assert model.metadata["fixed_batch"].startswith(
        f"operator {at_fault} (RESHAPE) does not keep the batch as the leading axis")
    assert model.inputs[0].shape == x_shape and model.outputs[0].shape == targets[-1]
    # the reshape at fault moves no batch: its target is the static output shape
    assert model.nodes[at_fault].params["shape"] == list(targets[at_fault])
    x = codes(x_shape)
    np.testing.assert_array_equal(gpuquant_y(model, {"x": x}), x.reshape(targets[-1]))
    other = (x_shape[0] + 1,) + x_shape[1:]
    with pytest.raises(ShapeError,
                       match=rf"input 'x' has shape \({other[0]}, .*declared batch {x_shape[0]} "
                             rf".*operator {at_fault} \(RESHAPE\) does not keep the batch"):
        gpuquant_y(model, {"x": codes(other)})


@pytest.mark.parametrize("out_shape, p, q, target", [
    ((4, 3, 5), 1, 1, [0, 3, 5]),      # ONNX Reshape: 0 copies the input's leading dimension
    ((12, 5), 1, 3, [-1, 5]),          # 3 rows per sample: leading dimension 3N inferred
    ((4, 3, 5), 3, 1, [-1, 3, 5]),
    ((4, 0), 1, 2, [4, 0]),            # -1 cannot be inferred next to a 0 dimension
    ((4, 3), None, 1, [4, 3]),
    ((4, 3), 1, None, [4, 3]),
])
def test_reshape_target(out_shape, p, q, target):
    assert reshape_target(out_shape, p, q) == target


@pytest.mark.parametrize("operands, factor", [
    ([((1, 4, 3, 3), 1), ((1, 4, 1, 1), None)], 1),
    ([((1, 4, 3, 3), 1), ((4, 1, 1), None)], 1),
    ([((1, 4, 3, 3), 1), ((1, 4, 3, 3), 1)], 1),
    ([((1, 4), 1), ((3, 4), None)], None),      # a constant batch of 3 against the input's
    ([((1, 4, 3), 1), ((4, 3), 1)], None),      # a 2-D input's batch axis meets axis 1
    ([((2, 4), 2), ((2, 4), 1)], None),
    ([((1, 4), None), ((1, 4), None)], None),
])
def test_broadcast_factor(operands, factor):
    assert broadcast_factor(operands) == factor


def _squeeze_tflite(tmp_path, x_shape, dims, y_shape) -> Path:
    tensors = [q8("x", x_shape), q8("y", y_shape)]
    op = Op("SQUEEZE", [0], [1], "SqueezeOptions", {"SqueezeDims": list(dims)})
    return write(tmp_path / "squeeze.tflite", tensors, [op], [0], [1])


@pytest.mark.parametrize("x_shape, dims, y_shape", [
    ((1, 1, 128), [1], (1, 128)),
    ((1, 1, 128), [-2], (1, 128)),
    ((1, 4, 1, 8), [2], (1, 4, 8)),
])
def test_tflite_squeeze_leaving_axis_0_runs_at_any_batch(tmp_path, x_shape, dims, y_shape):
    """SQUEEZE moves codes: each sample is the input without its length-1 axes."""
    model = load_tflite(_squeeze_tflite(tmp_path, x_shape, dims, y_shape))
    assert "fixed_batch" not in model.metadata
    assert [n.params["shape"] for n in model.nodes] == [[0, *y_shape[1:]]]
    x = codes((BATCH,) + x_shape[1:])
    np.testing.assert_array_equal(gpuquant_y(model, {"x": x}), x.reshape((BATCH,) + y_shape[1:]))


@pytest.mark.parametrize("x_shape, dims, y_shape", [
    ((1, 1, 128), [0], (1, 128)),    # the shape would allow [N, 128]; the batch axis is removed
    ((1, 1, 128), [-3], (1, 128)),
    ((1, 1, 128), [], (128,)),       # no dims: every length-1 axis, axis 0 included
])
def test_tflite_squeeze_of_axis_0_keeps_the_declared_batch(tmp_path, x_shape, dims, y_shape):
    model = load_tflite(_squeeze_tflite(tmp_path, x_shape, dims, y_shape))
    assert model.metadata["fixed_batch"] == (
        "operator 0 (SQUEEZE) does not keep the batch as the leading axis of its output: it "
        f"removes axis 0, the batch axis (input shape {x_shape}, axes "
        f"{[0, 1] if not dims else [0]})")
    assert model.inputs[0].shape == x_shape and model.outputs[0].shape == y_shape
    x = codes(x_shape)
    np.testing.assert_array_equal(gpuquant_y(model, {"x": x}), x.reshape(y_shape))
    with pytest.raises(ShapeError, match=r"'x' has shape \(2, 1, 128\).*declared batch 1"
                                         r".*operator 0 \(SQUEEZE\) does not keep the batch"):
        gpuquant_y(model, {"x": codes((2, 1, 128))})


@pytest.mark.parametrize("dims, y_shape, message", [
    ([1], (1, 128), r"cannot squeeze axes \[1\] of shape \(1, 4, 128\)"),
    ([3], (1, 4, 128), r"axes \[3\] out of range for rank 3"),
    ([0], (4, 1, 128), r"output shape \(4, 1, 128\) is not \(4, 128\)"),
])
def test_tflite_squeeze_names_a_bad_axis_or_output_shape(tmp_path, dims, y_shape, message):
    with pytest.raises(UnsupportedOpError, match=r"operator 0 \(SQUEEZE\): " + message):
        load_tflite(_squeeze_tflite(tmp_path, (1, 4, 128), dims, y_shape))


@pytest.mark.parametrize("op, x_shape, axes, keeps", [
    ("Squeeze", (1, 1, 4), [1], True),
    ("Squeeze", (1, 1, 4), [0], False),
    ("Squeeze", (1, 1, 4), [-3], False),
    ("Squeeze", (1, 1, 4), None, False),
    ("Unsqueeze", (1, 4), [1], True),
    ("Unsqueeze", (1, 4), [0], False),
])
def test_qoperator_squeeze_follows_the_tflite_rule(tmp_path, op, x_shape, axes, keeps):
    """The same squeeze reaches the same verdict in both importers (frontends/batch.py); the
    ONNX model at batch 1 equals onnxruntime."""
    init = {} if axes is None else {"axes": axes}
    node, one, consts = shape_op(op, x_shape, **init)()
    path = build(tmp_path, node, one, consts, np.int8)
    model = load_qoperator_onnx(path)
    np.testing.assert_array_equal(gpuquant_y(model, one), onnxruntime_y(path, one))
    assert ("fixed_batch" not in model.metadata) == keeps
    if not keeps:
        assert f"'shape_op' ({op}) does not keep the batch as the leading axis of its output: " \
               f"it {'inserts an axis before' if op == 'Unsqueeze' else 'removes'} axis 0, " \
               "the batch axis" in model.metadata["fixed_batch"]
    if op == "Squeeze":
        y_shape = one["x"].squeeze(None if axes is None else tuple(axes)).shape
        tflite_model = load_tflite(_squeeze_tflite(tmp_path, x_shape, axes or [], y_shape))
        assert ("fixed_batch" not in tflite_model.metadata) == keeps


def test_onnxruntime_moves_the_batch_to_axis_1_through_unsqueeze_at_axis_0(tmp_path):
    """Why Unsqueeze at axis 0 keeps the declared batch although the leading dimension stays 1:
    with a dynamic batch, onnxruntime gives [1, N, ...], not the [N, 1, ...] of batch-1 rows."""
    node, one, init = shape_op("Unsqueeze", (1, 3, 4), axes=[0])()
    path = dynamic_copy(build(tmp_path, node, one, init, np.int8))
    assert onnxruntime_y(path, stacked(3, one)).shape == (1, 3, 3, 4)


@pytest.mark.parametrize("shape, axes, unsqueeze, out, moved", [
    ((1, 1, 128), [0], False, (1, 128), [0]),
    ((1, 1, 128), [-2], False, (1, 128), [1]),
    ((1, 3, 1), None, False, (3,), [0, 2]),
    ((1, 4), [1, -1], True, (1, 1, 4, 1), [1, 3]),
    ((1, 4), [0], True, (1, 1, 4), [0]),
])
def test_squeeze_shape(shape, axes, unsqueeze, out, moved):
    assert squeeze_shape(shape, axes, unsqueeze) == (out, moved)


@pytest.mark.parametrize("op, axes, message", [
    ("Squeeze", [1], r"cannot squeeze axes \[1\] of shape \(1, 3, 4\): only axes of length 1"),
    ("Squeeze", [3], r"axes \[3\] out of range for rank 3"),
    ("Unsqueeze", None, "axes are required"),
])
def test_qoperator_squeeze_names_a_bad_axis(tmp_path, op, axes, message):
    """ONNX Squeeze refuses an axis whose length is not 1; Unsqueeze (opset 13) needs axes."""
    init = {} if axes is None else {"axes": axes}
    node, one, consts = shape_op(op, (1, 3, 4), **init)()
    with pytest.raises(UnsupportedOpError, match=rf"node 0 'shape_op' \({op}\): {message}"):
        load_qoperator_onnx(build(tmp_path, node, one, consts, np.int8))

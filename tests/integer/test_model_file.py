"""The integer model file: round trip and refusal of damaged or hostile files."""

import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest

from gpuquant.backends.numpy import NumpyBackend
from gpuquant.convert import convert
from gpuquant.errors import ModelFormatError
from gpuquant.graph.executor import run_graph
from gpuquant.graph.ir import Graph, Node, TensorInfo
from gpuquant.integer.file import load, save
from gpuquant.runtime.executor import execute

RNG = np.random.default_rng(3)


def _model():
    """Conv+Relu, MaxPool, Flatten, Gemm, and a Softmax left in float (inf Clip bound kept)."""
    nodes = [
        Node("Conv", "conv", ["x", "w", "b"], ["c"], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
        Node("Clip", "clip", ["c"], ["r"], {"min": 0.0, "max": float("inf")}),
        Node("MaxPool", "pool", ["r"], ["p"], {"kernel_shape": [2, 2], "strides": [2, 2]}),
        Node("Flatten", "flat", ["p"], ["f"], {"axis": 1}),
        Node("Gemm", "fc", ["f", "w2", "b2"], ["z"], {"transB": 1}),
        Node("Softmax", "sm", ["z"], ["y"], {"axis": -1}),
    ]
    inits = {"w": RNG.normal(0, 0.3, (4, 2, 3, 3)).astype(np.float32),
             "b": RNG.normal(0, 0.1, 4).astype(np.float32),
             "w2": RNG.normal(0, 0.2, (3, 16)).astype(np.float32),
             "b2": RNG.normal(0, 0.1, 3).astype(np.float32)}
    g = Graph("tiny", nodes, [TensorInfo("x", (None, 2, 4, 4))], [TensorInfo("y", (None, 3))],
              inits)
    x = RNG.normal(size=(3, 2, 4, 4)).astype(np.float32)
    env = run_graph(g, {"x": x}, keep=True)
    ranges = {k: (float(v.min()), float(v.max())) for k, v in env.items()}
    return convert(g, ranges, exclude=["clip"]), x


def _equal(a, b, where="model"):
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), where
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            _equal(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _equal(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            _equal(u, v, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model, x = _model()
    path = tmp_path_factory.mktemp("m") / "tiny.gqm"
    save(model, path)
    return model, x, path


def test_round_trip_is_equal_and_runs_the_same(saved):
    model, x, path = saved
    again = load(path)
    _equal(model, again)
    backend = NumpyBackend()
    np.testing.assert_array_equal(execute(model, {"x": x}, backend)["y"],
                                  execute(again, {"x": x}, backend)["y"])


def _rewrite(path, out, edit_json=None, replace=None, extra=None):
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "model.json" and edit_json:
                doc = json.loads(data)
                edit_json(doc)
                data = json.dumps(doc).encode()
            if replace and info.filename in replace:
                data = replace[info.filename]
            dst.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            dst.writestr(name, data)
    return out


def test_truncated_file(saved, tmp_path):
    _, _, path = saved
    bad = tmp_path / "cut.gqm"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFormatError, match="cut.gqm"):
        load(bad)


@pytest.mark.parametrize("where", [0.3, 0.6, 0.9])
def test_flipped_bytes(saved, tmp_path, where):
    _, _, path = saved
    data = bytearray(path.read_bytes())
    i = int(len(data) * where)
    data[i: i + 8] = bytes(b ^ 0xFF for b in data[i: i + 8])
    bad = tmp_path / "flipped.gqm"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="flipped.gqm"):
        load(bad)


def test_wrong_version_and_format(saved, tmp_path):
    _, _, path = saved

    def v2(doc):
        doc["format_version"] = 2

    with pytest.raises(ModelFormatError, match="format_version 2"):
        load(_rewrite(path, tmp_path / "v2.gqm", v2))

    def other(doc):
        doc["format"] = "something-else"

    with pytest.raises(ModelFormatError, match="something-else"):
        load(_rewrite(path, tmp_path / "fmt.gqm", other))


def test_object_array_is_refused(saved, tmp_path):
    _, _, path = saved
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path) as zf:
        first = sorted(n for n in zf.namelist() if n.startswith("arrays/"))[0]
    bad = _rewrite(path, tmp_path / "pickle.gqm", replace={first: buf.getvalue()})
    with pytest.raises(ModelFormatError, match="pickle.gqm"):
        load(bad)


def test_array_shape_or_dtype_unlike_the_json_is_refused(saved, tmp_path):
    _, _, path = saved
    with zipfile.ZipFile(path) as zf:
        first = sorted(n for n in zf.namelist() if n.startswith("arrays/"))[0]
        a = np.load(io.BytesIO(zf.read(first)))
    buf = io.BytesIO()
    np.save(buf, np.concatenate([a.ravel(), a.ravel()]))
    bad = _rewrite(path, tmp_path / "shape.gqm", replace={first: buf.getvalue()})
    with pytest.raises(ModelFormatError, match="declares"):
        load(bad)


def test_unknown_type_member_and_dangling_tensor_are_refused(saved, tmp_path):
    _, _, path = saved

    def evil_type(doc):
        next(n for n in doc["nodes"] if n["op"] == "conv2d")["params"]["$type"] = "Popen"

    with pytest.raises(ModelFormatError, match="'Popen' is not allowed"):
        load(_rewrite(path, tmp_path / "type.gqm", evil_type))
    with pytest.raises(ModelFormatError, match="unexpected member"):
        load(_rewrite(path, tmp_path / "extra.gqm", extra={"../evil.py": b"x"}))

    def dangling(doc):
        doc["nodes"][3]["inputs"] = ["nowhere"]

    with pytest.raises(ModelFormatError, match="'nowhere'"):
        load(_rewrite(path, tmp_path / "dangling.gqm", dangling))


def test_params_are_rebuilt_so_their_checks_rerun(saved, tmp_path):
    _, _, path = saved

    def bad_clamp(doc):
        node = next(n for n in doc["nodes"] if n["op"] == "conv2d")
        node["params"]["fields"]["requant"]["fields"]["qmin"] = 500

    with pytest.raises(ModelFormatError, match="clamp bounds"):
        load(_rewrite(path, tmp_path / "clamp.gqm", bad_clamp))


def test_a_non_integer_zero_point_is_refused_at_load(saved, tmp_path):
    _, _, path = saved

    def float_zero_point(doc):
        node = next(n for n in doc["nodes"] if n["op"] == "conv2d")
        node["params"]["fields"]["requant"]["fields"]["zero_point"] = 1e30

    with pytest.raises(ModelFormatError, match="zero point must be an integer"):
        load(_rewrite(path, tmp_path / "zp.gqm", float_zero_point))


@pytest.mark.parametrize("op, key, value", [
    ("transpose", "perm", [0, 2, 2, 1]), ("transpose", "perm", [0, 1.5, 2, 3]),
    ("reshape", "shape", [0, "x"]), ("reshape", "shape", [0, -2]),
])
def test_layout_params_are_checked_at_load(saved, tmp_path, op, key, value):
    _, _, path = saved

    def edit(doc):
        node = next(n for n in doc["nodes"] if n["op"] == op)
        node["params"]["$dict"][key] = value

    with pytest.raises(ModelFormatError, match=f"invalid {op} params"):
        load(_rewrite(path, tmp_path / "layout.gqm", edit))


def test_oversized_members_are_refused_before_reading(saved, tmp_path, monkeypatch):
    import gpuquant.integer.file as model_file

    _, _, path = saved
    monkeypatch.setattr(model_file, "MAX_TOTAL_BYTES", 1000)
    with pytest.raises(ModelFormatError, match="uncompressed"):
        load(path)


def test_every_committed_op_params_type_round_trips(tmp_path):
    """Params of the importers' ops (pair lookup, float average pool, softmaxes) are stored too."""
    from gpuquant.integer.file import PARAMS_TYPE
    from gpuquant.integer.model import IntegerModel, IntegerNode, TensorSpec
    from gpuquant.ops.float_pool import FloatAvgPoolParams
    from gpuquant.ops.float_softmax import FloatSoftmaxParams
    from gpuquant.ops.pair_lookup import PairLookupParams
    from gpuquant.ops.softmax import tflite_softmax_params

    nodes = [
        IntegerNode("pair_lookup", "pl", ["a", "a"], ["b"], PairLookupParams(
            "pl", "int8", "int8", RNG.integers(-128, 128, (256, 256)).astype(np.int8))),
        IntegerNode("avg_pool2d_float", "ap", ["b"], ["c"], FloatAvgPoolParams(
            "ap", (2, 2), (2, 2), (0, 0, 0, 0), False, "int8",
            np.linspace(-1, 1, 256, dtype=np.float32), 0.0078125, -3, "int8")),
        IntegerNode("softmax", "sm", ["c"], ["d"],
                    tflite_softmax_params("sm", 0.1, 1.0, "int8", "int8")),
        IntegerNode("softmax_float", "smf", ["d"], ["e"], FloatSoftmaxParams(
            "smf", "int8", np.linspace(0, 1, 256, dtype=np.float32), 256.0, -128)),
    ]
    assert {n.op for n in nodes} <= set(PARAMS_TYPE)
    model = IntegerModel("ops", [TensorSpec("a", (None, 4, 4, 2), "int8", "NHWC")],
                         [TensorSpec("e", (None, 2, 2, 2), "int8", "NHWC")], nodes, {})
    save(model, tmp_path / "ops.gqm")
    _equal(model, load(tmp_path / "ops.gqm"))


def test_every_node_op_has_a_stored_params_type():
    from gpuquant.integer.file import LAYOUT_PARAMS, PARAMS_TYPE
    from gpuquant.integer.model import NODE_OPS

    assert set(NODE_OPS) == set(PARAMS_TYPE) | set(LAYOUT_PARAMS)

"""gpuquant.load picks the importer from the file's content; import gpuquant needs only NumPy."""

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import gpuquant
from gpuquant import ModelFormatError
from gpuquant.loader import model_kind

CASES = Path(__file__).resolve().parent / "cases"


def test_import_needs_only_numpy():
    code = (
        "import sys\n"
        "for m in ('onnx', 'onnxruntime', 'cupy', 'tflite', 'tqdm', 'matplotlib'):\n"
        "    sys.modules[m] = None\n"
        "import gpuquant\n"
        "print(gpuquant.get_backend('auto').name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "numpy"


def test_a_missing_extra_is_named(tmp_path):
    tflite_file, onnx_file = tmp_path / "m.tflite", tmp_path / "m.onnx"
    tflite_file.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(24))
    onnx_file.write_bytes(b"\x08\x07")
    code = (
        "import sys\n"
        "for m in ('onnx', 'tflite'):\n"
        "    sys.modules[m] = None\n"
        "import numpy as np, gpuquant\n"
        "calls = [lambda: gpuquant.load(sys.argv[1]), lambda: gpuquant.load(sys.argv[2]),\n"
        "         lambda: gpuquant.quantize_model(sys.argv[2], np.zeros((1, 2), np.float32))]\n"
        "for call in calls:\n"
        "    try:\n"
        "        call()\n"
        "    except gpuquant.MissingDependencyError as e:\n"
        "        assert isinstance(e, ImportError)\n"
        "        print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tflite_file), str(onnx_file)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "reading a TFLite model needs tflite, which is not installed; install it with "
        "pip install 'gpuquant[tflite]' (or pip install tflite)",
        *["reading an ONNX model needs onnx, which is not installed; install it with "
          "pip install 'gpuquant[onnx]' (or pip install onnx)"] * 2,
    ]


def test_tflite_by_content_and_rounding_switch(tmp_path):
    src = CASES / "tflite" / "model1_cnn_int8.tflite"
    renamed = tmp_path / "model.bin"  # the extension does not decide
    renamed.write_bytes(src.read_bytes())
    io = np.load(CASES / "tflite" / "model1_cnn_io.npz")
    x = io["input_int8"][3]
    for rounding, key in ((None, "output_int8_builtin_ref"), ("xnnpack", "output_int8_auto_xnnpack")):
        sess = gpuquant.InferenceSession(gpuquant.load(renamed, rounding=rounding), backend="numpy")
        y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        np.testing.assert_array_equal(y, io[key][3])


def test_qoperator_onnx_and_saved_round_trip(tmp_path):
    model = gpuquant.load(CASES / "onnx" / "cnn_qoperator_aint8_wint8_perchannel.onnx")
    io = np.load(CASES / "onnx" / "cnn_qoperator_aint8_wint8_perchannel_io.npz")
    path = tmp_path / "m.gq"
    gpuquant.save(model, path)
    sess = gpuquant.InferenceSession(path, backend="numpy")
    y = sess.run(None, {sess.get_inputs()[0].name: io["x"][5]})[0]
    np.testing.assert_array_equal(y, io["optall/y"][5])


def test_float_onnx_and_garbage_are_refused(tmp_path):
    with pytest.raises(ModelFormatError, match="float ONNX model"):
        gpuquant.load(CASES / "onnx" / "cnn_float.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01not a model at all")
    with pytest.raises(ModelFormatError, match="junk.onnx"):
        gpuquant.load(junk)
    with pytest.raises(ModelFormatError, match="cannot read"):
        gpuquant.load(tmp_path / "missing.gq")
    with pytest.raises(ValueError, match="TFLite models only"):
        gpuquant.load(CASES / "onnx" / "cnn_qoperator_aint8_wint8_perchannel.onnx", rounding="xnnpack")


def test_session_backend_from_environment(monkeypatch):
    model = CASES / "tflite" / "model1_cnn_int8.tflite"
    monkeypatch.setenv("GPUQUANT_BACKEND", "numpy")
    assert gpuquant.InferenceSession(model).backend.name == "numpy"
    monkeypatch.setenv("GPUQUANT_BACKEND", "cupy")
    ok, _ = gpuquant.backends.cupy_status()
    if not ok:
        with pytest.raises(gpuquant.BackendUnavailableError, match="GPUQUANT_BACKEND"):
            gpuquant.InferenceSession(model)


def test_empty_file_and_foreign_zip(tmp_path):
    empty = tmp_path / "empty.gq"
    empty.write_bytes(b"")
    with pytest.raises(ModelFormatError, match="empty"):
        gpuquant.load(empty)
    npz = tmp_path / "data.npz"
    np.savez(npz, input=np.zeros(3, np.float32))
    with pytest.raises(ModelFormatError, match="not a gpuquant model file"):
        gpuquant.load(npz)


def test_an_empty_zip_is_a_zip_without_model_json(tmp_path):
    path = tmp_path / "empty.zip"
    zipfile.ZipFile(path, "w").close()
    assert path.read_bytes()[:4] == b"PK\x05\x06"  # end of central directory record (APPNOTE 4.3.16)
    assert model_kind(path) == "zip"
    with pytest.raises(ModelFormatError, match="not a gpuquant model file: a zip without model.json"):
        gpuquant.load(path)


def test_nan_input_names_the_layer():
    sess = gpuquant.InferenceSession(
        CASES / "onnx" / "cnn_qoperator_aint8_wint8_perchannel.onnx", backend="numpy"
    )
    x = np.zeros((1, 3, 16, 16), np.float32)
    x[0, 1, 2, 3] = np.nan
    with pytest.raises(gpuquant.QuantizationError, match="x_QuantizeLinear.*1 values"):
        sess.run(None, {"x": x})


def test_session_takes_array_likes_and_returns_backend_arrays():
    sess = gpuquant.InferenceSession(CASES / "tflite" / "model1_cnn_int8.tflite", backend="numpy")
    io = np.load(CASES / "tflite" / "model1_cnn_io.npz")
    x = io["input_int8"][2]
    want = io["output_int8_builtin_ref"][2]
    name = sess.get_inputs()[0].name
    with pytest.raises(gpuquant.ShapeError, match="expected dtype int8, got int64"):
        sess.run(None, {name: x.tolist()})
    out = sess.run(None, {name: x}, device_outputs=True)[0]
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, want)
    torch = pytest.importorskip("torch", reason="torch tensors are the DLPack example")
    np.testing.assert_array_equal(sess.run(None, {name: torch.from_numpy(x)})[0], want)
    with pytest.raises(gpuquant.ShapeError, match=name):
        sess.run(None, {name: "not an array"})


@pytest.mark.parametrize(
    "case", ["onnx/cnn_qoperator_aint8_wint8_perchannel.onnx", "tflite/model1_cnn_int8.tflite"]
)
def test_corrupted_bytes_raise_gpuquant_errors_only(case, tmp_path):
    """Truncated copies and copies with 5 random bytes changed: a GpuquantError or a model."""
    rng = np.random.default_rng(0)
    raw = (CASES / case).read_bytes()
    for trial in range(60):
        data = bytearray(raw[: rng.integers(8, len(raw))] if trial % 2 else raw)
        if trial % 2 == 0:
            for pos in rng.integers(0, len(data), 5):
                data[pos] = rng.integers(0, 256)
        path = tmp_path / Path(case).name
        path.write_bytes(bytes(data))
        try:
            gpuquant.load(path)
        except gpuquant.GpuquantError:
            pass

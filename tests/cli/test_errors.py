"""Bad input: a clear ``gpuquant: error:`` line, exit status 2, no traceback."""

import re
import sys

import numpy as np
import pytest

from gpuquant.cli import main


def _fails(argv, capsys, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err
    last = err.replace("\r", "\n").strip().splitlines()[-1]  # after any progress bar
    assert last.startswith("gpuquant: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err
    return err


def test_missing_model_file(mnist_files, tmp_path, capsys):
    _fails(["compare", str(tmp_path / "none.onnx"), "--data", mnist_files["test"],
            "--calib", mnist_files["calib"]], capsys, "model file", "not found")


def test_corrupt_onnx_model(mnist_files, tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf model")
    _fails(["quantize", str(bad), "--calib", mnist_files["calib"], "-o", str(tmp_path / "o.gq")],
           capsys)


def test_corrupt_gq_model(tmp_path, capsys):
    bad = tmp_path / "bad.gq"
    bad.write_bytes(b"PK\x03\x04truncated")
    np.savez(tmp_path / "x.npz", input=np.zeros((1, 1, 28, 28), np.float32))
    _fails(["run", str(bad), "--input", str(tmp_path / "x.npz"), "-o", str(tmp_path / "y.npz")],
           capsys)


def test_missing_data_file(mnist_files, tmp_path, capsys):
    _fails(["compare", mnist_files["model"], "--data", str(tmp_path / "none.npz"),
            "--calib", mnist_files["calib"]], capsys, "data file", "not found")


def test_npz_without_the_named_input(mnist_files, tmp_path, capsys):
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 1, 28, 28), np.float32),
             b=np.zeros((2, 1, 28, 28), np.float32))
    _fails(["quantize", mnist_files["model"], "--calib", str(tmp_path / "two.npz"),
            "-o", str(tmp_path / "o.gq")], capsys, "no array named 'input'", "['a', 'b']")


def test_wrong_input_shape(mnist_files, tmp_path, capsys):
    np.savez(tmp_path / "flat.npz", input=np.zeros((4, 784), np.float32),
             labels=np.zeros(4, np.int64))
    _fails(["compare", mnist_files["model"], "--data", str(tmp_path / "flat.npz"),
            "--calib", mnist_files["calib"], "--calib-limit", "20"], capsys, "input", "(4, 784)")


def test_input_name_not_in_the_file(mnist_files, tmp_path, capsys):
    _fails(["quantize", mnist_files["model"], "--calib", mnist_files["calib"],
            "--input-name", "image", "-o", str(tmp_path / "o.gq")], capsys,
           "no array named 'image'", "['input']")


def test_model_without_data_is_a_usage_error(mnist_files, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", mnist_files["model"]])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "needs --data" in err and err.startswith("usage: gpuquant compare ")


def test_run_input_of_the_wrong_shape(mnist_gq, tmp_path, capsys):
    np.savez(tmp_path / "x.npz", input=np.zeros((2, 784), np.float32))
    err = _fails(["run", str(mnist_gq), "--input", str(tmp_path / "x.npz"),
                  "-o", str(tmp_path / "y.npz")], capsys, "input", "784")
    assert err.startswith("gpuquant: error: ")  # no progress bar before the message


def test_run_input_file_without_the_model_input(mnist_gq, tmp_path, capsys):
    np.savez(tmp_path / "x.npz", a=np.zeros((2, 1, 28, 28), np.float32),
             b=np.zeros((2, 1, 28, 28), np.float32))
    _fails(["run", str(mnist_gq), "--input", str(tmp_path / "x.npz"),
            "-o", str(tmp_path / "y.npz")], capsys, "lacks model input(s) ['input']")


@pytest.mark.parametrize("values, fragment", [
    (np.full((3, 1, 28, 28), np.nan, np.float32), "NaN or infinite"),
    (np.zeros((0, 1, 28, 28), np.float32), "at least one sample"),
])
def test_unusable_calibration_data(mnist_files, tmp_path, capsys, values, fragment):
    np.savez(tmp_path / "c.npz", input=values)
    _fails(["quantize", mnist_files["model"], "--calib", str(tmp_path / "c.npz"),
            "-o", str(tmp_path / "o.gq")], capsys, fragment)


def test_raw_uint8_pixels_are_a_dtype_error(mnist_files, tmp_path, capsys):
    np.savez(tmp_path / "c.npz", input=np.zeros((3, 1, 28, 28), np.uint8))
    _fails(["quantize", mnist_files["model"], "--calib", str(tmp_path / "c.npz"),
            "-o", str(tmp_path / "o.gq")], capsys, "expected dtype float32, got uint8")


def test_report_without_matplotlib_fails_before_any_work(monkeypatch, tmp_path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    _fails(["compare", "--report", str(tmp_path / "r")], capsys, "gpuquant[report]")
    assert not (tmp_path / "r").exists()


def test_cupy_backend_without_a_gpu(capsys):
    from gpuquant.backends import cupy_status

    if cupy_status()[0]:
        pytest.skip("a CUDA device is present, so the cupy backend is available")
    _fails(["compare", "--backend", "cupy"], capsys, "cupy backend requested")


def test_exclude_of_an_unknown_node(mnist_files, tmp_path, capsys):
    err = _fails(["quantize", mnist_files["model"], "--calib", mnist_files["calib"],
                  "--calib-limit", "10", "--exclude", "fc_layers.2", "-o", str(tmp_path / "o.gq")],
                 capsys, "['fc_layers.2']", "'/fc_layers/fc_layers.2/Gemm'")
    assert "calibrating" not in err


def test_output_path_that_cannot_be_written(mnist_files, tmp_path, capsys):
    (tmp_path / "file").write_text("a file, not a folder")
    _fails(["quantize", mnist_files["model"], "--calib", mnist_files["calib"],
            "-o", str(tmp_path / "file" / "o.gq")], capsys, "file")


def test_kernels_bad_arch(capsys):
    _fails(["kernels", "--compile", "--arch", "bogus"], capsys, "sm_90", "bogus")


def test_kernels_without_cupy(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy_backends", None)
    monkeypatch.setitem(sys.modules, "cupy_backends.cuda.libs", None)
    _fails(["kernels", "--compile", "--arch", "sm_80"], capsys, "gpuquant[cuda12]")


def test_empty_model_file(tmp_path, capsys):
    empty = tmp_path / "empty.gq"
    empty.write_bytes(b"")
    _fails(["run", str(empty), "--input", str(empty), "-o", str(tmp_path / "y.npz")],
           capsys, "empty.gq", "empty")


@pytest.mark.parametrize("argv", [
    ["run", "m.gq", "--input", "x.npz", "-o", "y.npz"], ["compare"], ["bench"],
])
def test_an_unknown_backend_in_the_environment(monkeypatch, capsys, argv):
    monkeypatch.setenv("GPUQUANT_BACKEND", "tpu")
    _fails(argv, capsys, "got 'tpu' (from GPUQUANT_BACKEND)")


def test_info_reports_an_unknown_backend_in_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("GPUQUANT_BACKEND", "NumPy")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "got 'NumPy' (from GPUQUANT_BACKEND; names are lower case)" in out


def test_bench_follows_the_backend_of_the_environment(monkeypatch, capsys):
    from gpuquant.backends import cupy_status

    if cupy_status()[0]:
        pytest.skip("a CUDA device is present, so the cupy backend is available")
    monkeypatch.setenv("GPUQUANT_BACKEND", "cupy")
    _fails(["bench"], capsys, "cupy backend requested (GPUQUANT_BACKEND)")


@pytest.mark.parametrize("package, frontend, suffix, head", [
    ("tflite", "gpuquant.frontends.tflite_model", ".tflite", b"\x1c\x00\x00\x00TFL3"),
    ("onnx", "gpuquant.frontends.onnx_float", ".onnx", b"\x08\x07"),
], ids=["tflite", "onnx"])
def test_run_without_the_models_extra(monkeypatch, tmp_path, capsys, package, frontend, suffix,
                                      head):
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.delitem(sys.modules, frontend, raising=False)
    model = tmp_path / f"m{suffix}"
    model.write_bytes(head + bytes(24))
    np.savez(tmp_path / "x.npz", input=np.zeros((1, 4), np.float32))
    _fails(["run", str(model), "--input", str(tmp_path / "x.npz"), "-o", str(tmp_path / "y.npz")],
           capsys, f"pip install 'gpuquant[{package}]'")


def test_quantize_without_onnx(monkeypatch, mnist_files, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.delitem(sys.modules, "gpuquant.frontends.onnx_float", raising=False)
    _fails(["quantize", mnist_files["model"], "--calib", mnist_files["calib"],
            "-o", str(tmp_path / "o.gq")], capsys, "pip install 'gpuquant[onnx]'")


@pytest.mark.parametrize("command", ["quantize", "compare"])
def test_an_already_quantized_model_points_to_run(mnist_files, tmp_path, capsys, command):
    from pathlib import Path

    model = Path(__file__).resolve().parents[1] / "cases" / "onnx" / \
        "cnn_qoperator_aint8_wint8_perchannel.onnx"
    extra = ["-o", str(tmp_path / "o.gq")] if command == "quantize" else \
        ["--data", mnist_files["test"]]
    _fails([command, str(model), "--calib", mnist_files["calib"], *extra], capsys,
           "is an already quantized ONNX model", "`gpuquant run`")


def test_kernels_compile_failure_shows_nvrtcs_reason(tmp_path, capsys):
    import json

    pytest.importorskip("cupy_backends.cuda.libs.nvrtc", reason="CuPy's NVRTC bindings")
    js = tmp_path / "k.json"
    assert main(["kernels", "--compile", "--arch", "sm_50", "--json", str(js)]) == 2
    out, err = capsys.readouterr()
    assert "gpuquant: error: kernels failed to compile: gemm.cu (sm_50)" in err
    row = next(line for line in out.splitlines() if line.startswith("gemm.cu"))
    assert re.search(r'FAILED: igemm\.cuh\(\d+\): error: identifier "__dp4a" is undefined', row)
    failed = {r["file"]: r["error"] for r in json.loads(js.read_text())["results"]
              if not r["ok"]}
    assert "NVRTC_ERROR_COMPILATION" in failed["gemm.cu"]
    assert 'error: identifier "__dp4a" is undefined' in failed["gemm.cu"]


def test_short_reason_is_the_first_compiler_error():
    from gpuquant.cli.kernels import REASON_WIDTH, short_reason

    log = ("NVRTC failed on conv.cu for sm_50: NVRTC_ERROR_COMPILATION (6)\n"
           "nvrtc: warning: Architectures prior to '<compute/sm>_75' are deprecated\n"
           "/src/cuda_src/igemm.cuh(139): error: identifier \"__dp4a\" is undefined\n"
           "    for (...)\n")
    assert short_reason(log) == 'igemm.cuh(139): error: identifier "__dp4a" is undefined'
    assert short_reason("no compiler log " * 20).endswith("...")
    assert len(short_reason("no compiler log " * 20)) == REASON_WIDTH


def test_run_rounding_of_a_model_that_is_not_tflite(mnist_gq, tmp_path, capsys):
    np.savez(tmp_path / "x.npz", input=np.zeros((1, 1, 28, 28), np.float32))
    _fails(["run", str(mnist_gq), "--input", str(tmp_path / "x.npz"), "-o",
            str(tmp_path / "y.npz"), "--rounding", "xnnpack"], capsys,
           "rounding='xnnpack' applies to TFLite models only")


def test_a_text_file_as_data_is_not_an_npz_and_no_pickle_advice(mnist_gq, tmp_path, capsys):
    text = tmp_path / "r.onnx"
    text.write_text("# gpuquant\n")
    err = _fails(["run", str(mnist_gq), "--input", str(text), "-o", str(tmp_path / "y.npz")],
                 capsys, f"{str(text)!r} is not an .npz archive", "not a zip header")
    assert "pickle" not in err


def test_an_empty_model_file_is_named_as_empty(mnist_files, tmp_path, capsys):
    empty = tmp_path / "e.onnx"
    empty.write_bytes(b"")
    _fails(["quantize", str(empty), "--calib", mnist_files["calib"], "-o", str(tmp_path / "x.gq")],
           capsys, f"model file {str(empty)!r} is empty")


def test_an_integer_model_given_to_compare_says_to_run_it(mnist_files, mnist_gq, capsys):
    err = _fails(["compare", str(mnist_gq), "--data", mnist_files["test"],
                  "--calib", mnist_files["calib"]], capsys,
                 "this is an integer gpuquant model", "need a float ONNX model", "`gpuquant run`")
    assert "Wire format" not in err

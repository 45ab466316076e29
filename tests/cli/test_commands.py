"""info, quantize, run, bench and kernels through ``main([...])`` in-process."""

import json

import numpy as np
import pytest

from gpuquant import __version__
from gpuquant.cli import main


def test_info_json(tmp_path, capsys):
    assert main(["info", "--json", str(tmp_path / "i.json")]) == 0
    doc = json.loads((tmp_path / "i.json").read_text())
    assert doc["version"] and doc["backend"] in ("numpy", "cupy")
    assert set(doc["packages"]) >= {"numpy", "cupy", "onnx", "onnxruntime"}
    assert doc["cpu_int8_core"] in ("vnni", "avx2", "blas") and doc["cpu_int8_core_reason"]
    out = capsys.readouterr().out
    assert "backend choice" in out and "onnxruntime" in out and "CPU int8 core" in out


def test_quantize_summary_and_json(mnist_files, tmp_path, capsys):
    out, js = tmp_path / "m.gq", tmp_path / "q.json"
    assert main(["quantize", mnist_files["model"], "--calib", mnist_files["calib"],
                 "--calib-limit", "100", "--exclude", "/fc_layers/fc_layers.2/Gemm",
                 "-o", str(out), "--json", str(js)]) == 0
    doc = json.loads(js.read_text())
    assert out.is_file() and doc["sizes"]["int8_file_bytes"] == out.stat().st_size
    assert doc["sizes"]["int8_file_bytes"] < doc["sizes"]["float_weights_bytes"] / 2
    assert doc["ops"]["conv2d"] == 3
    assert doc["nodes"] == 13 and doc["quantized_nodes"] == 12
    assert [e["name"] for e in doc["float_nodes"]] == ["/fc_layers/fc_layers.2/Gemm"]
    assert doc["settings"]["calibration_images"] == 100
    text = capsys.readouterr().out
    assert "Left in float" in text and "excluded by the user" in text


def test_run_writes_outputs(mnist_files, mnist_gq, tmp_path, capsys, monkeypatch):
    x = np.load(mnist_files["test"])["input"][:64]
    np.savez(tmp_path / "x.npz", input=x)
    y_path = tmp_path / "y.npz"
    monkeypatch.setenv("GPUQUANT_BACKEND", "numpy")
    assert main(["run", str(mnist_gq), "--input", str(tmp_path / "x.npz"), "-o", str(y_path),
                 "--batch-size", "20", "--json", str(tmp_path / "r.json")]) == 0
    logits = np.load(y_path)["logits"]
    assert logits.shape == (64, 10) and logits.dtype == np.float32
    assert np.mean(logits.argmax(1) == mnist_files["labels"][:64]) > 0.9
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["samples"] == 64 and doc["backend"] == "numpy"


def test_bench_json(tmp_path, capsys):
    js = tmp_path / "b.json"
    assert main(["bench", "--batch-size", "16", "--repeat", "1", "--calib-limit", "100",
                 "--backend", "numpy", "--json", str(js)]) == 0
    doc = json.loads(js.read_text())
    (row,) = doc["throughput"]
    assert row["backend"] == "numpy" and row["float_images_per_s"] > 0
    assert row["int8_images_per_s"] > 0
    assert doc["throughput_timing"]["batch_size"] == 16
    assert "one batch of 16 samples" in doc["throughput_timing"]["float"]
    assert "quantizing it, dequantizing the output" in doc["throughput_timing"]["int8"]
    out = capsys.readouterr().out
    assert "int8 images/s" in out and "what is timed" in out


def test_kernels_list(capsys):
    assert main(["kernels"]) == 0
    assert ".cu" in capsys.readouterr().out


def test_python_dash_m_entry_point():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "gpuquant", "--version"], cwd=root,
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"gpuquant {__version__}"


def test_bench_user_model_times_the_calibration_samples(mnist_files, tmp_path):
    js = tmp_path / "b.json"
    assert main(["bench", mnist_files["model"], "--calib", mnist_files["calib"],
                 "--batch-size", "8", "--calib-batch-size", "20", "--repeat", "1",
                 "--calib-limit", "50", "--backend", "numpy", "--json", str(js)]) == 0
    doc = json.loads(js.read_text())
    assert doc["batch_size"] == 8 and doc["settings"]["calibration_images"] == 50
    assert doc["settings"]["calibration_batch_size"] == 20


def test_batch_size_is_the_inference_batch_and_calib_batch_size_the_calibration_batch(capsys):
    from gpuquant.calibrate.calibrator import CALIBRATION_BATCH_SIZE
    from gpuquant.cli import build_parser

    parser = build_parser()
    quantize = ["quantize", "m.onnx", "--calib", "c.npz", "-o", "m.gq"]
    run = ["run", "m.gq", "--input", "x.npz", "-o", "y.npz"]
    for argv in (["bench"], ["compare"], run):
        assert parser.parse_args(argv + ["--batch-size", "7"]).batch_size == 7
    for argv in (["bench"], ["compare"], quantize):
        assert parser.parse_args(argv).calib_batch_size == CALIBRATION_BATCH_SIZE
        assert parser.parse_args(argv + ["--calib-batch-size", "9"]).calib_batch_size == 9
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(quantize + ["--batch-size", "7"])
    assert exc.value.code == 2 and "unrecognized arguments: --batch-size" in capsys.readouterr().err


def test_bench_model_without_calibration_is_a_usage_error(mnist_files, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", mnist_files["model"]])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "needs --calib" in err
    assert err.startswith("usage: gpuquant bench ")


def test_the_cli_calibrates_as_quantize_model_does(mnist_files, tmp_path, capsys):
    """One default calibration batch: moving_average depends on it (300 samples are one batch
    of 500 but two of 256), so the CLI's model must equal quantize_model's."""
    import inspect

    import gpuquant
    from gpuquant.calibrate.calibrator import CALIBRATION_BATCH_SIZE

    assert inspect.signature(gpuquant.quantize_model).parameters["batch_size"].default == \
        CALIBRATION_BATCH_SIZE
    out = tmp_path / "m.gq"
    assert main(["quantize", mnist_files["model"], "--calib", mnist_files["calib"],
                 "--method", "moving_average", "-o", str(out)]) == 0
    x = np.load(mnist_files["calib"])["input"]
    api = gpuquant.quantize_model(mnist_files["model"], x, "moving_average")
    run = [gpuquant.InferenceSession(m, backend="numpy").run(None, {"input": x[:50]})[0]
           for m in (gpuquant.load(out), api)]
    np.testing.assert_array_equal(*run)
    for command in ("quantize", "compare", "bench"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert f"(default: {CALIBRATION_BATCH_SIZE}, as quantize_model" in \
            " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("rounding, key", [(None, "output_int8_builtin_ref"),
                                           ("xnnpack", "output_int8_auto_xnnpack")])
def test_run_a_tflite_model_with_either_rounding(tmp_path, rounding, key):
    from pathlib import Path

    cases = Path(__file__).resolve().parents[1] / "cases" / "tflite"
    io = np.load(cases / "model1_cnn_io.npz")
    np.savez(tmp_path / "x.npz", x=io["input_int8"][:, 0])
    extra = [] if rounding is None else ["--rounding", rounding]
    assert main(["run", str(cases / "model1_cnn_int8.tflite"), "--input",
                 str(tmp_path / "x.npz"), "-o", str(tmp_path / "y.npz"), "--backend", "numpy",
                 *extra]) == 0
    (y,) = np.load(tmp_path / "y.npz").values()
    np.testing.assert_array_equal(y, io[key][:, 0])


def test_info_lists_tflite_and_what_draws_progress_bars(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "tflite" in out
    assert "progress bars   plain text (tqdm not installed)" in out


def test_run_usage_names_every_model_format(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "[--json PATH] MODEL" in text
    assert ".gq, a quantized ONNX model (QDQ or QOperator) or a full-integer .tflite" in text
    assert "--rounding {reference,xnnpack}" in text


def test_every_option_of_every_command_has_help(capsys):
    from gpuquant.cli import COMMANDS, build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    assert set(commands) == set(COMMANDS)
    missing = [f"{name} {action.option_strings or action.dest}"
               for name, parser in commands.items() for action in parser._actions
               if not action.help]
    assert missing == []
    for command in COMMANDS:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--json PATH also write the results as JSON to PATH" in text
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "--repeat N timed runs per measurement (default: 5)" in \
        " ".join(capsys.readouterr().out.split())

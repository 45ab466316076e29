"""``gpuquant compare`` in-process: the built-in default on a subset, a user model, the report."""

import json

import pytest

from gpuquant.cli import main

KEYS = ("float_accuracy", "int8_accuracy", "agreement", "backend", "images", "per_layer_sqnr",
        "cosine", "sqnr_db", "sizes", "throughput")


def test_default_compare_on_500_images(tmp_path, capsys):
    js = tmp_path / "c.json"
    assert main(["compare", "--limit", "500", "--calib-limit", "500", "--layer-images", "100",
                 "--backend", "numpy", "--json", str(js)]) == 0
    doc = json.loads(js.read_text())
    assert all(key in doc for key in KEYS)
    assert doc["images"] == 500 and doc["backend"] == "numpy"
    assert doc["float_accuracy"] > 0.97
    assert abs(doc["int8_accuracy"] - doc["float_accuracy"]) <= 0.01
    assert doc["agreement"] > 0.98 and doc["cosine"] > 0.99 and doc["sqnr_db"] > 20
    layers = doc["per_layer_sqnr"]
    assert len(layers) >= 8 and all(layer["sqnr_db"] > 20 for layer in layers)
    assert doc["sizes"]["int8_file_bytes"] < doc["sizes"]["float_weights_bytes"]
    assert doc["throughput"][0]["backend"] == "numpy"
    out = capsys.readouterr().out
    for title in ("Outputs", "Per-layer SQNR", "Model size", "Throughput", "what is timed"):
        assert title in out


def test_compare_user_files_and_report(mnist_files, tmp_path):
    pytest.importorskip("matplotlib", reason="the HTML report needs matplotlib (extra 'report')")
    js, report = tmp_path / "c.json", tmp_path / "report"
    assert main(["compare", mnist_files["model"], "--data", mnist_files["test"],
                 "--calib", mnist_files["calib"], "--limit", "60", "--batch-size", "25",
                 "--layer-images", "30", "--backend", "numpy", "--activation-dtype", "uint8",
                 "--method", "percentile", "--per-tensor", "--rounding", "single",
                 "--json", str(js), "--report", str(report)]) == 0
    doc = json.loads(js.read_text())
    assert doc["images"] == 60 and doc["per_layer_images"] == 50  # whole batches of 25
    timing = doc["throughput_timing"]
    assert timing["batch_size"] == 25 and "batches of 25" in timing["float"]
    assert "quantizing it, dequantizing the output" in timing["int8"]
    assert "first 50 samples keep every tensor" in timing["per_layer"]
    assert doc["settings"]["calibration_batch_size"] == 256
    assert doc["settings"] == {**doc["settings"], "activation_dtype": "uint8",
                               "method": "percentile", "per_channel": False, "rounding": "single"}
    page = (report / "index.html").read_text()
    assert page.count("data:image/png;base64,") >= 2
    assert "timing: int8" in page


def test_compare_without_labels_has_no_accuracy(mnist_files, tmp_path):
    import numpy as np

    np.savez(tmp_path / "nolabels.npz", input=np.load(mnist_files["test"])["input"][:20])
    js = tmp_path / "c.json"
    assert main(["compare", mnist_files["model"], "--data", str(tmp_path / "nolabels.npz"),
                 "--calib", mnist_files["calib"], "--calib-limit", "50", "--layer-images", "0",
                 "--backend", "numpy", "--json", str(js)]) == 0
    doc = json.loads(js.read_text())
    assert doc["float_accuracy"] is None and doc["int8_accuracy"] is None
    assert doc["per_layer_sqnr"] == [] and 0 <= doc["agreement"] <= 1

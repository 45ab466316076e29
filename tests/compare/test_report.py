"""The HTML report from a hand-built comparison (no converter needed)."""

import numpy as np
import pytest

from gpuquant.compare.layers import LayerError
from gpuquant.compare.metrics import ErrorSums
from gpuquant.compare.result import Comparison, Throughput


def _layer(name: str, noise: float, rng) -> LayerError:
    f = rng.normal(size=2000).astype(np.float32)
    q = np.round(f / noise) * noise
    layer = LayerError(name, name + "_q", "conv2d", noise, ErrorSums().add(f, q))
    layer.float_sample, layer.int8_sample = f, q.astype(np.float32)
    return layer


def _comparison() -> Comparison:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(20, 10))
    return Comparison(
        dataset="toy", images=20, backend="numpy", backend_reason="numpy requested",
        float_accuracy=0.95, int8_accuracy=0.9, agreement=0.95,
        output=ErrorSums().add(logits, logits + 0.01),
        layers=[_layer(f"t{i}", 0.02 * (i + 1), rng) for i in range(6)], layer_images=20,
        throughput=[Throughput("numpy", 100.0, 50.0)],
        sizes={"float_weights_bytes": 4000, "int8_file_bytes": 1200},
        float_nodes=[{"name": "sm", "op_type": "Softmax", "reason": "excluded by the user"}],
    )


def test_json_form_has_the_required_keys():
    doc = _comparison().to_json()
    for key in ("float_accuracy", "int8_accuracy", "agreement", "backend", "images",
                "per_layer_sqnr", "cosine", "sqnr_db", "sizes", "throughput"):
        assert key in doc
    assert [e["tensor"] for e in doc["per_layer_sqnr"]] == [f"t{i}" for i in range(6)]


def test_infinite_sqnr_is_null_in_json():
    c = _comparison()
    c.output = ErrorSums().add(np.ones(3), np.ones(3))
    assert c.to_json()["sqnr_db"] is None


def test_report_written(tmp_path):
    pytest.importorskip("matplotlib", reason="the HTML report needs matplotlib (extra 'report')")
    from gpuquant.compare.report import WORST_LAYERS, write_report

    page = write_report(_comparison(), tmp_path / "rep")
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 1 + WORST_LAYERS
    assert (tmp_path / "rep" / "sqnr_per_layer.png").stat().st_size > 1000
    assert "t5" in text and "90.00%" in text and "excluded by the user" in text


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    import sys

    from gpuquant.compare.report import figure_class
    from gpuquant.errors import GpuquantError

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(GpuquantError, match=r"pip install 'gpuquant\[report\]'"):
        figure_class()

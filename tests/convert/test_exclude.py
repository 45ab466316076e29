"""``exclude`` names are checked against the graph before any calibration, and a wrong one is
answered with the valid names."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from gpuquant.convert import api
from gpuquant.convert.converter import LIST_ALL_NODES, check_exclude
from gpuquant.errors import QuantizationError
from gpuquant.frontends.onnx_float import load_onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "graph"))
from onnx_cases import make_model  # noqa: E402


def _chain(n: int):
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name=f"block{i}/relu")
             for i in range(n)]
    return load_onnx(make_model(nodes, [("t0", [None, 4])], [(f"t{n}", None)]))


def test_known_names_pass():
    assert check_exclude(_chain(3), ["block1/relu"]) == {"block1/relu"}


def test_a_short_graph_lists_every_node():
    with pytest.raises(QuantizationError) as exc:
        check_exclude(_chain(3), ["block1/relu", "relu9"])
    assert str(exc.value) == (
        "exclude names nodes not in the graph: ['relu9']; the graph's nodes are "
        "['block0/relu', 'block1/relu', 'block2/relu']"
    )


def test_a_long_graph_lists_the_closest_names_and_the_count():
    n = LIST_ALL_NODES + 5
    with pytest.raises(QuantizationError) as exc:
        check_exclude(_chain(n), ["block17"])
    message = str(exc.value)
    assert message.startswith("exclude names nodes not in the graph: ['block17']; closest "
                              "node names: ['block17/relu'")
    assert message.endswith(f"the graph has {n} nodes")
    assert "block3/relu" not in message


def test_quantize_model_checks_before_calibrating(monkeypatch):
    def calibrate(*args, **kwargs):
        raise AssertionError("calibration ran before exclude was checked")

    monkeypatch.setattr(api, "calibrate_with_means", calibrate)
    with pytest.raises(QuantizationError, match="no_such_node"):
        api.quantize_model(_chain(2), np.zeros((1, 4), np.float32), exclude=["no_such_node"])

"""The one way gpuquant's asset scripts export a torch model to ONNX.

TorchScript exporter (plain graph, no onnxscript), constant folding, input "input" and output
"logits" with a dynamic batch dimension "N", full ONNX check, and a fixed producer string and doc
string so the file is byte-stable across torch versions.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import torch


def export_logits_model(
    model: torch.nn.Module, example: torch.Tensor, path: Path, opset: int, producer: str, doc: str
) -> onnx.ModelProto:
    """Write ``model`` (input -> logits) to ``path`` as ONNX ``opset``; returns the saved proto."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model, (example,), str(path),
        dynamo=False,
        export_params=True,
        opset_version=opset,
        do_constant_folding=True,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
    )
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    proto.producer_name = producer
    proto.producer_version = ""
    proto.doc_string = doc
    onnx.save(proto, str(path))
    return proto

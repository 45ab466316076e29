"""Models as torch's ONNX exporter writes them (shape subgraphs for F.pad and x.view(n, -1),
Constant nodes, BatchNormalization, HardSwish/HardSigmoid, ceil-mode pools), against
onnxruntime at two batch sizes."""

import numpy as np
import onnxruntime as ort
import pytest

from gpuquant.frontends.onnx_float import load_onnx
from gpuquant.graph.executor import run_graph

torch = pytest.importorskip("torch")
nn = torch.nn


class SqueezeExcite(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // 2, 1)
        self.expand = nn.Conv2d(channels // 2, channels, 1)

    def forward(self, x):
        w = x.mean((2, 3), keepdim=True)
        return x * nn.functional.hardsigmoid(self.expand(torch.relu(self.reduce(w))))


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.se = SqueezeExcite(16)
        self.pointwise = nn.Conv2d(16, 24, 1)
        self.avg = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False)
        self.max = nn.MaxPool2d(2, ceil_mode=True)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(24 * 3 * 3, 10)

    def forward(self, x):
        x = nn.functional.relu6(self.bn1(self.conv(x)))
        y = nn.functional.hardswish(self.bn2(self.depthwise(x)))
        y = self.se(y) + x
        y = self.max(self.avg(self.pointwise(y)))
        y = nn.functional.pad(y, (0, 1, 0, 1))[:, :, :3, :3]
        y = torch.cat([y[:, :12], y[:, 12:]], 1)
        y = y.view(y.size(0), -1)
        return torch.softmax(self.fc(self.drop(y)), -1)


def export(opset, path, keep_batchnorm):
    torch.manual_seed(0)
    model = SmallNet().eval()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    torch.onnx.export(
        model, (torch.randn(2, 3, 20, 20),), str(path), opset_version=opset, dynamo=False,
        input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
        do_constant_folding=not keep_batchnorm,
    )


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize("opset,keep_batchnorm", [(11, False), (13, True), (17, False)])
def test_torch_export_matches_onnxruntime(tmp_path, opset, keep_batchnorm):
    path = tmp_path / "net.onnx"
    export(opset, path, keep_batchnorm)
    graph = load_onnx(path)
    ops = [n.op_type for n in graph.nodes]
    assert ("BatchNormalization" in ops) == keep_batchnorm
    assert not {"Shape", "Gather", "ConstantOfShape", "Constant", "Dropout"} & set(ops)
    assert graph.shapes["y"] == (None, 10)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 20, 20)).astype(np.float32)
        expected = session.run(["y"], {"x": x})[0]
        got = run_graph(graph, {"x": x})["y"]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)

"""PyTorch QAT: the autograd op against the NumPy reference, prepare(), export, and agreement
of the simulated forward with the integer model built from the exported QDQ file."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is the optional QAT extra")
nn = torch.nn
F = torch.nn.functional

from gpuquant.backends import get_backend  # noqa: E402
from gpuquant.frontends.onnx_qdq import import_qdq  # noqa: E402
from gpuquant.qat.fake_quant import fake_quant as reference_fake_quant  # noqa: E402
from gpuquant.qat.fake_quant import fake_quant_gradient  # noqa: E402
from gpuquant.qat.export import export_qdq  # noqa: E402
from gpuquant.qat.prepare import fake_quant_modules, prepare  # noqa: E402
from gpuquant.qat.torch_ops import (  # noqa: E402
    FakeQuantize,
    QuantConv2d,
    SharedFakeQuantize,
    fake_quant,
)
from gpuquant.quant.params import dequantize  # noqa: E402
from gpuquant.runtime.executor import execute  # noqa: E402


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("narrow", [False, True])
@pytest.mark.parametrize("axis", [None, 1])
def test_autograd_matches_numpy_reference(bits, narrow, axis):
    rng = np.random.default_rng(bits + 10 * narrow)
    x = rng.normal(0, 3, (4, 3, 5)).astype(np.float32)
    channels = 1 if axis is None else 3
    lo = -rng.uniform(0.1, 4, channels).astype(np.float32)
    hi = rng.uniform(0.1, 4, channels).astype(np.float32)
    g = rng.normal(size=x.shape).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    lot, hit = torch.tensor(lo, requires_grad=True), torch.tensor(hi, requires_grad=True)
    y = fake_quant(xt, lot, hit, bits, narrow, axis)
    y.backward(torch.tensor(g))
    np.testing.assert_array_equal(y.detach().numpy(),
                                  reference_fake_quant(x, lo, hi, bits, narrow, axis))
    dx, dmin, dmax = fake_quant_gradient(g, x, lo, hi, bits, narrow, axis)
    np.testing.assert_array_equal(xt.grad.numpy(), dx)
    np.testing.assert_allclose(lot.grad.numpy(), dmin, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(hit.grad.numpy(), dmax, rtol=1e-6, atol=1e-6)


def test_autograd_tensorflow_known_answer_and_float32_zero_point():
    # TensorFlow's NudgedUp_4Bits case, and the float32-decided zero point of test_fake_quant.
    y = fake_quant(torch.tensor([-0.6, -0.5, -0.24, 0.0, 7.0, 7.1]), torch.tensor([-0.4]),
                   torch.tensor([7.1]), 4)
    np.testing.assert_allclose(y.numpy(), [-0.5, -0.5, 0.0, 0.0, 7.0, 7.0], atol=1e-6)
    y = fake_quant(torch.tensor([-0.1]), torch.tensor([-0.05]), torch.tensor([25.45]))
    assert float(y[0]) == -np.float32(0.1)


def test_fake_quantize_moving_average_and_freeze():
    fq = FakeQuantize(8, decay=0.5, freeze_after=2)
    fq.train()
    for v in (2.0, 4.0, 100.0):
        fq(torch.tensor([-1.0, v]))
    assert fq.frozen
    assert fq.max_val.tolist() == [3.0] and fq.min_val.tolist() == [-1.0]
    fq.eval()
    fq(torch.tensor([50.0]))
    assert fq.max_val.tolist() == [3.0]


class Net(nn.Module):
    """Conv+BN+ReLU, residual add + ReLU, max pool, average pool, global pool, flatten, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AvgPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = F.relu(self.bn1(self.c1(x)))
        z = self.relu(self.c2(y) + y)
        z = self.pool(F.max_pool2d(z, 2))
        return self.fc(torch.flatten(self.gap(z), 1))


def _trained(num_bits: int, steps: int = 4):
    torch.manual_seed(0)
    x = torch.randn(8, 3, 16, 16)
    gm = prepare(Net(), x, num_bits)
    opt = torch.optim.SGD(gm.parameters(), lr=0.01)
    gm.train()
    for _ in range(steps):
        opt.zero_grad()
        gm(torch.randn(8, 3, 16, 16)).square().mean().backward()
        opt.step()
    return gm.eval()


def test_prepare_inserts_fake_quant_where_the_converter_quantizes():
    gm = _trained(8, steps=1)
    after = {}
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(
                gm.get_submodule(node.target), (FakeQuantize, SharedFakeQuantize)):
            src = node.args[0]
            after[src.target if src.op == "placeholder" else src.name] = type(
                gm.get_submodule(node.target)).__name__
    # input; ReLU after conv1 (fused); conv2 (feeds the add); ReLU after the add; average pool
    # on its input's grid; global pool; linear. Not after conv1, the add or the max pool.
    assert after == {"x": "FakeQuantize", "relu": "FakeQuantize", "c2": "FakeQuantize",
                     "relu_1": "FakeQuantize", "pool": "SharedFakeQuantize",
                     "gap": "FakeQuantize", "fc": "FakeQuantize"}
    assert isinstance(gm.c1, QuantConv2d) and gm.c1.bn is not None
    assert not any(n.op == "call_module" and isinstance(gm.get_submodule(n.target), nn.BatchNorm2d)
                   for n in gm.graph.nodes)


def test_batch_norm_folding_matches_conv_then_bn_in_eval():
    torch.manual_seed(1)
    conv, bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.5, 0.5)
    q = QuantConv2d(conv, bn, 8).eval()
    q.weight_fq.enabled = False
    x = torch.randn(2, 3, 8, 8)
    expected = bn.eval()(conv(x))
    torch.testing.assert_close(q(x), expected, rtol=1e-5, atol=1e-5)


def _per_layer_errors(gm, model, x):
    """max |integer - simulated| in steps, per fake-quantized tensor, in graph order."""
    captured = {}
    for node in gm.graph.nodes:
        mod = gm.get_submodule(node.target) if node.op == "call_module" else None
        if isinstance(mod, (FakeQuantize, SharedFakeQuantize)):
            src = node.args[0]
            tensor = src.target if src.op == "placeholder" else src.name
            users = list(node.users)
            if users and users[0].op == "output":
                tensor = node.name  # the QDQ import names it after the graph output
            mod.register_forward_hook(
                lambda m, i, o, t=tensor: captured.__setitem__(t, o.detach().numpy()))
    with torch.no_grad():
        gm(x)
    backend = get_backend("numpy")
    env = execute(model, {"x": x.numpy()}, backend, keep=True)
    errors = []
    for tensor, sim in captured.items():
        spec = next(s for n, s in model.tensors.items()
                    if s.float_name == tensor and s.qparams is not None and n in env)
        q = np.asarray(backend.to_numpy(env[spec.name]))
        lo, hi = spec.qparams.bounds
        assert lo <= q.min() and q.max() <= hi, f"{tensor}: codes outside {spec.qparams.bounds}"
        real = dequantize(q, spec.qparams)
        if spec.layout == "NHWC":
            real = real.transpose(0, 3, 1, 2)
        step = float(spec.qparams.scale[0])
        errors.append((tensor, float(np.abs(real.reshape(sim.shape) - sim).max() / step)))
    return errors


@pytest.mark.parametrize("num_bits", [8, 4, 2])
@pytest.mark.parametrize("rounding", ["single", "gemmlowp"])
def test_simulation_agrees_with_integer_model_within_one_step_per_layer(
        num_bits, rounding, tmp_path):
    """Single rounding: every layer within one step of the simulation. gemmlowp's two
    roundings (off by one from one rounding, by definition) add up: layer k within k steps."""
    gm = _trained(num_bits)
    export_qdq(gm, tmp_path / "qat.onnx")
    model = import_qdq(tmp_path / "qat.onnx", rounding=rounding)
    assert model.metadata["float_nodes"] == []
    x = torch.randn(16, 3, 16, 16)
    errors = _per_layer_errors(gm, model, x)
    assert [t for t, _ in errors][0] == "x"
    for depth, (tensor, err) in enumerate(errors):
        bound = 1 if rounding == "single" else max(depth, 1)
        assert err <= bound + 1e-3, (tensor, depth, err, errors)


def test_exported_qdq_runs_in_onnxruntime_like_the_simulation(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime checks the exported file")
    gm = _trained(8)
    proto = export_qdq(gm, tmp_path / "qat.onnx")
    x = torch.randn(4, 3, 16, 16)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    y_ort = sess.run(None, {"x": x.numpy()})[0]
    step = float(gm.get_submodule(list(gm.graph.nodes)[-2].target).qparams().scale[0])
    with torch.no_grad():
        y_sim = gm(x).numpy()
    assert np.abs(y_ort - y_sim).max() <= step * 1.001
    assert len(fake_quant_modules(gm)) == 9  # 6 activations, 3 weights

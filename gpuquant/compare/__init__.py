"""Float vs int8 side by side: data sets, metrics, per-layer error, tables and the HTML report."""

from .datasets import Dataset, load_mnist, load_npz, mnist_normalize
from .metrics import cosine_similarity, sqnr_db, top1_accuracy, top1_agreement

__all__ = [
    "Dataset", "cosine_similarity", "load_mnist", "load_npz", "mnist_normalize", "sqnr_db",
    "top1_accuracy", "top1_agreement",
]

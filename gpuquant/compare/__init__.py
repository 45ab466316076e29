"""Float vs int8 side by side: data sets, metrics, per-layer error, tables and the HTML report."""

from .datasets import Dataset, load_mnist, load_npz, mnist_normalize
from .evaluate import available_backends, compare_models, model_sizes
from .metrics import cosine_similarity, sqnr_db, top1_accuracy, top1_agreement
from .report import write_report
from .result import Comparison, Throughput

__all__ = [
    "Comparison", "Dataset", "Throughput", "available_backends", "compare_models",
    "cosine_similarity", "load_mnist", "load_npz", "mnist_normalize", "model_sizes", "sqnr_db",
    "top1_accuracy", "top1_agreement", "write_report",
]

"""What the images per second of ``gpuquant bench`` and ``gpuquant compare`` time, in words.

Each command's description is a dict, written as ``throughput_timing`` in its JSON: the timed
``batch_size`` and one sentence per part of the measurement. ``timing_lines`` prints it under a
header that says how the other command's numbers differ; the HTML report lists ``timing_rows``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TIMING_BATCHES = 4

FLOAT = "NumPy float32 executor, float32 input to float32 output"
INT8 = ("float32 input to float32 output, so copying the input to the backend, quantizing it, "
        "dequantizing the output and copying it back are included")
METHOD = {
    "bench": "one batch repeated, without per-layer tensors",
    "compare": "its whole evaluation pass in batches of its --batch-size, per-layer tensors "
               "included",
}


def bench_timing(backends: Sequence[str], batch_size: int, repeat: int) -> dict[str, Any]:
    """What ``gpuquant bench`` times on ``backends``: ``repeat`` runs of one batch after one
    warm-up run, the float graph only where ``backends`` include NumPy."""
    runs = f"one batch of {batch_size} samples, {repeat} timed runs after one warm-up"
    timing: dict[str, Any] = {"batch_size": batch_size}
    if "numpy" in backends:
        timing["float"] = f"{FLOAT}, on {runs}"
    int8_runs = "the same batch and runs" if "float" in timing else runs
    timing["int8"] = f"InferenceSession.run on {', '.join(backends)}, {int8_runs}: {INT8}"
    timing["excluded"] = "loading, quantization, the warm-up run (CuPy's kernel compilation)"
    return timing


def compare_timing(
    backend: str, other_backends: Sequence[str], batch_size: int, images: int, layer_images: int
) -> dict[str, Any]:
    """What ``compare_models`` times: one pass over ``images`` samples, float and int8 on
    ``backend`` batch by batch, the first ``layer_images`` keeping every tensor (0: none); int8
    alone on each of ``other_backends``."""
    timing: dict[str, Any] = {
        "batch_size": batch_size,
        "float": f"{FLOAT}, over the {images} evaluation samples in batches of {batch_size}",
        "int8": f"InferenceSession.run on {backend} in the same pass: {INT8}",
    }
    if layer_images:
        timing["per_layer"] = (f"the first {layer_images} samples keep every tensor of both "
                               f"runs for the per-layer table, inside the timed pass (their int8 "
                               f"run calls the executor that InferenceSession.run wraps); the "
                               f"per-layer errors are computed outside it")
    if other_backends:
        timing["other_backends"] = (f"int8 only on {', '.join(other_backends)}, up to "
                                    f"{TIMING_BATCHES} batches of {batch_size} after one "
                                    f"warm-up batch")
    timing["excluded"] = ("loading, quantization, and CuPy's kernel compilation (a warm-up call "
                          "precedes the pass)")
    return timing


def timing_rows(timing: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, sentence) for each part of a description; ``batch_size`` is in the sentences."""
    return [(key.replace("_", " "), text) for key, text in timing.items() if key != "batch_size"]


def timing_lines(command: str, timing: dict[str, Any]) -> list[str]:
    """The printed form of ``command``'s description, headed by what the other command times."""
    other = "compare" if command == "bench" else "bench"
    return [f"what is timed (gpuquant {other} times {METHOD[other]}):"] + [
        f"  {label}: {text}" for label, text in timing_rows(timing)
    ]

"""A self-contained HTML report of a comparison: summary, per-layer SQNR bars and float vs
dequantized activation histograms of the worst layers.

The plots are PNG files written beside ``index.html`` and also embedded in it (base64), so the
page can be moved alone. Needs matplotlib (the optional extra ``report``); only its object API
(``Figure``) is used, so no pyplot state or GUI backend is touched.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from ..errors import GpuquantError
from .result import Comparison
from .layers import LayerError
from .tables import format_bytes
from .timing import timing_rows

WORST_LAYERS = 4
HIST_BINS = 80


def figure_class():
    """matplotlib's Figure; GpuquantError saying how to install matplotlib when it is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise GpuquantError(
            "the HTML report needs matplotlib, which is not installed; install it with "
            "pip install 'gpuquant[report]' (or pip install matplotlib)"
        ) from exc
    return Figure


def _sqnr_bars(layers: list[LayerError], path: Path) -> None:
    figure = figure_class()(figsize=(8, 0.35 * len(layers) + 1.2), dpi=100)
    ax = figure.add_subplot()
    values = [l.sqnr_db if np.isfinite(l.sqnr_db) else 0.0 for l in layers]
    labels = [f"{l.tensor} ({l.op})" for l in layers]
    positions = np.arange(len(layers))
    colors = ["#c0392b" if v < 20 else "#e67e22" if v < 30 else "#2e86c1" for v in values]
    ax.barh(positions, values, color=colors)
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("SQNR (dB), dequantized int8 vs float; higher is better")
    for y, v in zip(positions, values):
        ax.text(v, y, f" {v:.1f}", va="center", fontsize=8)
    ax.set_xlim(0, max(values + [1.0]) * 1.15)
    figure.tight_layout()
    figure.savefig(path)


def _histogram(layer: LayerError, path: Path) -> None:
    figure = figure_class()(figsize=(7, 3.2), dpi=100)
    ax = figure.add_subplot()
    f, q = layer.float_sample, layer.int8_sample
    lo, hi = float(min(f.min(), q.min())), float(max(f.max(), q.max()))
    # Each bin holds the same whole number of quantization levels, centred on them.
    levels = max(1, int(np.ceil((hi - lo) / layer.step / HIST_BINS)))
    first = np.floor((lo / layer.step + 0.5) / levels)
    last = np.ceil((hi / layer.step + 0.5) / levels)
    bins = (np.arange(first, last + 1) * levels - 0.5) * layer.step
    ax.hist(f, bins=bins, histtype="stepfilled", alpha=0.45, color="#2e86c1", label="float")
    ax.hist(q, bins=bins, histtype="step", linewidth=1.4, color="#c0392b", label="int8 dequantized")
    ax.set_yscale("log")
    ax.set_title(f"{layer.tensor} ({layer.op}): SQNR {layer.sqnr_db:.1f} dB", fontsize=10)
    ax.set_xlabel("activation value")
    ax.set_ylabel(f"count of {f.size} sampled values")
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _summary_rows(c: Comparison) -> list[tuple[str, str]]:
    rows = [
        ("dataset", f"{c.dataset}, {c.images} images"),
        ("backend", f"{c.backend} ({c.backend_reason})"),
        ("float top-1 accuracy", _pct(c.float_accuracy)),
        ("int8 top-1 accuracy", _pct(c.int8_accuracy)),
        ("top-1 agreement", _pct(c.agreement)),
        ("output cosine similarity", f"{c.output.cosine:.6f}"),
        ("output SQNR", f"{c.output.sqnr_db:.2f} dB"),
    ]
    rows += [(key, str(value)) for key, value in c.settings.items()]
    rows += [(key.removesuffix("_bytes").replace("_", " "), format_bytes(value))
             for key, value in c.sizes.items()]
    for t in c.throughput:
        for kind, value in (("float", t.float_images_per_s), ("int8", t.int8_images_per_s)):
            if value is not None:
                rows.append((f"{kind} images/s on {t.backend}", f"{value:,.0f}"))
    rows += [(f"timing: {label}", text) for label, text in timing_rows(c.timing)]
    return rows


def write_report(comparison: Comparison, directory: str | Path) -> Path:
    """Write ``index.html`` and its PNG plots into ``directory`` (created); returns the page."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    layers = comparison.layers
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>gpuquant: float vs int8</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "td,th{padding:2px 10px;text-align:left}td.n{text-align:right}</style></head><body>",
        "<h1>Float vs int8</h1><table>",
    ]
    parts += [f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
              for k, v in _summary_rows(comparison)]
    parts.append("</table>")
    if comparison.float_nodes:
        parts.append("<h2>Left in float</h2><table><tr><th>node</th><th>op</th><th>why</th></tr>")
        parts += [f"<tr><td>{html.escape(e['name'])}</td><td>{html.escape(e['op_type'])}</td>"
                  f"<td>{html.escape(e['reason'])}</td></tr>" for e in comparison.float_nodes]
        parts.append("</table>")
    if layers:
        bars = out / "sqnr_per_layer.png"
        _sqnr_bars(layers, bars)
        parts += [f"<h2>Per-layer SQNR ({comparison.layer_images} images)</h2>",
                  _img(bars, "per-layer SQNR"), "<table><tr><th>tensor</th><th>op</th>"
                  "<th>SQNR (dB)</th><th>cosine</th></tr>"]
        parts += [f"<tr><td>{html.escape(l.tensor)}</td><td>{html.escape(l.op)}</td>"
                  f"<td class=n>{l.sqnr_db:.2f}</td><td class=n>{l.cosine:.6f}</td></tr>"
                  for l in layers]
        parts.append("</table><h2>Activation histograms of the worst layers</h2>")
        worst = sorted(layers, key=lambda l: l.sqnr_db)[:WORST_LAYERS]
        for i, layer in enumerate(worst):
            png = out / f"hist_{i}.png"
            _histogram(layer, png)
            parts.append(_img(png, f"histogram of {layer.tensor}"))
    parts.append("</body></html>")
    page = out / "index.html"
    page.write_text("\n".join(parts), encoding="utf-8")
    return page

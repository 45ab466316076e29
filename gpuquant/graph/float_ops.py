"""NumPy float32 implementations of the float-graph operators (ONNX semantics, NCHW).

Each function takes the node's attributes and its input arrays (None for an omitted optional
input) and returns the node's one output. Attributes are in the form the frontend normalises to
(frontends/onnx_float.py), which is the only form read here:

- Conv: ``kernel_shape``, ``strides``, ``dilations`` (2 ints each), ``pads`` (4 ints: top, left,
  bottom, right), ``group``; no ``auto_pad``.
- MaxPool/AveragePool: ``kernel_shape``, ``strides``, ``pads`` (4), ``ceil_mode``;
  MaxPool ``dilations``; AveragePool ``count_include_pad``.
- Clip: ``min``/``max`` floats (-inf/+inf when absent); Reshape: ``shape``, ``allowzero``;
  ReduceMean: ``axes`` (None = all), ``keepdims``, ``noop_with_empty_axes``; Squeeze/Unsqueeze:
  ``axes``; Pad: ``pads`` (2*rank ints, ONNX order), ``mode``, ``value``; Slice: ``starts``,
  ``ends``, ``axes``, ``steps``; Cast: ``to`` (NumPy dtype name); Softmax: ``axis`` (opset-13
  meaning: one axis); ConstantOfShape: ``value`` (a one-element array).

``REGISTRY`` maps ONNX op types to these functions.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

Attrs = dict[str, Any]
_COLS_BUDGET = 1 << 20


def _f32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _window_slices(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
                   dilations: tuple[int, int], out: tuple[int, int]):
    """For each kernel offset (u, v): the view ``x[..., u*dh + i*sh, v*dw + j*sw]`` over the
    output grid (i, j); ``x``'s last two axes are the padded spatial ones."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, strides, dilations, out
    for u in range(kh):
        for v in range(kw):
            top, left = u * dh, v * dw
            yield u, v, x[..., top: top + (ho - 1) * sh + 1: sh, left: left + (wo - 1) * sw + 1: sw]


def conv(attrs: Attrs, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """2-D convolution as im2col + one matrix product per group (float32, BLAS):
    ``y[n, m, i, j] = b[m] + sum_{c, u, v} x_pad[n, g*Cg + c, i*sh + u*dh, j*sw + v*dw]
    * w[m, c, u, v]`` with ``g = m // (M / group)``, ``Cg = C / group``.

    The columns are laid out ``(group, Cg*kh*kw, N*Ho*Wo)`` so each group is one GEMM.
    """
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    group = attrs.get("group", 1)
    if cg * group != c or m % group:
        raise ValueError(
            f"input has {c} channels, weight {w.shape} with group {group} expects {cg * group}"
        )
    sh, sw = attrs.get("strides", (1, 1))
    dh, dw = attrs.get("dilations", (1, 1))
    pt, pl, pb, pr = attrs.get("pads", (0, 0, 0, 0))
    ho = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    wo = (wd + pl + pr - (kw - 1) * dw - 1) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"kernel {w.shape[2:]} does not fit the padded input {x.shape}")
    xt = np.zeros((c, n, h + pt + pb, wd + pl + pr), dtype=np.float32)
    xt[:, :, pt: pt + h, pl: pl + wd] = x.transpose(1, 0, 2, 3)
    mg, k = m // group, cg * kh * kw
    wg = w.reshape(group, mg, k)
    out = np.empty((n, m, ho, wo), dtype=np.float32)
    # Images go through in chunks whose columns (about 4 MB of float32) stay in cache.
    chunk = max(1, _COLS_BUDGET // (c * kh * kw * ho * wo))
    cols = np.empty((c, kh, kw, min(chunk, n), ho, wo), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        part = cols[:, :, :, : stop - start]
        for u, v, view in _window_slices(xt[:, start:stop], (kh, kw), (sh, sw), (dh, dw), (ho, wo)):
            part[:, u, v] = view
        y = np.matmul(wg, part.reshape(group, k, -1))
        out[start:stop] = y.reshape(m, stop - start, ho, wo).transpose(1, 0, 2, 3)
    if b is not None:
        out += b.reshape(1, m, 1, 1)
    return out


def pool_output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                     dilation: int, ceil_mode: int) -> int:
    """ONNX pooling output length: ``floor_or_ceil((size + pads - ((k-1)*d + 1)) / s) + 1``,
    and with ceil_mode a last window that would start inside the end padding is dropped."""
    span = size + pad_begin + pad_end - ((kernel - 1) * dilation + 1)
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def _pool(attrs: Attrs, x: np.ndarray, fill: float, reduce: Callable) -> np.ndarray:
    """``reduce`` over the windows of ``x`` padded by ``pads`` with ``fill`` and, for ceil_mode,
    by enough more ``fill`` at the end to complete the last window."""
    kh, kw = attrs["kernel_shape"]
    sh, sw = attrs.get("strides", (1, 1))
    dh, dw = attrs.get("dilations", (1, 1))
    pt, pl, pb, pr = attrs.get("pads", (0, 0, 0, 0))
    ceil_mode = attrs.get("ceil_mode", 0)
    h, w = x.shape[-2:]
    ho = pool_output_size(h, kh, sh, pt, pb, dh, ceil_mode)
    wo = pool_output_size(w, kw, sw, pl, pr, dw, ceil_mode)
    if ho < 1 or wo < 1:
        raise ValueError(f"pooling window {(kh, kw)} does not fit the padded input {x.shape}")
    hp = max(h + pt + pb, (ho - 1) * sh + (kh - 1) * dh + 1)
    wp = max(w + pl + pr, (wo - 1) * sw + (kw - 1) * dw + 1)
    if (hp, wp) == (h, w):
        xp = x
    else:
        xp = np.full(x.shape[:-2] + (hp, wp), fill, dtype=np.float32)
        xp[..., pt: pt + h, pl: pl + w] = x
    out = None
    for _, _, view in _window_slices(xp, (kh, kw), (sh, sw), (dh, dw), (ho, wo)):
        out = view.astype(np.float32) if out is None else reduce(out, view, out=out)
    return out


def max_pool(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """``y = max`` over each window; padding never wins (it is -inf)."""
    return _pool(attrs, x, -np.inf, np.maximum)


def average_pool(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """``y = sum(window) / count``: count is the number of window cells inside the input, or,
    with ``count_include_pad``, inside the input plus its explicit pads (never the extra cells
    ceil_mode adds)."""
    sums = _pool(attrs, x, 0.0, np.add)
    inside = np.ones(x.shape[-2:], dtype=np.float32)
    if attrs.get("count_include_pad", 0):
        pt, pl, pb, pr = attrs.get("pads", (0, 0, 0, 0))
        inside = np.pad(inside, ((pt, pb), (pl, pr)), constant_values=1.0)
        attrs = {**attrs, "pads": (0, 0, 0, 0)}
    counts = _pool(attrs, inside, 0.0, np.add)
    return sums / counts


def global_average_pool(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """Mean over every axis after the first two, kept as size-1 axes."""
    return x.mean(axis=tuple(range(2, x.ndim)), keepdims=True, dtype=np.float32)


def gemm(attrs: Attrs, a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
    """``y = alpha * op(A) @ op(B) + beta * C`` with ``op`` a transpose when transA/transB."""
    a = a.T if attrs.get("transA", 0) else a
    b = b.T if attrs.get("transB", 0) else b
    y = a @ b
    alpha = attrs.get("alpha", 1.0)
    if alpha != 1.0:
        y = y * np.float32(alpha)
    if c is not None:
        beta = attrs.get("beta", 1.0)
        y = y + (c if beta == 1.0 else np.float32(beta) * c)
    return _f32(y)


def matmul(attrs: Attrs, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """NumPy ``matmul`` (batched, broadcasting) semantics, as ONNX MatMul."""
    return _f32(np.matmul(a, b))


def add(attrs: Attrs, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.add(a, b)


def sub(attrs: Attrs, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.subtract(a, b)


def mul(attrs: Attrs, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.multiply(a, b)


def div(attrs: Attrs, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Float division; integer division truncates toward zero (ONNX Div on integers)."""
    if np.issubdtype(np.result_type(a, b), np.integer):
        q = np.abs(a) // np.abs(b)
        return (np.sign(a) * np.sign(b) * q).astype(np.result_type(a, b))
    return np.divide(a, b)


def relu(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.float32(0))


def clip(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """``y = min(max(x, min), max)``."""
    lo, hi = attrs.get("min", -np.inf), attrs.get("max", np.inf)
    return np.minimum(np.maximum(x, np.float32(lo)), np.float32(hi)).astype(x.dtype)


def sigmoid(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """``y = 1 / (1 + exp(-x))`` in float32."""
    with np.errstate(over="ignore"):
        return _f32(1.0 / (1.0 + np.exp(-x)))


def hard_sigmoid(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """``y = clamp(alpha * x + beta, 0, 1)`` (defaults alpha 0.2, beta 0.5)."""
    alpha = np.float32(attrs.get("alpha", 0.2))
    beta = np.float32(attrs.get("beta", 0.5))
    return np.clip(alpha * x + beta, 0, 1).astype(np.float32)


def hard_swish(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """``y = x * clamp(x / 6 + 1/2, 0, 1)`` (ONNX: x * HardSigmoid(alpha=1/6, beta=0.5))."""
    return (x * np.clip(np.float32(1 / 6) * x + np.float32(0.5), 0, 1)).astype(np.float32)


def softmax(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """``y = exp(x - max) / sum(exp(x - max))`` along ``axis`` (default -1)."""
    axis = attrs.get("axis", -1)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return _f32(e / e.sum(axis=axis, keepdims=True))


def batch_normalization(attrs: Attrs, x: np.ndarray, scale: np.ndarray, bias: np.ndarray,
                        mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Inference form: ``y = (x - mean) / sqrt(var + epsilon) * scale + bias`` per channel."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = scale / np.sqrt(var + np.float32(attrs.get("epsilon", 1e-5)))
    return _f32((x - mean.reshape(shape)) * inv.reshape(shape) + bias.reshape(shape))


def flatten(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """2-D ``(prod(shape[:axis]), prod(shape[axis:]))`` in C order."""
    axis = attrs.get("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))


def reshape(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """ONNX Reshape: -1 is inferred, 0 copies the input dimension unless ``allowzero``."""
    shape = list(attrs["shape"])
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(shape)


def concat(attrs: Attrs, *xs: np.ndarray) -> np.ndarray:
    return np.concatenate([v for v in xs if v is not None], axis=attrs["axis"])


def pad(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """ONNX Pad: ``pads = [b_0..b_{r-1}, e_0..e_{r-1}]``, modes constant/reflect/edge/wrap;
    negative pads crop."""
    pads = list(attrs["pads"])
    r = x.ndim
    begin, end = pads[:r], pads[r:]
    crop = tuple(slice(-min(b, 0), n + min(e, 0)) for n, b, e in zip(x.shape, begin, end))
    x = x[crop]
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    mode = attrs.get("mode", "constant")
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=attrs.get("value", 0.0))
    return np.pad(x, widths, mode=mode)


def reduce_mean(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """Mean over ``axes`` (all axes when None, unless ``noop_with_empty_axes``)."""
    axes = attrs.get("axes")
    if axes is None and attrs.get("noop_with_empty_axes", 0):
        return x
    axes = tuple(axes) if axes is not None else None
    return x.mean(axis=axes, keepdims=bool(attrs.get("keepdims", 1)), dtype=np.float32)


def transpose(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    perm = attrs.get("perm")
    return np.ascontiguousarray(np.transpose(x, perm))


def identity(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    return x


def squeeze(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    axes = attrs.get("axes")
    return np.squeeze(x, axis=tuple(axes) if axes is not None else None)


def unsqueeze(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    return np.expand_dims(x, tuple(attrs["axes"]))


def shape(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """The input's shape as int64, sliced by ``start``/``end`` (opset 15)."""
    dims = np.array(x.shape, dtype=np.int64)
    return dims[attrs.get("start", 0): attrs.get("end", None)]


def gather(attrs: Attrs, x: np.ndarray, indices: np.ndarray) -> np.ndarray:
    axis = attrs.get("axis", 0)
    idx = np.where(indices < 0, indices + x.shape[axis], indices)
    return np.take(x, idx, axis=axis)


def slice_(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    """ONNX Slice with constant ``starts``/``ends``/``axes``/``steps`` (Python slicing rules)."""
    starts, ends = attrs["starts"], attrs["ends"]
    axes = attrs.get("axes") or list(range(len(starts)))
    steps = attrs.get("steps") or [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[a] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def cast(attrs: Attrs, x: np.ndarray) -> np.ndarray:
    return x.astype(np.dtype(attrs["to"]))


def constant_of_shape(attrs: Attrs, shape: np.ndarray) -> np.ndarray:
    """A tensor of shape ``shape`` filled with the one-element ``value`` (default float32 0)."""
    value = np.asarray(attrs.get("value", np.zeros(1, np.float32))).reshape(-1)
    return np.full(tuple(int(d) for d in shape), value[0], dtype=value.dtype)


REGISTRY: dict[str, Callable[..., np.ndarray]] = {
    "Conv": conv,
    "Gemm": gemm,
    "MatMul": matmul,
    "Add": add,
    "Sub": sub,
    "Mul": mul,
    "Div": div,
    "Relu": relu,
    "Clip": clip,
    "Sigmoid": sigmoid,
    "HardSigmoid": hard_sigmoid,
    "HardSwish": hard_swish,
    "Softmax": softmax,
    "BatchNormalization": batch_normalization,
    "MaxPool": max_pool,
    "AveragePool": average_pool,
    "GlobalAveragePool": global_average_pool,
    "Flatten": flatten,
    "Reshape": reshape,
    "Concat": concat,
    "Pad": pad,
    "ReduceMean": reduce_mean,
    "Transpose": transpose,
    "Identity": identity,
    "Squeeze": squeeze,
    "Unsqueeze": unsqueeze,
    "Shape": shape,
    "Gather": gather,
    "Slice": slice_,
    "Cast": cast,
    "ConstantOfShape": constant_of_shape,
}

"""The NumPy backend implements the whole Backend protocol with its exact signatures."""

from __future__ import annotations

import inspect

import numpy as np

from gpuquant.backends.base import Backend
from gpuquant.backends.numpy import NumpyBackend


def _protocol_methods():
    return {
        name: fn for name, fn in vars(Backend).items()
        if callable(fn) and not name.startswith("_")
    }


def test_every_protocol_method_with_its_signature():
    methods = _protocol_methods()
    assert {"gemm", "conv2d", "avg_pool2d", "concat", "pad"} <= set(methods)
    for name, fn in methods.items():
        ours = getattr(NumpyBackend, name)
        want = list(inspect.signature(fn).parameters)
        assert list(inspect.signature(ours).parameters) == want, name


def test_name_and_array_round_trip():
    nb = NumpyBackend()
    assert nb.name == "numpy"
    x = np.arange(6, dtype=np.int8)
    a = nb.asarray(x)
    back = nb.to_numpy(a)
    np.testing.assert_array_equal(back, x)
    back[0] = 9
    assert x[0] == 0
    assert nb.asarray([1, 2]).dtype.kind == "i"

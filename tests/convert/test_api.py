"""quantize_model's calibration data forms: one array, one dict of whole arrays, feed dicts."""

import numpy as np

import gpuquant
from gpuquant.compare.datasets import MNIST_MODEL, load_mnist


def test_a_dict_of_whole_arrays_calibrates_as_the_same_array_and_its_feed_dicts():
    calib = load_mnist("calib").inputs[:96]
    forms = [calib, {"input": calib}, [{"input": calib[i: i + 32]} for i in range(0, 96, 32)]]
    models = [gpuquant.quantize_model(MNIST_MODEL, data, batch_size=32) for data in forms]
    x = load_mnist("test").inputs[:20]
    outputs = [gpuquant.InferenceSession(m, backend="numpy").run(None, {"input": x})[0]
               for m in models]
    for other in outputs[1:]:
        np.testing.assert_array_equal(other, outputs[0])
    for other in models[1:]:
        assert other.tensors == models[0].tensors  # every scale and zero point

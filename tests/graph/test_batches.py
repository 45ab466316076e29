import numpy as np
import pytest

from gpuquant.errors import ShapeError
from gpuquant.graph.batches import batches_of, sample_count


def test_batches_are_consecutive_slices_of_every_input_the_last_shorter():
    x = np.arange(5)
    y = np.arange(10).reshape(5, 2)
    got = batches_of({"x": x, "y": y}, 2)
    assert [list(b) for b in got] == [["x", "y"]] * 3
    assert [b["x"].tolist() for b in got] == [[0, 1], [2, 3], [4]]
    assert [b["y"].tolist() for b in got] == [[[0, 1], [2, 3]], [[4, 5], [6, 7]], [[8, 9]]]


def test_no_samples_and_no_inputs_give_no_batches():
    assert batches_of({"x": np.zeros((0, 3))}, 4) == []
    assert batches_of({}, 4) == []
    assert sample_count({}) == 0


def test_unequal_sample_counts_name_each_input_and_its_count():
    with pytest.raises(ShapeError, match=r"different numbers of samples along axis 0: "
                                         r"\{'x': 3, 'y': 2\}"):
        batches_of({"x": np.zeros((3, 1)), "y": np.zeros((2, 1))}, 2)


def test_a_0d_array_and_a_batch_size_below_one_are_refused():
    with pytest.raises(ShapeError, match=r"input 'x' is a 0-d array"):
        sample_count({"x": np.array(1.0)})
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        batches_of({"x": np.zeros(3)}, 0)

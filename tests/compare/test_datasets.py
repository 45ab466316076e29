"""Built-in MNIST preprocessing and .npz loading, including every bad-file error."""

import re

import numpy as np
import pytest

from gpuquant.compare.datasets import (
    as_model_input,
    load_mnist,
    load_npz,
    mnist_normalize,
    read_npz,
)
from gpuquant.errors import DataError


def test_mnist_normalize_matches_the_formula():
    images = np.array([[[0, 255], [128, 1]]], dtype=np.uint8)
    x = mnist_normalize(images)
    assert x.shape == (1, 1, 2, 2) and x.dtype == np.float32
    expected = (np.array([0, 255, 128, 1]) / 255.0 - 0.1307) / 0.3081
    np.testing.assert_allclose(x.reshape(-1), expected, rtol=1e-6)


def test_builtin_splits():
    test = load_mnist("test")
    assert test.inputs.shape == (10000, 1, 28, 28) and test.labels.shape == (10000,)
    calib = load_mnist("calib")
    assert len(calib) == 5000
    assert np.bincount(calib.labels).tolist() == [500] * 10
    with pytest.raises(DataError, match="split"):
        load_mnist("train")


def test_head_and_batches():
    data = load_mnist("calib").head(7)
    assert len(data) == 7 and len(data.labels) == 7
    assert [(s.start, s.stop) for s in data.batches(3)] == [(0, 3), (3, 6), (6, 7)]
    with pytest.raises(DataError):
        data.batches(0)


def test_load_npz_by_name_or_single_array(tmp_path):
    x = np.ones((3, 2), dtype=np.float32)
    np.savez(tmp_path / "named.npz", input=x, other=x, labels=np.array([0, 1, 2]))
    data = load_npz(tmp_path / "named.npz", "input")
    assert data.labels.tolist() == [0, 1, 2] and data.inputs.shape == (3, 2)
    np.savez(tmp_path / "single.npz", anything=x)
    assert load_npz(tmp_path / "single.npz", "input").labels is None
    assert load_npz(tmp_path / "named.npz", "input", key="other").input_name == "input"
    with pytest.raises(DataError, match="no array named 'pixels'"):
        load_npz(tmp_path / "single.npz", "input", key="pixels")


def test_float64_cast_to_float32_but_integers_kept(tmp_path):
    np.savez(tmp_path / "d.npz", input=np.zeros((2, 2)))
    data = as_model_input(load_npz(tmp_path / "d.npz", "input"), "float32")
    assert data.inputs.dtype == np.float32
    np.savez(tmp_path / "u.npz", input=np.zeros((2, 2), dtype=np.uint8))
    assert as_model_input(load_npz(tmp_path / "u.npz", "input"), "float32").inputs.dtype == np.uint8


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_npz(tmp_path / "nope.npz", "input")


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(DataError, match="cannot read"):
        load_npz(path, "input")


def test_missing_array_names_what_is_there(tmp_path):
    np.savez(tmp_path / "two.npz", a=np.zeros((1, 2)), b=np.zeros((1, 2)))
    with pytest.raises(DataError, match=r"no array named 'input' \(its arrays: \['a', 'b'\]\)"):
        load_npz(tmp_path / "two.npz", "input")


def test_empty_nonfinite_and_bad_labels(tmp_path):
    np.savez(tmp_path / "empty.npz", input=np.zeros((0, 2)))
    with pytest.raises(DataError, match="at least one sample"):
        load_npz(tmp_path / "empty.npz", "input")
    np.savez(tmp_path / "nan.npz", input=np.array([[np.nan, np.inf, 0.0]]))
    with pytest.raises(DataError, match="2 NaN or infinite"):
        load_npz(tmp_path / "nan.npz", "input")
    np.savez(tmp_path / "labels.npz", input=np.zeros((3, 2)), labels=np.zeros(2, dtype=int))
    with pytest.raises(DataError, match="labels must be 3 integers"):
        load_npz(tmp_path / "labels.npz", "input")


def test_npy_instead_of_npz_and_pickled_arrays(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(DataError, match="single array, not an .npz"):
        load_npz(tmp_path / "one.npy", "input")
    np.savez(tmp_path / "obj.npz", input=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="cannot read the arrays"):
        load_npz(tmp_path / "obj.npz", "input")


@pytest.mark.parametrize("content, found", [
    (b"# gpuquant\n\nREADME text", r"b'# gpuq'"),
    (b"\x80\x04\x95pickle", r"b'\\x80\\x04\\x95pic'"),
])
def test_a_file_that_is_not_a_zip_is_named_without_pickle_advice(tmp_path, content, found):
    # np.load reads anything without the zip or .npy magic number as a pickle
    # (numpy.lib.npyio.load), so the zip header is checked before it is called.
    path = tmp_path / "r.onnx"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_npz(path, "input")
    text = str(info.value)
    assert re.search(rf"'{re.escape(str(path))}' is not an \.npz archive: its first bytes "
                     rf"{found} are not a zip header", text), text
    assert "pickle" not in text


def test_an_empty_file_is_named_as_empty(tmp_path):
    path = tmp_path / "e.npz"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=rf"'{re.escape(str(path))}' is empty, not an \.npz"):
        load_npz(path, "input")


def test_an_empty_zip_archive_reads_as_no_arrays(tmp_path):
    np.savez(tmp_path / "none.npz")
    assert read_npz(tmp_path / "none.npz") == {}

"""Outputs are written whatever their names (np.savez reserves ``file`` and ``allow_pickle``)."""

import numpy as np

from gpuquant.cli.common import save_npz


def test_any_output_name_round_trips(tmp_path):
    arrays = {"file": np.arange(3), "allow_pickle": np.int8([1, -2]), "a/b:0": np.ones((2, 2))}
    save_npz(tmp_path / "sub" / "y.npz", arrays)
    with np.load(tmp_path / "sub" / "y.npz") as loaded:
        assert set(loaded.files) == set(arrays)
        for name, value in arrays.items():
            np.testing.assert_array_equal(loaded[name], value)
            assert loaded[name].dtype == value.dtype

"""``gpuquant run`` on an imported model whose graph fixes the batch (frontends/batch.py): it runs
in batches of that size, compared with onnxruntime on the same file batch by batch, or says
which batch to pass."""

from pathlib import Path

import numpy as np
import pytest

from gpuquant.cli import main

onnx = pytest.importorskip("onnx", reason="the fixed-batch model is an ONNX file (extra 'onnx')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the reference runtime")


def _transpose_model(tmp_path: Path, shape: tuple[int, ...]) -> tuple[Path, Path]:
    """(ONNX file, its .gq) of Transpose(perm=[1, 0, 2]) on int8: it moves the batch axis, so
    the model runs only at the leading dimension of ``shape``."""
    from onnx import TensorProto, helper

    from gpuquant.frontends.onnx_qoperator import load_qoperator_onnx
    from gpuquant.integer.file import save

    node = helper.make_node("Transpose", ["x"], ["y"], name="swap", perm=[1, 0, 2])
    graph = helper.make_graph([node], "swap_model",
                              [helper.make_tensor_value_info("x", TensorProto.INT8, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, None)])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    path = tmp_path / "swap.onnx"
    onnx.save(proto, str(path))
    model = load_qoperator_onnx(path)
    assert "'swap' (Transpose)" in model.metadata["fixed_batch"]
    save(model, tmp_path / "swap.gq")
    return path, tmp_path / "swap.gq"


def _run(tmp_path: Path, model: Path, x: np.ndarray, *extra: str) -> int:
    np.savez(tmp_path / "x.npz", x=x)
    return main(["run", str(model), "--input", str(tmp_path / "x.npz"),
                 "-o", str(tmp_path / "y.npz"), "--backend", "numpy", *extra])


def _codes(shape) -> np.ndarray:
    return np.random.default_rng(3).integers(-128, 128, shape).astype(np.int8)


@pytest.mark.parametrize("extra", [(), ("--batch-size", "2")])
def test_runs_in_batches_of_the_fixed_batch(tmp_path, extra):
    onnx_path, gq = _transpose_model(tmp_path, (2, 2, 3))
    x = _codes((6, 2, 3))
    assert _run(tmp_path, gq, x, *extra) == 0
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = np.concatenate([session.run(["y"], {"x": x[i:i + 2]})[0] for i in (0, 2, 4)])
    np.testing.assert_array_equal(np.load(tmp_path / "y.npz")["y"], expected)


def test_another_batch_size_names_the_fixed_batch_and_the_flag(tmp_path, capsys):
    _, gq = _transpose_model(tmp_path, (2, 2, 3))
    assert _run(tmp_path, gq, _codes((6, 2, 3)), "--batch-size", "4") == 2
    err = capsys.readouterr().err
    assert "--batch-size 4: pass --batch-size 2 or leave it out" in err
    assert "runs only at batch 2" in err and "'swap' (Transpose)" in err


def test_samples_not_a_multiple_of_the_fixed_batch_are_refused(tmp_path, capsys):
    _, gq = _transpose_model(tmp_path, (2, 2, 3))
    assert _run(tmp_path, gq, _codes((5, 2, 3))) == 2
    err = capsys.readouterr().err
    assert "the input has 5 samples, not a multiple of 2" in err and "runs only at batch 2" in err


def test_outputs_that_do_not_lead_with_the_batch_run_once_only(tmp_path, capsys):
    onnx_path, gq = _transpose_model(tmp_path, (1, 3, 4))
    x = _codes((1, 3, 4))
    assert _run(tmp_path, gq, x) == 0
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(np.load(tmp_path / "y.npz")["y"],
                                  session.run(["y"], {"x": x})[0])
    capsys.readouterr()
    assert _run(tmp_path, gq, _codes((2, 3, 4))) == 2
    err = capsys.readouterr().err
    assert "output 'y' (shape (3, 1, 4)) does not lead with the batch" in err
    assert "give the input only 1 (the fixed batch)" in err

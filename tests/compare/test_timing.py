"""What bench and compare say they time: only the parts each run measures."""

from gpuquant.compare.timing import bench_timing, compare_timing, timing_lines


def test_bench_times_float_only_on_numpy():
    assert "float" in bench_timing(["numpy", "cupy"], 16, 2)
    timing = bench_timing(["cupy"], 16, 2)
    assert "float" not in timing
    assert "on cupy, one batch of 16 samples, 2 timed runs" in timing["int8"]


def test_compare_names_its_other_backends_and_per_layer_pass_only_when_run():
    timing = compare_timing("numpy", [], 25, 60, 0)
    assert timing["batch_size"] == 25 and "batches of 25" in timing["float"]
    assert "other_backends" not in timing and "per_layer" not in timing
    timing = compare_timing("numpy", ["cupy"], 25, 60, 50)
    assert timing["other_backends"].startswith("int8 only on cupy")
    assert "first 50 samples keep every tensor" in timing["per_layer"]


def test_each_command_heads_its_lines_with_the_other_command():
    lines = timing_lines("bench", bench_timing(["numpy"], 16, 2))
    assert lines[0].startswith("what is timed (gpuquant compare times its whole evaluation pass")
    assert lines[1:] == ["  float: " + bench_timing(["numpy"], 16, 2)["float"],
                         "  int8: " + bench_timing(["numpy"], 16, 2)["int8"],
                         "  excluded: " + bench_timing(["numpy"], 16, 2)["excluded"]]
    timing = compare_timing("numpy", ["cupy"], 25, 60, 50)
    lines = timing_lines("compare", timing)
    assert lines[0] == ("what is timed (gpuquant bench times one batch repeated, without "
                        "per-layer tensors):")
    assert "  other backends: " + timing["other_backends"] in lines
    assert not any("batch_size" in line for line in lines)

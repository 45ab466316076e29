import sys

from gpuquant.compare.progress import progress


def test_plain_bar_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    assert list(progress(range(3), 3, "work")) == [0, 1, 2]
    err = capsys.readouterr().err
    assert "work [" in err and err.rstrip().endswith("3/3")


def test_disabled_bar_is_silent(capsys):
    items = [1, 2]
    assert progress(items, 2, "work", enabled=False) is items
    assert capsys.readouterr().err == ""

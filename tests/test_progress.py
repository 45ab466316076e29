import sys

from gpuquant.progress import progress


def test_plain_bar_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    assert list(progress(range(3), 3, "work")) == [0, 1, 2]
    err = capsys.readouterr().err
    assert "work [" in err and err.rstrip().endswith("3/3")


def test_disabled_bar_is_silent(capsys):
    items = [1, 2]
    assert progress(items, 2, "work", enabled=False) is items
    assert capsys.readouterr().err == ""


def test_plain_bar_ends_its_line_when_the_loop_fails(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)

    def failing():
        yield 1
        raise ValueError("bad batch")

    try:
        for _ in progress(failing(), 2, "work"):
            pass
    except ValueError:
        sys.stderr.write("gpuquant: error: bad batch\n")
    last = capsys.readouterr().err.replace("\r", "\n").splitlines()[-1]
    assert last == "gpuquant: error: bad batch"


def test_plain_bar_without_total(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    assert list(progress(iter("ab"), None, "calibrating")) == ["a", "b"]
    assert capsys.readouterr().err.rstrip().endswith("calibrating 2")

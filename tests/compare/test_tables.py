import pytest

from gpuquant.compare.tables import format_bytes, format_table


def test_numbers_right_text_left():
    text = format_table(["name", "value"], [("a", "1.5"), ("longer", "12.25%")], title="T")
    assert text.splitlines() == [
        "T",
        "name    value",
        "------  ------",
        "a          1.5",
        "longer  12.25%",
    ]


def test_row_length_checked():
    with pytest.raises(ValueError, match="has 1 cells"):
        format_table(["a", "b"], [("x",)])


@pytest.mark.parametrize("n, text", [(999, "999 B"), (1000, "1.00 kB"), (1_560_000, "1.56 MB")])
def test_format_bytes(n, text):
    assert format_bytes(n) == text

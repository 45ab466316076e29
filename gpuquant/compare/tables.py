"""Plain-text tables for the terminal: columns padded to their widest cell, numbers aligned
right, text left."""

from __future__ import annotations

from collections.abc import Sequence


def _is_number(text: str) -> bool:
    stripped = text.rstrip("%x").replace(",", "").removeprefix("+").removeprefix("-")
    return stripped.replace(".", "", 1).isdigit() or stripped in ("inf", "nan")


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None
) -> str:
    """The table as lines of text: optional title, header, a rule, one line per row.

    Cells are shown with ``str``; a cell that reads as a number (optionally with a trailing
    ``%`` or ``x``) is right-aligned, any other cell left-aligned.
    """
    cells = [[str(c) for c in row] for row in rows]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"row {row} has {len(row)} cells, the header has {len(headers)}")
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]

    def line(row: Sequence[str], numeric: Sequence[bool]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)]
        return "  ".join(parts).rstrip()

    lines = [] if title is None else [title]
    lines.append(line(list(headers), [False] * len(headers)))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(line(row, [_is_number(c) for c in row]) for row in cells)
    return "\n".join(lines)


def format_bytes(n: int) -> str:
    """A byte count in B, kB, MB or GB (powers of 1000, two decimals above bytes)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def format_db(value: float) -> str:
    """A decibel value with one decimal ("inf" for an exact match)."""
    return f"{value:.1f}"

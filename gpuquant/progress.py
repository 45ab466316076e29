"""Progress bars on stderr for long loops: tqdm when it is installed, else a plain text bar."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
BAR_WIDTH = 30


def _plain(items: Iterable[T], total: int | None, desc: str) -> Iterator[T]:
    def draw(done: int) -> None:
        if total is None:
            sys.stderr.write(f"\r{desc} {done}")
        else:
            filled = BAR_WIDTH * done // total if total else BAR_WIDTH
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            sys.stderr.write(f"\r{desc} [{bar}] {done}/{total}")
        sys.stderr.flush()

    live = sys.stderr.isatty()  # a log file gets one line at the end, not every redraw
    if live:
        draw(0)
    done = 0
    try:
        for item in items:
            yield item
            done += 1
            if live:
                draw(done)
    finally:  # end the line even when the loop stops on an error, so the message starts clean
        if not live:
            draw(done)
        sys.stderr.write("\n")


def bar_kind() -> str:
    """What ``progress`` draws with here: ``"tqdm VERSION"`` when tqdm imports, else
    ``"plain text (tqdm not installed)"``."""
    try:
        import tqdm
    except ImportError:
        return "plain text (tqdm not installed)"
    return f"tqdm {getattr(tqdm, '__version__', '(unknown version)')}"


def progress(
    items: Iterable[T], total: int | None, desc: str, enabled: bool = True
) -> Iterable[T]:
    """``items`` unchanged, drawing a bar of ``total`` steps (None: a count) on stderr."""
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return _plain(items, total, desc)
    return tqdm(items, total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)

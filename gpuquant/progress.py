"""Progress bars on stderr for long loops: tqdm when it is installed, else a plain text bar."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
BAR_WIDTH = 30


def _plain(items: Iterable[T], total: int, desc: str) -> Iterator[T]:
    def draw(done: int) -> None:
        filled = BAR_WIDTH * done // total if total else BAR_WIDTH
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        sys.stderr.write(f"\r{desc} [{bar}] {done}/{total}")
        sys.stderr.flush()

    draw(0)
    done = 0
    for item in items:
        yield item
        done += 1
        draw(done)
    sys.stderr.write("\n")


def progress(items: Iterable[T], total: int, desc: str, enabled: bool = True) -> Iterable[T]:
    """``items`` unchanged, drawing a bar of ``total`` steps labelled ``desc`` on stderr."""
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return _plain(items, total, desc)
    return tqdm(items, total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)

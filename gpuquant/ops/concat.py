"""Parameters of concatenation of 8-bit inputs that may have different scales.

Each input whose (scale, zero point) differs from the output's is first requantized through a
256-entry table (ops/lut.py): ``round_half_to_even(s_i * (q - z_i) / s_y) + z_y``, clamped; then
the inputs are joined along ``axis``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .lut import LookupParams
from .requant import check_int


@dataclass(frozen=True)
class ConcatParams:
    """``axis`` of the join and one table per input (None where the input already matches)."""

    name: str
    axis: int
    tables: tuple[LookupParams | None, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "axis", check_int(f"layer {self.name!r}: axis", self.axis,
                                                   -64, 63))

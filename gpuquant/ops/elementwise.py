"""Parameters of element-wise binary ops on two 8-bit tensors with their own scales.

add (TFLite's method, docs/quantization.md eq. 9): with ``left_shift = 20`` and
``s = 2 * max(s_a, s_b)``::

    a' = requant_a((a - za) << left_shift)        multiplier s_a / s
    b' = requant_b((b - zb) << left_shift)        multiplier s_b / s  (negated for subtraction)
    y  = clamp(zy + requant_out(a' + b'))         multiplier s / (2**left_shift * s_y)

mul: ``y = clamp(zy + requant((a - za) * (b - zb)))`` with multiplier ``s_a * s_b / s_y``.
Both broadcast as NumPy does.
"""

from __future__ import annotations

from dataclasses import dataclass

from .requant import Requant, check_int

ADD_LEFT_SHIFT = 20
MAX_LEFT_SHIFT = 22  # |q - z| <= 383 for 8-bit codes and zero points: 383 * 2**22 < 2**31
ZERO_POINT_RANGE = (-128, 255)  # an int8 or a uint8 zero point


def _check_fields(params: object, ranges: dict[str, tuple[int, int]]) -> None:
    for what, (lo, hi) in ranges.items():
        value = check_int(f"layer {params.name!r}: {what}", getattr(params, what), lo, hi)
        object.__setattr__(params, what, value)


@dataclass(frozen=True)
class AddParams:
    """TFLite-style add/sub; ``input_b`` carries a negative sign for subtraction."""

    name: str
    a_zero_point: int
    b_zero_point: int
    a_multiplier: int
    a_shift: int
    b_multiplier: int
    b_shift: int
    b_negate: bool
    left_shift: int
    requant: Requant

    def __post_init__(self) -> None:
        _check_fields(self, {
            "a_zero_point": ZERO_POINT_RANGE, "b_zero_point": ZERO_POINT_RANGE,
            "a_multiplier": (0, 2**31 - 1), "a_shift": (-31, 30),
            "b_multiplier": (0, 2**31 - 1), "b_shift": (-31, 30),
            "left_shift": (0, MAX_LEFT_SHIFT),
        })


@dataclass(frozen=True)
class MulParams:
    """``y = requant((a - za) * (b - zb))``."""

    name: str
    a_zero_point: int
    b_zero_point: int
    requant: Requant

    def __post_init__(self) -> None:
        _check_fields(self, {"a_zero_point": ZERO_POINT_RANGE, "b_zero_point": ZERO_POINT_RANGE})

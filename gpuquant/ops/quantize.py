"""Parameters of float -> 8-bit quantization at the edge of an integer graph."""

from __future__ import annotations

from dataclasses import dataclass

from ..quant.params import QUANTIZE_ROUNDING, QuantParams


@dataclass(frozen=True)
class QuantizeParams:
    """``q = clamp(round(float32(x) / scale) + zp)``; ``rounding`` as in quant.params.quantize."""

    name: str
    params: QuantParams
    rounding: str = "half_to_even"

    def __post_init__(self) -> None:
        if self.rounding not in QUANTIZE_ROUNDING:
            raise ValueError(f"rounding must be one of {QUANTIZE_ROUNDING}, got {self.rounding!r}")

"""Frozen per-op parameter structs: everything an integer kernel needs, and no floats.

Built once (by the converter or a frontend) with every static check done here; the NumPy and
CuPy backends take the same structs.
"""

from .accumulator import check_accumulator, check_bias
from .concat import ConcatParams
from .conv import Conv2DParams, conv_output_hw, resolve_padding
from .elementwise import ADD_LEFT_SHIFT, AddParams, MulParams
from .gemm import GemmParams, MatMulParams
from .lut import LookupParams, build_table
from .pool import MeanParams, PoolParams
from .quantize import QuantizeParams
from .requant import Requant, activation_bounds, make_requant

__all__ = [
    "ADD_LEFT_SHIFT", "AddParams", "ConcatParams", "Conv2DParams", "GemmParams", "LookupParams",
    "MatMulParams", "MeanParams", "MulParams", "PoolParams", "QuantizeParams", "Requant", "activation_bounds",
    "build_table", "check_accumulator", "check_bias", "conv_output_hw", "make_requant",
    "resolve_padding",
]

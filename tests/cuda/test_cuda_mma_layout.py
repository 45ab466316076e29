"""The m16n8k32 .s8 fragment layout of mma_s8.cuh (used by the GEMM and by its emulation) against
the PTX ISA's formulas ("Matrix Fragments for mma.m16n8k32"), restated per element index i:

    groupID = lane >> 2, threadID_in_group = lane % 4
    A (16 elements a_i): row = groupID for i < 4 or 8 <= i < 12, else groupID + 8;
                         col = threadID_in_group * 4 + (i & 3) for i < 8, else + 16
    B (8 elements b_i):  row = threadID_in_group * 4 + (i & 3) for i < 4, else + 16;
                         col = groupID
    C (4 elements c_i):  row = groupID for i < 2, else groupID + 8;
                         col = threadID_in_group * 2 + (i & 1)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from host_module import HostModule


def _spec() -> np.ndarray:
    out = np.zeros((32, 48), np.int32)
    for lane in range(32):
        g, t = lane >> 2, lane % 4
        for i in range(16):
            row = g if (i < 4 or 8 <= i < 12) else g + 8
            col = t * 4 + (i & 3) + (16 if i >= 8 else 0)
            out[lane, i] = row * 32 + col
        for i in range(8):
            row = t * 4 + (i & 3) + (16 if i >= 4 else 0)
            out[lane, 16 + i] = row * 8 + g
        for i in range(4):
            out[lane, 24 + i] = (g if i < 2 else g + 8) * 8 + t * 2 + (i & 1)
    return out


def test_fragment_layout_matches_the_ptx_isa():
    probe = HostModule(Path(__file__).parent / "kernels" / "mma_layout_probe.cu",
                       ["gq_probe_mma_layout"])
    out = np.zeros((32, 48), np.int32)
    probe.get_function("gq_probe_mma_layout")((1,), (32,), (out,))
    np.testing.assert_array_equal(out, _spec())
    # every element of A, B and C is owned by exactly one (lane, register, byte)
    assert sorted(out[:, :16].ravel()) == list(range(16 * 32))
    assert sorted(out[:, 16:24].ravel()) == list(range(32 * 8))
    assert sorted(out[:, 24:28].ravel()) == list(range(16 * 8))

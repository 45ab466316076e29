// mma_s8.cuh: one warp-wide int8 tensor-core step, D = A * B + C with A 16x32 s8 (row major),
// B 32x8 s8 (column major), C and D 16x8 s32: mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32.
//
// Fragments (PTX ISA, "Matrix Fragments for mma.m16n8k32"), lane = 4 * g + t, g = groupID,
// t = threadID_in_group; each .b32 register holds 4 bytes, lowest k in the lowest byte:
//   A: a[0] row g,   k 4t..4t+3      a[1] row g+8, k 4t..4t+3
//      a[2] row g,   k 16+4t..19+4t  a[3] row g+8, k 16+4t..19+4t
//   B: b[0] col g,   k 4t..4t+3      b[1] col g,   k 16+4t..19+4t
//   C/D: c[0], c[1] row g, cols 2t, 2t+1     c[2], c[3] row g+8, cols 2t, 2t+1
// No .satfinite: the s32 sums wrap modulo 2^32, as __dp4a does.
// All 32 lanes of the warp must call it together (.sync.aligned). Under GQ_HOST_EMULATION the
// same layouts are emulated in C++ from the lanes' registers gathered across the warp.
#pragma once

#include "fixedpoint.cuh"

// Row and k of byte `byte` (0..3) of A register `reg` held by `lane`.
GQ_HD int gq_mma_a_row(int lane, int reg) { return (lane >> 2) + 8 * (reg & 1); }
GQ_HD int gq_mma_a_k(int lane, int reg, int byte) {
  return 4 * (lane & 3) + 16 * (reg >> 1) + byte;
}
// Column and k of byte `byte` of B register `reg` held by `lane`.
GQ_HD int gq_mma_b_col(int lane) { return lane >> 2; }
GQ_HD int gq_mma_b_k(int lane, int reg, int byte) { return 4 * (lane & 3) + 16 * reg + byte; }
// Row and column of accumulator `i` (0..3) held by `lane`.
GQ_HD int gq_mma_c_row(int lane, int i) { return (lane >> 2) + 8 * (i >> 1); }
GQ_HD int gq_mma_c_col(int lane, int i) { return 2 * (lane & 3) + (i & 1); }

#if defined(GQ_HOST_EMULATION)

struct GqMmaLaneRegs {
  gq_u32 a[4];
  gq_u32 b[2];
};

GQ_HD int gq_byte_s8(gq_u32 word, int byte) { return (gq_i8)(gq_u8)(word >> (8 * byte)); }

GQ_HD void gq_mma_m16n8k32_s8(int d[4], const gq_u32 a[4], const gq_u32 b[2], const int c[4]) {
  GqMmaLaneRegs mine = {{a[0], a[1], a[2], a[3]}, {b[0], b[1]}};
  GqMmaLaneRegs lanes[32];
  gq_host::warp_allgather(&mine, sizeof(mine), lanes);
  signed char A[16][32];
  signed char B[32][8];
  for (int lane = 0; lane < 32; ++lane) {
    for (int reg = 0; reg < 4; ++reg)
      for (int byte = 0; byte < 4; ++byte)
        A[gq_mma_a_row(lane, reg)][gq_mma_a_k(lane, reg, byte)] =
            (signed char)gq_byte_s8(lanes[lane].a[reg], byte);
    for (int reg = 0; reg < 2; ++reg)
      for (int byte = 0; byte < 4; ++byte)
        B[gq_mma_b_k(lane, reg, byte)][gq_mma_b_col(lane)] =
            (signed char)gq_byte_s8(lanes[lane].b[reg], byte);
  }
  const int lane = (int)(gq_host::linear_tid() % 32);
  for (int i = 0; i < 4; ++i) {
    const int row = gq_mma_c_row(lane, i);
    const int col = gq_mma_c_col(lane, i);
    int sum = c[i];
    for (int k = 0; k < 32; ++k) sum = gq_wrap_add(sum, (int)A[row][k] * (int)B[k][col]);
    d[i] = sum;
  }
}

#else

__device__ __forceinline__ void gq_mma_m16n8k32_s8(int d[4], const gq_u32 a[4], const gq_u32 b[2],
                                                   const int c[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"
      : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(c[0]), "r"(c[1]),
        "r"(c[2]), "r"(c[3]));
#else
  // Tensor-core kernels are instantiated for sm_80 and newer only (backends/cupy/kernels.py).
  __trap();
#endif
}

#endif

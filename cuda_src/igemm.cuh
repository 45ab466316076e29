// igemm.cuh: the block-level int8 GEMM shared by gemm.cu (fully connected) and conv.cu (implicit
// GEMM), with the zero-point correction and requantization epilogue (ops/gemm.py):
//
//   acc[m, n] = sum_k x'[m,k] * w'[n,k]  -  zw'[n] * rowsum(x')[m]  +  folded'[n]
//   y[m, n]   = clamp(zp + multiply_by_quantized_multiplier(acc[m, n]), qmin, qmax)
//
// x' and w' are the int8 images of the operands (uint8 values minus 128; the backend folds the
// shifted zero points into zw' and folded', so acc is unchanged). All sums wrap modulo 2^32; the
// true acc fits int32 (ops/accumulator.py), hence the wrapped result is exact.
//
// Tiling: a block of GQ_GEMM_THREADS = 128 threads computes a GQ_BM x GQ_BN = 64 x 64 tile of y,
// block (blockIdx.x, blockIdx.y) owning rows 64*blockIdx.x.. and columns 64*blockIdx.y.. .
// K advances by GQ_BKW = 8 words (32 bytes) per stage: each thread stages 4 words of x' and 4 of w' into
// shared memory (loaded into registers during the previous stage's arithmetic), then
//   dp4a path (any sm_61+): thread (tx, ty) = (tid % 16, tid / 16) accumulates rows ty + 8i
//     (i < 8) and columns tx + 16j (j < 4) with __dp4a;
//   mma path (sm_80+): warp w owns the 32 x 32 sub-tile at rows 32*(w/2), columns 32*(w%2):
//     2 x 4 mma.m16n8k32 tiles, fragments read from shared memory as mma_s8.cuh lays them out.
// Threads 0..63 also sum the staged row of x' (rowsum) with __dp4a against 0x01010101.
// The A operand comes from a loader: `loader.word(m, kw)` returns bytes 4kw..4kw+3 of row m of
// x' packed little-endian, with zero for m >= M or k >= K.
#pragma once

#include "fixedpoint.cuh"
#include "mma_s8.cuh"

#define GQ_BM 64
#define GQ_BN 64
#define GQ_BKW 8
#define GQ_SMEM_STRIDE 12
#define GQ_GEMM_THREADS 128

// Per-channel data of the epilogue; channel = n_offset + n, output row stride ldy.
struct GqGemmEpilogue {
  const int* zw;
  const int* folded;
  GqRequant rq;
  void* y;
  int ldy;
  int n_offset;
};

// OUT_INT32: the accumulator itself; else the requantized code as a byte (int8 and uint8 codes
// store alike, two's complement).
template <bool OUT_INT32>
__device__ __forceinline__ void gq_gemm_store(const GqGemmEpilogue& ep, int m, int n, int dot,
                                              int rowsum) {
  const int ch = ep.n_offset + n;
  const int acc = gq_wrap_add(gq_wrap_add(dot, -gq_wrap_mul(ep.zw[ch], rowsum)), ep.folded[ch]);
  const long long at = (long long)m * ep.ldy + ch;
  if (OUT_INT32) {
    ((int*)ep.y)[at] = acc;
  } else {
    ((gq_u8*)ep.y)[at] = (gq_u8)gq_requantize(acc, ep.rq, ch);
  }
}

// y[m0.., n0..] for one block; w points at N rows of Kw words (k padded with zeros to 4).
template <bool OUT_INT32, bool MMA, class Loader>
__device__ __forceinline__ void gq_igemm_block(const Loader& loader, const gq_u32* __restrict__ w,
                                               int M, int N, int Kw, const GqGemmEpilogue& ep) {
  __shared__ gq_u32 As[GQ_BM][GQ_SMEM_STRIDE];
  __shared__ gq_u32 Bs[GQ_BN][GQ_SMEM_STRIDE];
  __shared__ int rowsums[GQ_BM];

  const int tid = (int)threadIdx.x;
  const int m0 = (int)blockIdx.x * GQ_BM;
  const int n0 = (int)blockIdx.y * GQ_BN;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  // 32 accumulators per thread: dp4a index 4i + j (row ty + 8i, column tx + 16j);
  // mma index 4 (4 mi + nj) + c (m16 tile mi, n8 tile nj, accumulator register c).
  const int tx = tid & 15;
  const int ty = tid >> 4;
  const int wr = 32 * (warp >> 1);
  const int wc = 32 * (warp & 1);
  int acc[32];
#pragma unroll
  for (int i = 0; i < 32; ++i) acc[i] = 0;
  int rowsum = 0;

  // Word r of this thread's share of a stage: tile row e >> 3, word e & 7 with e = tid + 128 r.
  // The next stage's words are loaded into registers while the current stage is computed.
  gq_u32 a_next[4], b_next[4];
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int e = tid + GQ_GEMM_THREADS * r;
    a_next[r] = loader.word(m0 + (e >> 3), e & 7);
    const int n = n0 + (e >> 3);
    b_next[r] = (n < N && (e & 7) < Kw) ? w[(long long)n * Kw + (e & 7)] : 0u;
  }

  for (int kt = 0; kt < Kw; kt += GQ_BKW) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int e = tid + GQ_GEMM_THREADS * r;
      As[e >> 3][e & 7] = a_next[r];
      Bs[e >> 3][e & 7] = b_next[r];
    }
#if !defined(GQ_TEST_DROP_SYNC)
    // GQ_TEST_DROP_SYNC exists only for the harness test that proves this barrier is needed.
    __syncthreads();
#endif
    if (kt + GQ_BKW < Kw) {
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int e = tid + GQ_GEMM_THREADS * r;
        const int n = n0 + (e >> 3);
        const int kw = kt + GQ_BKW + (e & 7);
        a_next[r] = loader.word(m0 + (e >> 3), kw);
        b_next[r] = (n < N && kw < Kw) ? w[(long long)n * Kw + kw] : 0u;
      }
    }
    if constexpr (MMA) {
      const int g = lane >> 2;
      const int t = lane & 3;
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        const int ra = wr + 16 * mi + g;
        const gq_u32 a[4] = {As[ra][t], As[ra + 8][t], As[ra][4 + t], As[ra + 8][4 + t]};
#pragma unroll
        for (int nj = 0; nj < 4; ++nj) {
          const int cb = wc + 8 * nj + g;
          const gq_u32 b[2] = {Bs[cb][t], Bs[cb][4 + t]};
          int* c = &acc[4 * (4 * mi + nj)];
          gq_mma_m16n8k32_s8(c, a, b, c);
        }
      }
    } else {
#pragma unroll
      for (int kw = 0; kw < GQ_BKW; ++kw) {
        int b[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) b[j] = (int)Bs[tx + 16 * j][kw];
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          const int a = (int)As[ty + 8 * i][kw];
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[4 * i + j] = __dp4a(a, b[j], acc[4 * i + j]);
        }
      }
    }
    if (tid < GQ_BM) {
#pragma unroll
      for (int kw = 0; kw < GQ_BKW; ++kw) rowsum = __dp4a((int)As[tid][kw], 0x01010101, rowsum);
    }
    __syncthreads();
  }

  if (tid < GQ_BM) rowsums[tid] = rowsum;
  __syncthreads();

#pragma unroll
  for (int e = 0; e < 32; ++e) {
    int row, col;
    if constexpr (MMA) {
      const int tile = e >> 2;
      row = wr + 16 * (tile >> 2) + gq_mma_c_row(lane, e & 3);
      col = wc + 8 * (tile & 3) + gq_mma_c_col(lane, e & 3);
    } else {
      row = ty + 8 * (e >> 2);
      col = tx + 16 * (e & 3);
    }
    if (m0 + row < M && n0 + col < N) {
      gq_gemm_store<OUT_INT32>(ep, m0 + row, n0 + col, acc[e], rowsums[row]);
    }
  }
}

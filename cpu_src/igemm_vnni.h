// igemm_vnni.h: the NumPy backend's native int8 GEMM core on x86-64 CPUs with AVX-512 VNNI.
//
// Computes, for x' (M x K, uint8) and w' (N x K, int8), with the zero-point correction and the
// requantization epilogue of cuda_src/igemm.cuh (ops/gemm.py):
//
//   acc[m, n] = sum_k x'[m,k] * w'[n,k]  -  zw'[n] * rowsum(x')[m]  +  folded'[n]
//   y[m, n]   = clamp(zp + multiply_by_quantized_multiplier(acc[m, n]), qmin, qmax)
//
// y is fixedpoint.cuh's gq_requantize (the CUDA kernels' epilogue), restated on 16 lanes at a time
// (gq_cpu_requantize16). x' is x itself, or x ^ 0x80 (x + 128) when flip_x is set (int8 inputs);
// backends/numpy/native.py folds the shifts into zw' and folded'. VPDPBUSD sums four uint8 x int8
// products into each int32 lane with wrap-around, like every other sum here: the true acc fits
// int32 (ops/accumulator.py), so it is exact.
//
// Layout: w' is packed once into panels of 64 output columns; panel p holds, for each group of
// four k (K padded with zeros to a multiple of 4), the 64 columns' 4 bytes: 256 bytes per group,
// one zmm load per 16 columns. A 6 x 64 register tile (24 zmm accumulators) walks K: per group,
// 4 panel loads, 6 broadcasts of 4 bytes of x' and 24 VPDPBUSD. Rows come in chunks of
// GQ_CPU_MC so that a chunk of x' stays in L2 while every panel passes over it.
//
// Sizes are below 2^31; offsets and row indices are computed in 64 bits (row strides may be
// negative or zero). Nothing here allocates, so nothing throws while the caller runs without
// the GIL.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "igemm_common.h"

#define GQ_CPU_NR 64
#define GQ_CPU_MR 6
#define GQ_CPU_MC 192
#define GQ_CPU_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

// Bytes of the panels of N columns: ceil(N / 64) panels of ceil(K / 4) groups of 256 bytes.
inline long gq_cpu_packed_size(int n, int k) {
  return ((long)n + GQ_CPU_NR - 1) / GQ_CPU_NR * (((long)k + 3) / 4) * 4 * GQ_CPU_NR;
}

// Panels of w'[i, j] = w[i * stride_n + j * stride_k] ^ flip for i < n, j < k, zero elsewhere.
inline void gq_cpu_pack(const int8_t* w, long stride_n, long stride_k, int n, int k,
                        uint8_t flip, int8_t* out) {
  const long groups = ((long)k + 3) / 4;
  std::memset(out, 0, (size_t)gq_cpu_packed_size(n, k));
  for (long i = 0; i < n; ++i) {
    int8_t* column = out + i / GQ_CPU_NR * groups * 4 * GQ_CPU_NR + i % GQ_CPU_NR * 4;
    for (long j = 0; j < k; ++j) {
      column[j / 4 * 4 * GQ_CPU_NR + j % 4] =
          (int8_t)((uint8_t)w[i * stride_n + j * stride_k] ^ flip);
    }
  }
}

GQ_CPU_TARGET inline int32_t gq_cpu_load_word(const uint8_t* p) {
  int32_t word;
  std::memcpy(&word, p, 4);
  return word;
}

// One group of four k for row I: broadcast 4 bytes of x' against the 4 panel vectors.
#define GQ_CPU_STEP(I)                                                            \
  if constexpr (MR > I) {                                                         \
    const __m512i ab = _mm512_set1_epi32(gq_cpu_load_word(a + (I) * ldx) ^ flip); \
    c##I##0 = _mm512_dpbusd_epi32(c##I##0, ab, b0);                               \
    c##I##1 = _mm512_dpbusd_epi32(c##I##1, ab, b1);                               \
    c##I##2 = _mm512_dpbusd_epi32(c##I##2, ab, b2);                               \
    c##I##3 = _mm512_dpbusd_epi32(c##I##3, ab, b3);                               \
  }
#define GQ_CPU_SAVE(I)                                   \
  if constexpr (MR > I) {                                \
    _mm512_store_si512(tile + (I) * GQ_CPU_NR, c##I##0);      \
    _mm512_store_si512(tile + (I) * GQ_CPU_NR + 16, c##I##1); \
    _mm512_store_si512(tile + (I) * GQ_CPU_NR + 32, c##I##2); \
    _mm512_store_si512(tile + (I) * GQ_CPU_NR + 48, c##I##3); \
  }

// tile[i][0..63] = sum over `groups` groups of four k of x'[i] . panel, for rows i < MR of a
// (row stride ldx): MR x 4 zmm accumulators that stay in registers for the whole loop.
template <int MR>
GQ_CPU_TARGET inline void gq_cpu_dot_tile(const uint8_t* a, long ldx, const int8_t* b,
                                          int groups, int32_t flip, int32_t* tile) {
  __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00;
  __m512i c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  __m512i c20 = c00, c21 = c00, c22 = c00, c23 = c00;
  __m512i c30 = c00, c31 = c00, c32 = c00, c33 = c00;
  __m512i c40 = c00, c41 = c00, c42 = c00, c43 = c00;
  __m512i c50 = c00, c51 = c00, c52 = c00, c53 = c00;
  for (int q = 0; q < groups; ++q, a += 4, b += 4 * GQ_CPU_NR) {
    const __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 64),
                  b2 = _mm512_loadu_si512(b + 128), b3 = _mm512_loadu_si512(b + 192);
    GQ_CPU_STEP(0)
    GQ_CPU_STEP(1)
    GQ_CPU_STEP(2)
    GQ_CPU_STEP(3)
    GQ_CPU_STEP(4)
    GQ_CPU_STEP(5)
  }
  GQ_CPU_SAVE(0)
  GQ_CPU_SAVE(1)
  GQ_CPU_SAVE(2)
  GQ_CPU_SAVE(3)
  GQ_CPU_SAVE(4)
  GQ_CPU_SAVE(5)
}

// Adds the last, partial group of four k (k % 4 bytes per row) to the tile of `rows` rows.
GQ_CPU_TARGET inline void gq_cpu_tail_group(const uint8_t* a, long ldx, const int8_t* b, int bytes,
                                            int rows, int32_t flip, int32_t* tile) {
  for (int i = 0; i < rows; ++i) {
    int32_t word = 0;
    std::memcpy(&word, a + i * ldx, (size_t)bytes);
    const __m512i ab = _mm512_set1_epi32(word ^ flip);
    for (int j = 0; j < 4; ++j) {
      int32_t* t = tile + i * GQ_CPU_NR + 16 * j;
      _mm512_store_si512(t, _mm512_dpbusd_epi32(_mm512_load_si512(t), ab,
                                                _mm512_loadu_si512(b + 64 * j)));
    }
  }
}

// 64-bit lane products acc * mult of the even int32 lanes (EVEN) or of the odd ones.
template <bool EVEN>
GQ_CPU_TARGET inline __m512i gq_cpu_mul64(__m512i acc, __m512i mult) {
  if (EVEN) return _mm512_mul_epi32(acc, mult);
  return _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), _mm512_srli_epi64(mult, 32));
}

// The low 32 bits of the 64-bit lanes of `even` and `odd` as 16 int32 lanes, in lane order.
GQ_CPU_TARGET inline __m512i gq_cpu_interleave(__m512i even, __m512i odd) {
  return _mm512_mask_blend_epi32((__mmask16)0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

// gq_mul_gemmlowp on 16 lanes. The high multiply floor((x * M + 2^30) / 2^31) equals
// fixedpoint.cuh's truncating form for both signs (M >= 0 never meets INT32_MIN * INT32_MIN).
GQ_CPU_TARGET inline __m512i gq_cpu_mul_gemmlowp(__m512i acc, __m512i mult, __m512i shift) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i left = _mm512_max_epi32(shift, zero);
  const __m512i right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
  const __m512i shifted = _mm512_sllv_epi32(acc, left);
  const __mmask16 overflow =
      _mm512_cmpneq_epi32_mask(_mm512_srav_epi32(shifted, left), acc);
  const __m512i saturated = _mm512_mask_blend_epi32(
      _mm512_cmplt_epi32_mask(acc, zero), _mm512_set1_epi32(GQ_INT32_MAX),
      _mm512_set1_epi32(GQ_INT32_MIN));
  const __m512i x = _mm512_mask_blend_epi32(overflow, shifted, saturated);
  const __m512i half = _mm512_set1_epi64((long long)1 << 30);
  const __m512i even = _mm512_srai_epi64(_mm512_add_epi64(gq_cpu_mul64<true>(x, mult), half), 31);
  const __m512i odd = _mm512_srai_epi64(_mm512_add_epi64(gq_cpu_mul64<false>(x, mult), half), 31);
  const __m512i y = gq_cpu_interleave(even, odd);
  const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), right),
                                        _mm512_set1_epi32(1));
  const __m512i remainder = _mm512_and_si512(y, mask);
  const __m512i threshold = _mm512_mask_add_epi32(_mm512_srli_epi32(mask, 1),
                                                  _mm512_cmplt_epi32_mask(y, zero),
                                                  _mm512_srli_epi32(mask, 1), _mm512_set1_epi32(1));
  return _mm512_mask_add_epi32(_mm512_srav_epi32(y, right),
                               _mm512_cmpgt_epi32_mask(remainder, threshold),
                               _mm512_srav_epi32(y, right), _mm512_set1_epi32(1));
}

// gq_mul_single on the 64-bit lanes of one parity, clamped to [lo, hi] in 64 bits (which is
// saturation to int32 followed by the clamp, the bounds being int32).
template <bool EVEN>
GQ_CPU_TARGET inline __m512i gq_cpu_mul_single_half(__m512i acc, __m512i mult, __m512i shift,
                                                    __m512i lo, __m512i hi) {
  const __m512i product = gq_cpu_mul64<EVEN>(acc, mult);
  const __m512i lane_shift = EVEN ? _mm512_srai_epi64(_mm512_slli_epi64(shift, 32), 32)
                                  : _mm512_srai_epi64(shift, 32);
  const __m512i total = _mm512_sub_epi64(_mm512_set1_epi64(31), lane_shift);
  const __m512i one = _mm512_set1_epi64(1);
  const __m512i rounded = _mm512_srlv_epi64(
      _mm512_add_epi64(_mm512_abs_epi64(product),
                       _mm512_sllv_epi64(one, _mm512_sub_epi64(total, one))),
      total);
  const __mmask8 negative = _mm512_cmplt_epi64_mask(product, _mm512_setzero_si512());
  const __m512i value = _mm512_mask_sub_epi64(rounded, negative, _mm512_setzero_si512(), rounded);
  return _mm512_min_epi64(_mm512_max_epi64(value, lo), hi);
}

// clamp(zp + multiply_by_quantized_multiplier(acc), qmin, qmax) for channels n..n+15 (lanes
// outside `valid` read no per-channel data and are don't-care): gq_requantize on 16 lanes.
GQ_CPU_TARGET inline __m512i gq_cpu_requantize16(__m512i acc, const GqRequant& rq, long n,
                                                 __mmask16 valid) {
  const int lo = rq.qmin - rq.zero_point, hi = rq.qmax - rq.zero_point;
  __m512i scaled;
  if (rq.mode == GQ_ROUND_F32) {
    const __m512 m = _mm512_maskz_loadu_ps(valid, rq.multiplier_f32 + n);
    const __m512 product = _mm512_mul_round_ps(
        _mm512_mask_cvt_roundepi32_ps(_mm512_setzero_ps(), (__mmask16)0xFFFF, acc,
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), m,
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 clamped = _mm512_min_ps(_mm512_max_ps(product, _mm512_set1_ps((float)lo)),
                                         _mm512_set1_ps((float)hi));
    scaled = _mm512_cvt_roundps_epi32(clamped, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  } else {
    const __m512i mult = _mm512_maskz_loadu_epi32(valid, rq.multiplier + n);
    const __m512i shift = _mm512_maskz_loadu_epi32(valid, rq.shift + n);
    if (rq.mode == GQ_ROUND_SINGLE) {
      const __m512i lo64 = _mm512_set1_epi64(lo), hi64 = _mm512_set1_epi64(hi);
      scaled = gq_cpu_interleave(gq_cpu_mul_single_half<true>(acc, mult, shift, lo64, hi64),
                                 gq_cpu_mul_single_half<false>(acc, mult, shift, lo64, hi64));
    } else {
      scaled = _mm512_min_epi32(
          _mm512_max_epi32(gq_cpu_mul_gemmlowp(acc, mult, shift), _mm512_set1_epi32(lo)),
          _mm512_set1_epi32(hi));
    }
  }
  return _mm512_add_epi32(scaled, _mm512_set1_epi32(rq.zero_point));
}

// y[i, j] = gq_requantize(acc[i, j], channel j) for `rows` rows of n int32 accumulators (row
// stride lda) into bytes (row stride ldy): the epilogue alone, 16 channels at a time.
GQ_CPU_TARGET inline void gq_cpu_requantize_rows(const int32_t* acc, long lda, int rows, int n,
                                                 const GqRequant& rq, uint8_t* y, long ldy) {
  for (long i = 0; i < rows; ++i) {
    for (long j = 0; j < n; j += 16) {
      const __mmask16 mask = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
      const __m512i v = _mm512_maskz_loadu_epi32(mask, acc + i * lda + j);
      _mm_mask_storeu_epi8(y + i * ldy + j, mask,
                           _mm512_cvtepi32_epi8(gq_cpu_requantize16(v, rq, j, mask)));
    }
  }
}

// Rows m0..m0+MR-1 of one panel (rowsum[i] = rowsum(x')[m0 + i]): products, zero-point
// correction, then int32 or requantized out.
template <int MR>
GQ_CPU_TARGET inline void gq_cpu_tile(const GqCpuGemm& g, long m0, int panel,
                                      const int32_t* rowsum) {
  const int groups = (int)(((long)g.k + 3) / 4);
  const int full = g.k / 4;
  const int32_t flip = g.flip_x ? (int32_t)0x80808080u : 0;
  const int8_t* b = g.packed + (long)panel * groups * 4 * GQ_CPU_NR;
  const uint8_t* a = g.x + m0 * g.ldx;
  alignas(64) int32_t tile[GQ_CPU_MR * GQ_CPU_NR];
  gq_cpu_dot_tile<MR>(a, g.ldx, b, full, flip, tile);
  if (full < groups) {
    gq_cpu_tail_group(a + 4 * full, g.ldx, b + (long)full * 4 * GQ_CPU_NR, g.k - 4 * full, MR,
                      flip, tile);
  }
  const long n0 = (long)panel * GQ_CPU_NR;
  const int cols = g.n - n0 < GQ_CPU_NR ? (int)(g.n - n0) : GQ_CPU_NR;
  for (int i = 0; i < MR; ++i) {
    const int32_t* row = tile + i * GQ_CPU_NR;
    const __m512i rs = _mm512_set1_epi32(g.has_zw ? rowsum[i] : 0);
    for (int j = 0; j < 4 && 16 * j < cols; ++j) {
      const int left = cols - 16 * j;
      const __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
      const __m512i folded = _mm512_maskz_loadu_epi32(mask, g.folded + n0 + 16 * j);
      const __m512i zw = _mm512_maskz_loadu_epi32(mask, g.zw + n0 + 16 * j);
      const __m512i v = _mm512_sub_epi32(_mm512_add_epi32(_mm512_load_si512(row + 16 * j), folded),
                                         _mm512_mullo_epi32(zw, rs));
      if (g.out_int32) {
        _mm512_mask_storeu_epi32((int32_t*)g.y + (m0 + i) * g.ldy + n0 + 16 * j, mask, v);
      } else {
        _mm_mask_storeu_epi8((uint8_t*)g.y + (m0 + i) * g.ldy + n0 + 16 * j, mask,
                             _mm512_cvtepi32_epi8(gq_cpu_requantize16(v, g.rq, n0 + 16 * j, mask)));
      }
    }
  }
}

// Rows m0..m0+rows-1 of one panel, GQ_CPU_MR at a time (rowsum[i] = rowsum(x')[m0 + i]).
GQ_CPU_TARGET inline void gq_cpu_rows(const GqCpuGemm& g, long m0, int rows, int panel,
                                      const int32_t* rowsum) {
  int i = 0;
  for (; i + GQ_CPU_MR <= rows; i += GQ_CPU_MR) {
    gq_cpu_tile<GQ_CPU_MR>(g, m0 + i, panel, rowsum + i);
  }
  switch (rows - i) {
    case 5: gq_cpu_tile<5>(g, m0 + i, panel, rowsum + i); break;
    case 4: gq_cpu_tile<4>(g, m0 + i, panel, rowsum + i); break;
    case 3: gq_cpu_tile<3>(g, m0 + i, panel, rowsum + i); break;
    case 2: gq_cpu_tile<2>(g, m0 + i, panel, rowsum + i); break;
    case 1: gq_cpu_tile<1>(g, m0 + i, panel, rowsum + i); break;
    default: break;
  }
}

// The whole product; requires gq_cpu_supported(). Per chunk of GQ_CPU_MC rows, rowsum(x') mod
// 2^32 (uint32 wrap, like every sum here) when some zw' is nonzero, then every panel.
GQ_CPU_TARGET inline void gq_cpu_gemm(const GqCpuGemm& g) {
  const uint32_t flip = g.flip_x ? 0x80u : 0u;
  const int panels = (int)(((long)g.n + GQ_CPU_NR - 1) / GQ_CPU_NR);
  int32_t rowsum[GQ_CPU_MC];
  for (long mc = 0; mc < g.m; mc += GQ_CPU_MC) {
    const int rows = g.m - mc < GQ_CPU_MC ? (int)(g.m - mc) : GQ_CPU_MC;
    if (g.has_zw) {
      for (int i = 0; i < rows; ++i) {
        uint32_t s = 0;
        const uint8_t* row = g.x + (mc + i) * g.ldx;
        for (int j = 0; j < g.k; ++j) s += (uint32_t)(row[j] ^ flip);
        rowsum[i] = (int32_t)s;
      }
    }
    for (int p = 0; p < panels; ++p) gq_cpu_rows(g, mc, rows, p, rowsum);
  }
}

inline bool gq_cpu_supported() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

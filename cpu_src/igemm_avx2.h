// igemm_avx2.h: the NumPy backend's native int8 GEMM core on x86-64 CPUs with AVX2 (those
// without AVX-512 VNNI: AMD Zen 2/3, Intel client CPUs).
//
// The product of igemm_vnni.h, on the same operands (GqCpuGemm, igemm_common.h):
//
//   acc[m, n] = sum_k x'[m,k] * w'[n,k]  -  zw'[n] * rowsum(x')[m]  +  folded'[n]
//   y[m, n]   = gq_requantize(acc[m, n], channel n)   (fixedpoint.cuh)
//
// or acc itself for int32 outputs; the requantization is igemm_vnni.h's on 8 lanes at a time
// (gq_avx2_requantize8). Products are widened to 16 bits: VPMADDWD multiplies the int16 pairs
// (x'[m,2j], x'[m,2j+1]) and (w'[n,2j], w'[n,2j+1]) and sums both products into one int32
// lane, exactly (|sum| <= 2 * 255 * 128; VPMADDUBSW, which saturates at int16, is not used).
// VPADDD accumulates with wrap-around, like every sum here: the true acc fits int32
// (ops/accumulator.py), so it is exact.
//
// Layout: w' is packed once into panels of 16 output columns; panel p holds, for each pair of k
// (K padded with a zero to even), the 16 columns' two int16: 64 bytes, two ymm loads. Each chunk
// of GQ_AVX2_MC rows of x' is first widened into the caller's workspace as 32-bit words of two
// int16 (one word per pair of k), so that a pair is one broadcast. A 6 x 16 register tile (12 ymm
// accumulators) walks K: per pair, 2 panel loads, 6 broadcasts, 12 VPMADDWD and 12 VPADDD.
//
// Sizes are below 2^31; offsets and row indices are computed in 64 bits (row strides may be
// negative or zero). Nothing here allocates (the workspace comes from the caller), so nothing
// throws while the caller runs without the GIL.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "igemm_common.h"

#define GQ_AVX2_NR 16
#define GQ_AVX2_MR 6
#define GQ_AVX2_MC 72
#define GQ_AVX2_TARGET __attribute__((target("avx2")))

inline long gq_avx2_pairs(int k) { return ((long)k + 1) / 2; }

// Bytes of the panels of N columns: ceil(N / 16) panels of ceil(K / 2) pairs of 64 bytes.
inline long gq_avx2_packed_size(int n, int k) {
  return ((long)n + GQ_AVX2_NR - 1) / GQ_AVX2_NR * gq_avx2_pairs(k) * 2 * GQ_AVX2_NR * 2;
}

// int32 words of the workspace gq_avx2_gemm needs: min(M, GQ_AVX2_MC) rows of ceil(K / 2) pairs.
inline long gq_avx2_workspace_size(int m, int k) {
  return (m < GQ_AVX2_MC ? (long)m : (long)GQ_AVX2_MC) * gq_avx2_pairs(k);
}

// Panels of w'[i, j] = w[i * stride_n + j * stride_k] ^ flip as int16, for i < n, j < k, zero
// elsewhere, into `out` of gq_avx2_packed_size(n, k) bytes.
inline void gq_avx2_pack(const int8_t* w, long stride_n, long stride_k, int n, int k,
                         uint8_t flip, char* out) {
  const long pairs = gq_avx2_pairs(k);
  std::memset(out, 0, (size_t)gq_avx2_packed_size(n, k));
  for (long i = 0; i < n; ++i) {
    char* column = out + (i / GQ_AVX2_NR * pairs * 2 * GQ_AVX2_NR + i % GQ_AVX2_NR * 2) * 2;
    for (long j = 0; j < k; ++j) {
      const int16_t value = (int8_t)((uint8_t)w[i * stride_n + j * stride_k] ^ flip);
      std::memcpy(column + (j / 2 * 2 * GQ_AVX2_NR + j % 2) * 2, &value, 2);
    }
  }
}

// Rows m0..m0+rows-1 of x' into ws (row stride ceil(K / 2) words): word j of a row holds
// x'[2j] in its low and x'[2j+1] (0 past K) in its high 16 bits. With zw', also rowsum(x')
// mod 2^32 (uint32 wrap, like every sum here).
GQ_AVX2_TARGET inline void gq_avx2_widen(const GqCpuGemm& g, long m0, int rows, int32_t* ws,
                                         int32_t* rowsum) {
  const long pairs = gq_avx2_pairs(g.k);
  const uint8_t flip = g.flip_x ? 0x80 : 0;
  const __m128i flip16 = _mm_set1_epi8((char)flip);
  for (int i = 0; i < rows; ++i) {
    const uint8_t* row = g.x + (m0 + i) * g.ldx;
    int32_t* out = ws + i * pairs;
    long j = 0;
    for (; j + 16 <= g.k; j += 16) {
      const __m128i bytes = _mm_xor_si128(_mm_loadu_si128((const __m128i*)(row + j)), flip16);
      _mm256_storeu_si256((__m256i*)(out + j / 2), _mm256_cvtepu8_epi16(bytes));
    }
    for (; j < g.k; j += 2) {
      const uint32_t high = j + 1 < g.k ? (uint32_t)(row[j + 1] ^ flip) : 0u;
      out[j / 2] = (int32_t)((uint32_t)(row[j] ^ flip) | high << 16);
    }
    if (g.has_zw) {
      uint32_t s = 0;
      for (int q = 0; q < g.k; ++q) s += (uint32_t)(row[q] ^ flip);
      rowsum[i] = (int32_t)s;
    }
  }
}

// One pair of k for row I: broadcast its word of x' against the 2 panel vectors.
#define GQ_AVX2_STEP(I)                                                    \
  if constexpr (MR > I) {                                                  \
    const __m256i ab = _mm256_set1_epi32(a[(I) * pairs]);                  \
    c##I##0 = _mm256_add_epi32(c##I##0, _mm256_madd_epi16(ab, b0));        \
    c##I##1 = _mm256_add_epi32(c##I##1, _mm256_madd_epi16(ab, b1));        \
  }
#define GQ_AVX2_SAVE(I)                                                    \
  if constexpr (MR > I) {                                                  \
    _mm256_store_si256((__m256i*)(tile + (I) * GQ_AVX2_NR), c##I##0);      \
    _mm256_store_si256((__m256i*)(tile + (I) * GQ_AVX2_NR + 8), c##I##1);  \
  }

// tile[i][0..15] = sum over `pairs` pairs of k of x'[i] . panel, for rows i < MR of the widened
// a (row stride `pairs` words): MR x 2 ymm accumulators that stay in registers for the whole loop.
template <int MR>
GQ_AVX2_TARGET inline void gq_avx2_dot_tile(const int32_t* a, long pairs, const char* b,
                                            int32_t* tile) {
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (long q = 0; q < pairs; ++q, ++a, b += 4 * GQ_AVX2_NR) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i*)b),
                  b1 = _mm256_loadu_si256((const __m256i*)(b + 32));
    GQ_AVX2_STEP(0)
    GQ_AVX2_STEP(1)
    GQ_AVX2_STEP(2)
    GQ_AVX2_STEP(3)
    GQ_AVX2_STEP(4)
    GQ_AVX2_STEP(5)
  }
  GQ_AVX2_SAVE(0)
  GQ_AVX2_SAVE(1)
  GQ_AVX2_SAVE(2)
  GQ_AVX2_SAVE(3)
  GQ_AVX2_SAVE(4)
  GQ_AVX2_SAVE(5)
}

// 64-bit lane products acc * mult of the even int32 lanes (EVEN) or of the odd ones.
template <bool EVEN>
GQ_AVX2_TARGET inline __m256i gq_avx2_mul64(__m256i acc, __m256i mult) {
  if (EVEN) return _mm256_mul_epi32(acc, mult);
  return _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), _mm256_srli_epi64(mult, 32));
}

// The low 32 bits of the 64-bit lanes of `even` and `odd` as 8 int32 lanes, in lane order.
GQ_AVX2_TARGET inline __m256i gq_avx2_interleave(__m256i even, __m256i odd) {
  return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

// gq_mul_gemmlowp on 8 lanes, as gq_cpu_mul_gemmlowp. AVX2 has no 64-bit arithmetic shift, but
// floor((x * M + 2^30) / 2^31) fits int32 (M in [0, 2^31)), so its 32 bits are bits 31..62 of
// the sum, which a logical shift brings down alike.
GQ_AVX2_TARGET inline __m256i gq_avx2_mul_gemmlowp(__m256i acc, __m256i mult, __m256i shift) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i left = _mm256_max_epi32(shift, zero);
  const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
  const __m256i shifted = _mm256_sllv_epi32(acc, left);
  const __m256i exact = _mm256_cmpeq_epi32(_mm256_srav_epi32(shifted, left), acc);
  const __m256i saturated = _mm256_blendv_epi8(_mm256_set1_epi32(GQ_INT32_MAX),
                                               _mm256_set1_epi32(GQ_INT32_MIN),
                                               _mm256_cmpgt_epi32(zero, acc));
  const __m256i x = _mm256_blendv_epi8(saturated, shifted, exact);
  const __m256i half = _mm256_set1_epi64x((long long)1 << 30);
  const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(gq_avx2_mul64<true>(x, mult), half), 31);
  const __m256i odd = _mm256_srli_epi64(_mm256_add_epi64(gq_avx2_mul64<false>(x, mult), half), 31);
  const __m256i y = gq_avx2_interleave(even, odd);
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
  const __m256i remainder = _mm256_and_si256(y, mask);
  // A compare's true is -1: subtracting it adds 1 (threshold = mask / 2 + (y < 0)).
  const __m256i threshold =
      _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_cmpgt_epi32(zero, y));
  return _mm256_sub_epi32(_mm256_srav_epi32(y, right), _mm256_cmpgt_epi32(remainder, threshold));
}

// gq_mul_single on the 64-bit lanes of one parity (total: 31 - shift in [1, 62] in the int32
// lanes), clamped to [lo, hi] in 64 bits, as gq_cpu_mul_single_half; the 64-bit abs, min and
// max that AVX2 lacks are written with its 64-bit compare.
template <bool EVEN>
GQ_AVX2_TARGET inline __m256i gq_avx2_mul_single_half(__m256i acc, __m256i mult, __m256i total,
                                                      __m256i lo, __m256i hi) {
  const __m256i product = gq_avx2_mul64<EVEN>(acc, mult);
  const __m256i lane_total = EVEN ? _mm256_and_si256(total, _mm256_set1_epi64x(0xFFFFFFFF))
                                  : _mm256_srli_epi64(total, 32);
  const __m256i one = _mm256_set1_epi64x(1);
  const __m256i negative = _mm256_cmpgt_epi64(_mm256_setzero_si256(), product);
  const __m256i magnitude = _mm256_sub_epi64(_mm256_xor_si256(product, negative), negative);
  const __m256i rounded = _mm256_srlv_epi64(
      _mm256_add_epi64(magnitude, _mm256_sllv_epi64(one, _mm256_sub_epi64(lane_total, one))),
      lane_total);
  const __m256i value = _mm256_sub_epi64(_mm256_xor_si256(rounded, negative), negative);
  const __m256i floored = _mm256_blendv_epi8(value, lo, _mm256_cmpgt_epi64(lo, value));
  return _mm256_blendv_epi8(floored, hi, _mm256_cmpgt_epi64(floored, hi));
}

// clamp(zp + multiply_by_quantized_multiplier(acc), qmin, qmax) for channels n..n+7 (lanes
// outside `valid` read no per-channel data and are don't-care): gq_requantize on 8 lanes. The
// float32 mode rounds with MXCSR's mode (half to even), as gq_mul_f32's rintf does.
GQ_AVX2_TARGET inline __m256i gq_avx2_requantize8(__m256i acc, const GqRequant& rq, long n,
                                                  __m256i valid) {
  const int lo = rq.qmin - rq.zero_point, hi = rq.qmax - rq.zero_point;
  __m256i scaled;
  if (rq.mode == GQ_ROUND_F32) {
    const __m256 m = _mm256_maskload_ps(rq.multiplier_f32 + n, valid);
    const __m256 product = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), m);
    const __m256 clamped = _mm256_min_ps(_mm256_max_ps(product, _mm256_set1_ps((float)lo)),
                                         _mm256_set1_ps((float)hi));
    scaled = _mm256_cvtps_epi32(clamped);
  } else {
    const __m256i mult = _mm256_maskload_epi32(rq.multiplier + n, valid);
    const __m256i shift = _mm256_maskload_epi32(rq.shift + n, valid);
    if (rq.mode == GQ_ROUND_SINGLE) {
      const __m256i total = _mm256_sub_epi32(_mm256_set1_epi32(31), shift);
      const __m256i lo64 = _mm256_set1_epi64x(lo), hi64 = _mm256_set1_epi64x(hi);
      scaled = gq_avx2_interleave(gq_avx2_mul_single_half<true>(acc, mult, total, lo64, hi64),
                                  gq_avx2_mul_single_half<false>(acc, mult, total, lo64, hi64));
    } else {
      scaled = _mm256_min_epi32(
          _mm256_max_epi32(gq_avx2_mul_gemmlowp(acc, mult, shift), _mm256_set1_epi32(lo)),
          _mm256_set1_epi32(hi));
    }
  }
  return _mm256_add_epi32(scaled, _mm256_set1_epi32(rq.zero_point));
}

// The low bytes of the 16 int32 lanes of c0 (columns 0..7) and c1 (8..15), codes in
// [-128, 255], in column order. packs_epi32 keeps them exact; it and packus_epi16 interleave
// the 128-bit halves, which the permutation undoes.
GQ_AVX2_TARGET inline __m128i gq_avx2_codes(__m256i c0, __m256i c1) {
  const __m256i words = _mm256_and_si256(_mm256_packs_epi32(c0, c1), _mm256_set1_epi16(0xFF));
  const __m256i bytes = _mm256_packus_epi16(words, words);
  return _mm256_castsi256_si128(
      _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0)));
}

// y[i, j] = gq_requantize(acc[i, j], channel j) for `rows` rows of n int32 accumulators (row
// stride lda) into bytes (row stride ldy): the epilogue alone, 16 channels at a time.
GQ_AVX2_TARGET inline void gq_avx2_requantize_rows(const int32_t* acc, long lda, int rows, int n,
                                                   const GqRequant& rq, uint8_t* y, long ldy) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (long i = 0; i < rows; ++i) {
    for (long j = 0; j < n; j += GQ_AVX2_NR) {
      const int cols = n - j < GQ_AVX2_NR ? (int)(n - j) : GQ_AVX2_NR;
      const __m256i mask0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);
      const __m256i mask1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane);
      const int32_t* a = acc + i * lda + j;
      const __m128i codes = gq_avx2_codes(
          gq_avx2_requantize8(_mm256_maskload_epi32(a, mask0), rq, j, mask0),
          gq_avx2_requantize8(_mm256_maskload_epi32(a + 8, mask1), rq, j + 8, mask1));
      uint8_t* out = y + i * ldy + j;
      if (cols == GQ_AVX2_NR) {
        _mm_storeu_si128((__m128i*)out, codes);
      } else {
        alignas(16) uint8_t part[GQ_AVX2_NR];
        _mm_store_si128((__m128i*)part, codes);
        std::memcpy(out, part, (size_t)cols);
      }
    }
  }
}

// Rows m0..m0+MR-1 of one panel (a: their widened x', rowsum[i] = rowsum(x')[m0 + i]):
// products, zero-point correction in 8 lanes (columns past N masked off), then int32 or
// requantized out.
template <int MR>
GQ_AVX2_TARGET inline void gq_avx2_tile(const GqCpuGemm& g, const int32_t* a, long m0, int panel,
                                        const int32_t* rowsum) {
  const long pairs = gq_avx2_pairs(g.k);
  alignas(32) int32_t tile[GQ_AVX2_MR * GQ_AVX2_NR];
  gq_avx2_dot_tile<MR>(a, pairs, (const char*)g.packed + (long)panel * pairs * 4 * GQ_AVX2_NR,
                       tile);
  const long n0 = (long)panel * GQ_AVX2_NR;
  const int cols = g.n - n0 < GQ_AVX2_NR ? (int)(g.n - n0) : GQ_AVX2_NR;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i mask0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);
  const __m256i mask1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane);
  const __m256i folded0 = _mm256_maskload_epi32(g.folded + n0, mask0);
  const __m256i folded1 = _mm256_maskload_epi32(g.folded + n0 + 8, mask1);
  const __m256i zw0 = _mm256_maskload_epi32(g.zw + n0, mask0);
  const __m256i zw1 = _mm256_maskload_epi32(g.zw + n0 + 8, mask1);
  for (int i = 0; i < MR; ++i) {
    const int32_t* row = tile + i * GQ_AVX2_NR;
    const __m256i rs = _mm256_set1_epi32(g.has_zw ? rowsum[i] : 0);
    const __m256i v0 = _mm256_sub_epi32(
        _mm256_add_epi32(_mm256_load_si256((const __m256i*)row), folded0),
        _mm256_mullo_epi32(zw0, rs));
    const __m256i v1 = _mm256_sub_epi32(
        _mm256_add_epi32(_mm256_load_si256((const __m256i*)(row + 8)), folded1),
        _mm256_mullo_epi32(zw1, rs));
    if (g.out_int32) {
      int32_t* y = (int32_t*)g.y + (m0 + i) * g.ldy + n0;
      _mm256_maskstore_epi32(y, mask0, v0);
      _mm256_maskstore_epi32(y + 8, mask1, v1);
    } else {
      uint8_t* y = (uint8_t*)g.y + (m0 + i) * g.ldy + n0;
      const __m128i codes = gq_avx2_codes(gq_avx2_requantize8(v0, g.rq, n0, mask0),
                                          gq_avx2_requantize8(v1, g.rq, n0 + 8, mask1));
      if (cols == GQ_AVX2_NR) {
        _mm_storeu_si128((__m128i*)y, codes);
      } else {
        alignas(16) uint8_t part[GQ_AVX2_NR];
        _mm_store_si128((__m128i*)part, codes);
        std::memcpy(y, part, (size_t)cols);
      }
    }
  }
}

// Rows m0..m0+rows-1 of one panel, GQ_AVX2_MR at a time (a: their widened x').
GQ_AVX2_TARGET inline void gq_avx2_rows(const GqCpuGemm& g, const int32_t* a, long m0, int rows,
                                        int panel, const int32_t* rowsum) {
  const long pairs = gq_avx2_pairs(g.k);
  int i = 0;
  for (; i + GQ_AVX2_MR <= rows; i += GQ_AVX2_MR) {
    gq_avx2_tile<GQ_AVX2_MR>(g, a + i * pairs, m0 + i, panel, rowsum + i);
  }
  switch (rows - i) {
    case 5: gq_avx2_tile<5>(g, a + i * pairs, m0 + i, panel, rowsum + i); break;
    case 4: gq_avx2_tile<4>(g, a + i * pairs, m0 + i, panel, rowsum + i); break;
    case 3: gq_avx2_tile<3>(g, a + i * pairs, m0 + i, panel, rowsum + i); break;
    case 2: gq_avx2_tile<2>(g, a + i * pairs, m0 + i, panel, rowsum + i); break;
    case 1: gq_avx2_tile<1>(g, a + i * pairs, m0 + i, panel, rowsum + i); break;
    default: break;
  }
}

// The whole product; requires gq_avx2_supported() and a workspace of
// gq_avx2_workspace_size(M, K) words. Per chunk of GQ_AVX2_MC rows, x' widened, then every panel.
GQ_AVX2_TARGET inline void gq_avx2_gemm(const GqCpuGemm& g, int32_t* ws) {
  const int panels = (int)(((long)g.n + GQ_AVX2_NR - 1) / GQ_AVX2_NR);
  int32_t rowsum[GQ_AVX2_MC];
  for (long mc = 0; mc < g.m; mc += GQ_AVX2_MC) {
    const int rows = g.m - mc < GQ_AVX2_MC ? (int)(g.m - mc) : GQ_AVX2_MC;
    gq_avx2_widen(g, mc, rows, ws, rowsum);
    for (int p = 0; p < panels; ++p) gq_avx2_rows(g, ws, mc, rows, p, rowsum);
  }
}

inline bool gq_avx2_supported() { return __builtin_cpu_supports("avx2"); }

// fixedpoint.cuh: the integer requantization of gpuquant/quant/fixedpoint.py, for host and device.
//
// A real multiplier M = multiplier * 2^(shift - 31), multiplier an int32 in [0, 2^31), shift in
// [-31, 30], is applied to an int32 accumulator in one of three rounding modes
// (docs/quantization.md, eq. 5-7; gpuquant/quant/fixedpoint.py is the reference):
//   GQ_ROUND_GEMMLOWP (0): saturating left shift by max(shift, 0),
//                          SaturatingRoundingDoublingHighMul, RoundingDivideByPOT by
//                          max(-shift, 0) (two roundings).
//   GQ_ROUND_SINGLE   (1): round_half_away_from_zero(acc * multiplier * 2^(shift - 31)) in int64,
//                          saturated to int32 (one rounding).
//   GQ_ROUND_F32      (2): rint(float32(M) * float32(acc)) (float32 product, half to even),
//                          saturated to int32; float32(M) is passed in precomputed.
// Everything is __host__ __device__ and uses no library header, so the same code runs under NVRTC
// and g++ (tests/cuda/shim/cuda_host_shim.h). Integer sums that may pass int32 are done in
// uint32 (two's complement wrap): ops/accumulator.py guarantees the final sum fits.
#pragma once

#define GQ_HD __host__ __device__ __forceinline__

#define GQ_ROUND_GEMMLOWP 0
#define GQ_ROUND_SINGLE 1
#define GQ_ROUND_F32 2

#define GQ_INT32_MIN (-2147483647 - 1)
#define GQ_INT32_MAX 2147483647

typedef signed char gq_i8;
typedef unsigned char gq_u8;
typedef int gq_i32;
typedef unsigned int gq_u32;
typedef long long gq_i64;

// a + b modulo 2^32 (no signed-overflow UB on the host).
GQ_HD int gq_wrap_add(int a, int b) { return (int)((gq_u32)a + (gq_u32)b); }

// a * b modulo 2^32.
GQ_HD int gq_wrap_mul(int a, int b) { return (int)((gq_u32)a * (gq_u32)b); }

GQ_HD int gq_saturate_i32(gq_i64 x) {
  return x < (gq_i64)GQ_INT32_MIN ? GQ_INT32_MIN
                                  : (x > (gq_i64)GQ_INT32_MAX ? GQ_INT32_MAX : (int)x);
}

GQ_HD int gq_clamp(gq_i64 x, int lo, int hi) {
  return x < (gq_i64)lo ? lo : (x > (gq_i64)hi ? hi : (int)x);
}

// saturate_int32(x * 2^s), s in [0, 30].
GQ_HD int gq_saturating_left_shift(int x, int s) {
  return gq_saturate_i32((gq_i64)x * ((gq_i64)1 << s));
}

// gemmlowp SaturatingRoundingDoublingHighMul (ARM VQRDMULH): (a*b + nudge) / 2^31 with C
// truncating division, nudge 2^30 for a*b >= 0 else 1 - 2^30, i.e. floor(a*b/2^31 + 1/2);
// a == b == INT32_MIN saturates to INT32_MAX.
GQ_HD int gq_saturating_rounding_doubling_high_mul(int a, int b) {
  if (a == GQ_INT32_MIN && b == GQ_INT32_MIN) return GQ_INT32_MAX;
  const gq_i64 ab = (gq_i64)a * (gq_i64)b;
  const gq_i64 nudged = ab + (ab >= 0 ? ((gq_i64)1 << 30) : (1 - ((gq_i64)1 << 30)));
  return (int)(nudged / ((gq_i64)1 << 31));
}

// gemmlowp RoundingDivideByPOT: x / 2^e rounded half away from zero, e in [0, 31].
GQ_HD int gq_rounding_divide_by_pot(int x, int e) {
  const gq_i64 mask = ((gq_i64)1 << e) - 1;
  const gq_i64 remainder = (gq_i64)x & mask;
  const gq_i64 threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (int)(((gq_i64)x >> e) + (remainder > threshold ? 1 : 0));
}

// GQ_ROUND_GEMMLOWP: two roundings (high multiply ties toward +inf, divide ties away from zero).
GQ_HD int gq_mul_gemmlowp(int acc, int multiplier, int shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  return gq_rounding_divide_by_pot(
      gq_saturating_rounding_doubling_high_mul(gq_saturating_left_shift(acc, left), multiplier),
      right);
}

// GQ_ROUND_SINGLE: |acc * multiplier| < 2^62 is exact in int64; one rounding half away from
// zero by the total right shift 31 - shift in [1, 62].
GQ_HD int gq_mul_single(int acc, int multiplier, int shift) {
  const int total = 31 - shift;
  const gq_i64 product = (gq_i64)acc * (gq_i64)multiplier;
  const gq_i64 magnitude = product < 0 ? -product : product;
  const gq_i64 rounded = (magnitude + ((gq_i64)1 << (total - 1))) >> total;
  return gq_saturate_i32(product < 0 ? -rounded : rounded);
}

// GQ_ROUND_F32: float32 product (no contraction: nothing to fuse), round half to even, saturate.
GQ_HD int gq_mul_f32(int acc, float multiplier_f32) {
  const float scaled = (float)acc * multiplier_f32;
  const float r = rintf(scaled);
  if (r >= 2147483648.0f) return GQ_INT32_MAX;
  if (r < -2147483648.0f) return GQ_INT32_MIN;
  return (int)r;
}

// multiply_by_quantized_multiplier(acc, multiplier, shift, mode) of fixedpoint.py.
GQ_HD int gq_multiply_by_quantized_multiplier(int acc, int multiplier, int shift,
                                              float multiplier_f32, int mode) {
  if (mode == GQ_ROUND_SINGLE) return gq_mul_single(acc, multiplier, shift);
  if (mode == GQ_ROUND_F32) return gq_mul_f32(acc, multiplier_f32);
  return gq_mul_gemmlowp(acc, multiplier, shift);
}

// The epilogue of every accumulating op (ops/requant.py):
// clamp(zero_point + multiply_by_quantized_multiplier(acc), qmin, qmax).
struct GqRequant {
  const int* multiplier;     // per output channel (the launcher broadcasts a single value)
  const int* shift;
  const float* multiplier_f32;
  int zero_point;
  int qmin;
  int qmax;
  int mode;
};

GQ_HD int gq_requantize(int acc, const GqRequant& rq, int channel) {
  const int scaled = gq_multiply_by_quantized_multiplier(
      acc, rq.multiplier[channel], rq.shift[channel], rq.multiplier_f32[channel], rq.mode);
  return gq_clamp((gq_i64)scaled + rq.zero_point, rq.qmin, rq.qmax);
}

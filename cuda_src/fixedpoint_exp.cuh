// fixedpoint_exp.cuh: gemmlowp's fixed-point exp and reciprocal as TFLite's reference integer
// softmax uses them; the same arithmetic as gpuquant/quant/fixedpoint_exp.py, which computes on
// int64 values holding int32 ones, so these do too (long long, no wrap-around).
// A Q(i) value is a raw integer meaning raw / 2^(31 - i).
#pragma once

#include "fixedpoint.cuh"

// SaturatingRoundingDoublingHighMul on 64-bit holders (fixedpoint.cuh's, without the narrowing).
GQ_HD gq_i64 gq_srdhm64(gq_i64 a, gq_i64 b) {
  if (a == GQ_INT32_MIN && b == GQ_INT32_MIN) return GQ_INT32_MAX;
  const gq_i64 ab = a * b;
  const gq_i64 nudged = ab + (ab >= 0 ? ((gq_i64)1 << 30) : (1 - ((gq_i64)1 << 30)));
  return nudged / ((gq_i64)1 << 31);
}

// RoundingDivideByPOT on 64-bit holders: x / 2^e, ties away from zero, e in [0, 62].
GQ_HD gq_i64 gq_rdpot64(gq_i64 x, int e) {
  const gq_i64 mask = ((gq_i64)1 << e) - 1;
  const gq_i64 threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> e) + ((x & mask) > threshold ? 1 : 0);
}

// x * 2^e saturated to int32, e in [1, 30] (SaturatingRoundingMultiplyByPOT for e > 0).
GQ_HD gq_i64 gq_saturating_shift_left64(gq_i64 x, int e) {
  const gq_i64 limit = ((gq_i64)1 << (31 - e)) - 1;
  return x > limit ? GQ_INT32_MAX : (x < -limit ? GQ_INT32_MIN : x * ((gq_i64)1 << e));
}

// exp(a) for Q(0) a in [-1/4, 0): Taylor series around -1/8 to the 4th power; Q(0).
GQ_HD gq_i64 gq_exp_on_interval_between_negative_one_quarter_and_0_excl(gq_i64 a) {
  const gq_i64 exp_minus_one_eighth = 1895147668;
  const gq_i64 one_third = 715827883;
  const gq_i64 x = a + ((gq_i64)1 << 28);
  const gq_i64 x2 = gq_srdhm64(x, x);
  const gq_i64 x3 = gq_srdhm64(x2, x);
  const gq_i64 x4 = gq_srdhm64(x2, x2);
  const gq_i64 x4_over_4 = gq_rdpot64(x4, 2);
  const gq_i64 poly = gq_rdpot64(gq_srdhm64(x4_over_4 + x3, one_third) + x2, 1);
  return exp_minus_one_eighth + gq_srdhm64(exp_minus_one_eighth, x + poly);
}

// exp(a) for Q(integer_bits) a <= 0, returned in Q(0); exp(0) is INT32_MAX.
GQ_HD gq_i64 gq_exp_on_negative_values(gq_i64 a, int integer_bits) {
  const int fractional_bits = 31 - integer_bits;
  const gq_i64 quarter = (gq_i64)1 << (fractional_bits - 2);
  const gq_i64 a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter;
  gq_i64 result = gq_exp_on_interval_between_negative_one_quarter_and_0_excl(
      gq_saturating_shift_left64(a_mod_quarter_minus_quarter, integer_bits));
  const gq_i64 remainder = a_mod_quarter_minus_quarter - a;
  // exp(-2^k) in Q(0) for k = -2 .. 4.
  const gq_i64 exp_of_minus_powers[7] = {1672461947, 1302514674, 790015084, 290630308,
                                         39332535,   720401,     242};
  for (int i = 0; i < 7; ++i) {
    const int exponent = i - 2;
    if (integer_bits > exponent &&
        (remainder & ((gq_i64)1 << (fractional_bits + exponent))) != 0) {
      result = gq_srdhm64(result, exp_of_minus_powers[i]);
    }
  }
  return a == 0 ? GQ_INT32_MAX : result;
}

// RoundingHalfSum: (a + b + sign) / 2 with C truncating division.
GQ_HD gq_i64 gq_rounding_half_sum(gq_i64 a, gq_i64 b) {
  const gq_i64 s = a + b;
  return s >= 0 ? (s + 1) / 2 : -((1 - s) / 2);
}

// 1 / (1 + a) for Q(0) a in [0, 1): three Newton-Raphson steps in Q(2); Q(0).
GQ_HD gq_i64 gq_one_over_one_plus_x_for_x_in_0_1(gq_i64 a) {
  const gq_i64 half_denominator = gq_rounding_half_sum(a, GQ_INT32_MAX);
  gq_i64 x = 1515870810 + gq_srdhm64(half_denominator, -1010580540);  // 48/17 - 32/17 d
  const gq_i64 one_q2 = (gq_i64)1 << 29;
  for (int i = 0; i < 3; ++i) {
    const gq_i64 one_minus_dx = one_q2 - gq_srdhm64(half_denominator, x);
    x = x + gq_saturating_shift_left64(gq_srdhm64(x, one_minus_dx), 2);
  }
  return gq_saturating_shift_left64(x, 1);
}

// Leading zero bits of a uint32 value held in x (32 for 0).
GQ_HD int gq_count_leading_zeros32(gq_i64 x) {
  int bits = 0;
  gq_i64 v = x;
  for (int shift = 16; shift > 0; shift >>= 1) {
    if (v >= ((gq_i64)1 << shift)) {
      bits += shift;
      v >>= shift;
    }
  }
  return x == 0 ? 32 : 31 - bits;
}

// TFLite's GetReciprocal of a positive Q(integer_bits) x: 1/x = scale * 2^-bits_over_unit.
GQ_HD gq_i64 gq_reciprocal(gq_i64 x, int integer_bits, int* bits_over_unit) {
  const int headroom_plus_one = gq_count_leading_zeros32(x);
  *bits_over_unit = integer_bits - headroom_plus_one;
  gq_i64 shifted_minus_one = ((x << headroom_plus_one) - ((gq_i64)1 << 31)) & 0xFFFFFFFFll;
  if (shifted_minus_one >= ((gq_i64)1 << 31)) shifted_minus_one -= (gq_i64)1 << 32;
  return gq_one_over_one_plus_x_for_x_in_0_1(shifted_minus_one);
}

// elementwise.cu: one-input and two-input maps over flat 8-bit tensors (ops/elementwise.py,
// ops/lut.py, quant/params.py). Inputs of two-input ops are already broadcast to the output
// shape and C-contiguous (the launcher does it). Every kernel: one thread per element,
// grid-stride loop, any 1-D grid and block. A `*_uint8` flag says how a byte reads (uint8 or
// int8); a byte store is the same for both (two's complement), so outputs need no flag.
//
// gq_add: a' = M_a((a - za) << left_shift), b' = M_b((b - zb) << left_shift) (negated when
//   b_negate), y = clamp(zy + M_out(a' + b')); M_a, M_b, M_out use the output's rounding mode.
// gq_mul: y = clamp(zy + M_out((a - za) * (b - zb))).
// gq_lookup: y = table[x - qmin], i.e. table[byte] for uint8 and table[byte ^ 0x80] for int8.
// gq_quantize: y = clamp(round(x / scale[c]) + zp[c]) with the float32 quotient rounded half to
//   even (rounding 0) or half away from zero (1); c = (i / inner) % channels (per-axis params).
// gq_dequantize: y = float32(x - zp[c]) * scale[c] in float32.
#include "fixedpoint.cuh"

__device__ __forceinline__ int gq_load8(const gq_u8* p, long long i, int is_uint8) {
  return is_uint8 ? (int)p[i] : (int)(gq_i8)p[i];
}

#define GQ_GRID_STRIDE(i, n)                                                     \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (long long)gridDim.x * blockDim.x)

extern "C" __global__ void gq_add(const gq_u8* __restrict__ a, int a_uint8,
                                  const gq_u8* __restrict__ b, int b_uint8, long long n,
                                  int a_zero_point, int b_zero_point,
                                  int a_multiplier, int a_shift, float a_multiplier_f32,
                                  int b_multiplier, int b_shift, float b_multiplier_f32,
                                  int b_negate, int left_shift, const int* __restrict__ multiplier,
                                  const int* __restrict__ shift,
                                  const float* __restrict__ multiplier_f32, int zero_point,
                                  int qmin, int qmax, int rounding, gq_u8* __restrict__ y) {
  const GqRequant rq = {multiplier, shift, multiplier_f32, zero_point, qmin, qmax, rounding};
  GQ_GRID_STRIDE(i, n) {
    const int da = (gq_load8(a, i, a_uint8) - a_zero_point) * (1 << left_shift);
    const int db = (gq_load8(b, i, b_uint8) - b_zero_point) * (1 << left_shift);
    const int sa = gq_multiply_by_quantized_multiplier(da, a_multiplier, a_shift,
                                                       a_multiplier_f32, rounding);
    const int sb = gq_multiply_by_quantized_multiplier(db, b_multiplier, b_shift,
                                                       b_multiplier_f32, rounding);
    const gq_i64 total = b_negate ? (gq_i64)sa - sb : (gq_i64)sa + sb;
    y[i] = (gq_u8)gq_requantize(gq_saturate_i32(total), rq, 0);
  }
}

extern "C" __global__ void gq_mul(const gq_u8* __restrict__ a, int a_uint8,
                                  const gq_u8* __restrict__ b, int b_uint8, long long n,
                                  int a_zero_point, int b_zero_point,
                                  const int* __restrict__ multiplier, const int* __restrict__ shift,
                                  const float* __restrict__ multiplier_f32, int zero_point,
                                  int qmin, int qmax, int rounding, gq_u8* __restrict__ y) {
  const GqRequant rq = {multiplier, shift, multiplier_f32, zero_point, qmin, qmax, rounding};
  GQ_GRID_STRIDE(i, n) {
    const int product =
        (gq_load8(a, i, a_uint8) - a_zero_point) * (gq_load8(b, i, b_uint8) - b_zero_point);
    y[i] = (gq_u8)gq_requantize(product, rq, 0);
  }
}

extern "C" __global__ void gq_lookup(const gq_u8* __restrict__ x, int x_uint8, long long n,
                                     const gq_u8* __restrict__ table, gq_u8* __restrict__ y) {
  const gq_u8 flip = x_uint8 ? 0 : 0x80;
  GQ_GRID_STRIDE(i, n) { y[i] = table[x[i] ^ flip]; }
}

extern "C" __global__ void gq_quantize(const float* __restrict__ x, long long n,
                                       const float* __restrict__ scale,
                                       const int* __restrict__ zero_point, long long inner,
                                       int channels, int rounding, int qmin, int qmax,
                                       gq_u8* __restrict__ y) {
  GQ_GRID_STRIDE(i, n) {
    const int c = (int)((i / inner) % channels);
    const float q = x[i] / scale[c];
    const float r = rounding == 0 ? rintf(q) : roundf(q);
    const double v = (double)r + zero_point[c];
    y[i] = (gq_u8)(v < qmin ? qmin : (v > qmax ? qmax : (int)v));
  }
}

extern "C" __global__ void gq_dequantize(const gq_u8* __restrict__ x, int x_uint8, long long n,
                                         const float* __restrict__ scale,
                                         const int* __restrict__ zero_point, long long inner,
                                         int channels, float* __restrict__ y) {
  GQ_GRID_STRIDE(i, n) {
    const int c = (int)((i / inner) % channels);
    y[i] = (float)(gq_load8(x, i, x_uint8) - zero_point[c]) * scale[c];
  }
}

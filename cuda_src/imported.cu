// imported.cu: ops that reproduce another runtime's arithmetic (model importers).
//
// gq_pair_lookup: y[i] = table[(a[i] - qmin_a) * 256 + (b[i] - qmin_b)] (ops/pair_lookup.py);
//   a and b already broadcast to the output shape. One thread per element, grid-stride.
// gq_avg_pool2d_float: ONNX Runtime's float32 average pool (ops/float_pool.py): per output
//   (b, oh, ow, c) the float32 sum, in window order (h, then w), of dequant[x - qmin] over the
//   valid positions, divided by the count (kh * kw with count_include_pad), then
//   rint(float32(avg / scale) + float32(zp)) clamped. One thread per output, grid-stride.
// gq_softmax: TFLite's reference fixed-point softmax over rows of length D (ops/softmax.py,
//   fixedpoint_exp.cuh). One thread per row, grid-stride over rows.
// gq_softmax_float: ONNX Runtime's QLinearSoftmax over rows (ops/float_softmax.py): e = table[d +
//   255], S = float32 sum in row order, y = clamp(rint(float32(e * c) / S) + zp). One thread per
//   row, grid-stride over rows.
// `*_uint8` flags say how bytes read; byte stores are the same for int8 and uint8.
#include "fixedpoint_exp.cuh"

#define GQ_GRID_STRIDE(i, n)                                                     \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (long long)gridDim.x * blockDim.x)

// The table index of a code: code - qmin, i.e. the byte for uint8 and byte ^ 0x80 for int8.
__device__ __forceinline__ int gq_code_index(gq_u8 raw, int is_uint8) {
  return is_uint8 ? (int)raw : (int)(raw ^ 0x80u);
}

__device__ __forceinline__ int gq_code(gq_u8 raw, int is_uint8) {
  return is_uint8 ? (int)raw : (int)(gq_i8)raw;
}

extern "C" __global__ void gq_pair_lookup(const gq_u8* __restrict__ a, int a_uint8,
                                          const gq_u8* __restrict__ b, int b_uint8, long long n,
                                          const gq_u8* __restrict__ table, gq_u8* __restrict__ y) {
  GQ_GRID_STRIDE(i, n) {
    y[i] = table[gq_code_index(a[i], a_uint8) * 256 + gq_code_index(b[i], b_uint8)];
  }
}

struct GqFloatPoolGeometry {
  int H, W, C, OH, OW, KH, KW, sh, sw, pad_top, pad_left, count_include_pad;
};

extern "C" __global__ void gq_avg_pool2d_float(const gq_u8* __restrict__ x, int x_uint8, int batch,
                                               GqFloatPoolGeometry geo,
                                               const float* __restrict__ dequant,
                                               float output_scale, float output_zero_point,
                                               int qmin, int qmax, gq_u8* __restrict__ y) {
  const long long total = (long long)batch * geo.OH * geo.OW * geo.C;
  GQ_GRID_STRIDE(i, total) {
    const int c = (int)(i % geo.C);
    const int ow = (int)((i / geo.C) % geo.OW);
    const int oh = (int)((i / ((long long)geo.C * geo.OW)) % geo.OH);
    const int b = (int)(i / ((long long)geo.C * geo.OW * geo.OH));
    float sum = 0.0f;
    int count = 0;
    for (int kh = 0; kh < geo.KH; ++kh) {
      const int ih = oh * geo.sh - geo.pad_top + kh;
      if (ih < 0 || ih >= geo.H) continue;
      for (int kw = 0; kw < geo.KW; ++kw) {
        const int iw = ow * geo.sw - geo.pad_left + kw;
        if (iw < 0 || iw >= geo.W) continue;
        sum = __fadd_rn(sum, dequant[gq_code_index(
                                  x[(((long long)b * geo.H + ih) * geo.W + iw) * geo.C + c],
                                  x_uint8)]);
        ++count;
      }
    }
    const float divisor = (float)(geo.count_include_pad ? geo.KH * geo.KW : count);
    const float shifted = __fadd_rn(__fdiv_rn(__fdiv_rn(sum, divisor), output_scale),
                                    output_zero_point);
    const float r = rintf(shifted);
    y[i] = (gq_u8)(r < (float)qmin ? qmin : (r > (float)qmax ? qmax : (int)r));
  }
}

extern "C" __global__ void gq_softmax(const gq_u8* __restrict__ x, int x_uint8, long long rows,
                                      int D, int input_multiplier, int input_left_shift,
                                      int diff_min, int qmin, int qmax, gq_u8* __restrict__ y) {
  GQ_GRID_STRIDE(r, rows) {
    const gq_u8* row = x + r * D;
    int top = -2147483647;
    for (int j = 0; j < D; ++j) top = max(top, gq_code(row[j], x_uint8));
    gq_i64 sum = 0;
    for (int j = 0; j < D; ++j) {
      const int d = gq_code(row[j], x_uint8) - top;
      if (d < diff_min) continue;
      const gq_i64 e = gq_exp_on_negative_values(
          gq_srdhm64((gq_i64)d * ((gq_i64)1 << input_left_shift), input_multiplier), 5);
      sum += gq_rdpot64(e, 12);
    }
    int bits_over_unit;
    const gq_i64 scale = gq_reciprocal(sum, 12, &bits_over_unit);
    for (int j = 0; j < D; ++j) {
      const int d = gq_code(row[j], x_uint8) - top;
      int out = qmin;
      if (d >= diff_min) {
        const gq_i64 e = gq_exp_on_negative_values(
            gq_srdhm64((gq_i64)d * ((gq_i64)1 << input_left_shift), input_multiplier), 5);
        out = gq_clamp(gq_rdpot64(gq_srdhm64(scale, e), bits_over_unit + 31 - 8) + qmin, qmin,
                       qmax);
      }
      y[r * D + j] = (gq_u8)out;
    }
  }
}

extern "C" __global__ void gq_softmax_float(const gq_u8* __restrict__ x, int x_uint8,
                                            long long rows, int D,
                                            const float* __restrict__ table, float inverse_scale,
                                            int zero_point, int qmin, int qmax,
                                            gq_u8* __restrict__ y) {
  GQ_GRID_STRIDE(r, rows) {
    const gq_u8* row = x + r * D;
    int top = -2147483647;
    for (int j = 0; j < D; ++j) top = max(top, gq_code(row[j], x_uint8));
    float total = 0.0f;
    for (int j = 0; j < D; ++j) {
      total = __fadd_rn(total, table[gq_code(row[j], x_uint8) - top + 255]);
    }
    for (int j = 0; j < D; ++j) {
      const float e = table[gq_code(row[j], x_uint8) - top + 255];
      const float ratio = __fdiv_rn(__fmul_rn(e, inverse_scale), total);
      const double q = (double)rintf(ratio) + zero_point;
      y[r * D + j] = (gq_u8)(q < qmin ? qmin : (q > qmax ? qmax : (int)q));
    }
  }
}

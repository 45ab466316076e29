// conv.cu: NHWC 2-D convolution (ops/conv.py): implicit GEMM for any groups, and a direct kernel
// for depthwise convolution (one input channel per group).
//
// gq_conv2d<OUT_INT32, MMA> (as in gemm.cu; x_uint8 a runtime flag): per group g (blockIdx.z)
// a GEMM with M = batch * OH * OW rows (output pixels), N = C_out / groups columns and
// K = KH * KW * Cg reduction values (Cg = C_in / groups), k ordered (kh, kw, c) as the OHWI
// weights. Row m = (b, oh, ow) reads x[b, oh*sh - pad_top + kh*dh, ow*sw - pad_left + kw*dw,
// g*Cg + c]; positions outside the input read the input zero point (real 0), so the folded
// zero-point terms of ops/gemm.py apply unchanged. Output channel g * (C_out / groups) + n.
// Grid (ceil(M / 64), ceil(N / 64), groups), block 128 threads; thread to output map: igemm.cuh.
// `pixel_words` = 1 when Cg, C and the group's channel offset are multiples of 4 and x is 4-byte
// aligned: each word is then 4 channels of one pixel, read with one load.
//
// gq_depthwise_conv2d<OUT_INT32>: output channel o reads input channel o / multiplier;
// acc = sum over the window of (x - zx) * (w' - zw'[o]) + bias[o] (padding contributes 0),
// with w' (C_out, KH*KW) the int8 image of the weights. One thread per output element (NHWC order,
// channel fastest), grid-stride loop, any 1-D grid and block.
#include "igemm.cuh"

struct GqConvGeometry {
  int H, W, C, OH, OW, KH, KW, sh, sw, dh, dw, pad_top, pad_left;
};

// Rows of the implicit GEMM: words of x' for output pixel m, group channel offset c0.
struct GqConvLoader {
  const gq_u8* x;
  gq_u32 flip;  // 0x80808080 for uint8 x, else 0
  GqConvGeometry geo;
  int M;
  int Cg;
  int c0;
  int K;
  gq_u32 pad_byte;  // the input zero point's int8 image, as a byte
  int pixel_words;

  // The x' byte of output pixel (b, oh, ow) at reduction index k, or the pad byte.
  __device__ __forceinline__ gq_u32 byte_at(int b, int oh, int ow, int k) const {
    const int kh = k / (geo.KW * Cg);
    const int rem = k - kh * geo.KW * Cg;
    const int kw = rem / Cg;
    const int c = rem - kw * Cg;
    const int ih = oh * geo.sh - geo.pad_top + kh * geo.dh;
    const int iw = ow * geo.sw - geo.pad_left + kw * geo.dw;
    if (ih < 0 || ih >= geo.H || iw < 0 || iw >= geo.W) return pad_byte;
    const gq_u8 v = x[(((long long)b * geo.H + ih) * geo.W + iw) * geo.C + c0 + c];
    return (gq_u32)v ^ (flip & 0xffu);
  }

  __device__ __forceinline__ gq_u32 word(int m, int kw4) const {
    const int k = 4 * kw4;
    if (m >= M || k >= K) return 0u;
    const int ow = m % geo.OW;
    const int oh = (m / geo.OW) % geo.OH;
    const int b = m / (geo.OW * geo.OH);
    if (pixel_words) {
      const int kh = k / (geo.KW * Cg);
      const int rem = k - kh * geo.KW * Cg;
      const int kw = rem / Cg;
      const int c = rem - kw * Cg;
      const int ih = oh * geo.sh - geo.pad_top + kh * geo.dh;
      const int iw = ow * geo.sw - geo.pad_left + kw * geo.dw;
      if (ih < 0 || ih >= geo.H || iw < 0 || iw >= geo.W) return pad_byte * 0x01010101u;
      const gq_u32 v =
          *(const gq_u32*)(x + (((long long)b * geo.H + ih) * geo.W + iw) * geo.C + c0 + c);
      return v ^ flip;
    }
    gq_u32 v = 0u;
    for (int j = 0; j < 4 && k + j < K; ++j) v |= byte_at(b, oh, ow, k + j) << (8 * j);
    return v;
  }
};

template <bool OUT_INT32, bool MMA>
__global__ void __launch_bounds__(GQ_GEMM_THREADS)
gq_conv2d(const gq_u8* __restrict__ x, int x_uint8, int batch, GqConvGeometry geo, int Cg,
          int input_zero_point8, int pixel_words, const gq_u32* __restrict__ w, int n_per_group,
          int Kw,
          const int* __restrict__ zw, const int* __restrict__ folded,
          const int* __restrict__ multiplier, const int* __restrict__ shift,
          const float* __restrict__ multiplier_f32, int zero_point, int qmin, int qmax,
          int rounding, void* __restrict__ y, int c_out) {
  const int g = (int)blockIdx.z;
  const int M = batch * geo.OH * geo.OW;
  const int K = geo.KH * geo.KW * Cg;
  const GqConvLoader loader = {x,  x_uint8 ? 0x80808080u : 0u,
                               geo, M, Cg, g * Cg, K, (gq_u32)(gq_u8)(gq_i8)input_zero_point8,
                               pixel_words};
  const GqGemmEpilogue ep = {zw, folded,
                             {multiplier, shift, multiplier_f32, zero_point, qmin, qmax, rounding},
                             y, c_out, g * n_per_group};
  gq_igemm_block<OUT_INT32, MMA>(loader, w + (long long)g * n_per_group * Kw, M, n_per_group, Kw,
                                 ep);
}

template <bool OUT_INT32>
__global__ void gq_depthwise_conv2d(const gq_u8* __restrict__ x, int x_uint8, int batch,
                                    GqConvGeometry geo,
                                    int depth_multiplier, int input_zero_point,
                                    const gq_i8* __restrict__ w, const int* __restrict__ zw,
                                    const int* __restrict__ bias,
                                    const int* __restrict__ multiplier,
                                    const int* __restrict__ shift,
                                    const float* __restrict__ multiplier_f32, int zero_point,
                                    int qmin, int qmax, int rounding, void* __restrict__ y) {
  const int c_out = geo.C * depth_multiplier;
  const long long total = (long long)batch * geo.OH * geo.OW * c_out;
  const GqRequant rq = {multiplier, shift, multiplier_f32, zero_point, qmin, qmax, rounding};
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    const int o = (int)(i % c_out);
    const int ow = (int)((i / c_out) % geo.OW);
    const int oh = (int)((i / ((long long)c_out * geo.OW)) % geo.OH);
    const int b = (int)(i / ((long long)c_out * geo.OW * geo.OH));
    const int c = o / depth_multiplier;
    int acc = bias[o];
    for (int kh = 0; kh < geo.KH; ++kh) {
      const int ih = oh * geo.sh - geo.pad_top + kh * geo.dh;
      if (ih < 0 || ih >= geo.H) continue;
      for (int kw = 0; kw < geo.KW; ++kw) {
        const int iw = ow * geo.sw - geo.pad_left + kw * geo.dw;
        if (iw < 0 || iw >= geo.W) continue;
        const gq_u8 raw = x[(((long long)b * geo.H + ih) * geo.W + iw) * geo.C + c];
        const int xv = (x_uint8 ? (int)raw : (int)(gq_i8)raw) - input_zero_point;
        const int wv = (int)w[o * geo.KH * geo.KW + kh * geo.KW + kw] - zw[o];
        acc = gq_wrap_add(acc, xv * wv);
      }
    }
    if (OUT_INT32) {
      ((int*)y)[i] = acc;
    } else {
      ((gq_u8*)y)[i] = (gq_u8)gq_requantize(acc, rq, o);
    }
  }
}

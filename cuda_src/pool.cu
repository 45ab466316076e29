// pool.cu: NHWC pooling on 8-bit codes and the requantized mean (ops/pool.py).
//
// gq_max_pool2d / gq_avg_pool2d: one thread per output element (b, oh, ow, c), channel fastest,
//   grid-stride loop, any 1-D grid and block. Windows skip padded positions: max over the valid
//   codes; average = round_half_away_from_zero(sum / count) over the raw codes of the `count`
//   valid positions, in integers: sign(s) * ((|s| + count / 2) / count). Then clamp to
//   [qmin, qmax].
// gq_mean: rows of a (rows, R) tensor (the launcher moves the reduced axes last);
//   y[r] = clamp(zy + M(sum_j (x[r, j] - zx))). One warp per row: lanes sum a strided slice,
//   then a butterfly of __shfl_xor_sync; warp w of block b takes rows 4b + w, stepping by
//   4 * gridDim.x. Block 128 threads (4 warps, all lanes take part in the shuffles), any 1-D grid.
#include "fixedpoint.cuh"

struct GqPoolGeometry {
  int H, W, C, OH, OW, KH, KW, sh, sw, pad_top, pad_left;
};

template <bool AVG>
__device__ __forceinline__ void gq_pool2d(const gq_u8* __restrict__ x, int x_uint8, int batch,
                                          const GqPoolGeometry& geo, int qmin, int qmax,
                                          gq_u8* __restrict__ y) {
  const long long total = (long long)batch * geo.OH * geo.OW * geo.C;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    const int c = (int)(i % geo.C);
    const int ow = (int)((i / geo.C) % geo.OW);
    const int oh = (int)((i / ((long long)geo.C * geo.OW)) % geo.OH);
    const int b = (int)(i / ((long long)geo.C * geo.OW * geo.OH));
    int best = -2147483647;
    int sum = 0;
    int count = 0;
    for (int kh = 0; kh < geo.KH; ++kh) {
      const int ih = oh * geo.sh - geo.pad_top + kh;
      if (ih < 0 || ih >= geo.H) continue;
      for (int kw = 0; kw < geo.KW; ++kw) {
        const int iw = ow * geo.sw - geo.pad_left + kw;
        if (iw < 0 || iw >= geo.W) continue;
        const gq_u8 raw = x[(((long long)b * geo.H + ih) * geo.W + iw) * geo.C + c];
        const int v = x_uint8 ? (int)raw : (int)(gq_i8)raw;
        best = v > best ? v : best;
        sum += v;
        ++count;
      }
    }
    int out = best;
    if (AVG) {
      const int magnitude = ((sum < 0 ? -sum : sum) + count / 2) / count;
      out = sum < 0 ? -magnitude : magnitude;
    }
    y[i] = (gq_u8)gq_clamp(out, qmin, qmax);
  }
}

extern "C" __global__ void gq_max_pool2d(const gq_u8* __restrict__ x, int x_uint8, int batch,
                                         GqPoolGeometry geo, int qmin, int qmax,
                                         gq_u8* __restrict__ y) {
  gq_pool2d<false>(x, x_uint8, batch, geo, qmin, qmax, y);
}

extern "C" __global__ void gq_avg_pool2d(const gq_u8* __restrict__ x, int x_uint8, int batch,
                                         GqPoolGeometry geo, int qmin, int qmax,
                                         gq_u8* __restrict__ y) {
  gq_pool2d<true>(x, x_uint8, batch, geo, qmin, qmax, y);
}

extern "C" __global__ void gq_mean(const gq_u8* __restrict__ x, int x_uint8, long long rows, int R,
                                   int input_zero_point, const int* __restrict__ multiplier,
                                   const int* __restrict__ shift,
                                   const float* __restrict__ multiplier_f32, int zero_point,
                                   int qmin, int qmax, int rounding, gq_u8* __restrict__ y) {
  const GqRequant rq = {multiplier, shift, multiplier_f32, zero_point, qmin, qmax, rounding};
  const int lane = (int)threadIdx.x & 31;
  const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
  for (long long r = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < rows;
       r += warps) {
    int sum = 0;
    for (int j = lane; j < R; j += 32) {
      const gq_u8 raw = x[r * R + j];
      sum = gq_wrap_add(sum, (x_uint8 ? (int)raw : (int)(gq_i8)raw) - input_zero_point);
    }
    for (int offset = 16; offset > 0; offset >>= 1)
      sum = gq_wrap_add(sum, __shfl_xor_sync(0xffffffffu, sum, offset));
    if (lane == 0) y[r] = (gq_u8)gq_requantize(sum, rq, 0);
  }
}

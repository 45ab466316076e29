// matmul.cu: batched product of two 8-bit activations (ops/gemm.py, MatMulParams):
//   acc[b, m, n] = sum_k (a[b, m, k] - za) * (b[b, k, n] - zb[n]),  y = requant(acc) or acc.
// a (batch, M, K) and b (batch, K, N) are C-contiguous with the batch already broadcast by the
// launcher; zb and the requantization arrays have N entries. One thread per output (b, m, n),
// n fastest, grid-stride loop, any 1-D grid and block. OUT_INT32: y holds the accumulators;
// else the requantized codes as bytes.
#include "fixedpoint.cuh"

template <int OUT_INT32>
__global__ void gq_matmul(const gq_u8* __restrict__ a, int a_uint8, const gq_u8* __restrict__ b,
                          int b_uint8, int batch, int M, int K, int N, int a_zero_point,
                          const int* __restrict__ b_zero_point, const int* __restrict__ multiplier,
                          const int* __restrict__ shift, const float* __restrict__ multiplier_f32,
                          int zero_point, int qmin, int qmax, int rounding,
                          void* __restrict__ y) {
  const GqRequant rq = {multiplier, shift, multiplier_f32, zero_point, qmin, qmax, rounding};
  const long long total = (long long)batch * M * N;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    const int n = (int)(i % N);
    const long long bm = i / N;  // b * M + m
    const long long bi = bm / M;
    const gq_u8* arow = a + bm * K;
    const gq_u8* bcol = b + bi * K * N + n;
    int acc = 0;
    for (int k = 0; k < K; ++k) {
      const int av = (a_uint8 ? (int)arow[k] : (int)(gq_i8)arow[k]) - a_zero_point;
      const gq_u8 braw = bcol[(long long)k * N];
      const int bv = (b_uint8 ? (int)braw : (int)(gq_i8)braw) - b_zero_point[n];
      acc = gq_wrap_add(acc, av * bv);
    }
    if (OUT_INT32) {
      ((int*)y)[i] = acc;
    } else {
      ((gq_u8*)y)[i] = (gq_u8)gq_requantize(acc, rq, n);
    }
  }
}

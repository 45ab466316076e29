// gemm.cu: fully connected layer y = requant(x @ w.T + bias) on 8-bit x (M, K) (ops/gemm.py).
//
// Template parameters of gq_gemm:
//   OUT_INT32  y holds the int32 accumulators; else the requantized 8-bit codes;
//   MMA        tensor-core path (sm_80+) instead of __dp4a.
// Arguments: x, x_uint8 (x is uint8, converted on load to x' = x - 128 by flipping the top
// bit; else int8), M, K, x_words_aligned (1 when K % 4 == 0 and x is 4-byte aligned: whole-word
// loads), w' (N, Kw) int8 packed in words with k zero-padded to Kw = ceil(K / 4), N, the
// per-channel zw' and folded' (igemm.cuh), the requantization (fixedpoint.cuh: per-channel
// multiplier, shift, float32 multiplier, output zero point, qmin, qmax, rounding mode), y (M, N).
// Grid (ceil(M / 64), ceil(N / 64)), block 128 threads; which thread computes which output of
// the 64 x 64 tile: igemm.cuh.
#include "igemm.cuh"

// Row m of x' as words; bytes past K (and rows past M) read as zero.
struct GqRowLoader {
  const gq_u8* x;
  gq_u32 flip;  // 0x80808080 for uint8 x, else 0
  int M;
  int K;
  int aligned;

  __device__ __forceinline__ gq_u32 word(int m, int kw) const {
    const int k = 4 * kw;
    if (m >= M || k >= K) return 0u;
    const gq_u8* row = x + (long long)m * K;
    if (aligned) return *(const gq_u32*)(row + k) ^ flip;
    gq_u32 v = 0u;
    for (int j = 0; j < 4 && k + j < K; ++j) v |= (gq_u32)(row[k + j] ^ (flip & 0xffu)) << (8 * j);
    return v;
  }
};

template <bool OUT_INT32, bool MMA>
__global__ void __launch_bounds__(GQ_GEMM_THREADS)
gq_gemm(const gq_u8* __restrict__ x, int x_uint8, int M, int K, int x_words_aligned,
        const gq_u32* __restrict__ w, int N, int Kw, const int* __restrict__ zw,
        const int* __restrict__ folded, const int* __restrict__ multiplier,
        const int* __restrict__ shift, const float* __restrict__ multiplier_f32, int zero_point,
        int qmin, int qmax, int rounding, void* __restrict__ y) {
  const GqRowLoader loader = {x, x_uint8 ? 0x80808080u : 0u, M, K, x_words_aligned};
  const GqGemmEpilogue ep = {
      zw, folded, {multiplier, shift, multiplier_f32, zero_point, qmin, qmax, rounding}, y, N, 0};
  gq_igemm_block<OUT_INT32, MMA>(loader, w, M, N, Kw, ep);
}

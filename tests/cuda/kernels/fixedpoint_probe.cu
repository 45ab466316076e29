// fixedpoint_probe.cu (tests only): applies fixedpoint.cuh element-wise so the header can be
// compared with gpuquant/quant/fixedpoint.py on edge values. One thread per element, grid-stride.
//   gq_probe_multiply: y[i] = gq_multiply_by_quantized_multiplier(acc[i], m[i], s[i], f[i], mode)
//   gq_probe_requantize: y[i] = gq_requantize(acc[i], {m, s, f, zp, qmin, qmax, mode}, i)
#include "fixedpoint.cuh"

extern "C" __global__ void gq_probe_multiply(const int* acc, const int* m, const int* s,
                                             const float* f, int mode, long long n, int* y) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x)
    y[i] = gq_multiply_by_quantized_multiplier(acc[i], m[i], s[i], f[i], mode);
}

extern "C" __global__ void gq_probe_requantize(const int* acc, const int* m, const int* s,
                                               const float* f, int zero_point, int qmin, int qmax,
                                               int mode, long long n, int* y) {
  const GqRequant rq = {m, s, f, zero_point, qmin, qmax, mode};
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x)
    y[i] = gq_requantize(acc[i], rq, (int)i);
}

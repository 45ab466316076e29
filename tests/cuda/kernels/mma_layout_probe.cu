// mma_layout_probe.cu (tests only): writes the fragment index helpers of mma_s8.cuh for every lane
// so that they can be checked against the PTX ISA's element-index formulas.
// Thread `lane` of a 32-thread block writes, at out[lane * 48 + ...]:
//   16 A entries (reg r, byte b at 4r + b): row * 32 + k;  8 B entries (4r + b): k * 8 + col;
//   4 C entries: row * 8 + col; then 20 unused slots.
#include "mma_s8.cuh"

extern "C" __global__ void gq_probe_mma_layout(int* out) {
  const int lane = (int)threadIdx.x;
  int* o = out + lane * 48;
  for (int r = 0; r < 4; ++r)
    for (int b = 0; b < 4; ++b) o[4 * r + b] = gq_mma_a_row(lane, r) * 32 + gq_mma_a_k(lane, r, b);
  for (int r = 0; r < 2; ++r)
    for (int b = 0; b < 4; ++b) o[16 + 4 * r + b] = gq_mma_b_k(lane, r, b) * 8 + gq_mma_b_col(lane);
  for (int i = 0; i < 4; ++i) o[24 + i] = gq_mma_c_row(lane, i) * 8 + gq_mma_c_col(lane, i);
}

// igemm_common.h: what the native int8 GEMM cores (igemm_vnni.h, igemm_avx2.h) share: the
// product's arguments and fixedpoint.cuh's requantization parameters (GqRequant), compiled for
// the host; each core restates gq_requantize on its vector lanes.
#pragma once

#include <cstdint>

#ifndef __host__
#define __host__
#define __device__
#define __forceinline__ inline
#endif
#include "fixedpoint.cuh"

struct GqCpuGemm {
  const uint8_t* x;        // M rows of K bytes, row stride ldx bytes
  long ldx;
  int m;
  int k;
  bool flip_x;             // x holds int8 codes: use x ^ 0x80
  const int8_t* packed;    // the core's panels of w' for N columns
  int n;
  const int32_t* zw;       // zw'[n]
  const int32_t* folded;   // folded'[n]
  bool has_zw;             // any zw' != 0 (else the rowsums are skipped)
  GqRequant rq;            // unused when out_int32
  bool out_int32;
  void* y;                 // M rows, row stride ldy elements (int32 or bytes)
  long ldy;
};

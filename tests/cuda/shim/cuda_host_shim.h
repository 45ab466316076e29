// cuda_host_shim.h: compile the CUDA C++ sources of cuda_src/ as host C++20 with g++.
//
// Model of execution (tests only; correctness, never speed):
//   - one std::thread per CUDA thread of a block; the same threads run the blocks of the grid one
//     after another (x fastest, then y, z), with a block-wide barrier between blocks;
//   - threadIdx/blockIdx/blockDim/gridDim are thread_local;
//   - __shared__ becomes `static`: one copy per kernel instantiation, shared by the block's
//     threads (only one block runs at a time);
//   - __syncthreads() is a block-wide barrier, warp shuffles go through per-warp exchange slots
//     and a per-warp barrier (mutex + condition variable, which ThreadSanitizer understands);
//   - __dp4a is plain C++ and GQ_HOST_EMULATION turns on the C++ emulation of inline PTX.
// Kernel arguments arrive as cuLaunchKernel's kernelParams: args[i] points at argument i.
#pragma once

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#define GQ_HOST_EMULATION 1
#define __host__
#define __device__
#define __global__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__ __restrict
#define __launch_bounds__(...)

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

using std::max;
using std::min;
using std::rintf;
using std::roundf;

namespace gq_host {

// A reusable barrier for a fixed number of threads (generation counting).
class Barrier {
 public:
  explicit Barrier(unsigned count) : count_(count) {}
  void arrive_and_wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const unsigned long gen = generation_;
    if (++arrived_ == count_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return generation_ != gen; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  unsigned count_;
  unsigned arrived_ = 0;
  unsigned long generation_ = 0;
};

constexpr int kWarpSize = 32;
constexpr int kSlotBytes = 64;

struct Warp {
  explicit Warp(unsigned lanes) : barrier(lanes) {}
  Barrier barrier;
  unsigned char slots[kWarpSize][kSlotBytes];
};

struct Block {
  Block(unsigned threads) : barrier(threads) {
    for (unsigned first = 0; first < threads; first += kWarpSize) {
      const unsigned lanes = threads - first < kWarpSize ? threads - first : kWarpSize;
      warps.push_back(std::make_unique<Warp>(lanes));
    }
  }
  Barrier barrier;
  std::vector<std::unique_ptr<Warp>> warps;
};

inline thread_local dim3 thread_idx, block_idx, block_dim, grid_dim;
inline thread_local Block* block = nullptr;

inline unsigned linear_tid() {
  return thread_idx.x + block_dim.x * (thread_idx.y + block_dim.y * thread_idx.z);
}

// Every lane of the calling warp contributes `bytes` bytes; `all` receives lane i's at i*bytes.
inline void warp_allgather(const void* mine, unsigned bytes, void* all) {
  const unsigned tid = linear_tid();
  Warp& w = *block->warps[tid / kWarpSize];
  const unsigned lane = tid % kWarpSize;
  const unsigned lanes = (block_dim.x * block_dim.y * block_dim.z - (tid - lane)) < kWarpSize
                             ? block_dim.x * block_dim.y * block_dim.z - (tid - lane)
                             : kWarpSize;
  std::memcpy(w.slots[lane], mine, bytes);
  w.barrier.arrive_and_wait();
  for (unsigned i = 0; i < lanes; ++i) {
    std::memcpy(static_cast<unsigned char*>(all) + i * bytes, w.slots[i], bytes);
  }
  w.barrier.arrive_and_wait();
}

template <class T>
T shfl(T value, unsigned src_lane) {
  static_assert(sizeof(T) <= kSlotBytes && std::is_trivially_copyable_v<T>);
  T all[kWarpSize];
  warp_allgather(&value, sizeof(T), all);
  return all[src_lane % kWarpSize];
}

template <class... A, std::size_t... I>
void call_kernel(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
  kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
}

// Runs kernel<<<grid, block>>>(args...) to completion.
template <class... A>
void launch(void (*kernel)(A...), const unsigned* grid, const unsigned* blk, void** args) {
  const dim3 g{grid[0], grid[1], grid[2]};
  const dim3 b{blk[0], blk[1], blk[2]};
  const unsigned threads = b.x * b.y * b.z;
  Block state(threads);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      thread_idx = dim3{t % b.x, (t / b.x) % b.y, t / (b.x * b.y)};
      block_dim = b;
      grid_dim = g;
      block = &state;
      for (unsigned z = 0; z < g.z; ++z)
        for (unsigned y = 0; y < g.y; ++y)
          for (unsigned x = 0; x < g.x; ++x) {
            block_idx = dim3{x, y, z};
            call_kernel(kernel, args, std::index_sequence_for<A...>{});
            state.barrier.arrive_and_wait();
          }
    });
  }
  for (auto& th : pool) th.join();
}

}  // namespace gq_host

#define threadIdx (gq_host::thread_idx)
#define blockIdx (gq_host::block_idx)
#define blockDim (gq_host::block_dim)
#define gridDim (gq_host::grid_dim)

inline void __syncthreads() { gq_host::block->barrier.arrive_and_wait(); }

template <class T>
T __shfl_sync(unsigned, T value, int src_lane) {
  return gq_host::shfl(value, static_cast<unsigned>(src_lane));
}

template <class T>
T __shfl_xor_sync(unsigned, T value, int lane_mask) {
  return gq_host::shfl(value, (gq_host::linear_tid() % gq_host::kWarpSize) ^ lane_mask);
}

// Single float32 operations, rounded to nearest even (the shim builds without FMA contraction).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }

// Sum of the four signed byte products of a and b, plus c (modulo 2^32, as the hardware).
inline int __dp4a(int a, int b, int c) {
  unsigned sum = static_cast<unsigned>(c);
  for (int i = 0; i < 4; ++i) {
    const int ai = static_cast<signed char>(static_cast<unsigned>(a) >> (8 * i));
    const int bi = static_cast<signed char>(static_cast<unsigned>(b) >> (8 * i));
    sum += static_cast<unsigned>(ai * bi);
  }
  return static_cast<int>(sum);
}

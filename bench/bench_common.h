// Helpers shared by the benchmarks: timing that resists other processes on a
// shared machine, aligned buffers, deterministic random fill, and the
// streaming read bandwidth every memory-bound result is compared with.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "isa.h"
#include "ops.h"
#include "ternary_format.h"
#include "thread_pool.h"

namespace bitnet::bench {

inline double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Runs fn(i) for i = 0, 1, ... (the first call untimed) in kWindows windows of
// at least seconds / kWindows each; returns seconds per call of the fastest
// window, so that other processes on a shared machine disturb it less.
inline double time_calls(double seconds, const std::function<void(size_t)>& fn) {
  constexpr int kWindows = 5;
  fn(0);
  size_t calls = 0;
  double best = 1e30;
  for (int w = 0; w < kWindows; ++w) {
    const double start = now();
    size_t n = 0;
    double elapsed = 0;
    do {
      fn(++calls);
      ++n;
      elapsed = now() - start;
    } while (elapsed < seconds / kWindows);
    best = std::min(best, elapsed / static_cast<double>(n));
  }
  return best;
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
template <class T>
using Buffer = std::unique_ptr<T[], FreeDeleter>;
template <class T>
Buffer<T> alloc(size_t n) {
  void* p = std::aligned_alloc(64, round_up(n * sizeof(T), 64));
  if (!p) {
    std::fprintf(stderr, "out of memory\n");
    std::exit(1);
  }
  return Buffer<T>(static_cast<T*>(p));
}

inline uint64_t next_random(uint64_t& s) {  // xorshift64*
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s * 0x2545F4914F6CDD1DULL;
}

inline void fill_random(uint8_t* p, size_t bytes, uint64_t seed) {
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    const uint64_t v = next_random(seed);
    std::memcpy(p + i, &v, 8);
  }
}

// Streaming read bandwidth (GB/s) of [buf, buf + bytes) with the pool's
// threads and the widest loads this CPU has (the best runnable ISA's
// stream_read): for each ReadPrefetch, the fastest window of time_calls over
// seconds / 3, and the best of those.
inline double measure_bandwidth(ThreadPool& pool, const uint8_t* buf, size_t bytes, double seconds) {
  const Runtime rt{&kernels_for(runnable_isas().front()), &pool};
  double best = 0;
  for (const ReadPrefetch how : kReadPrefetches) {
    const double t = time_calls(seconds / 3, [&](size_t) { parallel_stream_read(rt, buf, bytes, how); });
    best = std::max(best, static_cast<double>(bytes) / t / 1e9);
  }
  return best;
}

}  // namespace bitnet::bench

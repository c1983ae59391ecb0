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

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "thread_pool.h"
#include "ternary_format.h"

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

// Sums n words (n a multiple of 8) with 16-byte loads where the baseline ISA
// has them, prefetching ahead like the GEMV kernels do, so that the reference
// is the best streaming read one core achieves rather than what the hardware
// prefetcher alone sustains.
inline uint64_t sum_words(const uint64_t* w, size_t n) {
#if defined(__SSE2__)
  constexpr size_t kAheadWords = 2048;  // 16 KB
  const __m128i* v = reinterpret_cast<const __m128i*>(w);
  __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < n; i += 8, v += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(w + std::min(i + kAheadWords, n - 8)), _MM_HINT_T0);
    a0 = _mm_add_epi64(a0, _mm_load_si128(v));
    a1 = _mm_add_epi64(a1, _mm_load_si128(v + 1));
    a2 = _mm_add_epi64(a2, _mm_load_si128(v + 2));
    a3 = _mm_add_epi64(a3, _mm_load_si128(v + 3));
  }
  const __m128i s = _mm_add_epi64(_mm_add_epi64(a0, a1), _mm_add_epi64(a2, a3));
  return static_cast<uint64_t>(_mm_cvtsi128_si64(s)) +
         static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(s, s)));
#else
  uint64_t a[8] = {};
  for (size_t i = 0; i < n; i += 8)
    for (int j = 0; j < 8; ++j) a[j] += w[i + j];
  return a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
#endif
}

// Streaming read of a buffer far larger than the last-level cache.
inline double measure_bandwidth(ThreadPool& pool, const uint8_t* buf, size_t bytes, double seconds) {
  const size_t n = bytes / sizeof(uint64_t);
  const uint64_t* words = reinterpret_cast<const uint64_t*>(buf);
  std::vector<uint64_t> sinks(pool.size() * 8);
  const double t = time_calls(seconds, [&](size_t) {
    pool.parallel_for(pool.size(), [&](size_t b, size_t e) {
      for (size_t part = b; part < e; ++part) {
        const size_t lo = n * part / pool.size() / 8 * 8, hi = n * (part + 1) / pool.size() / 8 * 8;
        sinks[part * 8] = sum_words(words + lo, hi - lo);
      }
    });
  });
  return static_cast<double>(bytes) / t / 1e9;
}

}  // namespace bitnet::bench

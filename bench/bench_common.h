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
#include <string>
#include <vector>

#include "isa.h"
#include "ops.h"
#include "ternary_format.h"
#include "thread_pool.h"

namespace bitnet::bench {

inline double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// What time_calls measured: seconds per call of the fastest window, and of
// the median call over all windows.
struct CallTimes {
  double best_window;
  double median;
};

// Runs fn(i) for i = 0, 1, ... (the first call untimed) in kWindows windows of
// at least seconds / kWindows each. The fastest window is what other processes
// on a shared machine disturb least; the median call is what a host that takes
// a vCPU away for tens of microseconds every millisecond (docs/kernels.md,
// stop 19) disturbs least, when calls are shorter than that period.
inline CallTimes time_calls_each(double seconds, const std::function<void(size_t)>& fn) {
  constexpr int kWindows = 5;
  fn(0);
  size_t calls = 0;
  double best = 1e30;
  std::vector<double> each;
  for (int w = 0; w < kWindows; ++w) {
    const double start = now();
    double last = start, elapsed = 0;
    size_t n = 0;
    do {
      fn(++calls);
      ++n;
      const double t = now();
      each.push_back(t - last);
      last = t;
      elapsed = t - start;
    } while (elapsed < seconds / kWindows);
    best = std::min(best, elapsed / static_cast<double>(n));
  }
  std::nth_element(each.begin(), each.begin() + each.size() / 2, each.end());
  return {best, each[each.size() / 2]};
}

// Seconds per call of the fastest window (time_calls_each).
inline double time_calls(double seconds, const std::function<void(size_t)>& fn) {
  return time_calls_each(seconds, fn).best_window;
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

// Read bandwidth (GB/s) with the pool's threads and the widest loads this CPU
// has (the best runnable ISA's stream_read): each call of time_calls_each reads
// the next of `copies` runs of `bytes` (one after another from buf), split and
// joined as parallel_stream_read does, for seconds / 3 per ReadPrefetch. Of the
// fastest window and of the median call, each for its best ReadPrefetch.
struct ReadBandwidth {
  double best_window = 0;
  double median_call = 0;
};
inline ReadBandwidth measure_reads(ThreadPool& pool, const uint8_t* buf, size_t bytes, size_t copies,
                                   double seconds) {
  const Runtime rt{&kernels_for(runnable_isas().front()), &pool};
  ReadBandwidth best;
  for (const ReadPrefetch how : kReadPrefetches) {
    const CallTimes t = time_calls_each(
        seconds / 3, [&](size_t i) { parallel_stream_read(rt, buf + i % copies * bytes, bytes, how); });
    best.best_window = std::max(best.best_window, static_cast<double>(bytes) / t.best_window / 1e9);
    best.median_call = std::max(best.median_call, static_cast<double>(bytes) / t.median / 1e9);
  }
  return best;
}

// Streaming read bandwidth of [buf, buf + bytes), a whole read per call: the
// fastest window.
inline double measure_bandwidth(ThreadPool& pool, const uint8_t* buf, size_t bytes, double seconds) {
  return measure_reads(pool, buf, bytes, 1, seconds).best_window;
}

// The read bandwidth that calls of the size of a GEMV see: the median call of
// reads of `bytes` from the next of `copies` runs.
inline double measure_call_bandwidth(ThreadPool& pool, const uint8_t* buf, size_t bytes, size_t copies,
                                     double seconds) {
  return measure_reads(pool, buf, bytes, copies, seconds).median_call;
}

// One line for a report: "off-CPU (...): thread 0 5.3% (672 gaps, median 36 us, one per 1.00 ms); ...".
// The threads are measure_off_cpu's (ops.h).
inline std::string describe_off_cpu(const std::vector<OffCpu>& threads, double seconds) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "off-CPU (gaps over %.0f us between clock reads, %zu threads at once for %.1f s):",
                kOffCpuGapSeconds * 1e6, threads.size(), seconds);
  std::string line = buf;
  for (size_t i = 0; i < threads.size(); ++i) {
    const OffCpu& o = threads[i];
    std::snprintf(buf, sizeof buf, "%s thread %zu %.1f%% (%zu gaps, median %.0f us, one per %.2f ms)", i ? ";" : "",
                  i, 100 * o.fraction, o.gaps, o.median_gap * 1e6, o.median_period * 1e3);
    line += buf;
  }
  return line;
}

}  // namespace bitnet::bench

// A fixed pool of worker threads for fork-join loops over kernel slices.
// The calling thread works too, so a pool of size 1 runs everything inline.
//
// A decode step issues a few hundred jobs of 10-300 us per token, on machines
// where other processes may hold a core at any moment. So:
// * dispatch and join are atomic stores and loads on separate cache lines;
//   idle workers spin on a generation counter and sleep on a condition
//   variable only after spinning for a while (an idle pool costs no CPU);
// * a job is cut into pieces that threads claim one at a time, and a worker
//   that has not started a job by the time its pieces are done is not waited
//   for: a descheduled worker delays a job by at most the piece it holds.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace bitnet {

// Tells the core that this thread is polling a flag another thread will set.
inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

// Polls until done() holds, yielding the core now and then so that a pool
// larger than the free cores (or a descheduled thread) still makes progress.
template <class Done>
void spin_until(Done&& done) {
  constexpr unsigned kSpinsBeforeYield = 1u << 12;
  for (unsigned spins = 1; !done(); ++spins) {
    if (spins % kSpinsBeforeYield == 0) std::this_thread::yield();
    else cpu_relax();
  }
}

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return threads_; }

  // Calls fn(begin, end) on the ranges [0, grain), [grain, 2 grain), ...
  // covering [0, n), each on whichever thread claims it first, and returns when
  // all calls have returned. grain 0 means ceil(n / size()): one range per
  // thread. Calls from several threads at once are serialized.
  template <class Fn>
  void parallel_for(size_t n, Fn&& fn, size_t grain = 0) {
    if (n == 0) return;
    if (grain == 0) grain = (n + threads_ - 1) / threads_;
    if (threads_ == 1 || grain >= n) {
      for (size_t b = 0; b < n; b += grain) fn(b, b + grain < n ? b + grain : n);
      return;
    }
    run(n, grain, &fn, [](void* f, size_t b, size_t e) { (*static_cast<Fn*>(f))(b, e); });
  }

 private:
  using Trampoline = void (*)(void*, size_t, size_t);
  void run(size_t n, size_t grain, void* fn, Trampoline call);
  // Claims and runs pieces of the current job until none is left.
  void work_on_job();
  void worker_loop();

  const size_t threads_;
  std::vector<std::thread> workers_;
  std::mutex submit_mu_;  // one job at a time
  // The current job; written before admission_ opens it.
  size_t job_n_ = 0, job_grain_ = 0, job_pieces_ = 0;
  void* job_fn_ = nullptr;
  Trampoline job_call_ = nullptr;
  // Each counter on its own cache line: polling one never slows writes to another.
  alignas(64) std::atomic<uint64_t> generation_{0};  // bumped to announce a job
  alignas(64) std::atomic<uint64_t> admission_{0};   // 2 * generation + 1 while workers may join
  alignas(64) std::atomic<size_t> active_{0};        // workers inside work_on_job or deciding to
  alignas(64) std::atomic<size_t> next_piece_{0};
  alignas(64) std::atomic<size_t> pieces_done_{0};
  alignas(64) std::atomic<size_t> sleepers_{0};
  alignas(64) std::mutex sleep_mu_;
  std::condition_variable wake_;
  std::atomic<bool> stop_{false};
};

// Threads the runtime uses by default: BITNET_THREADS if set, else the number
// of CPUs this process may run on.
size_t default_thread_count();

}  // namespace bitnet

// A fixed pool of worker threads for fork-join loops over kernel slices.
// The calling thread works too, so a pool of size 1 runs everything inline.
// Workers spin briefly between jobs (a decode step issues hundreds of short
// jobs per token), then sleep, so an idle pool costs no CPU.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace bitnet {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size() + 1; }

  // Calls fn(begin, end) on disjoint contiguous ranges covering [0, n), at most
  // one range per thread, and returns when all calls have returned. Calls from
  // several threads at once are serialized.
  template <class Fn>
  void parallel_for(size_t n, Fn&& fn) {
    run(n, &fn, [](void* f, size_t b, size_t e) { (*static_cast<Fn*>(f))(b, e); });
  }

 private:
  using Trampoline = void (*)(void*, size_t, size_t);
  void run(size_t n, void* fn, Trampoline call);
  void worker_loop(size_t index);
  void run_share(size_t index);

  std::vector<std::thread> workers_;
  std::mutex submit_mu_;  // one job at a time
  std::mutex sleep_mu_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<size_t> pending_{0};
  bool stop_ = false;
  // The current job; written before generation_ is bumped.
  size_t job_n_ = 0;
  void* job_fn_ = nullptr;
  Trampoline job_call_ = nullptr;
};

// Threads the runtime uses by default: BITNET_THREADS if set, else the number
// of CPUs this process may run on.
size_t default_thread_count();

}  // namespace bitnet

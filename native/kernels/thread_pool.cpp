#include "thread_pool.h"

#include <sched.h>

#include <cstdlib>
#include <string>

namespace bitnet {

namespace {

// Idle workers poll this many times (~50-200 us) before sleeping: long enough
// to cover the gaps between the jobs of one decode step.
constexpr unsigned kSpinsBeforeSleep = 1u << 14;

}  // namespace

ThreadPool::ThreadPool(size_t threads) : threads_(threads > 1 ? threads : 1) {
  workers_.reserve(threads_ - 1);
  for (size_t i = 1; i < threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleep_mu_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::work_on_job() {
  size_t done = 0;
  for (size_t p; (p = next_piece_.fetch_add(1, std::memory_order_relaxed)) < job_pieces_; ++done) {
    const size_t begin = p * job_grain_;
    job_call_(job_fn_, begin, begin + job_grain_ < job_n_ ? begin + job_grain_ : job_n_);
  }
  if (done) pieces_done_.fetch_add(done, std::memory_order_release);
}

void ThreadPool::run(size_t n, size_t grain, void* fn, Trampoline call) {
  std::lock_guard<std::mutex> submit(submit_mu_);
  job_n_ = n;
  job_grain_ = grain;
  job_pieces_ = (n + grain - 1) / grain;
  job_fn_ = fn;
  job_call_ = call;
  next_piece_.store(0, std::memory_order_relaxed);
  pieces_done_.store(0, std::memory_order_relaxed);
  const uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
  admission_.store(2 * gen + 1);
  // Sequentially consistent with the sleepers_ increment in worker_loop: either
  // this load sees the sleeper, or the sleeper's wait predicate sees gen.
  generation_.store(gen);
  if (sleepers_.load() != 0) {
    { std::lock_guard<std::mutex> lock(sleep_mu_); }
    wake_.notify_all();
  }
  work_on_job();
  spin_until([&] { return pieces_done_.load(std::memory_order_acquire) == job_pieces_; });
  // Close the job, then wait for the workers that joined it to leave it: a
  // worker that increments active_ after this store sees the job closed
  // (both sequentially consistent) and never touches fn.
  admission_.store(2 * gen);
  spin_until([&] { return active_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (unsigned spin = 0; gen == seen && spin < kSpinsBeforeSleep; ++spin) {
      cpu_relax();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      sleepers_.fetch_add(1);
      {
        std::unique_lock<std::mutex> lock(sleep_mu_);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
      }
      sleepers_.fetch_sub(1);
      gen = generation_.load(std::memory_order_acquire);
    }
    if (stop_) return;
    seen = gen;
    active_.fetch_add(1);
    if (admission_.load() == 2 * gen + 1) work_on_job();
    active_.fetch_sub(1, std::memory_order_release);
  }
}

size_t default_thread_count() {
  if (const char* env = std::getenv("BITNET_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 1024) return static_cast<size_t>(v);
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<size_t>(n);
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc ? hc : 1;
}

}  // namespace bitnet

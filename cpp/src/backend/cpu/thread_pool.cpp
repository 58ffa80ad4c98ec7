#include "backend/cpu/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace fastspec::cpu {

namespace {

// ~20-50 microseconds of polling before a thread goes to sleep.
constexpr int kSpinIters = 2000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  if (const char* e = std::getenv("FASTSPEC_POOL_ADAPTIVE")) policy_.set_enabled(std::string(e) != "0");
  for (int k = 1; k < n_threads_; ++k) workers_.emplace_back([this, k] { worker_loop(k); });
}

ThreadPool::~ThreadPool() {
  if (std::getenv("FASTSPEC_POOL_DEBUG"))
    std::fprintf(stderr, "thread pool (%d threads): %lld switches to solo mode, %lld jobs waited on, %.1f ms waiting\n",
                 n_threads_, static_cast<long long>(policy_.switches()), static_cast<long long>(policy_.observed_jobs()),
                 policy_.wait_total_us() / 1e3);
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
  }
  cv_start_.notify_all();
  for (auto& t : workers_) t.join();
}

int64_t ThreadPool::drain(int thread) {
  int64_t done = 0;
  for (;;) {
    int64_t k = next_.fetch_add(1, std::memory_order_relaxed);
    if (k >= n_tasks_) return done;
    try {
      (*fn_)(k, thread);
      ++done;
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
      next_.store(n_tasks_);  // abandon the remaining tasks
    }
  }
}

void ThreadPool::worker_loop(int thread) {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed) &&
           spins < kSpinIters) {
      cpu_relax();
      ++spins;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      sleepers_.fetch_add(1);
      cv_start_.wait(lk, [&] { return stop_.load() || generation_.load() != seen; });
      sleepers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    drain(thread);
    if (active_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
      std::lock_guard<std::mutex> lk(mu_);
      cv_done_.notify_one();
    }
  }
}

void ThreadPool::run(int64_t n_tasks, TaskFn fn) {
  if (n_tasks <= 0) return;
  if (workers_.empty() || n_tasks == 1 || policy_.take_solo()) {
    for (int64_t k = 0; k < n_tasks; ++k) fn(k, 0);
    return;
  }
  fn_ = &fn;
  n_tasks_ = n_tasks;
  error_ = nullptr;
  next_.store(0, std::memory_order_relaxed);
  active_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(mu_);  // pairs with a worker checking the predicate
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleepers_.load() > 0) cv_start_.notify_all();
  const auto start = std::chrono::steady_clock::now();
  drain(0);
  const auto own_done = std::chrono::steady_clock::now();
  int spins = 0;
  while (active_.load(std::memory_order_acquire) != 0 && spins < kSpinIters) {
    cpu_relax();
    ++spins;
  }
  if (active_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lk(mu_);
    caller_sleeping_.store(true);
    cv_done_.wait(lk, [&] { return active_.load() == 0; });
    caller_sleeping_.store(false);
  }
  fn_ = nullptr;
  using us = std::chrono::duration<double, std::micro>;
  // (jobs that woke a sleeping worker count too: a wake on an idle core takes tens of microseconds,
  // on a core held by another process up to a scheduler slice)
  policy_.observe(us(std::chrono::steady_clock::now() - own_done).count(), us(own_done - start).count());
  std::exception_ptr err = std::exchange(error_, nullptr);
  if (err) std::rethrow_exception(err);
}

void SoloPolicy::observe(double wait_us, double own_us) {
  ++window_jobs_;
  ++observed_jobs_;
  wait_total_us_ += wait_us;
  window_wait_us_ += wait_us;
  window_own_us_ += own_us;
  const bool slice = wait_us > kSliceUs;
  if (window_jobs_ < kWindowJobs && !slice) return;
  const bool slow = slice || window_wait_us_ > kWaitShare * window_own_us_;
  if (enabled_ && slow) {
    solo_jobs_left_ = solo_len_;
    solo_len_ = std::min<int64_t>(solo_len_ * 2, kSoloJobsMax);
    ++switches_;
  } else if (!slow) {
    solo_len_ = kSoloJobs;
  }
  window_jobs_ = 0;
  window_wait_us_ = window_own_us_ = 0;
}

int physical_cores() {
  // Count distinct (physical id, core id) pairs in /proc/cpuinfo (Linux).
  std::ifstream f("/proc/cpuinfo");
  std::set<std::pair<int, int>> cores;
  std::string line;
  int phys = 0;
  while (std::getline(f, line)) {
    auto val = [&] { return std::stoi(line.substr(line.find(':') + 1)); };
    if (line.rfind("physical id", 0) == 0) phys = val();
    else if (line.rfind("core id", 0) == 0) cores.insert({phys, val()});
  }
  if (!cores.empty()) return static_cast<int>(cores.size());
  unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

}  // namespace fastspec::cpu

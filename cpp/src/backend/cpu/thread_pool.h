// A small fork-join pool. Between jobs a worker spins briefly (jobs of one forward pass arrive
// every few microseconds) and then sleeps on a condition variable: it never spins long, because
// on a shared 2-core machine threads that spin while waiting collapse throughput.
// The caller thread takes part in every job.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace fastspec::cpu {

// A non-owning reference to a callable fn(task, thread): unlike std::function it never allocates
// (a capturing lambda passed to run() stays on the caller's stack).
class TaskFn {
 public:
  template <typename F>
  TaskFn(const F& f)  // NOLINT: implicit, so run(n, [&](int64_t t) {...}) works
      : obj_(&f), call_(&invoke<F>) {}
  void operator()(int64_t task, int thread) const { call_(obj_, task, thread); }

 private:
  template <typename F>
  static void invoke(const void* o, int64_t task, int thread) {
    const F& f = *static_cast<const F*>(o);
    if constexpr (std::is_invocable_v<const F&, int64_t, int>) f(task, thread);
    else f(task);
  }
  const void* obj_;
  void (*call_)(const void*, int64_t, int);
};

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // total threads including the caller; >= 1
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Load adaptation (on by default): when workers keep arriving late at the end of jobs (their
  // cores are busy with other processes), the pool runs jobs on the caller alone for a while
  // and then tries its workers again. solo_switches() counts how often it did.
  void set_adaptive(bool on) { adaptive_ = on; solo_jobs_left_ = 0; }
  int64_t solo_switches() const { return solo_switches_; }
  // Runs fn(task) (or fn(task, thread), thread in [0, size())) for task in [0, n_tasks), claimed
  // dynamically by the threads (a thread slowed by another process just takes fewer tasks);
  // returns when all are done. The first exception thrown by a task is rethrown here. Never
  // allocates. n_tasks == 1 (or a 1-thread pool) runs inline on the caller.
  void run(int64_t n_tasks, TaskFn fn);

 private:
  void worker_loop(int thread);
  void observe_wait(double wait_us, double own_us);

  static constexpr double kWaitShare = 0.5;     // waits above this share of the caller's own work
  static constexpr double kSliceUs = 2000.0;    // a wait this long: a scheduler slice lost, go solo now
  static constexpr int kWindowJobs = 64;
  static constexpr int64_t kSoloJobs = 3000;     // ~15 decode steps of a small model, doubling
  static constexpr int64_t kSoloJobsMax = 96000; //   while the machine stays busy
  int64_t drain(int thread);  // runs tasks until none is left; returns how many it ran

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const TaskFn* fn_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> active_{0};            // workers still inside the current job
  std::atomic<uint64_t> generation_{0};   // bumps once per job
  std::atomic<int> sleepers_{0};          // workers blocked on cv_start_
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
  bool adaptive_ = true;
  int window_jobs_ = 0;
  double window_wait_us_ = 0, window_own_us_ = 0;
  int64_t solo_jobs_left_ = 0, solo_switches_ = 0, solo_len_ = kSoloJobs;
  int64_t waited_jobs_ = 0;   // jobs run with the workers (FASTSPEC_POOL_DEBUG report)
  double wait_total_us_ = 0;  // the caller's waits for workers at the end of those jobs
};

// Physical cores (falls back to hardware_concurrency).
int physical_cores();

}  // namespace fastspec::cpu

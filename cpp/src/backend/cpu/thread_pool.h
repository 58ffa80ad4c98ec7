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

// The pool's load adaptation, apart from the threads (so tests drive it with given times).
// A job run with the workers reports how long the caller took for its own share (own_us) and
// then waited for the workers (wait_us). Run alone, the caller would take about n_threads *
// own_us instead of own_us + wait_us; when over a window of jobs the waits exceed kWaitShare of
// the caller's own time (the workers' cores are held by other processes: each wake or task end
// comes late), or one wait is a whole scheduler slice, the next solo_len jobs run on the caller
// alone; then the workers are tried again, and a machine still busy doubles the next solo period.
class SoloPolicy {
 public:
  static constexpr double kWaitShare = 0.5;     // waits above this share of the caller's own work
  static constexpr double kSliceUs = 2000.0;    // a wait this long: a scheduler slice lost, go solo now
  static constexpr int kWindowJobs = 64;
  static constexpr int64_t kSoloJobs = 3000;     // ~15 decode steps of a small model, doubling
  static constexpr int64_t kSoloJobsMax = 96000; //   while the machine stays busy

  void set_enabled(bool on) { enabled_ = on; solo_jobs_left_ = 0; }
  // Whether the next multi-task job runs on the caller alone (counts the solo period down).
  bool take_solo() {
    if (solo_jobs_left_ <= 0) return false;
    --solo_jobs_left_;
    return true;
  }
  void observe(double wait_us, double own_us);
  int64_t switches() const { return switches_; }
  int64_t solo_jobs_left() const { return solo_jobs_left_; }
  int64_t observed_jobs() const { return observed_jobs_; }
  double wait_total_us() const { return wait_total_us_; }

 private:
  bool enabled_ = true;
  int window_jobs_ = 0;
  double window_wait_us_ = 0, window_own_us_ = 0;
  int64_t solo_jobs_left_ = 0, switches_ = 0, solo_len_ = kSoloJobs;
  int64_t observed_jobs_ = 0;  // jobs run with the workers (FASTSPEC_POOL_DEBUG report)
  double wait_total_us_ = 0;   // the caller's waits for workers at the end of those jobs
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
  void set_adaptive(bool on) { policy_.set_enabled(on); }
  int64_t solo_switches() const { return policy_.switches(); }
  // Runs fn(task) (or fn(task, thread), thread in [0, size())) for task in [0, n_tasks), claimed
  // dynamically by the threads (a thread slowed by another process just takes fewer tasks);
  // returns when all are done. The first exception thrown by a task is rethrown here. Never
  // allocates. n_tasks == 1 (or a 1-thread pool) runs inline on the caller.
  void run(int64_t n_tasks, TaskFn fn);

 private:
  void worker_loop(int thread);
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
  SoloPolicy policy_;
};

// Physical cores (falls back to hardware_concurrency).
int physical_cores();

}  // namespace fastspec::cpu

// A small fork-join pool. Between jobs a worker spins briefly (jobs of one forward pass arrive
// every few microseconds) and then sleeps on a condition variable: it never spins long, because
// on a shared 2-core machine threads that spin while waiting collapse throughput.
// The caller thread takes part in every job.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fastspec::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // total threads including the caller; >= 1
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Runs fn(task) for task in [0, n_tasks), spread over the threads; returns when all are done.
  // The first exception thrown by a task is rethrown here.
  void run(int64_t n_tasks, const std::function<void(int64_t)>& fn);

 private:
  void worker_loop();
  void drain();

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> active_{0};            // workers still inside the current job
  std::atomic<uint64_t> generation_{0};   // bumps once per job
  std::atomic<int> sleepers_{0};          // workers blocked on cv_start_
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
};

// Physical cores (falls back to hardware_concurrency).
int physical_cores();

}  // namespace fastspec::cpu

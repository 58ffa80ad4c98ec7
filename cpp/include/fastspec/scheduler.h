// The scheduler: many requests, from any threads, served by one engine with continuous batching.
// A thread of its own owns the decoding: each round it admits waiting requests into free slots
// (up to max_sequences decoding at once), runs Engine::step_batch over all of them (one target
// pass), and hands each request the tokens it committed. Requests join and leave between rounds.
// A request's tokens are exactly those it gets alone (batch invariance), with or without the
// prefix cache (its K/V bits are those a prefill computes).
//
//   Scheduler sched(engine, SchedulerOptions());
//   auto r = sched.submit(prompt_ids, sampling, tok.eog_ids());      // from any thread
//   for (;;) { auto ids = r->next(1.0); ...; if (r->finished()) break; }
//
// Speculation under load (spec_backoff): verifying drafts for many sequences costs more than it
// saves, so each session's draft length is capped at max(0, kTargetRows / active - 1) rows:
// 15 alone (then k_max bounds it), 7 at 2 sequences, 3 at 4, 1 at 8, 0 from 9 on (plain decoding). Greedy
// requests only: a sampled request's draft lengths depend only on its seeded events (KController),
// so that its text for a seed never depends on the load.
#pragma once
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fastspec/engine.h"
#include "fastspec/status.h"

namespace fastspec {

struct SchedulerOptions {
  int max_sequences = 16;        // sequences decoding at once (slots)
  int max_queue = 64;            // requests waiting for a slot beyond which submit() throws QueueFull
  int64_t prefix_cache_mb = 256; // the engine's prefix cache budget (Engine::set_prefix_cache_mb; 0 = off)
  bool spec_backoff = true;      // shrink draft lengths as the batch fills (see above)
};

// submit() when max_queue requests already wait: try again later (HTTP 503 + Retry-After).
class QueueFull : public Error {
 public:
  using Error::Error;
};

struct RequestStats {
  int64_t prompt_tokens = 0, tokens = 0, drafted = 0, accepted = 0;
  std::vector<int64_t> accepted_by_position;
  int64_t prefix_cached_tokens = 0;  // prompt positions copied from the prefix cache
  double queued_s = 0;               // submit -> admitted into a slot
  double first_token_s = -1;         // submit -> first token committed (-1: none yet)
  double decode_s = 0;               // admitted -> finished (or now)
};

class Request {
 public:
  int64_t id() const { return id_; }
  // The tokens committed since the last call; waits up to timeout_s for some (returns empty on a
  // timeout, and once finished with nothing left).
  std::vector<int32_t> next(double timeout_s);
  // One entry per token next() has returned so far (when submitted with top_logprobs >= 0).
  std::vector<TokenLogprob> logprobs() const;
  bool finished() const;        // finished and every token handed out
  std::string finish_reason() const;  // "stop" | "length" | "cancelled" | "error: ..." | "" (running)
  void cancel();                // the slot is freed at the next round
  RequestStats stats() const;

 private:
  friend class Scheduler;
  int64_t id_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int32_t> tokens_;  // every committed token
  std::vector<TokenLogprob> lp_;
  size_t taken_ = 0;             // tokens_ handed out by next()
  bool done_ = false, cancel_ = false;
  std::string reason_;
  RequestStats stats_;
  double t_submit_ = 0, t_admit_ = 0;
  // owned by the scheduler thread
  std::vector<int32_t> prompt_, stop_ids_;
  SamplingOptions sampling_;
  bool draft_ = true;
  int top_logprobs_ = -1;
  std::unique_ptr<Session> session_;
};

// active / queued: requests in slots / waiting; batch_rows: sequences in the last round (the batch
// size); prefix_*: the engine's prefix cache (PrefixCacheStats: lookups, hits, tokens copied,
// entries and K/V bytes held).
struct SchedulerStats {
  int64_t active = 0, queued = 0, max_sequences = 0, rounds = 0, batch_rows = 0, finished = 0, cancelled = 0;
  int64_t prefix_lookups = 0, prefix_hits = 0, prefix_hit_tokens = 0, prefix_entries = 0, prefix_bytes = 0;
};

class Scheduler {
 public:
  Scheduler(Engine& engine, const SchedulerOptions& options);
  ~Scheduler();  // close()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request (arguments checked here: InvalidArgument as Engine::start; QueueFull).
  // top_logprobs: -1 off, 0..20 (Session::set_logprobs). draft false: no speculation for it.
  std::shared_ptr<Request> submit(const std::vector<int32_t>& prompt, const SamplingOptions& sampling,
                                  const std::vector<int32_t>& stop_ids, bool draft = true, int top_logprobs = -1);
  SchedulerStats stats() const;
  // Stops the thread; unfinished requests end "cancelled". Idempotent.
  void close();

  static constexpr int64_t kTargetRows = 16;  // spec_backoff: rows per pass the drafts may fill
  // The draft cap of a greedy session with `active` sequences in the round (spec_backoff).
  static int32_t draft_cap(int64_t active) {
    return static_cast<int32_t>(active < 1 ? kTargetRows - 1 : std::max<int64_t>(0, kTargetRows / active - 1));
  }

 private:
  void loop();
  void admit(std::shared_ptr<Request> r);  // into a slot (its session was started at submit)
  void retire(Request& r, const std::string& reason);  // ends its session, marks it done

  Engine& engine_;
  SchedulerOptions opts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Request>> queue_;
  std::vector<std::shared_ptr<Request>> active_;  // the scheduler thread's (read under mu_ for stats)
  bool stop_ = false;
  int64_t next_id_ = 1;
  SchedulerStats stats_;
  std::thread thread_;
};

}  // namespace fastspec

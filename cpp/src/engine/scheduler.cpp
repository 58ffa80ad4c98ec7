// The scheduler's thread: admit -> cancel -> one batched round -> hand out tokens -> retire.
#include "fastspec/scheduler.h"

#include <algorithm>
#include <chrono>

#include "model/kv_cache.h"

namespace fastspec {
namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

// ---- Request ---------------------------------------------------------------------------------------

std::vector<int32_t> Request::next(double timeout_s) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, std::chrono::duration<double>(std::max(0.0, timeout_s)),
               [&] { return taken_ < tokens_.size() || done_; });
  std::vector<int32_t> out(tokens_.begin() + static_cast<std::ptrdiff_t>(taken_), tokens_.end());
  taken_ = tokens_.size();
  return out;
}

std::vector<TokenLogprob> Request::logprobs() const {
  std::lock_guard<std::mutex> lk(mu_);
  return std::vector<TokenLogprob>(lp_.begin(), lp_.begin() + static_cast<std::ptrdiff_t>(std::min(taken_, lp_.size())));
}

bool Request::finished() const {
  std::lock_guard<std::mutex> lk(mu_);
  return done_ && taken_ == tokens_.size();
}

std::string Request::finish_reason() const {
  std::lock_guard<std::mutex> lk(mu_);
  return done_ ? reason_ : "";
}

void Request::cancel() {
  std::lock_guard<std::mutex> lk(mu_);
  cancel_ = true;
}

RequestStats Request::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  RequestStats s = stats_;
  if (!done_ && t_admit_ > 0) s.decode_s = now_s() - t_admit_;
  return s;
}

// ---- Scheduler -------------------------------------------------------------------------------------

Scheduler::Scheduler(Engine& engine, const SchedulerOptions& o) : engine_(engine), opts_(o) {
  if (o.max_sequences < 1 || o.max_queue < 0 || o.prefix_cache_mb < 0)
    throw InvalidArgument("SchedulerOptions: max_sequences " + std::to_string(o.max_sequences) + " (>= 1), max_queue " +
                          std::to_string(o.max_queue) + " (>= 0), prefix_cache_mb " +
                          std::to_string(o.prefix_cache_mb) + " (>= 0)");
  engine_.set_prefix_cache_mb(o.prefix_cache_mb);  // the engine's cache: Engine::start and ~Session use it
  stats_.max_sequences = o.max_sequences;
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { close(); }

void Scheduler::close() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<Request> Scheduler::submit(const std::vector<int32_t>& prompt, const SamplingOptions& sampling,
                                           const std::vector<int32_t>& stop_ids, bool draft, int top_logprobs) {
  auto r = std::make_shared<Request>();
  {
    std::lock_guard<std::mutex> lk(engine_.compute_mu_);  // start() checks everything; a drafter may touch the backend
    r->session_ = engine_.start(prompt, sampling, stop_ids, draft);
  }
  r->session_->set_logprobs(top_logprobs);
  r->prompt_ = prompt, r->stop_ids_ = stop_ids, r->sampling_ = sampling;
  r->draft_ = draft, r->top_logprobs_ = top_logprobs;
  r->stats_.prompt_tokens = static_cast<int64_t>(prompt.size());
  r->t_submit_ = now_s();
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) throw Error("scheduler: closed");
    const int64_t free_slots = std::max<int64_t>(0, opts_.max_sequences - static_cast<int64_t>(active_.size()));
    if (static_cast<int64_t>(queue_.size()) >= opts_.max_queue + free_slots)
      throw QueueFull("scheduler: " + std::to_string(queue_.size()) + " requests already wait for one of " +
                      std::to_string(opts_.max_sequences) + " slots (max_queue " + std::to_string(opts_.max_queue) + ")");
    r->id_ = next_id_++;
    queue_.push_back(r);
  }
  cv_.notify_all();
  return r;
}

SchedulerStats Scheduler::stats() const {
  const PrefixCacheStats p = engine_.prefix_cache_stats();
  std::lock_guard<std::mutex> lk(mu_);
  SchedulerStats s = stats_;
  s.active = static_cast<int64_t>(active_.size());
  s.queued = static_cast<int64_t>(queue_.size());
  s.prefix_lookups = p.lookups, s.prefix_hits = p.hits, s.prefix_hit_tokens = p.hit_tokens;
  s.prefix_entries = p.entries, s.prefix_bytes = p.bytes;
  return s;
}

void Scheduler::admit(std::shared_ptr<Request> r) {
  r->t_admit_ = now_s();
  std::lock_guard<std::mutex> lr(r->mu_);
  r->stats_.prefix_cached_tokens = r->session_->stats().prefix_cached_tokens;  // copied by Engine::start
  r->stats_.queued_s = r->t_admit_ - r->t_submit_;
}

// Called once the request has left active_: its session ends (~Session leaves its K/V in the
// engine's prefix cache), the counters move, and only then is the request marked done (a client
// that sees it finished sees the scheduler's stats, and its next turn finds the cached prefix).
void Scheduler::retire(Request& r, const std::string& reason) {
  r.session_.reset();
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++(reason == "cancelled" ? stats_.cancelled : stats_.finished);
  }
  {
    std::lock_guard<std::mutex> lk(r.mu_);
    r.done_ = true;
    r.reason_ = reason;
    r.stats_.decode_s = r.t_admit_ > 0 ? now_s() - r.t_admit_ : 0;
  }
  r.cv_.notify_all();
}

void Scheduler::loop() {
  std::vector<Session*> batch;
  std::vector<std::shared_ptr<Request>> order;
  for (int64_t round = 0;; ++round) {
    std::vector<std::shared_ptr<Request>> admitted;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty() || !active_.empty(); });
      if (stop_) break;
      while (!queue_.empty() && static_cast<int64_t>(active_.size() + admitted.size()) < opts_.max_sequences)
        admitted.push_back(queue_.front()), queue_.pop_front();
    }
    for (auto& r : admitted) admit(r);
    {
      std::lock_guard<std::mutex> lk(mu_);
      active_.insert(active_.end(), admitted.begin(), admitted.end());
    }
    // Cancelled requests leave before the round.
    std::vector<std::shared_ptr<Request>> keep, gone;
    for (auto& r : active_) {
      bool cancel;
      {
        std::lock_guard<std::mutex> lr(r->mu_);
        cancel = r->cancel_;
      }
      (cancel ? gone : keep).push_back(r);
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      active_.swap(keep);
    }
    for (auto& r : gone) retire(*r, "cancelled");
    if (active_.empty()) continue;
    // One round for all, the order rotated (a session that finds the pass full goes first next time).
    const int64_t n = static_cast<int64_t>(active_.size());
    const int32_t cap = opts_.spec_backoff ? draft_cap(n) : 1 << 30;
    order.clear(), batch.clear();
    for (int64_t i = 0; i < n; ++i) order.push_back(active_[static_cast<size_t>((i + round) % n)]);
    for (auto& r : order) {  // a sampled request's text for its seed must not depend on load: no cap
      r->session_->set_draft_cap(r->sampling_.temperature > 0 ? 1 << 30 : cap);
      batch.push_back(r->session_.get());
    }
    std::string error;
    try {
      engine_.step_batch(batch.data(), batch.size());
    } catch (const std::exception& e) {
      error = std::string("error: ") + e.what();
    }
    keep.clear();
    std::vector<std::pair<std::shared_ptr<Request>, std::string>> ended;
    for (auto& r : order) {
      Session& s = *r->session_;
      const std::vector<int32_t>& c = s.committed();
      if (!c.empty()) {
        std::lock_guard<std::mutex> lr(r->mu_);
        r->tokens_.insert(r->tokens_.end(), c.begin(), c.end());
        const auto& lp = s.committed_logprobs();
        r->lp_.insert(r->lp_.end(), lp.begin(), lp.end());
        const SessionStats& st = s.stats();
        r->stats_.tokens = st.tokens, r->stats_.drafted = st.drafted, r->stats_.accepted = st.accepted;
        r->stats_.accepted_by_position = st.accepted_by_position;
        if (r->stats_.first_token_s < 0) r->stats_.first_token_s = now_s() - r->t_submit_;
      }
      if (!c.empty()) r->cv_.notify_all();
      if (!error.empty()) ended.emplace_back(r, error);
      else if (s.finished()) ended.emplace_back(r, s.finish_reason());
      else keep.push_back(r);
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      active_.swap(keep);
      ++stats_.rounds;
      stats_.batch_rows = n;
    }
    for (auto& [r, reason] : ended) retire(*r, reason);
  }
  // closed: every request still here ends cancelled
  std::vector<std::shared_ptr<Request>> left;
  {
    std::lock_guard<std::mutex> lk(mu_);
    left.assign(active_.begin(), active_.end());
    left.insert(left.end(), queue_.begin(), queue_.end());
    active_.clear(), queue_.clear();
  }
  for (auto& r : left) retire(*r, "cancelled");
}

}  // namespace fastspec

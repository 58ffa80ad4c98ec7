// The speculative loop, on one screen. Terms as in DESIGN.md.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>

#include "fastspec/engine.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "spec/controller.h"
#include "spec/drafter.h"
#include "spec/rejection.h"

namespace fastspec {
namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
std::atomic<int64_t> g_live_sessions{0};
}  // namespace

int64_t live_sessions() { return g_live_sessions.load(); }
Session::Session() { ++g_live_sessions; }
Session::~Session() { --g_live_sessions; }

const std::vector<int32_t>& Session::step() {
  committed_.clear();
  if (finished_) return committed_;
  std::lock_guard<std::mutex> lock(*compute_mu_);  // one compute call at a time per engine
  const int64_t vocab = model_->vocab_size();
  const double t0 = now_s();
  if (kv_->length() == 0) {  // prefill: the whole prompt in one pass, then sample the first token
    model_->forward(*backend_, *kv_, context_.data(), prompt_len_, logits_.data(), 1);
    ++stats_.target_passes;
    const double t1 = now_s();
    stats_.prefill_s += t1 - t0;
    const int32_t tok = sample_token(logits_.data(), vocab, sampling_, *rng_);
    stats_.sample_s += now_s() - t1;
    stats_.decode_s += now_s() - t1;
    committed_.push_back(tok);
    return commit();
  }
  // Draft: k tokens (fewer if the drafter has nothing good, or the context or max_tokens end).
  const int64_t base = kv_->length();  // context_[base] is the last committed token, not yet cached
  int32_t k = drafter_ ? controller_->choose() : 0;
  k = static_cast<int32_t>(std::min<int64_t>({static_cast<int64_t>(k), kv_->n_ctx() - base - 1, sampling_.max_tokens - stats_.tokens - 1}));
  Proposal& prop = *prop_;
  prop.clear();
  if (k > 0) drafter_->propose(context_, k, sampling_, *rng_, prop);
  const int32_t n = static_cast<int32_t>(prop.tokens.size());
  const double t1 = now_s();
  // Verify: one target pass over [last committed, d1..dn] -> p1..p(n+1).
  rows_.assign(1, context_.back());
  rows_.insert(rows_.end(), prop.tokens.begin(), prop.tokens.end());
  model_->forward(*backend_, *kv_, rows_.data(), n + 1, logits_.data(), n + 1);
  ++stats_.target_passes;
  const double t2 = now_s();
  // Accept a prefix, then the recovered or bonus token.
  u_.assign(static_cast<size_t>(n + 1), 0.0);
  if (sampling_.temperature > 0) for (double& x : u_) x = rng_->uniform();
  const VerifyOutcome out = rejection_sample(logits_.data(), vocab, prop.tokens.data(), prop.q, n, sampling_, u_.data());
  kv_->truncate(base + 1 + out.n_accepted);  // rollback: keep last committed + accepted drafts
  committed_.assign(prop.tokens.begin(), prop.tokens.begin() + out.n_accepted);
  committed_.push_back(out.next);
  const double t3 = now_s();
  stats_.draft_s += t1 - t0;
  stats_.verify_s += t2 - t1;
  stats_.sample_s += t3 - t2;
  stats_.decode_s += t3 - t0;
  stats_.drafted += n;
  stats_.accepted += out.n_accepted;
  for (int32_t i = 0; i < out.n_accepted; ++i) ++stats_.accepted_by_position[i];
  if (n > 0) controller_->observe_spec(n, out.n_accepted, t1 - t0 - prop.sync_s, t2 - t1);
  else controller_->observe_plain(t2 - t1);
  if (trace_) {
    *trace_ << "{\"pass\":" << stats_.target_passes << ",\"position\":" << base + 1 << ",\"k\":" << k
            << ",\"proposed\":[";
    for (int32_t i = 0; i < n; ++i) *trace_ << (i ? "," : "") << prop.tokens[i];
    *trace_ << "],\"accepted\":" << out.n_accepted << ",\"next\":" << out.next << ",\"kind\":\""
            << (n == 0 ? "plain" : out.bonus ? "bonus" : "recovered") << "\",\"draft_s\":" << t1 - t0
            << ",\"verify_s\":" << t2 - t1 << "}\n";
  }
  return commit();
}

// Appends committed_, cut after the first stop id or at max_tokens; sets finished. Returns the kept.
const std::vector<int32_t>& Session::commit() {
  std::vector<int32_t>& tokens = committed_;
  size_t keep = 0;
  while (keep < tokens.size() && !finished_) {
    const int32_t tok = tokens[keep++];
    ++stats_.tokens;
    for (int32_t s : stop_ids_)
      if (s == tok) finished_ = true, finish_reason_ = "stop";
    if (!finished_ && (stats_.tokens >= sampling_.max_tokens ||
                       static_cast<int64_t>(context_.size()) + static_cast<int64_t>(keep) >= kv_->n_ctx()))
      finished_ = true, finish_reason_ = "length";
  }
  tokens.resize(keep);
  context_.insert(context_.end(), tokens.begin(), tokens.end());  // capacity reserved at start()
  return tokens;
}

}  // namespace fastspec

// The speculative loop, on one screen. Terms as in DESIGN.md.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>

#include "fastspec/engine.h"
#include "fastspec/status.h"
#include "engine/prefix_cache.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "spec/controller.h"
#include "spec/drafter.h"
#include "spec/rejection.h"
#include "spec/tree.h"

namespace fastspec {
namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
std::atomic<int64_t> g_live_sessions{0};
}  // namespace

int64_t live_sessions() { return g_live_sessions.load(); }
Session::Session() { ++g_live_sessions; }
// The session's K/V (positions [0, length) hold context_'s first tokens) goes to the engine's
// prefix cache, which keeps or drops it by its budget.
Session::~Session() {
  --g_live_sessions;
  if (controller_ && drafter_) controller_->save();  // a greedy session's costs: the next one starts from them
  if (!prefix_ || !kv_ || kv_->length() == 0) return;
  std::lock_guard<std::mutex> lk(prefix_->mu);
  if (prefix_->cache.budget() > 0) prefix_->cache.insert(context_, std::move(kv_));
}

// One round alone: the whole prompt in one pass (forward() chunks it), else draft -> verify -> accept.
const std::vector<int32_t>& Session::step() {
  committed_.clear();
  committed_lp_.clear();
  if (finished_) return committed_;
  std::lock_guard<std::mutex> lock(*compute_mu_);  // one compute call at a time per engine
  SeqRows rows;
  plan(std::numeric_limits<int64_t>::max(), &rows);
  const double t = now_s();
  if (rows.parent) model_->forward_batch(*backend_, &rows, 1, logits_.data());  // a tree: one pass, its mask
  else model_->forward(*backend_, *rows.kv, rows.tokens, rows.T, logits_.data(), rows.n_logits, rows.features);
  return finish(logits_.data(), now_s() - t);
}

// The rows of this session's next target pass, at most `budget` of them (Engine::step_batch
// shares one pass among sessions): the next chunk of the prompt (its last row's logits when the
// chunk ends the prompt), or the last committed token + k draft tokens (k cut to the budget, the
// context and max_tokens). False when finished.
bool Session::plan(int64_t budget, SeqRows* out) {
  if (finished_ || budget < 1) return false;
  plan_t0_ = now_s();
  const int64_t cached = kv_->length();
  pass_base_ = cached;
  if (cached < prompt_len_) {  // prefill
    const int64_t n = std::min(budget, prompt_len_ - cached);
    *out = {kv_.get(), context_.data() + cached, n, cached + n == prompt_len_ ? 1 : 0};
    if (features_) {  // the prompt's features (this buffer grows only here, before decoding)
      const int64_t need = n * features_->n * model_->config().n_embd;
      if (static_cast<int64_t>(feat_buf_.size()) < need) feat_buf_.resize(static_cast<size_t>(need));
      features_->out = feat_buf_.data();
      out->features = features_.get();
    }
    pass_k_ = pass_n_ = -1;
    plan_t1_ = plan_t0_;
    return true;
  }
  // Draft: k tokens (fewer if the drafter has nothing good, or the context or max_tokens end).
  int32_t k = drafter_ ? std::min(controller_->choose(), draft_cap_) : 0;
  k = static_cast<int32_t>(std::min<int64_t>({static_cast<int64_t>(k), kv_->n_ctx() - cached - 1,
                                              sampling_.max_tokens - stats_.tokens - 1, budget - 1}));
  Proposal& prop = *prop_;
  prop.clear();
  // a tree may hold more nodes than k (its depth), within the same room as the drafts
  pass_nodes_ = k > 0 ? controller_->choose_nodes(tree_nodes_) : 0;  // a tree's budget, or 0: a chain
  prop.max_nodes = static_cast<int32_t>(std::min<int64_t>({static_cast<int64_t>(pass_nodes_),
                                                           kv_->n_ctx() - cached - 1, budget - 1}));
  if (k > 0) drafter_->propose(context_, k, sampling_, *rng_, prop);
  const int32_t n = static_cast<int32_t>(prop.tokens.size());
  // Verify: one target pass over [last committed, d1..dn] -> p1..p(n+1) (a tree: the root's row,
  // then one row per node, each under its parent's row).
  rows_.assign(1, context_.back());  // context_[cached] is the last committed token, not yet cached
  rows_.insert(rows_.end(), prop.tokens.begin(), prop.tokens.end());
  pass_tree_ = !prop.parent.empty();
  pass_depth_ = n;
  if (pass_tree_) {
    tree_check(prop.parent.data(), n);
    row_parent_.assign(1, -1);
    pass_depth_ = 0;
    for (int32_t i = 0; i < n; ++i) {
      row_parent_.push_back(prop.parent[i] + 1);
      int32_t d = 1;
      for (int32_t a = prop.parent[i]; a >= 0; a = prop.parent[a]) ++d;
      pass_depth_ = std::max(pass_depth_, d);
    }
  }
  *out = {kv_.get(), rows_.data(), n + 1, n + 1, pass_tree_ ? row_parent_.data() : nullptr};
  if (features_) features_->out = feat_buf_.data(), out->features = features_.get();
  pass_k_ = k, pass_n_ = n;
  plan_t1_ = now_s();
  return true;
}

// Consumes the logits of the planned pass ([out.n_logits, vocab]; pass_s: its time): the first
// token after the prompt, or the accepted prefix of the drafts + the recovered or bonus token.
const std::vector<int32_t>& Session::finish(const float* logits, double pass_s) {
  committed_.clear();
  committed_lp_.clear();
  const int64_t vocab = model_->vocab_size();
  const int64_t d = model_->config().n_embd;
  if (pass_n_ < 0) {  // a prefill chunk; the last one samples the first token
    stats_.prefill_s += pass_s;
    if (features_) drafter_->observe_features(pass_base_, feat_buf_.data(), kv_->length() - pass_base_);
    if (kv_->length() < prompt_len_) return committed_;
    ++stats_.target_passes;  // the prefill counts as one pass
    const double t1 = now_s();
    const int32_t tok = sample_token(logits, vocab, sampling_, *rng_);
    committed_.push_back(tok);
    record_logprobs(logits);
    stats_.sample_s += now_s() - t1;
    stats_.decode_s += now_s() - t1;
    return commit();
  }
  ++stats_.target_passes;
  const int64_t base = kv_->length() - (pass_n_ + 1);  // the cache before the pass
  const int32_t n = pass_n_;
  const Proposal& prop = *prop_;
  const double t2 = now_s();
  // Accept a prefix (a tree: a path), then the recovered or bonus token.
  u_.assign(static_cast<size_t>(n + 1), 0.0);
  if (sampling_.temperature > 0) for (double& x : u_) x = rng_->uniform();
  VerifyOutcome out;
  if (pass_tree_) {
    TreeOutcome& to = *tree_out_;
    tree_accept(logits, vocab, prop.tokens.data(), prop.parent.data(), prop.q, n, sampling_, u_.data(), &to);
    out.n_accepted = static_cast<int32_t>(to.path.size());
    out.next = to.next;
    out.bonus = to.bonus;
    keep_rows_.assign(1, 0);  // the root's row, then the path's
    committed_.clear();
    for (int32_t node : to.path) keep_rows_.push_back(node + 1), committed_.push_back(prop.tokens[node]);
    committed_.push_back(out.next);
    kv_->compact(base, keep_rows_.data(), out.n_accepted + 1);  // the path's K/V where a chain puts them
    if (features_)  // the path's features, position by position
      for (int32_t j = 0; j <= out.n_accepted; ++j)
        drafter_->observe_features(base + j, feat_buf_.data() + keep_rows_[j] * features_->n * d, 1);
    record_logprobs(logits, keep_rows_.data());  // committed token j was decided by row keep_rows_[j]
    ++stats_.tree_passes;
    stats_.tree_nodes += n;
  } else {
    out = rejection_sample(logits, vocab, prop.tokens.data(), prop.q, n, sampling_, u_.data());
    kv_->truncate(base + 1 + out.n_accepted);  // rollback: keep last committed + accepted drafts
    if (features_) drafter_->observe_features(base, feat_buf_.data(), out.n_accepted + 1);
    committed_.assign(prop.tokens.begin(), prop.tokens.begin() + out.n_accepted);
    committed_.push_back(out.next);
    record_logprobs(logits);  // committed token j was decided by logits row j
  }
  const double t3 = now_s();
  const double draft_s = plan_t1_ - plan_t0_;
  stats_.draft_s += draft_s;
  stats_.verify_s += pass_s;
  stats_.sample_s += t3 - t2;
  stats_.decode_s += draft_s + pass_s + (t3 - t2);
  stats_.drafted += n;
  stats_.accepted += out.n_accepted;
  for (int32_t i = 0; i < out.n_accepted; ++i) ++stats_.accepted_by_position[i];
  // a tree's depth plays k (its acceptance is a path's); the tree-aware controller is to come
  // Every second of the step is charged somewhere: the drafter's catch-up on the accepted rows
  // (sync_s) and the acceptance are a speculative step's overhead; a plain step's sampling is
  // part of its cost. (A spec step's verify time must never reach observe_plain: it would make
  // plain decoding look as slow as verifying and extra rows look free.)
  if (n > 0) {
    controller_->observe_spec(pass_depth_, out.n_accepted, draft_s - prop.sync_s, pass_s, n + 1,
                              prop.sync_s + (t3 - t2));
    if (tree_nodes_ > 0)
      controller_->observe_kind(out.n_accepted + 1, n + 1, draft_s + pass_s + (t3 - t2));
  } else {
    controller_->observe_plain(pass_s + (t3 - t2));
  }
  if (trace_) {
    *trace_ << "{\"pass\":" << stats_.target_passes << ",\"position\":" << base + 1 << ",\"k\":" << pass_k_
            << ",\"proposed\":[";
    for (int32_t i = 0; i < n; ++i) *trace_ << (i ? "," : "") << prop.tokens[i];
    if (pass_tree_) {
      *trace_ << "],\"parent\":[";
      for (int32_t i = 0; i < n; ++i) *trace_ << (i ? "," : "") << prop.parent[i];
    }
    *trace_ << "],\"accepted\":" << out.n_accepted << ",\"next\":" << out.next << ",\"kind\":\""
            << (n == 0 ? "plain" : out.bonus ? "bonus" : "recovered") << "\",\"draft_s\":" << draft_s
            << ",\"verify_s\":" << pass_s << "}\n";
  }
  return commit();
}

void Session::set_logprobs(int top_n) {
  if (top_n > 20) throw InvalidArgument("top_logprobs must be <= 20 (got " + std::to_string(top_n) + ")");
  top_logprobs_ = top_n < 0 ? -1 : top_n;
}

int64_t Session::cached_length() const { return kv_->length(); }

// committed_lp_[j] = log_softmax(logits row j)[committed_[j]] and the top_logprobs_ best of that row.
void Session::record_logprobs(const float* logits, const int32_t* rows) {
  committed_lp_.clear();
  if (top_logprobs_ < 0) return;
  const int64_t vocab = model_->vocab_size();
  for (size_t j = 0; j < committed_.size(); ++j) {
    const float* row = logits + static_cast<int64_t>(rows ? rows[j] : static_cast<int32_t>(j)) * vocab;
    float mx = row[0];
    for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, row[v]);
    double sum = 0;
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v] - mx));
    const double lse = static_cast<double>(mx) + std::log(sum);
    TokenLogprob lp;
    lp.logprob = static_cast<float>(row[committed_[j]] - lse);
    // the top_logprobs_ largest in one pass, ties by lowest id: a value enters after every kept
    // value >= it (kept: at most 20, descending)
    auto& top = lp.top;
    for (int64_t v = 0; v < vocab; ++v) {
      if (top_logprobs_ == 0 || (static_cast<int>(top.size()) == top_logprobs_ && row[v] <= top.back().second)) continue;
      size_t at = top.size();
      while (at > 0 && top[at - 1].second < row[v]) --at;
      top.insert(top.begin() + static_cast<std::ptrdiff_t>(at), {static_cast<int32_t>(v), row[v]});
      if (static_cast<int>(top.size()) > top_logprobs_) top.pop_back();
    }
    for (auto& t : top) t.second = static_cast<float>(t.second - lse);
    committed_lp_.push_back(std::move(lp));
  }
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
  if (committed_lp_.size() > keep) committed_lp_.resize(keep);
  context_.insert(context_.end(), tokens.begin(), tokens.end());  // capacity reserved at start()
  return tokens;
}

}  // namespace fastspec

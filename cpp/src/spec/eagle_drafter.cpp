// The EAGLE drafter (model/eagle_head.h for the head's math). Head row t is at position t - row0_
// and reads E(c_{t+1}) and F_t; rows [row0_, row0_ + true_rows_) used the target's true features
// and committed tokens and stay cached; drafted rows (fed their own g) are dropped before the next
// proposal. Positions whose features never arrived (a prefix-cache hit) are skipped: the head's
// rows start at the first observed one (RoPE is relative, attention sees only head rows).
#include <algorithm>
#include <chrono>
#include <cstring>

#include "model/eagle_head.h"
#include "model/kv_cache.h"
#include "spec/drafter.h"

namespace fastspec {
namespace {

class EagleDrafter final : public Drafter {
 public:
  EagleDrafter(const EagleHead& h, const Transformer& target, Backend& be, int64_t n_ctx, DType kv_type,
               const SpecOptions& s)
      : head_(h), target_(target), be_(be), d_(h.n_embd()),
        kv_(1, n_ctx, h.config().n_kv_heads, h.config().head_dim, kv_type), min_prob_(s.draft_min_prob),
        feats_(static_cast<size_t>(n_ctx * d_)), emb_(static_cast<size_t>(EagleHead::kMaxPass * d_)),
        g_(static_cast<size_t>(EagleHead::kMaxPass * d_)), g_last_(static_cast<size_t>(d_)),
        scratch_(static_cast<size_t>(EagleHead::kMaxPass * 3 * d_)), logits_(static_cast<size_t>(h.vocab())) {
    seen_.reserve(static_cast<size_t>(n_ctx));
  }
  const char* name() const override { return "eagle"; }
  int32_t feature_layer() const override { return static_cast<int32_t>(head_.meta().feature_layer); }

  void observe_features(int64_t pos, const float* f, int64_t n) override {
    if (n <= 0 || pos < 0 || pos + n > kv_.n_ctx()) return;
    if (pos > feat_hi_ || pos < feat_lo_) feat_lo_ = feat_hi_ = row0_ = pos, true_rows_ = 0;  // a gap: restart
    std::memcpy(feats_.data() + pos * d_, f, static_cast<size_t>(n * d_) * sizeof(float));
    feat_hi_ = std::max(feat_hi_, pos + n);
  }

  void propose(const std::vector<int32_t>& ctx, int32_t k, const SamplingOptions& o, Rng& rng, Proposal& p) override {
    p.clear();
    const int64_t L = static_cast<int64_t>(ctx.size());
    if (L < 2 || feat_hi_ < L - 1 || feat_lo_ > L - 2) return;  // F_{L-2} unknown: nothing to draft from
    // Rows stay valid while the tokens they read are unchanged; row L-2 is always recomputed (its
    // logits propose the first draft).
    int64_t keep = std::min(true_rows_, L - 2 - row0_);
    for (int64_t t = row0_; t < row0_ + keep; ++t)
      if (seen_[static_cast<size_t>(t + 1)] != ctx[static_cast<size_t>(t + 1)]) { keep = t - row0_; break; }
    true_rows_ = keep;
    kv_.truncate(true_rows_);
    seen_.assign(ctx.begin(), ctx.end());
    // Catch up: the rows [row0_ + true_rows_, L - 1) from true features, kMaxPass at a time.
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t first = row0_ + true_rows_;
    for (int64_t t = first; t < L - 1; t += EagleHead::kMaxPass) {
      const int64_t n = std::min(EagleHead::kMaxPass, L - 1 - t);
      target_.embed(be_, ctx.data() + t + 1, n, emb_.data());
      head_.forward(be_, kv_, emb_.data(), feats_.data() + t * d_, n, g_.data(), logits_.data(),
                    t + n == L - 1 ? 1 : 0, scratch_.data());
      if (t + n == L - 1) std::memcpy(g_last_.data(), g_.data() + (n - 1) * d_, static_cast<size_t>(d_) * sizeof(float));
    }
    true_rows_ = L - 1 - row0_;
    if (L - 1 - first > 1) p.sync_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Draft: each token from the last row's logits; its embedding and that row's g make the next row.
    const int64_t V = head_.vocab();
    const int32_t* ids = head_.meta().vocab_ids.data();
    for (int32_t i = 0; i < k; ++i) {
      if (min_prob_ > 0 && top_probability(logits_.data(), V) < min_prob_) break;  // unsure: stop early
      const size_t at = p.tokens.size();
      if (p.q.size() <= at) p.q.resize(at + 1);
      const int32_t tok = draw_draft(logits_.data(), V, ids, o, rng, &p.q[at]);
      p.tokens.push_back(tok);
      if (i + 1 == k || kv_.length() >= kv_.n_ctx()) break;
      target_.embed(be_, &tok, 1, emb_.data());
      head_.forward(be_, kv_, emb_.data(), g_last_.data(), 1, g_.data(), logits_.data(), 1, scratch_.data());
      std::memcpy(g_last_.data(), g_.data(), static_cast<size_t>(d_) * sizeof(float));
    }
  }

 private:
  const EagleHead& head_;
  const Transformer& target_;
  Backend& be_;
  const int64_t d_;
  KvCache kv_;
  float min_prob_;
  std::vector<float> feats_;  // [n_ctx, d] F_t of every observed position
  int64_t feat_lo_ = 0, feat_hi_ = 0;  // observed positions [feat_lo_, feat_hi_)
  int64_t row0_ = 0, true_rows_ = 0;   // head cache rows: positions [row0_, row0_ + true_rows_) then drafts
  std::vector<int32_t> seen_;          // the context the cached rows read
  std::vector<float> emb_, g_, g_last_, scratch_, logits_;  // [kMaxPass, d] x2, [d], [kMaxPass, 3d], [V_sub]
};

}  // namespace

std::unique_ptr<Drafter> make_eagle_drafter(const EagleHead& head, const Transformer& target, Backend& backend,
                                            int64_t n_ctx, DType kv_type, const SpecOptions& spec) {
  return std::make_unique<EagleDrafter>(head, target, backend, n_ctx, kv_type, spec);
}

}  // namespace fastspec

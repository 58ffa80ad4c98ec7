#include <algorithm>
#include <chrono>
#include <cmath>

#include "model/kv_cache.h"
#include "model/transformer.h"
#include "spec/drafter.h"

namespace fastspec {
namespace {

class ModelDrafter final : public Drafter {
 public:
  ModelDrafter(const Transformer& m, Backend& be, int64_t n_ctx, DType kv_type, const SpecOptions& s)
      : model_(m), be_(be), kv_(m.config().n_layers, n_ctx, m.config().n_kv_heads, m.config().head_dim, kv_type),
        min_prob_(s.draft_min_prob), logits_(static_cast<size_t>(m.vocab_size())) {}
  const char* name() const override { return "model"; }

  void propose(const std::vector<int32_t>& ctx, int32_t k, const SamplingOptions& o, Rng& rng, Proposal& p) override {
    // Keep the cache's longest common prefix with the context, then feed the rest.
    size_t lcp = 0;
    while (lcp < fed_.size() && lcp < ctx.size() && fed_[lcp] == ctx[lcp]) ++lcp;
    if (lcp == ctx.size()) --lcp;  // need logits after the last context token
    kv_.truncate(static_cast<int64_t>(lcp));
    fed_.resize(lcp);
    std::vector<int32_t> rest(ctx.begin() + static_cast<int64_t>(lcp), ctx.end());
    p.clear();
    const auto t0 = std::chrono::steady_clock::now();
    feed(rest);
    if (rest.size() > 1) p.sync_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t vocab = model_.vocab_size();
    for (int32_t i = 0; i < k && kv_.length() < kv_.n_ctx(); ++i) {
      if (min_prob_ > 0 && top_probability(logits_.data(), vocab) < min_prob_) break;  // unsure: stop early
      const size_t at = p.tokens.size();
      if (p.q.size() <= at) p.q.resize(at + 1);
      const int32_t tok = draw_draft(logits_.data(), vocab, nullptr, o, rng, &p.q[at]);
      p.tokens.push_back(tok);
      if (i + 1 < k) feed({tok});
    }
  }

 private:
  void feed(const std::vector<int32_t>& toks) {
    if (toks.empty()) return;
    model_.forward(be_, kv_, toks.data(), static_cast<int64_t>(toks.size()), logits_.data(), 1);
    fed_.insert(fed_.end(), toks.begin(), toks.end());
  }
  const Transformer& model_;
  Backend& be_;
  KvCache kv_;
  float min_prob_;
  std::vector<int32_t> fed_;   // tokens in the cache, in order
  std::vector<float> logits_;  // [vocab] after the last fed token
};

}  // namespace

std::unique_ptr<Drafter> make_model_drafter(const Transformer& model, Backend& backend, int64_t n_ctx,
                                            DType kv_type, const SpecOptions& spec) {
  return std::make_unique<ModelDrafter>(model, backend, n_ctx, kv_type, spec);
}

}  // namespace fastspec

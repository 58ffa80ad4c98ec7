// The Medusa drafter (model/medusa_head.h): from F_{L-2}, the feature of the last cached position
// (the target already predicted c_{L-1}, the last committed token, from it), head i proposes
// c_{L+i}. The drafts do not condition on each other; each is drawn from its head's own q.
#include <algorithm>
#include <cstring>

#include "model/medusa_head.h"
#include "spec/drafter.h"

namespace fastspec {
namespace {

class MedusaDrafter final : public Drafter {
 public:
  MedusaDrafter(const MedusaHead& h, Backend& be, const SpecOptions& s)
      : head_(h), be_(be), min_prob_(s.draft_min_prob), feat_(static_cast<size_t>(h.n_embd())),
        logits_(static_cast<size_t>(h.n_heads() * h.vocab())), scratch_(static_cast<size_t>(2 * h.n_heads() * h.n_embd())) {}
  const char* name() const override { return "medusa"; }
  int32_t feature_layer() const override { return static_cast<int32_t>(head_.meta().feature_layer); }

  void observe_features(int64_t pos, const float* f, int64_t n) override {
    if (n <= 0) return;
    const int64_t d = head_.n_embd();
    std::memcpy(feat_.data(), f + (n - 1) * d, static_cast<size_t>(d) * sizeof(float));
    feat_pos_ = pos + n - 1;
  }

  void propose(const std::vector<int32_t>& ctx, int32_t k, const SamplingOptions& o, Rng& rng, Proposal& p) override {
    p.clear();
    const int64_t L = static_cast<int64_t>(ctx.size());
    if (feat_pos_ != L - 2) return;  // the feature this needs did not arrive
    head_.forward(be_, feat_.data(), logits_.data(), scratch_.data());
    const int64_t V = head_.vocab();
    const int32_t n = static_cast<int32_t>(std::min<int64_t>(k, head_.n_heads()));
    for (int32_t i = 0; i < n; ++i) {
      const float* row = logits_.data() + i * V;
      if (min_prob_ > 0 && top_probability(row, V) < min_prob_) break;
      const size_t at = p.tokens.size();
      if (p.q.size() <= at) p.q.resize(at + 1);
      p.tokens.push_back(draw_draft(row, V, head_.meta().vocab_ids.data(), o, rng, &p.q[at]));
    }
  }

 private:
  const MedusaHead& head_;
  Backend& be_;
  float min_prob_;
  std::vector<float> feat_;  // [d] the last observed feature
  int64_t feat_pos_ = -1;    // its position
  std::vector<float> logits_, scratch_;  // [K, V_sub], [2 K d]
};

}  // namespace

std::unique_ptr<Drafter> make_medusa_drafter(const MedusaHead& head, Backend& backend, const SpecOptions& spec) {
  return std::make_unique<MedusaDrafter>(head, backend, spec);
}

}  // namespace fastspec

// The Medusa drafter (model/medusa_head.h): from F_{L-2}, the feature of the last cached position
// (the target already predicted c_{L-1}, the last committed token, from it), head i proposes
// c_{L+i}. The drafts do not condition on each other; each is drawn from its head's own q.
// With Proposal::max_nodes > 0, a token tree instead (spec/tree.h): every node at depth i has the
// same candidate children, head i+1's top kTreeWidth tokens; nodes are taken best-first by the
// product of their path's head probabilities (softmax over the head's vocabulary) until
// max_nodes, so parents come before children. Tree tokens are deterministic given the feature
// (q one-hot), which keeps the tree acceptance exact when sampling too.
#include <algorithm>
#include <cmath>
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
  std::vector<int32_t> feature_layers() const override { return head_.meta().feature_layers; }

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
    if (p.max_nodes > 0) return propose_tree(n, p);
    for (int32_t i = 0; i < n; ++i) {
      const float* row = logits_.data() + i * V;
      if (min_prob_ > 0 && top_probability(row, V) < min_prob_) break;
      const size_t at = p.tokens.size();
      if (p.q.size() <= at) p.q.resize(at + 1);
      p.tokens.push_back(draw_draft(row, V, head_.meta().vocab_ids.data(), o, rng, &p.q[at]));
    }
  }

 private:
  static constexpr int32_t kTreeWidth = 4;  // candidate children per node

  // Per head i < depth: its top kTreeWidth (subset row, log-probability), best first.
  void top_candidates(int32_t depth) {
    cand_rows_.resize(static_cast<size_t>(depth * kTreeWidth));
    cand_logp_.resize(static_cast<size_t>(depth * kTreeWidth));
    for (int32_t i = 0; i < depth; ++i)
      top_log_probs(logits_.data() + i * head_.vocab(), head_.vocab(), kTreeWidth, cand_rows_.data() + i * kTreeWidth,
                    cand_logp_.data() + i * kTreeWidth);
  }

  void propose_tree(int32_t depth, Proposal& p) {
    if (depth <= 0) return;
    top_candidates(depth);
    // a tree spends verify rows on less likely paths than a chain does: 1/8 of the chain's threshold
    const float log_min = min_prob_ > 0 ? std::log(min_prob_ / 8) : -INFINITY;
    const int32_t* ids = head_.meta().vocab_ids.data();
    frontier_.clear();  // a max-heap on score (no allocation once warm)
    auto push = [this](Node x) { frontier_.push_back(x), std::push_heap(frontier_.begin(), frontier_.end()); };
    for (int32_t r = 0; r < kTreeWidth; ++r) push({cand_logp_[static_cast<size_t>(r)], 0, -1, r});
    while (!frontier_.empty() && static_cast<int32_t>(p.tokens.size()) < p.max_nodes) {
      std::pop_heap(frontier_.begin(), frontier_.end());
      const Node nd = frontier_.back();
      frontier_.pop_back();
      const int32_t row = cand_rows_[static_cast<size_t>(nd.depth * kTreeWidth + nd.rank)];
      if (row < 0) continue;
      // the tree's first node always goes in; others only while their path is likely enough
      if (!p.tokens.empty() && nd.score < log_min) break;  // best-first: every later one is less likely
      const auto me = static_cast<int32_t>(p.tokens.size());
      p.push_one_hot(ids[row]);
      p.parent.push_back(nd.parent);
      if (nd.depth + 1 < depth)
        for (int32_t r = 0; r < kTreeWidth; ++r)
          push({nd.score + cand_logp_[static_cast<size_t>((nd.depth + 1) * kTreeWidth + r)],
                          nd.depth + 1, me, r});
    }
  }

  struct Node {
    float score;  // log-probability of the path to and including this node
    int32_t depth, parent, rank;
    bool operator<(const Node& o) const { return score < o.score; }
  };
  std::vector<int32_t> cand_rows_;  // [depth * kTreeWidth] subset rows (-1: none), best first per head
  std::vector<float> cand_logp_;    // [depth * kTreeWidth] their log-probabilities
  std::vector<Node> frontier_;

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

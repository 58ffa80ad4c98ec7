// The EAGLE drafter (model/eagle_head.h for the head's math). Head row t is at position t - row0_
// and reads E(c_{t+1}) and F_t; rows [row0_, row0_ + true_rows_) used the target's true features
// and committed tokens and stay cached; drafted rows (fed their own g) are dropped before the next
// proposal. Positions whose features never arrived (a prefix-cache hit) are skipped: the head's
// rows start at the first observed one (RoPE is relative, attention sees only head rows).
// With Proposal::max_nodes > 0, a token tree (EAGLE-2's dynamic tree): the root's children are
// the top kWidth tokens of row L-2; then, depth by depth, the kWidth likeliest nodes of the newest
// depth (by the product of head probabilities along their path) are expanded: one head pass
// over every expanded node so far (a tree pass: each row attends to the true rows and its own
// ancestors; recomputed from the true rows each depth, as the cache cannot mask cousins across
// passes) gives each new node's row, whose top kWidth tokens become candidates. The max_nodes
// likeliest candidates form the tree (ancestors first: a child is never likelier than its parent).
// Tree tokens are deterministic given the context (q one-hot), so the tree acceptance is exact.
#include <algorithm>
#include <chrono>
#include <cmath>
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
    tree_f_.resize(static_cast<size_t>(64 * d_)), tree_g_.resize(static_cast<size_t>(64 * d_));
    tree_logits_.resize(static_cast<size_t>(kWidth * h.vocab()));
  }
  const char* name() const override { return "eagle"; }
  std::vector<int32_t> feature_layers() const override { return head_.meta().feature_layers; }

  // f [n, n_feat, d]: stored as F_t [d] (the state itself, or W_feat's reduction of several)
  void observe_features(int64_t pos, const float* f, int64_t n) override {
    if (n <= 0 || pos < 0 || pos + n > kv_.n_ctx()) return;
    if (pos > feat_hi_ || pos < feat_lo_) feat_lo_ = feat_hi_ = row0_ = pos, true_rows_ = 0;  // a gap: restart
    head_.reduce(be_, f, n, feats_.data() + pos * d_);
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
    if (p.max_nodes > 0 && kv_.length() + kWidth * k <= kv_.n_ctx()) return propose_tree(k, p);
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
  static constexpr int32_t kWidth = 4;  // children per expanded node, nodes expanded per depth

  struct Node {
    int32_t row;     // subset row of its token
    int32_t parent;  // node index, -1: a child of the root
    int32_t depth;   // 1: a child of the root
    float score;     // log-probability of its path
    int32_t pass_row = -1;  // its row in the latest head pass (expanded nodes), else -1
  };

  // Appends the top kWidth tokens of logits[V] (log-softmax) as children of node `parent`.
  void add_children(const float* logits, int32_t parent, int32_t depth, float base) {
    int32_t top[kWidth];
    float lp[kWidth];
    top_log_probs(logits, head_.vocab(), kWidth, top, lp);
    for (int32_t r = 0; r < kWidth; ++r)
      if (top[r] >= 0) nodes_.push_back({top[r], parent, depth, base + lp[r]});
  }

  void propose_tree(int32_t k, Proposal& p) {
    const int64_t d = d_;
    const int32_t* ids = head_.meta().vocab_ids.data();
    const int64_t true_len = kv_.length();
    nodes_.clear();
    add_children(logits_.data(), -1, 1, 0.0f);
    const float log_min = min_prob_ > 0 ? std::log(min_prob_ / 8) : -INFINITY;  // as medusa_drafter.cpp
    expanded_.clear();  // node indices in pass order (topological: by depth)
    for (int32_t depth = 1; depth < k; ++depth) {
      // the kWidth likeliest nodes of this depth
      frontier_.clear();
      for (int32_t i = 0; i < static_cast<int32_t>(nodes_.size()); ++i)
        if (nodes_[static_cast<size_t>(i)].depth == depth && nodes_[static_cast<size_t>(i)].score >= log_min)
          frontier_.push_back(i);
      if (frontier_.empty()) break;
      std::sort(frontier_.begin(), frontier_.end(), [this](int32_t a, int32_t b) {
        return nodes_[static_cast<size_t>(a)].score > nodes_[static_cast<size_t>(b)].score;
      });
      if (frontier_.size() > static_cast<size_t>(kWidth)) frontier_.resize(kWidth);
      if (expanded_.size() + frontier_.size() > tree_tok_.size()) break;  // a tree pass holds 64 rows
      const size_t first_new = expanded_.size();
      expanded_.insert(expanded_.end(), frontier_.begin(), frontier_.end());
      // one tree pass over every expanded node: E(token), the parent's g (the root's: g_last_)
      const auto T = static_cast<int64_t>(expanded_.size());
      for (int64_t r = 0; r < T; ++r) {
        Node& nd = nodes_[static_cast<size_t>(expanded_[static_cast<size_t>(r)])];
        nd.pass_row = static_cast<int32_t>(r);
        tree_tok_[static_cast<size_t>(r)] = ids[nd.row];
        tree_parent_[static_cast<size_t>(r)] = nd.parent < 0 ? -1 : nodes_[static_cast<size_t>(nd.parent)].pass_row;
        const float* gp = nd.parent < 0 ? g_last_.data() : tree_g_.data() + nodes_[static_cast<size_t>(nd.parent)].pass_row * d;
        std::memcpy(tree_f_.data() + r * d, gp, static_cast<size_t>(d) * sizeof(float));
      }
      target_.embed(be_, tree_tok_.data(), T, emb_.data());
      kv_.truncate(true_len);
      const auto n_new = static_cast<int64_t>(expanded_.size() - first_new);
      head_.forward(be_, kv_, emb_.data(), tree_f_.data(), T, g_.data(), tree_logits_.data(), n_new, scratch_.data(),
                    tree_parent_.data());
      std::memcpy(tree_g_.data(), g_.data(), static_cast<size_t>(T * d) * sizeof(float));
      for (int64_t r = 0; r < n_new; ++r) {
        const int32_t ni = expanded_[first_new + static_cast<size_t>(r)];
        add_children(tree_logits_.data() + r * head_.vocab(), ni, depth + 1, nodes_[static_cast<size_t>(ni)].score);
      }
    }
    kv_.truncate(true_len);
    // the max_nodes likeliest (a parent before its children: higher score, or equal and shallower)
    order_.resize(nodes_.size());
    for (size_t i = 0; i < nodes_.size(); ++i) order_[i] = static_cast<int32_t>(i);
    std::sort(order_.begin(), order_.end(), [this](int32_t a, int32_t b) {
      const Node &x = nodes_[static_cast<size_t>(a)], &y = nodes_[static_cast<size_t>(b)];
      return x.score != y.score ? x.score > y.score : (x.depth != y.depth ? x.depth < y.depth : a < b);
    });
    size_t keep = std::min(order_.size(), static_cast<size_t>(p.max_nodes));
    while (keep > 1 && nodes_[static_cast<size_t>(order_[keep - 1])].score < log_min) --keep;
    order_.resize(keep);
    std::sort(order_.begin(), order_.end(), [this](int32_t a, int32_t b) {  // topological: by depth
      const Node &x = nodes_[static_cast<size_t>(a)], &y = nodes_[static_cast<size_t>(b)];
      return x.depth != y.depth ? x.depth < y.depth : a < b;
    });
    out_index_.assign(nodes_.size(), -1);
    for (int32_t i : order_) {
      const Node& nd = nodes_[static_cast<size_t>(i)];
      const int32_t par = nd.parent < 0 ? -1 : out_index_[static_cast<size_t>(nd.parent)];
      if (nd.parent >= 0 && par < 0) continue;  // its parent was not kept (cannot happen; defensive)
      out_index_[static_cast<size_t>(i)] = static_cast<int32_t>(p.tokens.size());
      p.push_one_hot(ids[nd.row]);
      p.parent.push_back(par);
    }
  }

  std::vector<Node> nodes_;
  std::vector<int32_t> frontier_, expanded_, order_, out_index_;
  std::vector<int32_t> tree_tok_ = std::vector<int32_t>(64), tree_parent_ = std::vector<int32_t>(64);
  std::vector<float> tree_f_, tree_g_, tree_logits_;  // [64, d] x2, [kWidth, V_sub]

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

#include <algorithm>

#include "spec/drafter.h"

namespace fastspec {
namespace {

constexpr int64_t kMaxMatches = 64;  // earlier occurrences scanned per suffix length (tree mode)

class NgramDrafter final : public Drafter {
 public:
  explicit NgramDrafter(const SpecOptions& s) : n_min_(std::max(1, s.ngram_min)), n_max_(std::max(n_min_, s.ngram_max)) {}
  const char* name() const override { return "ngram"; }

  void propose(const std::vector<int32_t>& ctx, int32_t k, const SamplingOptions&, Rng&, Proposal& p) override {
    p.clear();
    const int64_t len = static_cast<int64_t>(ctx.size());
    int64_t first_n = 0, first_j = -1;
    for (int64_t n = std::min<int64_t>(n_max_, len - 1); n >= n_min_ && first_j < 0; --n) {
      const int32_t* suffix = ctx.data() + len - n;
      // Most recent earlier match whose continuation exists: start j with j + n < len.
      for (int64_t j = len - n - 1; j >= 0; --j) {
        if (!std::equal(suffix, suffix + n, ctx.data() + j)) continue;
        // Copy what followed the match. When the copy reaches the end of the context it goes on
        // through its own proposal, so a loop of period < k still yields k tokens.
        auto at = [&](int64_t t) { return t < len ? ctx[t] : p.tokens[t - len]; };
        for (int64_t t = j + n; static_cast<int32_t>(p.tokens.size()) < k; ++t) p.push_one_hot(at(t));
        first_n = n, first_j = j;
        break;
      }
    }
    if (first_j < 0 || p.max_nodes <= static_cast<int32_t>(p.tokens.size())) return;  // a chain (or nothing)
    // A tree: the chain above is its first branch; other matches add their continuations.
    p.parent.resize(p.tokens.size());
    for (size_t i = 0; i < p.parent.size(); ++i) p.parent[i] = static_cast<int32_t>(i) - 1;
    for (int64_t n = first_n; n >= n_min_ && static_cast<int32_t>(p.tokens.size()) < p.max_nodes; --n) {
      const int32_t* suffix = ctx.data() + len - n;
      int64_t scanned = 0;
      for (int64_t j = (n == first_n ? first_j : len - n) - 1; j >= 0 && scanned < kMaxMatches; --j) {
        if (!std::equal(suffix, suffix + n, ctx.data() + j)) continue;
        ++scanned;
        insert(ctx.data() + j + n, std::min<int64_t>(k, len - (j + n)), p);
        if (static_cast<int32_t>(p.tokens.size()) >= p.max_nodes) break;
      }
    }
    bool chain = true;  // every node under the previous one: send it as a chain
    for (size_t i = 0; i < p.parent.size() && chain; ++i) chain = p.parent[i] == static_cast<int32_t>(i) - 1;
    if (chain) p.parent.clear();
  }

 private:
  // Merges the continuation c[0..m) into the tree: follows the nodes that already spell its
  // prefix, then appends the rest as new nodes (within max_nodes).
  static void insert(const int32_t* c, int64_t m, Proposal& p) {
    int32_t cur = -1;
    int64_t i = 0;
    for (; i < m; ++i) {
      int32_t child = -1;
      for (int32_t x = cur + 1; x < static_cast<int32_t>(p.tokens.size()); ++x)
        if (p.parent[x] == cur && p.tokens[x] == c[i]) {
          child = x;
          break;
        }
      if (child < 0) break;
      cur = child;
    }
    for (; i < m && static_cast<int32_t>(p.tokens.size()) < p.max_nodes; ++i) {
      p.push_one_hot(c[i]);
      p.parent.push_back(cur);
      cur = static_cast<int32_t>(p.tokens.size()) - 1;
    }
  }

  int n_min_, n_max_;
};

}  // namespace

std::unique_ptr<Drafter> make_ngram_drafter(const SpecOptions& spec) { return std::make_unique<NgramDrafter>(spec); }

}  // namespace fastspec

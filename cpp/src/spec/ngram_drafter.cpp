#include <algorithm>

#include "spec/drafter.h"

namespace fastspec {
namespace {

class NgramDrafter final : public Drafter {
 public:
  explicit NgramDrafter(const SpecOptions& s) : n_min_(std::max(1, s.ngram_min)), n_max_(std::max(n_min_, s.ngram_max)) {}
  const char* name() const override { return "ngram"; }

  void propose(const std::vector<int32_t>& ctx, int32_t k, const SamplingOptions&, Rng&, Proposal& p) override {
    p.clear();
    const int64_t len = static_cast<int64_t>(ctx.size());
    for (int64_t n = std::min<int64_t>(n_max_, len - 1); n >= n_min_; --n) {
      const int32_t* suffix = ctx.data() + len - n;
      // Most recent earlier match whose continuation exists: start j with j + n < len.
      for (int64_t j = len - n - 1; j >= 0; --j) {
        if (!std::equal(suffix, suffix + n, ctx.data() + j)) continue;
        // Copy what followed the match. When the copy reaches the end of the context it goes on
        // through its own proposal, so a loop of period < k still yields k tokens.
        auto at = [&](int64_t t) { return t < len ? ctx[t] : p.tokens[t - len]; };
        for (int64_t t = j + n; static_cast<int32_t>(p.tokens.size()) < k; ++t) p.push_one_hot(at(t));
        return;
      }
    }
    // no match: nothing to propose
  }

 private:
  int n_min_, n_max_;
};

}  // namespace

std::unique_ptr<Drafter> make_ngram_drafter(const SpecOptions& spec) { return std::make_unique<NgramDrafter>(spec); }

}  // namespace fastspec

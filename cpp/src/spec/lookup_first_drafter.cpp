// Prompt lookup first, a model or head otherwise (SpecOptions::lookup_min). Where the context's
// last lookup_min+ tokens occurred earlier, the answer is likely copying (quoted passages,
// rewritten code) and lookup drafts long runs for free; elsewhere the model or head drafts. The
// choice depends on the context only, so sampled output stays seeded and exact (lookup's drafts
// are one-hot, the model's carry their q). The wrapped drafter still receives every feature row;
// a head skipped for some steps catches up on the committed rows at its next proposal.
#include <algorithm>

#include "spec/drafter.h"

namespace fastspec {
namespace {

class LookupFirstDrafter final : public Drafter {
 public:
  LookupFirstDrafter(const SpecOptions& s, std::unique_ptr<Drafter> model) : model_(std::move(model)) {
    SpecOptions ls = s;
    ls.ngram_min = std::max(1, s.lookup_min);
    ls.ngram_max = std::max(ls.ngram_min, s.ngram_max);
    lookup_ = make_ngram_drafter(ls);
    name_ = std::string("lookup+") + model_->name();
  }
  const char* name() const override { return name_.c_str(); }
  std::vector<int32_t> feature_layers() const override { return model_->feature_layers(); }
  void observe_features(int64_t pos, const float* f, int64_t n) override { model_->observe_features(pos, f, n); }

  void propose(const std::vector<int32_t>& ctx, int32_t k, const SamplingOptions& o, Rng& rng, Proposal& p) override {
    lookup_->propose(ctx, k, o, rng, p);
    if (!p.tokens.empty()) return;
    model_->propose(ctx, k, o, rng, p);
  }

 private:
  std::unique_ptr<Drafter> lookup_, model_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Drafter> make_lookup_first_drafter(const SpecOptions& spec, std::unique_ptr<Drafter> model) {
  return std::make_unique<LookupFirstDrafter>(spec, std::move(model));
}

}  // namespace fastspec

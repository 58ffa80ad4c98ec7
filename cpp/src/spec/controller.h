// Draft-length controller. Model: each draft token is accepted with probability alpha given the
// previous ones were (geometric), so k drafts commit E(k) = 1 + alpha (1 - alpha^k) / (1 - alpha)
// tokens. A step costs k * t_draft + t_verify(k + 1 rows), t_verify(r) = a + b (r - 1), where a
// is a plain decode pass. k is the argmax over [1, k_max] of E(k) / cost(k); when no k beats plain
// decoding (1 / a) speculation is off, with sparse probes (k = 1) to notice when drafts improve.
// Greedy sessions use exponential moving averages of measured times (greedy output does not
// depend on k, so timing noise is harmless). Sampled sessions must give the same text for the
// same seed, so there k may only depend on seeded events: costs come from a fixed model instead
// (a = 1, b = kVerifyRowCost, t_draft = draft bytes / target bytes) and only alpha is learned.
// When the measured costs say that even alpha = 1 could not pay, probing stops for good (a probe
// of a model drafter also costs catching its cache up on the context).
#pragma once
#include <cstdint>

#include "fastspec/options.h"

namespace fastspec {

class KController {
 public:
  // draft_cost: a draft token's cost relative to a plain target pass (bytes ratio; 0 for n-gram).
  KController(const SpecOptions& s, double draft_cost, bool deterministic);
  int32_t choose();  // 0 = plain step
  // One speculative step: k drafts proposed, n accepted, its draft and verify times.
  void observe_spec(int32_t k, int32_t n_accepted, double draft_s, double verify_s);
  void observe_plain(double pass_s);
  double alpha() const { return alpha_; }

 private:
  int32_t fixed_k_, k_max_;
  bool deterministic_;
  double alpha_ = 0.6;        // prior acceptance
  double a_ = -1, b_ = -1;    // plain pass; extra cost per verify row (s)
  double t_draft_ = -1;       // per drafted token (s)
  int64_t plain_streak_ = 0, probe_every_ = 8;
  bool hopeless_ = false;     // drafting costs too much to pay even if every draft were accepted
};

}  // namespace fastspec

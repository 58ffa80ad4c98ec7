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
// Trees (SpecOptions::tree_nodes > 0) or chains: each kind's rate, committed tokens per unit of
// step cost (greedy: measured seconds of draft + verify; sampled: the fixed model's 1 + kVerifyRowCost
// per extra row, so the choice depends on seeded events only), is an EMA; the better kind runs and
// the other is probed every kKindProbe speculative steps (both are tried once first, tree first).
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
  // rows: the verify pass's rows (k + 1 for a chain; a tree: its nodes + 1); overhead_s: the
  // rest of the step (the drafter catching up on accepted rows, acceptance), paid once per step.
  void observe_spec(int32_t k, int32_t n_accepted, double draft_s, double verify_s, int32_t rows,
                    double overhead_s = 0.0);
  // The node budget of the next proposal: tree_nodes (a tree) or 0 (a chain). With a fixed k,
  // always tree_nodes; adaptive: whichever kind has the better measured rate (the other probed).
  int32_t choose_nodes(int32_t tree_nodes);
  // One speculative step of the kind choose_nodes picked: tokens committed, verify rows, seconds.
  void observe_kind(bool tree, int32_t committed, int32_t rows, double step_s);
  void observe_plain(double pass_s);
  double alpha() const { return alpha_; }

 private:
  int32_t fixed_k_, k_max_;
  bool deterministic_;
  double alpha_ = 0.6;        // prior acceptance
  double a_ = -1, b_ = -1;    // plain pass; extra cost per verify row (s)
  double t_draft_ = -1;       // per drafted token (s)
  double o_ = 0;              // per speculative step, beyond drafts and verify (s)
  int64_t plain_streak_ = 0, probe_every_ = 8;
  bool hopeless_ = false;     // drafting costs too much to pay even if every draft were accepted
  double rate_[2] = {-1, -1};  // committed tokens per unit step cost: [chain, tree]
  int64_t kind_steps_ = 0;     // speculative steps since the last probe of the other kind
};

}  // namespace fastspec

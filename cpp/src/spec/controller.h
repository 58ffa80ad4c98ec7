// Draft-length controller. Model: each draft token is accepted with probability alpha given the
// previous ones were (geometric), so k drafts commit E(k) = 1 + alpha (1 - alpha^k) / (1 - alpha)
// tokens. A step costs k * t_draft + t_verify(k + 1 rows), t_verify(r) = a + b (r - 1), where a
// is a plain decode pass. k is the argmax over [1, k_max] of E(k) / cost(k); when no k beats plain
// decoding (1 / a) speculation is off, with sparse probes (k = 1) to notice when drafts improve.
// Greedy sessions use exponential moving averages of measured times (greedy output does not
// depend on k, so timing noise is harmless). Sampled sessions must give the same text for the
// same seed, so there k may only depend on seeded events: costs come from a fixed model instead
// (a = 1, b = SpecOptions::verify_row_cost, t_draft = draft bytes / target bytes) and only alpha is
// learned.
// When the measured costs say that even alpha = 1 could not pay, probing stops for good (a probe
// of a model drafter also costs catching its cache up on the context).
// Trees (SpecOptions::tree_nodes > 0) or chains: the shapes are a chain and trees of a quarter,
// half and all of tree_nodes nodes (a verify row costs more the wider the tree, so a small tree
// can beat both). Each shape's rate, committed tokens per unit of step cost (greedy: measured
// seconds of draft + verify + acceptance; sampled: the fixed model's 1 + verify_row_cost per extra
// row, so the choice depends on seeded events only), is an EMA; the best runs, and every other
// shape is probed after kKindProbe speculative steps, an interval that doubles (up to kProbeMax)
// each time a probe finds that shape still worse, so a losing shape costs little (each is tried
// once first, the full tree first).
// A greedy session's measured costs (plain pass, verify row, draft token, step overhead) and
// shape rates outlive it: the engine keeps the latest finished greedy session's (ControllerMemory)
// and the next greedy session starts from them instead of re-measuring and re-probing every shape
// (greedy output never depends on k, so this changes no token). Acceptance is not carried: it
// depends on the text (a grounded prompt after open chat), and every session starts from the
// prior. Sampled sessions always start from the fixed model.
#pragma once
#include <cstdint>
#include <mutex>

#include "fastspec/options.h"

namespace fastspec {

struct ControllerMemory;

class KController {
 public:
  static constexpr int kShapes = 4;  // a chain; trees of tree_nodes / 4, / 2, / 1 nodes
  // What a greedy session measures (-1: not yet), and what ControllerMemory carries to the next.
  struct Costs {
    double a = -1, b = -1;  // plain pass; extra cost per verify row (s)
    double t_draft = -1;    // per drafted token (s)
    double o = 0;           // per speculative step, beyond drafts and verify (s)
    double rate[kShapes] = {-1, -1, -1, -1};  // committed tokens per unit step cost, per shape
  };
  // draft_cost: a draft token's cost relative to a plain target pass (bytes ratio; 0 for n-gram).
  // memory: the engine's; a greedy controller starts from it and save() writes it back.
  KController(const SpecOptions& s, double draft_cost, bool deterministic, ControllerMemory* memory = nullptr);
  void save() const;  // a greedy controller's measurements -> the memory (a sampled one: nothing)
  int32_t choose();  // 0 = plain step
  // One speculative step: k drafts proposed, n accepted, its draft and verify times.
  // rows: the verify pass's rows (k + 1 for a chain; a tree: its nodes + 1); overhead_s: the
  // rest of the step (the drafter catching up on accepted rows, acceptance), paid once per step.
  void observe_spec(int32_t k, int32_t n_accepted, double draft_s, double verify_s, int32_t rows,
                    double overhead_s = 0.0);
  // The node budget of the next proposal: 0 (a chain) or a tree's node count <= tree_nodes. With
  // a fixed k, always tree_nodes; adaptive: the shape with the best measured rate (others probed).
  int32_t choose_nodes(int32_t tree_nodes);
  // One speculative step of the shape choose_nodes last picked: tokens committed, verify rows, seconds.
  void observe_kind(int32_t committed, int32_t rows, double step_s);
  void observe_plain(double pass_s);
  double alpha() const { return alpha_; }

 private:
  int32_t fixed_k_, k_max_;
  bool deterministic_;
  double row_cost_;           // the fixed model's verify row cost (SpecOptions::verify_row_cost)
  double alpha_ = 0.6;        // prior acceptance
  Costs c_;
  int64_t plain_streak_ = 0, probe_every_ = 8;
  bool hopeless_ = false;     // drafting costs too much to pay even if every draft were accepted
  ControllerMemory* memory_ = nullptr;
  int64_t since_[kShapes] = {}, gap_[kShapes] = {};  // speculative steps since its last probe; probe interval
  int shape_ = 0;           // the shape of the step in flight
  bool probing_ = false;    // that step probes a shape other than the best
};

struct ControllerMemory {
  std::mutex mu;
  bool valid = false;
  KController::Costs costs;
};

}  // namespace fastspec

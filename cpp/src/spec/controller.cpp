#include "spec/controller.h"

#include <algorithm>
#include <cmath>

namespace fastspec {
namespace {

constexpr double kEma = 0.15;       // weight of the newest observation
constexpr double kMargin = 1.03;    // speculation must beat plain decoding by 3% to be used
constexpr int64_t kProbeMax = 256;  // longest run of plain steps between probes
constexpr int64_t kKindProbe = 16;       // steps between probes of the worse of tree / chain

void ema(double& acc, double x) { acc = acc < 0 ? x : (1 - kEma) * acc + kEma * x; }

}  // namespace

KController::KController(const SpecOptions& s, double draft_cost, bool deterministic, ControllerMemory* memory)
    : fixed_k_(s.k), k_max_(std::max(1, s.k_max)), deterministic_(deterministic), row_cost_(s.verify_row_cost),
      memory_(memory) {
  if (deterministic_) {
    c_.a = 1.0, c_.b = row_cost_, c_.t_draft = draft_cost;
    return;
  }
  if (!memory_) return;
  std::lock_guard<std::mutex> lk(memory_->mu);
  if (memory_->valid) c_ = memory_->costs;
}

void KController::save() const {
  if (deterministic_ || !memory_ || c_.a <= 0 || c_.b < 0) return;  // sampled, or nothing measured yet
  std::lock_guard<std::mutex> lk(memory_->mu);
  memory_->valid = true;
  memory_->costs = c_;
}

int32_t KController::choose() {
  if (fixed_k_ > 0) return fixed_k_;
  if (c_.a <= 0) return 0;                      // measure one plain pass first
  if (c_.b < 0) return std::min(4, k_max_);     // then one speculative step to measure verify cost
  if (hopeless_) return 0;
  const double plain_rate = 1.0 / c_.a;
  auto best_for = [&](double alpha, double* best_rate) {
    int32_t best_k = 0;
    *best_rate = plain_rate * kMargin;
    for (int32_t k = 1; k <= k_max_; ++k) {
      const double expected = 1.0 + (alpha >= 1.0 ? k : alpha * (1.0 - std::pow(alpha, k)) / (1.0 - alpha));
      const double rate = expected / (k * std::max(0.0, c_.t_draft) + c_.a + c_.b * k + c_.o);
      if (rate > *best_rate) *best_rate = rate, best_k = k;
    }
    return best_k;
  };
  double best_rate;
  const int32_t best_k = best_for(alpha_, &best_rate);
  if (best_k == 0 && !deterministic_ && c_.t_draft >= 0 && best_for(1.0, &best_rate) == 0) {
    hopeless_ = true;
    return 0;
  }
  if (best_k > 0) {
    plain_streak_ = 0;
    probe_every_ = 8;
    return best_k;
  }
  if (++plain_streak_ >= probe_every_) {  // probe: drafts may have become good again
    plain_streak_ = 0;
    probe_every_ = std::min(kProbeMax, probe_every_ * 2);
    return 1;
  }
  return 0;
}

void KController::observe_spec(int32_t k, int32_t n_accepted, double draft_s, double verify_s, int32_t rows,
                               double overhead_s) {
  if (k <= 0) return;
  // Geometric MLE over this step: n successes, then one failure unless all k were accepted.
  const double trials = n_accepted + (n_accepted < k ? 1 : 0);
  if (trials > 0) alpha_ = (1 - kEma) * alpha_ + kEma * (n_accepted / trials);
  alpha_ = std::min(0.99, std::max(0.01, alpha_));
  if (deterministic_) return;
  ema(c_.t_draft, draft_s / k);
  if (c_.a > 0) ema(c_.b, std::max(0.0, (verify_s - c_.a) / std::max(1, rows - 1)));
  // a catch-up longer than two plain passes is a one-off (the prompt's rows after a prefill), not a
  // per-step cost
  if (c_.a > 0) overhead_s = std::min(overhead_s, 2 * c_.a);
  c_.o = (1 - kEma) * c_.o + kEma * std::max(0.0, overhead_s);
}

int32_t KController::choose_nodes(int32_t tree_nodes) {
  probing_ = false;
  if (tree_nodes <= 0) return shape_ = 0;
  auto nodes_of = [tree_nodes](int shape) {
    return shape == 0 ? 0 : std::max<int32_t>(2, tree_nodes >> (kShapes - 1 - shape));
  };
  if (fixed_k_ > 0) return shape_ = kShapes - 1, tree_nodes;  // a fixed shape: the caller asked for k-deep trees
  for (int s : {kShapes - 1, 0, 1, 2})  // each shape once (a shape equal to a wider one's budget is skipped)
    if (c_.rate[s] < 0 && (s == 0 || s == kShapes - 1 || nodes_of(s) < nodes_of(s + 1))) return nodes_of(shape_ = s);
  int best = 0;
  for (int s = 1; s < kShapes; ++s)
    if (c_.rate[s] > c_.rate[best]) best = s;
  // a tree slower than plain decoding never runs (but is probed): the chain's k, chosen against
  // plain decoding by choose(), keeps the never-slower rule
  const double plain_rate = deterministic_ ? 1.0 : (c_.a > 0 ? 1.0 / c_.a : 0.0);
  if (best != 0 && c_.rate[best] < plain_rate) best = 0;
  for (int s = 0; s < kShapes; ++s) {
    if (s == best || c_.rate[s] < 0) continue;
    if (gap_[s] <= 0) gap_[s] = kKindProbe;
    if (++since_[s] >= gap_[s]) {
      since_[s] = 0;
      probing_ = true;
      return nodes_of(shape_ = s);
    }
  }
  return nodes_of(shape_ = best);
}

void KController::observe_kind(int32_t committed, int32_t rows, double step_s) {
  const double cost = deterministic_ ? 1.0 + row_cost_ * std::max(0, rows - 1) : step_s;
  if (cost <= 0) return;
  ema(c_.rate[shape_], committed / cost);
  if (!probing_) return;
  bool best = true;
  for (int s = 0; s < kShapes; ++s)
    if (s != shape_ && c_.rate[s] > c_.rate[shape_]) best = false;
  // still worse: probe it half as often; now the best: it runs, and its interval starts over
  gap_[shape_] = best ? kKindProbe : std::min(kProbeMax, 2 * gap_[shape_]);
}

void KController::observe_plain(double pass_s) {
  if (!deterministic_) ema(c_.a, pass_s);
}

}  // namespace fastspec

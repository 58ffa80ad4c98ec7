#include "spec/rejection.h"

#include <algorithm>

namespace fastspec {

float sparse_prob(const SparseDist& d, int32_t id) {
  auto it = std::lower_bound(d.probs.begin(), d.probs.end(), id,
                             [](const std::pair<int32_t, float>& e, int32_t v) { return e.first < v; });
  return (it != d.probs.end() && it->first == id) ? it->second : 0.0f;
}

int32_t draw_dense(const std::vector<double>& w, double u) {
  double total = 0;
  for (double x : w) total += x;
  const double target = u * total;
  double cum = 0;
  int32_t last = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i] <= 0) continue;
    cum += w[i];
    last = static_cast<int32_t>(i);
    if (target < cum) return last;
  }
  return last;
}

VerifyOutcome rejection_sample(const float* p_logits, int64_t vocab, const int32_t* draft,
                               const std::vector<SparseDist>& q, int32_t k, const SamplingOptions& o,
                               const double* uniforms) {
  VerifyOutcome out;
  if (o.temperature == 0.0f) {
    for (int32_t i = 0; i < k; ++i) {
      const int32_t best = argmax(p_logits + i * vocab, vocab);
      if (draft[i] != best) {
        out.n_accepted = i;
        out.next = best;
        return out;
      }
    }
    out.n_accepted = k;
    out.next = argmax(p_logits + k * vocab, vocab);
    out.bonus = true;
    return out;
  }
  for (int32_t i = 0; i < k; ++i) {
    const SparseDist p = processed_distribution(p_logits + i * vocab, vocab, o);
    const double pd = sparse_prob(p, draft[i]), qd = sparse_prob(q[i], draft[i]);
    if (uniforms[i] * qd < pd) continue;  // accepted
    std::vector<double> r(static_cast<size_t>(vocab), 0.0);
    for (const auto& e : p.probs) r[e.first] = e.second;
    for (const auto& e : q[i].probs) r[e.first] = std::max(0.0, r[e.first] - static_cast<double>(e.second));
    double mass = 0;
    for (double x : r) mass += x;
    if (!(mass > 0)) {  // p == q up to rounding: fall back to p
      std::fill(r.begin(), r.end(), 0.0);
      for (const auto& e : p.probs) r[e.first] = e.second;
    }
    out.n_accepted = i;
    out.next = draw_dense(r, uniforms[k]);
    return out;
  }
  out.n_accepted = k;
  out.next = sample_from(processed_distribution(p_logits + k * vocab, vocab, o), uniforms[k]);
  out.bonus = true;
  return out;
}

}  // namespace fastspec

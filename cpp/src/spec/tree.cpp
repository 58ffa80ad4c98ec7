#include "spec/tree.h"

#include <algorithm>
#include <string>

#include "fastspec/status.h"
#include "spec/rejection.h"

namespace fastspec {

void tree_check(const int32_t* parent, int32_t n) {
  for (int32_t i = 0; i < n; ++i)
    if (parent[i] < -1 || parent[i] >= i)
      throw InvalidArgument("tree: node " + std::to_string(i) + " has parent " + std::to_string(parent[i]) +
                            " (an earlier node, or -1 for the root)");
}

void tree_accept(const float* p_logits, int64_t vocab, const int32_t* tokens, const int32_t* parent,
                 const std::vector<SparseDist>& q, int32_t n, const SamplingOptions& o, const double* uniforms,
                 TreeOutcome* out) {
  tree_check(parent, n);
  out->path.clear();
  out->bonus = false;
  int32_t cur = -1;  // the current node (-1: the root), its row cur + 1
  const bool greedy = o.temperature == 0.0f;
  thread_local std::vector<double> R;  // [vocab] the residual (sampled); grows once
  for (;;) {
    const float* row = p_logits + static_cast<int64_t>(cur + 1) * vocab;
    bool has_child = false, accepted = false;
    if (greedy) {
      const int32_t best = argmax(row, vocab);
      for (int32_t c = cur + 1; c < n && !accepted; ++c)
        if (parent[c] == cur) {
          has_child = true;
          if (tokens[c] == best) accepted = true, cur = c;
        }
      if (accepted) {
        out->path.push_back(cur);
        continue;
      }
      out->next = best;
      out->bonus = !has_child;
      return;
    }
    const SparseDist p = processed_distribution(row, vocab, o);
    bool residual = false;  // R holds a residual (else p itself is the distribution)
    double mass = 1.0;      // |R| (1: R is p as processed, not renormalized)
    for (int32_t c = cur + 1; c < n; ++c) {
      if (parent[c] != cur) continue;
      has_child = true;
      const double qc = sparse_prob(q[c], tokens[c]);
      const double rc = residual ? R[tokens[c]] : sparse_prob(p, tokens[c]);
      if (uniforms[c] * qc * mass < rc) {
        accepted = true, cur = c;
        break;
      }
      // rejected: R = max(0, R / |R| - q_c), kept when that is empty (p == q up to rounding)
      if (!residual) {
        R.assign(static_cast<size_t>(vocab), 0.0);
        for (const auto& e : p.probs) R[e.first] = e.second;
        residual = true;
      }
      thread_local std::vector<double> next_r;  // R / |R| - q_c, clipped at 0
      next_r.resize(R.size());
      for (size_t v = 0; v < R.size(); ++v) next_r[v] = R[v] / mass;
      for (const auto& e : q[c].probs) next_r[e.first] = std::max(0.0, next_r[e.first] - static_cast<double>(e.second));
      double m2 = 0;
      for (double x : next_r) m2 += x;
      if (m2 > 0) R.swap(next_r), mass = m2;
    }
    if (accepted) {
      out->path.push_back(cur);
      continue;
    }
    out->bonus = !has_child;
    out->next = residual ? draw_dense(R, uniforms[n]) : sample_from(p, uniforms[n]);
    return;
  }
}

}  // namespace fastspec

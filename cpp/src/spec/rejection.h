// The exact rejection sampler (terms as in DESIGN.md). p and q are *processed* distributions
// (temperature, top-k, top-p applied by processed_distribution, exactly as the plain sampler).
//   greedy:     draft i accepted iff it is argmax(p_i); recovered = argmax(p_i); bonus = argmax(p_k)
//   stochastic: draft i accepted iff u_i * q_i(d_i) < p_i(d_i)        (u < min(1, p/q))
//               first rejection at i: recovered ~ norm(max(0, p_i - q_i)) drawn at u_k
//                 (if rounding leaves that residual empty, p_i itself: p == q means no rejection)
//               all k accepted: bonus ~ p_k drawn at u_k
// Randomness is an input (uniforms), so every path is exactly testable.
#pragma once
#include <cstdint>
#include <vector>

#include "fastspec/options.h"
#include "spec/sampler.h"

namespace fastspec {

struct VerifyOutcome {
  int32_t n_accepted = 0;  // drafts kept, a prefix of the k proposed
  int32_t next = -1;       // the recovered token (n_accepted < k) or the bonus token
  bool bonus = false;      // all k accepted
};

// p_logits: [k + 1, vocab] target logits of the verify pass; draft: [k]; q: k draft
// distributions (one-hot for deterministic drafters); uniforms: [k + 1] in [0, 1) (unused when
// greedy).
VerifyOutcome rejection_sample(const float* p_logits, int64_t vocab, const int32_t* draft,
                               const std::vector<SparseDist>& q, int32_t k, const SamplingOptions& o,
                               const double* uniforms);

// Probability of id in a sparse distribution (0 when absent).
float sparse_prob(const SparseDist& d, int32_t id);

// Inverse CDF over ids ascending of a dense non-negative vector w[vocab] (need not be
// normalized): the first id with u * sum(w) < its cumulative sum (the last positive id if none).
int32_t draw_dense(const std::vector<double>& w, double u);

}  // namespace fastspec

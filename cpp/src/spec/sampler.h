// Sampling from target logits. The *processed* distribution is defined once here and used by the
// plain sampler and (later) the rejection sampler, so both see exactly the same p:
//   1. greedy (temperature == 0): one-hot on argmax (ties -> lowest id)
//   2. p = softmax(logits / temperature)                (double accumulation)
//   3. top_k > 0: keep the k most probable              (order: prob desc, then id asc)
//   4. top_p < 1: keep the shortest prefix of that order whose mass >= top_p
//   5. renormalize over the kept ids
// Randomness is an input: a seeded per-request generator, so every path is testable exactly.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fastspec/options.h"

namespace fastspec {

// xoshiro256** seeded through splitmix64: small, fast, identical on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  double uniform();  // [0, 1) with 53 random bits
 private:
  uint64_t s_[4];
};

struct SparseDist {
  std::vector<std::pair<int32_t, float>> probs;  // (id, prob), ids ascending, probs sum to 1
};

// Checks ranges; InvalidArgument naming the parameter.
void sampling_options_check(const SamplingOptions& o);
// logits: [vocab]
SparseDist processed_distribution(const float* logits, int64_t vocab, const SamplingOptions& o);
int32_t argmax(const float* logits, int64_t vocab);
// Inverse-CDF draw over ids ascending with one uniform u in [0, 1).
int32_t sample_from(const SparseDist& d, double u);
// The plain sampler: greedy without touching rng, else one rng.uniform() draw.
int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& o, Rng& rng);

// A drafter's confidence: the top probability of softmax(logits[n]) (unprocessed).
float top_probability(const float* logits, int64_t n);
// The k largest of logits[n], best first: rows[k] their indices (-1 past n) and logp[k] their
// log-softmax values (tree drafters rank nodes by path log-probability).
void top_log_probs(const float* logits, int64_t n, int32_t k, int32_t* rows, float* logp);
// One draft token from logits[n] whose row j is target token ids[j] (ascending; nullptr: j):
// *q = the processed distribution over those ids, the token its argmax when greedy, else drawn
// from it with one rng.uniform().
int32_t draw_draft(const float* logits, int64_t n, const int32_t* ids, const SamplingOptions& o, Rng& rng,
                   SparseDist* q);

}  // namespace fastspec

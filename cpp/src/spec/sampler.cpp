#include "spec/sampler.h"

#include <algorithm>
#include <cmath>

#include "fastspec/status.h"

namespace fastspec {
namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Rng::Rng(uint64_t seed) {
  for (uint64_t& s : s_) s = splitmix64(seed);
}

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

void sampling_options_check(const SamplingOptions& o) {
  if (!(o.temperature >= 0.0f) || !std::isfinite(o.temperature))
    throw InvalidArgument("temperature must be >= 0 (got " + std::to_string(o.temperature) + ")");
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f))
    throw InvalidArgument("top_p must be in (0, 1] (got " + std::to_string(o.top_p) + ")");
  if (o.top_k < 0) throw InvalidArgument("top_k must be >= 0 (got " + std::to_string(o.top_k) + ")");
  if (o.max_tokens < 1) throw InvalidArgument("max_tokens must be >= 1 (got " + std::to_string(o.max_tokens) + ")");
}

int32_t argmax(const float* logits, int64_t vocab) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

SparseDist processed_distribution(const float* logits, int64_t vocab, const SamplingOptions& o) {
  SparseDist d;
  if (o.temperature == 0.0f) {
    d.probs.emplace_back(argmax(logits, vocab), 1.0f);
    return d;
  }
  const double inv_t = 1.0 / static_cast<double>(o.temperature);
  double mx = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, static_cast<double>(logits[i]) * inv_t);
  std::vector<double> p(static_cast<size_t>(vocab));
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += (p[i] = std::exp(static_cast<double>(logits[i]) * inv_t - mx));
  std::vector<int32_t> keep;
  const bool filter = (o.top_k > 0 && o.top_k < vocab) || o.top_p < 1.0f;
  if (!filter) {
    keep.resize(static_cast<size_t>(vocab));
    for (int64_t i = 0; i < vocab; ++i) keep[i] = static_cast<int32_t>(i);
  } else {
    std::vector<int32_t> order(static_cast<size_t>(vocab));
    for (int64_t i = 0; i < vocab; ++i) order[i] = static_cast<int32_t>(i);
    auto before = [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); };
    int64_t n = vocab;
    if (o.top_k > 0 && o.top_k < vocab) {
      n = o.top_k;
      std::partial_sort(order.begin(), order.begin() + n, order.end(), before);
    } else {
      std::sort(order.begin(), order.end(), before);
    }
    if (o.top_p < 1.0f) {
      double mass = 0;
      for (int64_t i = 0; i < n; ++i) mass += p[order[i]];
      const double target = static_cast<double>(o.top_p) * mass;
      double cum = 0;
      int64_t m = 0;
      while (m < n) {
        cum += p[order[m++]];
        if (cum >= target) break;
      }
      n = m;
    }
    keep.assign(order.begin(), order.begin() + n);
    std::sort(keep.begin(), keep.end());
  }
  double kept = 0;
  for (int32_t i : keep) kept += p[i];
  d.probs.reserve(keep.size());
  for (int32_t i : keep) d.probs.emplace_back(i, static_cast<float>(p[i] / kept));
  (void)sum;
  return d;
}

int32_t sample_from(const SparseDist& d, double u) {
  double total = 0;
  for (const auto& e : d.probs) total += e.second;
  const double target = u * total;
  double cum = 0;
  for (const auto& e : d.probs) {
    cum += e.second;
    if (target < cum) return e.first;
  }
  return d.probs.back().first;  // u * total rounded up to the total
}

int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& o, Rng& rng) {
  if (o.temperature == 0.0f) return argmax(logits, vocab);
  return sample_from(processed_distribution(logits, vocab, o), rng.uniform());
}

float top_probability(const float* logits, int64_t n) {
  float mx = logits[0];
  for (int64_t j = 1; j < n; ++j) mx = std::max(mx, logits[j]);
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += std::exp(static_cast<double>(logits[j] - mx));
  return static_cast<float>(1.0 / sum);
}

void top_log_probs(const float* logits, int64_t n, int32_t k, int32_t* rows, float* logp) {
  const float mx = *std::max_element(logits, logits + n);
  double z = 0;
  for (int64_t j = 0; j < n; ++j) z += std::exp(static_cast<double>(logits[j] - mx));
  const float lz = mx + static_cast<float>(std::log(z));
  for (int32_t r = 0; r < k; ++r) rows[r] = -1, logp[r] = -INFINITY;
  for (int64_t j = 0; j < n; ++j) {  // insertion into the sorted top k
    const float lp = logits[j] - lz;
    if (lp <= logp[k - 1]) continue;
    int32_t at = k - 1;
    while (at > 0 && logp[at - 1] < lp) rows[at] = rows[at - 1], logp[at] = logp[at - 1], --at;
    rows[at] = static_cast<int32_t>(j), logp[at] = lp;
  }
}

int32_t draw_draft(const float* logits, int64_t n, const int32_t* ids, const SamplingOptions& o, Rng& rng,
                   SparseDist* q) {
  *q = processed_distribution(logits, n, o);
  if (ids)
    for (auto& e : q->probs) e.first = ids[e.first];  // ascending ids keep the order
  return o.temperature == 0.0f ? q->probs.front().first : sample_from(*q, rng.uniform());
}

}  // namespace fastspec

// The sampler and the rejection sampler through their C++ interfaces (spec/sampler.h,
// spec/rejection.h), with the noise passed in: processed distributions are normalized and keep
// what top-k / top-p say; greedy verification accepts exactly the argmax prefix; with q == p every
// draft is accepted; a draft the target gives probability 0 is always rejected and the recovered
// token comes from max(0, p - q). Bad options are rejected. Run under the sanitizers too.
#include <cmath>
#include <cstdio>
#include <vector>

#include "check.h"
#include "fastspec/status.h"
#include "spec/rejection.h"
#include "spec/sampler.h"

using namespace fastspec;

namespace {

std::vector<float> random_logits(Rng& rng, int64_t vocab) {
  std::vector<float> l(static_cast<size_t>(vocab));
  for (float& x : l) x = static_cast<float>(4.0 * rng.uniform() - 2.0);
  return l;
}

double mass(const SparseDist& d) {
  double s = 0;
  for (auto& [id, p] : d.probs) s += p;
  return s;
}

void processed(Rng& rng) {
  const int64_t vocab = 50;
  for (int trial = 0; trial < 200; ++trial) {
    const auto l = random_logits(rng, vocab);
    SamplingOptions o;
    o.temperature = 0.3f + static_cast<float>(rng.uniform());
    o.top_k = trial % 3 == 0 ? 0 : 1 + trial % 11;
    o.top_p = trial % 2 ? 1.0f : 0.5f + 0.5f * static_cast<float>(rng.uniform());
    const SparseDist d = processed_distribution(l.data(), vocab, o);
    CHECK(std::fabs(mass(d) - 1.0) < 1e-5);
    CHECK(!d.probs.empty());
    if (o.top_k > 0) CHECK(static_cast<int>(d.probs.size()) <= o.top_k);
    for (size_t i = 1; i < d.probs.size(); ++i) CHECK(d.probs[i - 1].first < d.probs[i].first);
    // The argmax always survives the cuts, and sampling returns kept ids only.
    CHECK(sparse_prob(d, argmax(l.data(), vocab)) > 0);
    CHECK(sparse_prob(d, sample_from(d, rng.uniform())) > 0);
  }
  SamplingOptions greedy;
  const auto l = random_logits(rng, vocab);
  const SparseDist g = processed_distribution(l.data(), vocab, greedy);
  CHECK(g.probs.size() == 1 && g.probs[0].first == argmax(l.data(), vocab));
}

void rejection(Rng& rng) {
  const int64_t vocab = 20;
  const int32_t k = 4;
  std::vector<float> p(static_cast<size_t>((k + 1) * vocab));
  for (float& x : p) x = static_cast<float>(4.0 * rng.uniform());
  std::vector<int32_t> best(k + 1);
  for (int32_t i = 0; i <= k; ++i) best[i] = argmax(&p[i * vocab], vocab);
  std::vector<double> u(k + 1, 0.5);
  SamplingOptions greedy;
  std::vector<SparseDist> one_hot(k);
  // Greedy: drafts = argmax prefix of length 2, then a wrong one -> 2 accepted, recovered = argmax.
  std::vector<int32_t> d = {best[0], best[1], (best[2] + 1) % static_cast<int32_t>(vocab), best[3]};
  for (int32_t i = 0; i < k; ++i) one_hot[i].probs = {{d[i], 1.0f}};
  VerifyOutcome r = rejection_sample(p.data(), vocab, d.data(), one_hot, k, greedy, u.data());
  CHECK(r.n_accepted == 2 && r.next == best[2] && !r.bonus);
  d = {best[0], best[1], best[2], best[3]};
  for (int32_t i = 0; i < k; ++i) one_hot[i].probs = {{d[i], 1.0f}};
  r = rejection_sample(p.data(), vocab, d.data(), one_hot, k, greedy, u.data());
  CHECK(r.n_accepted == k && r.next == best[k] && r.bonus);

  // Stochastic with q == p: every draft accepted whatever the noise.
  SamplingOptions o;
  o.temperature = 0.8f;
  std::vector<SparseDist> q(k);
  for (int32_t i = 0; i < k; ++i) q[i] = processed_distribution(&p[i * vocab], vocab, o);
  for (int trial = 0; trial < 100; ++trial) {
    for (int32_t i = 0; i < k; ++i) d[i] = sample_from(q[i], rng.uniform());
    for (double& x : u) x = rng.uniform();
    r = rejection_sample(p.data(), vocab, d.data(), q, k, o, u.data());
    CHECK(r.n_accepted == k && r.bonus);
  }
  // A draft the processed target excludes (top_k = 1 keeps only the argmax) is always rejected.
  o.top_k = 1;
  std::vector<SparseDist> q0(1);
  const int32_t other = (best[0] + 1) % static_cast<int32_t>(vocab);
  q0[0].probs = {{other, 1.0f}};
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<double> u2 = {rng.uniform(), rng.uniform()};
    r = rejection_sample(p.data(), vocab, &other, q0, 1, o, u2.data());
    CHECK(r.n_accepted == 0 && r.next == best[0]);
  }
}

void bad_options() {
  SamplingOptions o;
  o.temperature = -1;
  CHECK_THROWS(sampling_options_check(o), InvalidArgument);
  o = SamplingOptions();
  o.temperature = NAN;
  CHECK_THROWS(sampling_options_check(o), InvalidArgument);
  o = SamplingOptions();
  o.top_p = 1.5f;
  CHECK_THROWS(sampling_options_check(o), InvalidArgument);
  o = SamplingOptions();
  o.max_tokens = 0;
  CHECK_THROWS(sampling_options_check(o), InvalidArgument);
}

}  // namespace

int main() {
  Rng rng(1234);
  processed(rng);
  rejection(rng);
  bad_options();
  Rng a(9), b(9);
  for (int i = 0; i < 1000; ++i) {
    const double x = a.uniform();
    CHECK(x == b.uniform() && x >= 0 && x < 1);
  }
  std::printf("sampling: %d failures\n", fastspec_test::failures());
  return fastspec_test::failures() != 0;
}

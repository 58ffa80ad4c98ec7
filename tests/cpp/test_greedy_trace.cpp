// A model's forward and greedy output, for comparison across builds (tests/test_aarch64.py runs
// the aarch64 build of this under qemu and compares with the x86 build's Python engine on the
// same file): writes the logits of the prompt forward, then of one decode step and one verify-sized
// pass on the warm cache (as tests/test_cpu_paths.py), as float32 [rows, vocab] to OUT; prints the
// plain greedy continuation, and checks that greedy speculation (n-gram drafts) commits the same ids.
//   fastspec-test-greedy_trace MODEL OUT PRECISION KV_TYPE N_TOKENS ID... [-- SPLIT1 SPLIT2]
// The prompt ids are cut into [0, SPLIT1), [SPLIT1, SPLIT2), [SPLIT2, end) (default: the middle
// two thirds as one token, then the rest). FASTSPEC_ISA forces a CPU path.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "check.h"
#include "generate.h"
#include "fastspec/engine.h"

using namespace fastspec;

namespace {

std::vector<int32_t> greedy(const std::string& model, const EngineOptions& eo, const SpecOptions& so,
                            const std::vector<int32_t>& prompt, int64_t n) {
  Engine e(model, eo, so);
  SamplingOptions s;
  s.max_tokens = n;
  return fastspec_test::generate(e, prompt, s);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: %s MODEL OUT PRECISION KV_TYPE N_TOKENS ID... [-- SPLIT1 SPLIT2]\n", argv[0]);
    return 2;
  }
  const std::string model = argv[1], out_path = argv[2];
  EngineOptions eo;
  eo.threads = 2, eo.context = 64, eo.precision = argv[3], eo.kv_type = argv[4];
  const int64_t n = std::atoll(argv[5]);
  std::vector<int32_t> ids;
  int k = 6;
  for (; k < argc && std::string(argv[k]) != "--"; ++k) ids.push_back(static_cast<int32_t>(std::atoi(argv[k])));
  size_t s1 = ids.size() / 2, s2 = s1 + 1;
  if (k + 2 < argc) s1 = static_cast<size_t>(std::atoi(argv[k + 1])), s2 = static_cast<size_t>(std::atoi(argv[k + 2]));
  if (ids.size() < 3 || !(0 < s1 && s1 < s2 && s2 < ids.size())) {
    std::fprintf(stderr, "greedy_trace: need 3+ prompt ids and 0 < SPLIT1 < SPLIT2 < %zu\n", ids.size());
    return 2;
  }
  std::vector<float> logits;
  {
    Engine e(model, eo);
    auto ctx = e.new_context();
    for (auto [a, b] : {std::pair<size_t, size_t>{0, s1}, {s1, s2}, {s2, ids.size()}}) {
      const std::vector<float> l = ctx->forward(std::vector<int32_t>(ids.begin() + a, ids.begin() + b));
      logits.insert(logits.end(), l.begin(), l.end());
    }
  }
  FILE* f = std::fopen(out_path.c_str(), "wb");
  if (!f || std::fwrite(logits.data(), sizeof(float), logits.size(), f) != logits.size()) {
    std::fprintf(stderr, "greedy_trace: cannot write %s\n", out_path.c_str());
    return 2;
  }
  std::fclose(f);
  const std::vector<int32_t> plain = greedy(model, eo, SpecOptions(), ids, n);
  SpecOptions ngram;
  ngram.draft = "ngram";
  CHECK(greedy(model, eo, ngram, ids, n) == plain);
  std::printf("ids:");
  for (int32_t t : plain) std::printf(" %d", t);
  std::printf("\n");
  return fastspec_test::failures() != 0;
}

// The engine's public C++ API on a model file given on the command line (the Python test writes
// tiny random GGUFs): greedy speculation == plain greedy, chunked Context forwards == one forward,
// bad arguments rejected, 1,000 sessions of every lifetime (finished, cancelled, unwound by an
// exception, run from several threads on one engine) with no session or context left alive.
// Built with FASTSPEC_SANITIZE=address,undefined, LeakSanitizer checks the C++ side at exit.
//   fastspec-test-engine_lifecycle MODEL.gguf [N_SESSIONS]
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "generate.h"
#include "fastspec/engine.h"
#include "fastspec/status.h"

using namespace fastspec;

namespace {

std::vector<int32_t> prompt_for(int i, int64_t vocab) {
  std::vector<int32_t> p;
  for (int j = 0; j < 6 + i % 5; ++j) p.push_back(static_cast<int32_t>((i * 31 + j * 7) % vocab));
  p.push_back(p[1]), p.push_back(p[2]);  // a repeat, so the n-gram drafter finds something
  return p;
}

std::vector<int32_t> run(Engine& e, const std::vector<int32_t>& prompt, int64_t max_tokens, float temperature = 0) {
  SamplingOptions o;
  o.max_tokens = max_tokens, o.temperature = temperature, o.seed = 7;
  return fastspec_test::generate(e, prompt, o);
}

void spec_equals_plain(const std::string& path) {
  EngineOptions eo;
  eo.threads = 2, eo.context = 128;
  Engine plain(path, eo);
  SpecOptions ngram;
  ngram.draft = "ngram";
  Engine spec(path, eo, ngram);
  SpecOptions fixed = ngram;
  fixed.k = 3;
  Engine spec3(path, eo, fixed);
  SpecOptions tree = fixed;  // token trees: tree attention, acceptance, K/V compaction
  tree.tree_nodes = 9;
  Engine spec_tree(path, eo, tree);
  const int64_t vocab = plain.config().vocab_size;
  for (int i = 0; i < 6; ++i) {
    const auto p = prompt_for(i, vocab);
    const auto a = run(plain, p, 40);
    CHECK(a.size() == 40);
    CHECK(run(spec, p, 40) == a);
    CHECK(run(spec3, p, 40) == a);
    CHECK(run(spec_tree, p, 40) == a);
  }
}

void contexts(const std::string& path) {
  EngineOptions eo;
  eo.threads = 1, eo.context = 64;
  Engine e(path, eo);
  const int64_t vocab = e.config().vocab_size;
  const auto ids = prompt_for(3, vocab);
  const std::vector<float> whole = e.logits(ids);
  auto ctx = e.new_context();
  std::vector<float> chunked;
  for (size_t i = 0; i < ids.size(); i += 3) {
    std::vector<int32_t> part(ids.begin() + i, ids.begin() + std::min(ids.size(), i + 3));
    const auto l = ctx->forward(part);
    chunked.insert(chunked.end(), l.begin(), l.end());
  }
  CHECK(chunked == whole);
  ctx->truncate(2);  // rollback, then the same tokens again give the same logits
  std::vector<int32_t> rest(ids.begin() + 2, ids.end());
  const auto again = ctx->forward(rest);
  CHECK(std::vector<float>(whole.begin() + 2 * vocab, whole.end()) == again);
  CHECK_THROWS(ctx->forward(std::vector<int32_t>(64, 1)), InvalidArgument);  // past the context
  CHECK_THROWS(ctx->forward(std::vector<int32_t>{static_cast<int32_t>(vocab)}), InvalidArgument);
}

void bad_arguments(const std::string& path) {
  EngineOptions eo;
  eo.context = 1;
  CHECK_THROWS(Engine(path, eo), InvalidArgument);
  eo.context = 32;
  eo.precision = "f8";
  CHECK_THROWS(Engine(path, eo), InvalidArgument);
  eo.precision = "q8";
  CHECK_THROWS(Engine(path + ".missing", eo), IoError);
  Engine e(path, eo);
  SamplingOptions o;
  CHECK_THROWS(e.start({}, o, {}), InvalidArgument);
  CHECK_THROWS(e.start(std::vector<int32_t>(32, 1), o, {}), InvalidArgument);
  CHECK_THROWS(e.start({-1}, o, {}), InvalidArgument);
  o.top_p = 0;
  CHECK_THROWS(e.start({1}, o, {}), InvalidArgument);
}

// n sessions on one engine, of four kinds by i % 4: finished, cancelled after two steps, unwound by
// an exception thrown between steps, sampled to the end. Returns the finished greedy outputs.
std::vector<std::vector<int32_t>> lifetimes(Engine& e, int begin, int n) {
  std::vector<std::vector<int32_t>> greedy;
  const int64_t vocab = e.config().vocab_size;
  for (int i = begin; i < begin + n; ++i) {
    const auto p = prompt_for(i, vocab);
    switch (i % 4) {
      case 0: greedy.push_back(run(e, p, 6)); break;
      case 1: {
        SamplingOptions o;
        auto s = e.start(p, o, {});
        s->step(), s->step();
        break;  // destroyed mid-generation
      }
      case 2:
        try {
          SamplingOptions o;
          auto s = e.start(p, o, {});
          s->step();
          throw std::runtime_error("consumer failed");
        } catch (const std::runtime_error&) {
        }
        break;
      default: CHECK(run(e, p, 5, 0.9f).size() == 5);
    }
  }
  return greedy;
}

void many_sessions(const std::string& path, int n) {
  EngineOptions eo;
  eo.threads = 2, eo.context = 64;
  SpecOptions ngram;
  ngram.draft = "ngram";
  Engine e(path, eo, ngram);
  const auto alone = lifetimes(e, 0, n / 2);
  // The other half from 4 threads at once on the same engine: the compute lock serializes them.
  const int n_threads = 4, per = n / 2 / n_threads;
  std::vector<std::vector<std::vector<int32_t>>> got(n_threads);
  std::vector<std::thread> threads;
  for (int t = 0; t < n_threads; ++t) threads.emplace_back([&, t] { got[t] = lifetimes(e, t * per, per); });
  for (auto& th : threads) th.join();
  std::vector<std::vector<int32_t>> together;
  for (auto& g : got) together.insert(together.end(), g.begin(), g.end());
  CHECK(std::vector<std::vector<int32_t>>(alone.begin(), alone.begin() + together.size()) == together);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.gguf [N_SESSIONS]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const int n = argc > 2 ? std::atoi(argv[2]) : 1000;
  try {
    spec_equals_plain(path);
    contexts(path);
    bad_arguments(path);
    many_sessions(path, n);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "unexpected exception: %s\n", ex.what());
    return 1;
  }
  CHECK(live_sessions() == 0);
  CHECK(live_contexts() == 0);
  std::printf("%s: %d failures (%d sessions)\n", path.c_str(), fastspec_test::failures(), n);
  return fastspec_test::failures() != 0;
}

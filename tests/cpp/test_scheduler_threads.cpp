// The scheduler under threads, for the sanitizers (tests/test_cpp_sanitized.py: ASan + UBSan, and
// ThreadSanitizer): 16 client threads submit requests (greedy and seeded sampling, plain and
// drafted), a third of them cancel after their first tokens, others read stats and logprobs
// meanwhile; every request that was not cancelled gets exactly its tokens alone; then requests
// left in flight when the scheduler closes end "cancelled"; no request, session or thread is
// left behind.
//   fastspec-test-scheduler_threads MODEL.gguf [ROUNDS]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "generate.h"
#include "fastspec/engine.h"
#include "fastspec/scheduler.h"

using namespace fastspec;

namespace {

SamplingOptions sampling_for(int i) {
  SamplingOptions s;
  s.max_tokens = 10 + i % 7;
  if (i % 2) s.temperature = 0.8f, s.top_k = 20, s.seed = 100 + static_cast<uint64_t>(i);
  return s;
}

std::vector<int32_t> prompt_for(int i, int64_t vocab) {
  std::vector<int32_t> p;
  for (int j = 0; j < 4 + (i * 11) % 40; ++j) p.push_back(static_cast<int32_t>((i * 31 + (j % 5) * 7) % vocab));
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.gguf [ROUNDS]\n", argv[0]);
    return 2;
  }
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 2;
  EngineOptions eo;
  eo.threads = 2, eo.context = 256;
  SpecOptions so;
  so.draft = "ngram";
  Engine engine(argv[1], eo, so);
  const int64_t vocab = engine.config().vocab_size;
  constexpr int kClients = 16;
  std::vector<std::vector<int32_t>> want(kClients);
  for (int i = 0; i < kClients; ++i) want[i] = fastspec_test::generate(engine, prompt_for(i, vocab), sampling_for(i));

  for (int round = 0; round < rounds; ++round) {
    SchedulerOptions opts;
    opts.max_sequences = 6, opts.max_queue = kClients, opts.prefix_cache_mb = 8;
    Scheduler sched(engine, opts);
    std::vector<std::vector<int32_t>> got(kClients);
    std::vector<int> cancelled(kClients, 0);
    std::vector<std::thread> clients;
    for (int i = 0; i < kClients; ++i)
      clients.emplace_back([&, i] {
        auto r = sched.submit(prompt_for(i, vocab), sampling_for(i), {}, /*draft=*/i % 4 != 0, i % 3 == 0 ? 3 : -1);
        while (!r->finished()) {
          for (int32_t t : r->next(5.0)) got[i].push_back(t);
          if (i % 3 == 2 && !got[i].empty() && !cancelled[i]) r->cancel(), cancelled[i] = 1;
          (void)sched.stats();
          (void)r->logprobs();
        }
        if (cancelled[i]) CHECK(r->finish_reason() == "cancelled" || r->finish_reason() == "length");
        else CHECK(got[i] == want[i]);
      });
    for (auto& t : clients) t.join();
    const SchedulerStats st = sched.stats();
    CHECK(st.active == 0 && st.queued == 0);
    CHECK(st.finished + st.cancelled == kClients);
    // close with requests in flight
    std::vector<std::shared_ptr<Request>> left;
    for (int i = 0; i < 4; ++i) left.push_back(sched.submit(prompt_for(i, vocab), sampling_for(0), {}));
    sched.close();
    for (auto& r : left) {
      while (!r->finished()) r->next(1.0);
      CHECK(r->finish_reason() == "cancelled" || r->finish_reason() == "length");
    }
  }
  CHECK(live_sessions() == 0);
  std::printf("scheduler_threads: %d failures (%d rounds of %d clients)\n", fastspec_test::failures(), rounds, kClients);
  return fastspec_test::failures() != 0;
}

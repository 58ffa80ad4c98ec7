// fastspec-bench: plain vs speculative decoding speed of the C++ engine, no Python in the loop.
//
//   fastspec-bench --target smollm2.f16.gguf --draft smollm2.q4_0.gguf --k 0 --n-gen 128
//   fastspec-bench --target model.gguf --draft ngram --prompt-ids ids.txt --repeats 5
//
// It runs --repeats pairs of sessions on the same prompt -- plain decoding (no drafter), then
// speculative decoding (--draft) -- each generating exactly --n-gen tokens (stop tokens are
// ignored), and prints the median run (by decode tok/s) of each mode as a table: decode and prefill tok/s,
// acceptance rate, tokens per target pass, and the decode time split (draft_s, verify_s, sample_s).
// Under greedy decoding (--temperature 0) it also checks that both produced the same tokens.
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastspec/engine.h"
#include "fastspec/model_file.h"
#include "fastspec/options.h"
#include "fastspec/status.h"

// --check-allocs: every operator new of this process is counted while g_count_allocs is set
// (the core is linked statically, so its allocations come through here too).
namespace {
std::atomic<bool> g_count_allocs{false};
std::atomic<int64_t> g_allocs{0};
}  // namespace

void* operator new(std::size_t n) {
  if (g_count_allocs.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

const char* kUsage = R"(usage: fastspec-bench --target PATH [options]

Plain vs speculative decoding speed of one GGUF / safetensors model (the target).

  --target PATH          target model file (required)
  --draft PATH|ngram|none  drafter: a draft model file, prompt lookup, or none (default none:
                         the speculative row is then plain decoding through the same loop)
  --k N                  draft tokens per step; 0 = adaptive controller (default 0)
  --k-max N              the controller's upper bound on k (default 8)
  --threads N            worker threads; 0 = physical cores (default 0)
  --n-gen N              tokens generated per run (default 128; stop tokens are ignored)
  --prompt-len N         synthetic prompt of N ids: a repeated 32-id pattern of ordinary
                         (non-special) ids, so prompt lookup finds matches (default 128)
  --prompt-ids FILE      prompt ids, whitespace-separated (bench/prompt_ids.py writes them);
                         overrides --prompt-len
  --repeats N            runs of each mode; the median run is reported (default 3)
  --temperature T        0 = greedy (default 0)
  --top-k N, --top-p P   sampling filters (default off)
  --seed N               sampler seed (default 0)
  --context N            KV-cache positions; 0 = prompt + n-gen + k-max + 1 (default 0)
  --precision q8|f32     matmul precision (default: the engine's, q8)
  --kv-type f16|f32      KV-cache element type (default: the engine's, f16)
  --membw MIB            instead of a model: streaming read bandwidth of a MIB buffer (huge pages
                         requested) with 1 .. --threads threads, median of 5 (the decode floor:
                         bytes read per token / this)
  --check-allocs N       instead of timing: one session per mode, 4 warm-up steps, then count
                         heap allocations over the next N steps and print them (the hot path
                         should allocate nothing); exit 4 if the plain mode allocated
  -h, --help             this text

Exit status: 0; 1 on an error; 2 on a bad argument; 3 when greedy speculative output differs
from greedy plain output (a losslessness bug).
)";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Args {
  std::string target, draft = "none", prompt_ids;
  int32_t k = 0, k_max = 8, threads = 0, n_gen = 128, prompt_len = 128, repeats = 3, top_k = 0;
  float temperature = 0.0f, top_p = 1.0f;
  uint64_t seed = 0;
  int64_t context = 0, check_allocs = 0, membw_mib = 0;
  std::string precision, kv_type;
};

int64_t parse_int(const std::string& flag, const std::string& v, int64_t lo) {
  size_t used = 0;
  long long x = 0;
  try {
    x = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v.size() || x < lo)
    throw UsageError(flag + ": expected an integer >= " + std::to_string(lo) + ", got '" + v + "'");
  return x;
}

float parse_float(const std::string& flag, const std::string& v) {
  size_t used = 0;
  float x = 0;
  try {
    x = std::stof(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v.size()) throw UsageError(flag + ": expected a number, got '" + v + "'");
  return x;
}

// Accepts "--flag value" and "--flag=value". Returns false for --help.
bool parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i], v;
    if (flag == "-h" || flag == "--help") return false;
    if (flag.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + flag + "'");
    const size_t eq = flag.find('=');
    if (eq != std::string::npos) {
      v = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else {
      if (i + 1 >= argc) throw UsageError(flag + ": missing value");
      v = argv[++i];
    }
    if (flag == "--target") a.target = v;
    else if (flag == "--draft") a.draft = v;
    else if (flag == "--prompt-ids") a.prompt_ids = v;
    else if (flag == "--k") a.k = static_cast<int32_t>(parse_int(flag, v, 0));
    else if (flag == "--k-max") a.k_max = static_cast<int32_t>(parse_int(flag, v, 1));
    else if (flag == "--threads") a.threads = static_cast<int32_t>(parse_int(flag, v, 0));
    else if (flag == "--n-gen") a.n_gen = static_cast<int32_t>(parse_int(flag, v, 1));
    else if (flag == "--prompt-len") a.prompt_len = static_cast<int32_t>(parse_int(flag, v, 1));
    else if (flag == "--repeats") a.repeats = static_cast<int32_t>(parse_int(flag, v, 1));
    else if (flag == "--top-k") a.top_k = static_cast<int32_t>(parse_int(flag, v, 0));
    else if (flag == "--seed") a.seed = static_cast<uint64_t>(parse_int(flag, v, 0));
    else if (flag == "--context") a.context = parse_int(flag, v, 0);
    else if (flag == "--check-allocs") a.check_allocs = parse_int(flag, v, 1);
    else if (flag == "--membw") a.membw_mib = parse_int(flag, v, 1);
    else if (flag == "--precision") a.precision = v;
    else if (flag == "--kv-type") a.kv_type = v;
    else if (flag == "--temperature") a.temperature = parse_float(flag, v);
    else if (flag == "--top-p") a.top_p = parse_float(flag, v);
    else throw UsageError("unknown option '" + flag + "'");
  }
  if (a.target.empty() && a.membw_mib == 0) throw UsageError("--target is required");
  if (a.draft.empty()) throw UsageError("--draft: expected a path, 'ngram' or 'none'");
  return true;
}

std::vector<int32_t> read_prompt_ids(const std::string& path, int64_t vocab) {
  std::ifstream f(path);
  if (!f) throw UsageError("--prompt-ids: cannot open '" + path + "'");
  std::vector<int32_t> ids;
  std::string word;
  while (f >> word) {
    const std::string where = path + ": id " + std::to_string(ids.size() + 1);
    size_t used = 0;
    long long x = -1;
    try {
      x = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != word.size()) throw UsageError(where + " is '" + word + "', not an integer");
    if (x < 0 || x >= vocab)
      throw UsageError(where + " is " + word + ", outside the vocabulary of " + std::to_string(vocab));
    ids.push_back(static_cast<int32_t>(x));
  }
  if (ids.empty()) throw UsageError(path + ": no ids (expected whitespace-separated integers)");
  return ids;
}

// A repeated 32-id pattern of ids from the upper three quarters of the vocabulary (special and
// control tokens usually sit at the start), so prompt lookup has repeats to find.
std::vector<int32_t> synthetic_prompt(int64_t n, int64_t vocab) {
  const int64_t lo = vocab / 4, span = vocab - lo;
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(lo + ((i % 32) * 7919 + 13) % span);
  return ids;
}

struct Run {
  fastspec::SessionStats stats;
  std::vector<int32_t> tokens;
  double decode_tps = 0, prefill_tps = 0;
};

Run run_once(fastspec::Engine& eng, const std::vector<int32_t>& prompt, const fastspec::SamplingOptions& s) {
  std::unique_ptr<fastspec::Session> sess = eng.start(prompt, s, {});
  Run r;
  while (!sess->finished()) {
    const std::vector<int32_t>& got = sess->step();
    r.tokens.insert(r.tokens.end(), got.begin(), got.end());
  }
  r.stats = sess->stats();
  const auto& st = r.stats;
  r.decode_tps = st.tokens > 1 && st.decode_s > 0 ? (st.tokens - 1) / st.decode_s : 0;
  r.prefill_tps = st.prefill_s > 0 ? st.prompt_tokens / st.prefill_s : 0;
  return r;
}

// Heap allocations during `steps` steps after 4 warm-up steps (prefill included in the warm-up).
int64_t count_allocs(fastspec::Engine& eng, const std::vector<int32_t>& prompt, fastspec::SamplingOptions s,
                     int64_t steps) {
  s.max_tokens = 1 << 30;
  std::unique_ptr<fastspec::Session> sess = eng.start(prompt, s, {});
  for (int i = 0; i < 4; ++i) sess->step();
  g_allocs.store(0);
  g_count_allocs.store(true);
  for (int64_t i = 0; i < steps && !sess->finished(); ++i) sess->step();
  g_count_allocs.store(false);
  return g_allocs.load();
}

// The median run by decode tok/s (the lower middle when even).
Run median_run(std::vector<Run> runs) {
  std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.decode_tps < b.decode_tps; });
  return runs[(runs.size() - 1) / 2];
}

void print_row(const char* name, const Run& r, double plain_tps) {
  const auto& st = r.stats;
  const int64_t passes = st.target_passes - 1;  // decode passes (the prefill is one)
  const double per_pass = passes > 0 ? static_cast<double>(st.tokens - 1) / passes : 0;
  char accept[16] = "-", mean_k[16] = "-";
  if (st.drafted > 0) {
    std::snprintf(accept, sizeof accept, "%.3f", static_cast<double>(st.accepted) / st.drafted);
    std::snprintf(mean_k, sizeof mean_k, "%.2f", passes > 0 ? static_cast<double>(st.drafted) / passes : 0.0);
  }
  std::printf("%-8s %10.1f %10.1f %7.2fx %7s %8.2f %6s %8lld %9.3f %9.3f %9.3f %9.3f\n", name, r.decode_tps,
              r.prefill_tps, plain_tps > 0 ? r.decode_tps / plain_tps : 0.0, accept, per_pass, mean_k,
              static_cast<long long>(passes), st.decode_s, st.draft_s, st.verify_s, st.sample_s);
}

// Streaming read bandwidth: each thread sums its contiguous share of a buffer (4 independent 64-bit
// accumulators, so the loads are not serialized); GB/s = buffer bytes / wall time, median of 5.
int run_membw(const Args& a) {
  const size_t bytes = static_cast<size_t>(a.membw_mib) << 20, huge = size_t{2} << 20;
  void* mem = mmap(nullptr, bytes + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw std::runtime_error("--membw: cannot map the buffer");
  uint64_t* buf = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(mem) + huge - 1) / huge * huge);
#ifdef MADV_HUGEPAGE
  madvise(buf, bytes, MADV_HUGEPAGE);
#endif
  const size_t n = bytes / 8;
  for (size_t i = 0; i < n; ++i) buf[i] = i;
  const int max_threads = a.threads > 0 ? a.threads : static_cast<int>(std::thread::hardware_concurrency());
  std::printf("streaming read of %lld MiB (huge pages requested), median of 5\n", static_cast<long long>(a.membw_mib));
  for (int th = 1; th <= max_threads; ++th) {
    std::vector<double> gbs;
    for (int rep = 0; rep < 5; ++rep) {
      std::vector<uint64_t> sums(static_cast<size_t>(th));
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<std::thread> ts;
      for (int k = 0; k < th; ++k)
        ts.emplace_back([&, k] {
          const size_t lo = n / th * k, hi = k + 1 == th ? n : n / th * (k + 1);
          uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          for (size_t i = lo; i + 4 <= hi; i += 4) s0 += buf[i], s1 += buf[i + 1], s2 += buf[i + 2], s3 += buf[i + 3];
          sums[static_cast<size_t>(k)] = s0 + s1 + s2 + s3;
        });
      for (auto& t : ts) t.join();
      gbs.push_back(static_cast<double>(bytes) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9);
    }
    std::sort(gbs.begin(), gbs.end());
    std::printf("threads %d: %.1f GB/s\n", th, gbs[2]);
  }
  munmap(mem, bytes + huge);
  return 0;
}

int run(const Args& a) {
  if (a.membw_mib > 0) return run_membw(a);
  fastspec::EngineOptions eo;
  eo.threads = a.threads;
  eo.context = a.context;
  if (!a.precision.empty()) eo.precision = a.precision;
  if (!a.kv_type.empty()) eo.kv_type = a.kv_type;
  fastspec::SpecOptions spec;
  spec.draft = a.draft == "none" ? "" : a.draft;
  spec.k = a.k;
  spec.k_max = std::max(a.k_max, a.k);
  fastspec::SamplingOptions s;
  s.temperature = a.temperature;
  s.top_k = a.top_k;
  s.top_p = a.top_p;
  s.seed = a.seed;
  s.max_tokens = a.n_gen;

  int64_t vocab = 0;
  try {
    vocab = fastspec::ModelFile::open(a.target)->config().vocab_size;
  } catch (const fastspec::Error& e) {
    throw std::runtime_error(std::string("--target: ") + e.what());
  }
  const std::vector<int32_t> prompt =
      a.prompt_ids.empty() ? synthetic_prompt(a.prompt_len, vocab) : read_prompt_ids(a.prompt_ids, vocab);
  if (eo.context == 0) eo.context = static_cast<int64_t>(prompt.size()) + a.n_gen + spec.k_max + 1;
  if (a.check_allocs > 0)  // room for the warm-up and the counted steps (k_max + 1 tokens each)
    eo.context = std::max<int64_t>(eo.context, static_cast<int64_t>(prompt.size()) + (a.check_allocs + 5) * (spec.k_max + 1) + 1);
  // Both engines load before any run, so a bad draft fails at once (the target's pages are mapped
  // twice but held once by the OS).
  fastspec::Engine plain_eng(a.target, eo);
  std::unique_ptr<fastspec::Engine> spec_eng;
  try {
    spec_eng = std::make_unique<fastspec::Engine>(a.target, eo, spec);
  } catch (const fastspec::Error& e) {
    throw std::runtime_error(std::string("--draft: ") + e.what());
  }
  const int threads = plain_eng.threads();
  const std::string arch = plain_eng.config().architecture;
  if (a.check_allocs > 0) {
    const int64_t plain_allocs = count_allocs(plain_eng, prompt, s, a.check_allocs);
    const int64_t spec_allocs = count_allocs(*spec_eng, prompt, s, a.check_allocs);
    std::printf("allocations in %lld steps after warm-up: plain %lld, spec (%s) %lld\n",
                static_cast<long long>(a.check_allocs), static_cast<long long>(plain_allocs), a.draft.c_str(),
                static_cast<long long>(spec_allocs));
    return plain_allocs == 0 ? 0 : 4;
  }
  // Repeats alternate plain and speculative runs, so a change in machine load hits both alike.
  std::vector<Run> plain_runs, spec_runs;
  for (int32_t i = 1; i <= a.repeats; ++i) {
    plain_runs.push_back(run_once(plain_eng, prompt, s));
    spec_runs.push_back(run_once(*spec_eng, prompt, s));
    std::fprintf(stderr, "run %d/%d (%d threads): plain %.1f tok/s, spec %.1f tok/s\n", i, a.repeats, threads,
                 plain_runs.back().decode_tps, spec_runs.back().decode_tps);
  }
  const Run plain = median_run(plain_runs), spec_run = median_run(spec_runs);

  std::printf("target   %s (%s)\n", a.target.c_str(), arch.c_str());
  std::printf("draft    %s   k %s (k_max %d)   threads %d   temperature %g   seed %llu\n", a.draft.c_str(),
              a.k ? std::to_string(a.k).c_str() : "adaptive", spec.k_max, threads, a.temperature,
              static_cast<unsigned long long>(a.seed));
  std::printf("prompt   %zu ids (%s)   n_gen %d   median of %d runs\n\n", prompt.size(),
              a.prompt_ids.empty() ? "synthetic" : a.prompt_ids.c_str(), a.n_gen, a.repeats);
  std::printf("%-8s %10s %10s %8s %7s %8s %6s %8s %9s %9s %9s %9s\n", "mode", "decode/s", "prefill/s", "speedup",
              "accept", "tok/pass", "mean_k", "passes", "decode_s", "draft_s", "verify_s", "sample_s");
  print_row("plain", plain, plain.decode_tps);
  print_row("spec", spec_run, plain.decode_tps);

  const auto& by_pos = spec_run.stats.accepted_by_position;
  if (spec_run.stats.drafted > 0) {
    std::printf("\naccepted by draft position:");
    for (size_t i = 0; i < by_pos.size(); ++i) std::printf(" %lld", static_cast<long long>(by_pos[i]));
    std::printf("\n");
  }
  if (a.temperature == 0) {  // every run, plain and speculative, against the first plain run
    const std::vector<int32_t>& ref = plain_runs[0].tokens;
    for (const std::vector<Run>* runs : {&plain_runs, &spec_runs}) {
      for (size_t r = 0; r < runs->size(); ++r) {
        const std::vector<int32_t>& q = (*runs)[r].tokens;
        if (q == ref) continue;
        size_t i = 0;
        while (i < ref.size() && i < q.size() && ref[i] == q[i]) ++i;
        std::printf("greedy output: DIFFERS: %s run %zu at token %zu of %zu\n", runs == &plain_runs ? "plain" : "spec",
                    r + 1, i, ref.size());
        return 3;
      }
    }
    std::printf("greedy output: identical (%zu tokens, all %d runs of each mode)\n", ref.size(), a.repeats);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  try {
    if (!parse_args(argc, argv, a)) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    return run(a);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "fastspec-bench: error: %s\n(see fastspec-bench --help)\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fastspec-bench: error: %s\n", e.what());
    return 1;
  }
}

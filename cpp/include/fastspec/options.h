// Options, one struct per concern; defaults documented on each field. Bound to Python once.
#pragma once
#include <cstdint>
#include <string>

namespace fastspec {

struct EngineOptions {
  int threads = 0;         // worker threads; 0 = number of physical cores
  int64_t context = 4096;  // KV-cache positions per session (prompt + generated), <= model's context
  // Matmul precision: "q8" (default): activations quantized per row to 8-bit blocks and dotted
  // with integer instructions, as llama.cpp does; "f32": float32 activations against the
  // dequantized weights (the reference precision, matches transformers most closely; slower).
  std::string precision = "q8";
  // KV-cache element type: "f16" (default: half the memory and half the attention read traffic of
  // "f32"; K/V rounded to nearest-even half) | "f32".
  std::string kv_type = "f16";
  // true (default): the backend copies each weight at load into its own memory (huge pages where
  // the OS grants them) and releases the file's pages: faster reads, the same RSS. false: read
  // the weights from the file mapping (lower load time, pages shared with other processes), except
  // that precision "q8" always repacks Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K weights into its
  // kernels' 16-row panels (about the stored size; the file's pages are released as they are packed).
  bool copy_weights = true;
  // true: in precision "q8", an F16/BF16/F32 output layer (and the embedding tied to it) is
  // quantized to Q8_0 at load and runs on the integer kernels, as the other Q8_0 weights. Off by
  // default: it changes the logits (by the Q8_0 rounding of the output weights). It pays where the
  // output layer is a large float matrix, e.g. AutoAWQ checkpoints (lm_head in F16).
  bool output_q8 = false;
  // MB of K/V the engine's prefix cache may hold (0 = off): a finished session leaves its K/V
  // there, and Engine::start copies the longest cached prefix of a new prompt instead of
  // prefilling it (the next chat turn, a shared system prompt). The copied bits are those a
  // prefill computes, so no token changes. Scheduler sets it from SchedulerOptions.
  int64_t prefix_cache_mb = 0;
};

struct SamplingOptions {
  float temperature = 0.0f;  // 0 = greedy (argmax, ties -> lowest id); > 0 scales logits by 1/T
  int32_t top_k = 0;         // keep the k most probable tokens; 0 = off
  float top_p = 1.0f;        // keep the smallest most-probable set with mass >= top_p; 1 = off
  uint64_t seed = 0;         // seed of the request's generator (the same seed gives the same text)
  int64_t max_tokens = 256;  // stop after this many generated tokens (>= 1)
};

// Speculative decoding. With draft == "" the engine decodes plainly (one target pass per token).
struct SpecOptions {
  std::string draft;            // "" (none) | "ngram" (prompt lookup) | path of a draft model file
  int32_t k = 0;                // draft tokens per step, fixed; 0 = chosen each step by the controller
  int32_t k_max = 8;            // the controller's upper bound on k
  int32_t ngram_min = 1;        // n-gram drafter: shortest suffix length to look up
  int32_t ngram_max = 4;        // n-gram drafter: longest suffix length (longest match wins)
  int32_t tree_nodes = 0;       // n-gram, EAGLE and Medusa drafters: propose a token tree of up to
                                //   this many nodes (n-gram: the continuations of several matches,
                                //   sharing prefixes; EAGLE: EAGLE-2's dynamic tree; Medusa: each
                                //   head's top tokens, best paths first; at most 63); 0 = chains only
  int32_t lookup_min = 0;       // with a draft model or head: prompt lookup drafts first wherever
                                //   the context's last lookup_min (up to max(lookup_min, ngram_max))
                                //   tokens occurred earlier, the model or head elsewhere; 0 = off
  float draft_min_prob = 0.3f;  // model drafter: stop drafting once the draft's own top
                                //   probability falls below this (0 = always draft k)
  float verify_row_cost = 0.12f;  // sampled sessions' fixed cost model (spec/controller.h): the
                                //   cost of one more verify row as a fraction of a plain target
                                //   pass. Sampled k may not depend on timings (a seed must give
                                //   the same text), so this stands in for the measured value:
                                //   0.09-0.10 for SmolLM2 on 2 CPU cores (bench/RESULTS.md,
                                //   session 10). Greedy sessions measure it. >= 0
  std::string trace_path;       // JSONL trace of every proposal and its outcome ("" = off)
};

}  // namespace fastspec

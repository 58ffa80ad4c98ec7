// Options, one struct per concern; defaults documented on each field. Bound to Python once.
#pragma once
#include <cstdint>

namespace fastspec {

struct EngineOptions {
  int threads = 0;         // worker threads; 0 = number of physical cores
  int64_t context = 4096;  // KV-cache positions per session (prompt + generated), <= model's context
};

struct SamplingOptions {
  float temperature = 0.0f;  // 0 = greedy (argmax, ties -> lowest id); > 0 scales logits by 1/T
  int32_t top_k = 0;         // keep the k most probable tokens; 0 = off
  float top_p = 1.0f;        // keep the smallest most-probable set with mass >= top_p; 1 = off
  uint64_t seed = 0;         // seed of the request's generator (the same seed gives the same text)
  int64_t max_tokens = 256;  // stop after this many generated tokens (>= 1)
};

}  // namespace fastspec

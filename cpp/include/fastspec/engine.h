// The public C++ API: an Engine owns a model (mapped file + backend); a Session generates for one
// request, pull-based: each step() runs one decode round and returns the tokens it committed.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fastspec/model_config.h"
#include "fastspec/options.h"

namespace fastspec {

class Transformer;
class Backend;
class KvCache;
class Rng;

struct SessionStats {
  int64_t prompt_tokens = 0;
  int64_t tokens = 0;          // generated (committed) tokens
  int64_t target_passes = 0;   // forward passes of the target (prefill counts as one)
  double prefill_s = 0;        // prompt forward
  double decode_s = 0;         // everything after the prefill (forwards + sampling)
  double sample_s = 0;         // sampling alone
};

class Session {
 public:
  ~Session();
  // One round: prefill (first call) or one decode pass; returns the tokens committed (empty once
  // finished). Stops at an id in stop_ids (the stop token is returned, then finished) or max_tokens.
  std::vector<int32_t> step();
  bool finished() const { return finished_; }
  const std::string& finish_reason() const { return finish_reason_; }  // "stop" | "length" | ""
  const SessionStats& stats() const { return stats_; }

 private:
  friend class Engine;
  Session() = default;
  const Transformer* model_ = nullptr;
  Backend* backend_ = nullptr;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<Rng> rng_;
  SamplingOptions sampling_;
  std::vector<int32_t> prompt_, stop_ids_;
  std::vector<float> logits_;  // [vocab] of the last committed position
  int32_t last_ = -1;
  bool finished_ = false;
  std::string finish_reason_;
  SessionStats stats_;
};

// A KV cache bound to an engine: forward() appends tokens and returns their logits. For scoring
// text and for tests of the cache (chained calls, rollback).
class Context {
 public:
  ~Context();
  std::vector<float> forward(const std::vector<int32_t>& ids);  // logits [ids.size(), vocab]
  void truncate(int64_t n);                                      // keep positions [0, n)
  int64_t length() const;

 private:
  friend class Engine;
  Context() = default;
  const Transformer* model_ = nullptr;
  Backend* backend_ = nullptr;
  std::unique_ptr<KvCache> kv_;
};

class Engine {
 public:
  Engine(const std::string& path, const EngineOptions& opts);
  ~Engine();
  const ModelConfig& config() const;
  const EngineOptions& options() const { return opts_; }
  int threads() const;

  // logits [ids.size(), vocab] of ids run from an empty context.
  std::vector<float> logits(const std::vector<int32_t>& ids);
  std::unique_ptr<Context> new_context();
  std::unique_ptr<Session> start(const std::vector<int32_t>& prompt, const SamplingOptions& sampling,
                                 const std::vector<int32_t>& stop_ids);

 private:
  EngineOptions opts_;
  std::unique_ptr<Transformer> model_;
  std::unique_ptr<Backend> backend_;
};

}  // namespace fastspec

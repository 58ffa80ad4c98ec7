// The public C++ API: an Engine owns a target model (mapped file + backend) and optionally a
// drafter; a Session generates for one request, pull-based: each step() runs one draft -> verify
// -> accept round and returns the tokens it committed.
#pragma once
#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "fastspec/model_config.h"
#include "fastspec/options.h"
#include "fastspec/tensor.h"

namespace fastspec {

class Transformer;
class ModelFile;
class Backend;
class KvCache;
class Rng;
class Drafter;
class KController;
struct Proposal;
struct TreeOutcome;
struct SeqRows;
struct Features;
struct SharedPrefixCache;
struct ControllerMemory;
class EagleHead;
class MedusaHead;

// The log-probability of a generated token under the target model (log-softmax of its raw
// logits: temperature 1, no top-k / top-p), and the top alternatives at that position.
struct TokenLogprob {
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // [top_logprobs] (id, logprob), most probable first
};

struct SessionStats {
  int64_t prompt_tokens = 0;
  int64_t tokens = 0;          // generated (committed) tokens
  int64_t target_passes = 0;   // target forward passes (the prefill counts as one)
  int64_t drafted = 0;         // draft tokens proposed and verified
  int64_t accepted = 0;        // of those, accepted
  std::vector<int64_t> accepted_by_position;  // [k_max] accepts at draft position (tree: depth) i
  int64_t tree_passes = 0;     // verify passes over a token tree (SpecOptions::tree_nodes)
  int64_t tree_nodes = 0;      // nodes those trees proposed (inside drafted)
  double prefill_s = 0;        // prompt forward
  double decode_s = 0;         // everything after the prefill
  double draft_s = 0;          // drafting (inside decode_s)
  double verify_s = 0;         // target passes after the prefill (inside decode_s)
  double sample_s = 0;         // sampling and rejection sampling (inside decode_s)
  int64_t prefix_cached_tokens = 0;  // prompt positions copied from the engine's prefix cache
};

// The engine's prefix cache (EngineOptions::prefix_cache_mb): lookups at Engine::start, hits (a
// cached prefix of >= 1 token), tokens copied, entries and K/V bytes held.
struct PrefixCacheStats {
  int64_t lookups = 0, hits = 0, hit_tokens = 0, entries = 0, bytes = 0, budget_bytes = 0;
};

// Threads: one Engine may be used from several threads. Its sessions and contexts share one
// backend (weights, workspace, thread pool), so each compute call (Session::step,
// Context::forward, Engine::logits) holds the engine's compute lock for its duration: calls on one
// engine are serialized, never concurrent, and never deadlock (a waiting caller sleeps on the lock).
// Sessions interleave at step granularity, each with its own KV cache, and every token's logits are
// the same as when run alone. Sessions and contexts must not outlive their engine (Python keeps
// the engine alive for them).

// Live Session / Context objects in this process (leak checks in tests).
int64_t live_sessions();
int64_t live_contexts();

class Session {
 public:
  ~Session();
  // One round: prefill (first call), else draft k tokens, verify them in one target pass, accept a
  // prefix, add the recovered or bonus token. Returns the committed tokens (empty once finished).
  // Stops after an id in stop_ids (which is returned) or at max_tokens. The returned vector is the
  // session's own buffer, valid until the next step(): a plain or n-gram greedy step allocates
  // nothing once warm.
  const std::vector<int32_t>& step();
  bool finished() const { return finished_; }
  // The tokens the last step() or Engine::step_batch round committed (valid until the next one).
  const std::vector<int32_t>& committed() const { return committed_; }
  // With logprobs on (set_logprobs), one entry per committed token of the last round. They come
  // from the target pass that decided the token (a verify pass row is bit-equal to the plain
  // decode step's, so they equal plain decoding's).
  const std::vector<TokenLogprob>& committed_logprobs() const { return committed_lp_; }
  void set_logprobs(int top_n);  // -1: off (default); 0..20: the token's logprob and top_n others
  // The most draft tokens a round may verify (a scheduler lowers it as its batch fills; default:
  // no cap beyond SpecOptions::k_max).
  void set_draft_cap(int32_t k) { draft_cap_ = k < 0 ? 0 : k; }
  int64_t cached_length() const;  // positions in this session's KV cache
  const std::string& finish_reason() const { return finish_reason_; }  // "stop" | "length" | ""
  const SessionStats& stats() const { return stats_; }

 private:
  friend class Engine;
  Session();
  // A round in two halves around the target pass (session.cpp): plan() picks the pass's rows
  // (at most budget), finish() consumes its logits and commits.
  bool plan(int64_t budget, SeqRows* out);
  const std::vector<int32_t>& finish(const float* logits, double pass_s);
  const std::vector<int32_t>& commit();  // commits committed_ (cut at a stop / max_tokens)
  // committed_lp_ from the pass's logits rows: committed token j from row j, or rows[j] (a tree)
  void record_logprobs(const float* logits, const int32_t* rows = nullptr);

  const Transformer* model_ = nullptr;
  Backend* backend_ = nullptr;
  std::mutex* compute_mu_ = nullptr;  // the engine's compute lock
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<Rng> rng_;
  std::unique_ptr<Drafter> drafter_;
  std::unique_ptr<KController> controller_;
  std::unique_ptr<std::ofstream> trace_;
  SamplingOptions sampling_;
  std::vector<int32_t> context_, stop_ids_;  // context_: prompt + committed tokens
  int64_t prompt_len_ = 0;
  std::vector<float> logits_;  // [k_max + 1, vocab] scratch for verify passes
  // Per-step scratch, reused (sized at start()): pass rows, noise, committed tokens, the proposal.
  std::vector<int32_t> rows_, committed_;  // [k_max + 1]
  std::vector<double> u_;                  // [k_max + 1]
  std::unique_ptr<Proposal> prop_;
  // a tree pass: its rows' parents, the rows of the accepted path, the acceptance outcome
  std::vector<int32_t> row_parent_, keep_rows_;  // [nodes + 1]
  std::unique_ptr<TreeOutcome> tree_out_;
  bool pass_tree_ = false;
  int32_t pass_depth_ = 0;  // the planned pass's draft depth (a chain: its length)
  int32_t tree_nodes_ = 0;  // SpecOptions::tree_nodes
  int32_t pass_nodes_ = 0;  // the planned pass's tree budget (0: a chain was asked for)
  SharedPrefixCache* prefix_ = nullptr;  // the engine's (~Session leaves the K/V there)
  bool finished_ = false;
  std::string finish_reason_;
  SessionStats stats_;
  // The planned pass: k asked of the controller and n drafts proposed (-1, -1: a prefill chunk);
  // when planning started and ended (the drafting time).
  int32_t pass_k_ = 0, pass_n_ = 0;
  double plan_t0_ = 0, plan_t1_ = 0;
  int32_t draft_cap_ = 1 << 30;
  int top_logprobs_ = -1;
  std::vector<TokenLogprob> committed_lp_;
  // A draft head's features: the hidden states the drafter reads, recorded by every target pass
  // into feat_buf_ [rows of the pass, states, n_embd] (features_ points there) and handed to the drafter
  // for the positions the pass commits. Null when the drafter reads none.
  std::unique_ptr<Features> features_;
  std::vector<int32_t> feat_layers_;  // what features_->layers points to
  std::vector<float> feat_buf_;
  int64_t pass_base_ = 0;  // the cache length when the pass was planned
  friend class Scheduler;
};

// A KV cache bound to an engine: forward() appends tokens and returns their logits. For scoring
// text and for tests of the cache (chained calls, rollback).
class Context {
 public:
  ~Context();
  std::vector<float> forward(const std::vector<int32_t>& ids);  // logits [ids.size(), vocab]
  // Appends ids[T]; writes logits[n_logits, vocab] of the last n_logits tokens (1 <= n_logits <= T).
  void forward(const int32_t* ids, int64_t T, float* logits, int64_t n_logits);
  // The same, also recording hidden states layers[n_features] of every token into
  // features[T, n_features, n_embd] (numbered as Hugging Face's output_hidden_states: 0 the
  // embeddings, n_layers the final norm's output): the features a draft head is trained on.
  void forward(const int32_t* ids, int64_t T, float* logits, int64_t n_logits, const int32_t* layers,
               int64_t n_features, float* features);
  int64_t n_embd() const;
  int64_t n_layers() const;
  void truncate(int64_t n);                                      // keep positions [0, n)
  int64_t length() const;
  int64_t vocab_size() const;

 private:
  friend class Engine;
  Context();
  const Transformer* model_ = nullptr;
  Backend* backend_ = nullptr;
  std::mutex* compute_mu_ = nullptr;  // the engine's compute lock
  std::unique_ptr<KvCache> kv_;
};

class Engine {
 public:
  // spec.draft: "" (plain), "ngram", a draft model path (checked for compatibility: vocabulary,
  // tokenizer; ModelError explains a mismatch), or a draft head distilled from this target
  // (fastspec distill: EAGLE or Medusa; ModelError naming both files when it was distilled from
  // another target).
  Engine(const std::string& path, const EngineOptions& opts, const SpecOptions& spec = SpecOptions());
  ~Engine();
  const ModelConfig& config() const;
  const EngineOptions& options() const { return opts_; }
  const SpecOptions& spec() const { return spec_; }
  int threads() const;

  // logits [ids.size(), vocab] of ids run from an empty context.
  std::vector<float> logits(const std::vector<int32_t>& ids);
  std::unique_ptr<Context> new_context();
  // use_draft false: this session decodes plainly even when the engine has a drafter.
  std::unique_ptr<Session> start(const std::vector<int32_t>& prompt, const SamplingOptions& sampling,
                                 const std::vector<int32_t>& stop_ids, bool use_draft = true);
  // One round for several sessions of this engine in ONE target pass (continuous batching): in
  // the given order, each unfinished session plans its rows (the next chunk of its prompt, or its
  // last token + drafts) within what is left of max_batch_rows() rows; a session that finds no
  // room waits for a later round (callers rotate the order). One batched forward runs them all
  // (each weight read once), then each session accepts and samples from its own logits with its
  // own generator; s->committed() holds what it committed. Every session's tokens are exactly
  // those it gets from step() alone. InvalidArgument for a session of another engine or a
  // session given twice. Returns the number of sessions that ran.
  size_t step_batch(Session* const* sessions, size_t n);
  static int64_t max_batch_rows();
  // The prefix cache (EngineOptions::prefix_cache_mb): resize (0 = off: empties it) and stats.
  void set_prefix_cache_mb(int64_t mb);
  PrefixCacheStats prefix_cache_stats() const;

 private:
  EngineOptions opts_;
  SpecOptions spec_;
  std::unique_ptr<Transformer> model_, draft_model_;
  std::unique_ptr<EagleHead> eagle_;    // spec.draft names an EAGLE head (model/eagle_head.h)
  std::unique_ptr<MedusaHead> medusa_;  // or Medusa heads (model/medusa_head.h)
  std::unique_ptr<Backend> backend_;
  DType kv_type_ = DType::F16;
  std::mutex compute_mu_;  // serializes compute calls on backend_ (see "Threads" above)
  std::vector<float> batch_logits_;  // step_batch: [sum of the sessions' logits rows, vocab]
  std::unique_ptr<SharedPrefixCache> prefix_;
  std::unique_ptr<ControllerMemory> controller_memory_;  // greedy sessions' measurements (spec/controller.h)
  void load_head(const std::shared_ptr<const ModelFile>& head, const ModelFile& target);
  friend class Scheduler;
};

}  // namespace fastspec

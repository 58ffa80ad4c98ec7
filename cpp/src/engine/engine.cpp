// Engine (models, backend, draft compatibility) and Context. The generation loop is session.cpp.
#include "fastspec/engine.h"

#include <atomic>
#include <chrono>
#include <cmath>

#include "backend/cpu/cpu_backend.h"
#include "engine/prefix_cache.h"
#include "fastspec/model_file.h"
#include "fastspec/status.h"
#include "model/draft_head.h"
#include "model/eagle_head.h"
#include "model/kv_cache.h"
#include "model/medusa_head.h"
#include "model/transformer.h"
#include "spec/controller.h"
#include "spec/drafter.h"
#include "spec/tree.h"
#include "spec/sampler.h"

namespace fastspec {
namespace {
std::atomic<int64_t> g_live_contexts{0};

// A draft must speak the target's token ids: same vocabulary size and, where both files carry
// tokenizer data (GGUF), the same tokenizer kind, special ids and token texts.
void check_draft_compatible(const ModelFile& t, const ModelFile& d) {
  const std::string who = "draft '" + d.path() + "' does not match target '" + t.path() + "': ";
  if (t.config().vocab_size != d.config().vocab_size)
    throw ModelError(who + "vocabulary size " + std::to_string(d.config().vocab_size) + " vs " +
                     std::to_string(t.config().vocab_size));
  const char* keys[] = {"tokenizer.ggml.model", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"};
  for (const char* key : keys) {
    const MetaValue* a = meta_find(t.metadata(), key);
    const MetaValue* b = meta_find(d.metadata(), key);
    if (!a || !b) continue;
    const bool same = a->kind == MetaValue::Kind::String ? (b->kind == a->kind && a->s == b->s)
                                                         : (b->is_number() && a->is_number() && a->as_int() == b->as_int());
    auto show = [](const MetaValue* v) { return v->kind == MetaValue::Kind::String ? "'" + v->s + "'" : std::to_string(v->as_int()); };
    if (!same) throw ModelError(who + "tokenizer metadata '" + key + "' is " + show(b) + " vs " + show(a));
  }
  const MetaValue* ta = meta_find(t.metadata(), "tokenizer.ggml.tokens");
  const MetaValue* tb = meta_find(d.metadata(), "tokenizer.ggml.tokens");
  if (ta && tb) {
    if (ta->array_size() != tb->array_size())
      throw ModelError(who + "tokenizer has " + std::to_string(tb->array_size()) + " tokens vs " +
                       std::to_string(ta->array_size()));
    for (size_t i = 0; i < ta->strings.size() && i < tb->strings.size(); ++i)
      if (ta->strings[i] != tb->strings[i])
        throw ModelError(who + "token " + std::to_string(i) + " is '" + tb->strings[i] + "' vs '" + ta->strings[i] + "'");
  }
}

}  // namespace

Engine::Engine(const std::string& path, const EngineOptions& opts, const SpecOptions& spec)
    : opts_(opts), spec_(spec) {
  // The options are checked here, once, before any file is read (Python relies on these checks).
  // A session needs a prompt token and room for one generated token.
  if (opts_.context < 2) throw InvalidArgument("context must be >= 2 (got " + std::to_string(opts_.context) + ")");
  if (opts_.threads < 0) throw InvalidArgument("threads must be >= 0, 0 = one per physical core (got " + std::to_string(opts_.threads) + ")");
  if (spec_.k < 0) throw InvalidArgument("k must be >= 1, or 0 for the adaptive controller (got " + std::to_string(spec_.k) + ")");
  if (spec_.k_max < 1) throw InvalidArgument("k_max must be >= 1 (got " + std::to_string(spec_.k_max) + ")");
  if (spec_.k > spec_.k_max) spec_.k_max = spec_.k;
  if (spec_.tree_nodes < 0 || spec_.tree_nodes > kTreeMaxNodes)
    throw InvalidArgument("tree_nodes must be in [0, " + std::to_string(kTreeMaxNodes) + "], 0 = chains (got " +
                          std::to_string(spec_.tree_nodes) + ")");
  if (spec_.ngram_min < 1 || spec_.ngram_max < spec_.ngram_min)
    throw InvalidArgument("ngram lengths must satisfy 1 <= ngram_min <= ngram_max (got " +
                          std::to_string(spec_.ngram_min) + ", " + std::to_string(spec_.ngram_max) + ")");
  if (spec_.lookup_min < 0)
    throw InvalidArgument("lookup_min must be >= 0, 0 = off (got " + std::to_string(spec_.lookup_min) + ")");
  if (!(spec_.verify_row_cost >= 0.0f) || !std::isfinite(spec_.verify_row_cost))
    throw InvalidArgument("verify_row_cost must be a finite value >= 0, a fraction of a plain pass (got " +
                          std::to_string(spec_.verify_row_cost) + ")");
  Precision precision;
  if (opts_.precision == "q8") precision = Precision::q8;
  else if (opts_.precision == "f32") precision = Precision::f32;
  else throw InvalidArgument("precision must be 'q8' or 'f32' (got '" + opts_.precision + "')");
  if (opts_.prefix_cache_mb < 0)
    throw InvalidArgument("prefix_cache_mb must be >= 0, 0 = off (got " + std::to_string(opts_.prefix_cache_mb) + ")");
  prefix_ = std::make_unique<SharedPrefixCache>(opts_.prefix_cache_mb << 20);
  controller_memory_ = std::make_unique<ControllerMemory>();
  if (opts_.kv_type == "f16") kv_type_ = DType::F16;
  else if (opts_.kv_type == "f32") kv_type_ = DType::F32;
  else throw InvalidArgument("kv_type must be 'f16' or 'f32' (got '" + opts_.kv_type + "')");

  std::shared_ptr<const ModelFile> file = ModelFile::open(path);
  if (is_draft_head(*file))
    throw ModelError(path + ": is a draft head (" + file->config().architecture + "), not a model: pass it as "
                     "draft= with the target it was distilled from");
  model_ = std::make_unique<Transformer>(file);
  const ModelConfig& c = model_->config();
  if (c.context_length > 0 && opts_.context > c.context_length) opts_.context = c.context_length;
  std::shared_ptr<const ModelFile> dfile;
  if (!spec_.draft.empty() && spec_.draft != "ngram") dfile = ModelFile::open(spec_.draft);
  if (dfile && is_draft_head(*dfile)) load_head(dfile, *file);
  else if (dfile) {
    draft_model_ = std::make_unique<Transformer>(dfile);
    check_draft_compatible(*file, *dfile);
    const int64_t dctx = draft_model_->config().context_length;
    if (dctx > 0 && dctx < opts_.context)
      throw ModelError("draft '" + spec_.draft + "' has a context of " + std::to_string(dctx) +
                       " positions, less than the " + std::to_string(opts_.context) +
                       " this engine uses; pass context=" + std::to_string(dctx) + " or a larger draft");
  }
  const int threads = opts_.threads > 0 ? opts_.threads : cpu::physical_cores();
  backend_ = std::make_unique<cpu::CpuBackend>(threads, precision, opts_.copy_weights, opts_.output_q8);
  model_->bind(*backend_);
  if (draft_model_) draft_model_->bind(*backend_);
  if (eagle_) eagle_->bind(*backend_);
  if (medusa_) medusa_->bind(*backend_);
}

void Engine::load_head(const std::shared_ptr<const ModelFile>& head, const ModelFile& target) {
  if (head->config().architecture == "fastspec-eagle") {
    eagle_ = std::make_unique<EagleHead>(head);
    check_head_target(*head, eagle_->meta(), eagle_->n_embd(), target);
  } else {
    medusa_ = std::make_unique<MedusaHead>(head);
    check_head_target(*head, medusa_->meta(), medusa_->n_embd(), target);
  }
}

Engine::~Engine() = default;
int64_t live_contexts() { return g_live_contexts.load(); }
Context::Context() { ++g_live_contexts; }
Context::~Context() { --g_live_contexts; }

const ModelConfig& Engine::config() const { return model_->config(); }
int Engine::threads() const { return static_cast<cpu::CpuBackend*>(backend_.get())->threads(); }

std::vector<float> Engine::logits(const std::vector<int32_t>& ids) {
  if (static_cast<int64_t>(ids.size()) > opts_.context)
    throw InvalidArgument("logits: " + std::to_string(ids.size()) + " tokens exceed the context of " +
                          std::to_string(opts_.context));
  auto ctx = new_context();
  return ctx->forward(ids);
}

std::unique_ptr<Context> Engine::new_context() {
  const ModelConfig& c = model_->config();
  std::unique_ptr<Context> ctx(new Context());
  ctx->model_ = model_.get();
  ctx->backend_ = backend_.get();
  ctx->compute_mu_ = &compute_mu_;
  ctx->kv_ = std::make_unique<KvCache>(c.n_layers, opts_.context, c.n_kv_heads, c.head_dim, kv_type_);
  return ctx;
}

std::vector<float> Context::forward(const std::vector<int32_t>& ids) {
  const int64_t T = static_cast<int64_t>(ids.size());
  std::vector<float> out(static_cast<size_t>(T * model_->vocab_size()));
  forward(ids.data(), T, out.data(), T);
  return out;
}

void Context::forward(const int32_t* ids, int64_t T, float* logits, int64_t n_logits) {
  forward(ids, T, logits, n_logits, nullptr, 0, nullptr);
}

int64_t Context::n_embd() const { return model_->config().n_embd; }
int64_t Context::n_layers() const { return model_->config().n_layers; }

void Context::forward(const int32_t* ids, int64_t T, float* logits, int64_t n_logits, const int32_t* layers,
                      int64_t n_features, float* features) {
  const int64_t vocab = model_->vocab_size();
  if (T == 0) throw InvalidArgument("forward: ids is empty");
  if (n_logits < 1 || n_logits > T)
    throw InvalidArgument("forward: n_logits=" + std::to_string(n_logits) + " outside [1, " + std::to_string(T) + "]");
  for (int64_t i = 0; i < T; ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      throw InvalidArgument("token id " + std::to_string(ids[i]) + " outside the vocabulary of " + std::to_string(vocab));
  if (kv_->length() + T > kv_->n_ctx())
    throw InvalidArgument("forward: " + std::to_string(kv_->length()) + " cached + " + std::to_string(T) +
                          " new tokens exceed the context of " + std::to_string(kv_->n_ctx()));
  std::lock_guard<std::mutex> lock(*compute_mu_);  // one compute call at a time per engine
  Features f{layers, n_features, features};
  model_->forward(*backend_, *kv_, ids, T, logits, n_logits, n_features > 0 ? &f : nullptr);
}

void Context::truncate(int64_t n) { kv_->truncate(n); }
int64_t Context::length() const { return kv_->length(); }
int64_t Context::vocab_size() const { return model_->vocab_size(); }

std::unique_ptr<Session> Engine::start(const std::vector<int32_t>& prompt, const SamplingOptions& sampling,
                                       const std::vector<int32_t>& stop_ids, bool use_draft) {
  sampling_options_check(sampling);
  const ModelConfig& c = model_->config();
  if (prompt.empty()) throw InvalidArgument("the prompt is empty (it needs at least one token)");
  if (static_cast<int64_t>(prompt.size()) >= opts_.context)
    throw InvalidArgument("the prompt has " + std::to_string(prompt.size()) + " tokens but the context is " +
                          std::to_string(opts_.context) + " (prompt + at least one generated token must fit)");
  for (int32_t id : prompt)
    if (id < 0 || id >= c.vocab_size)
      throw InvalidArgument("token id " + std::to_string(id) + " outside the vocabulary of " +
                            std::to_string(c.vocab_size));
  std::unique_ptr<Session> s(new Session());
  s->model_ = model_.get();
  s->backend_ = backend_.get();
  s->compute_mu_ = &compute_mu_;
  s->kv_ = std::make_unique<KvCache>(c.n_layers, opts_.context, c.n_kv_heads, c.head_dim, kv_type_);
  s->prefix_ = prefix_.get();
  {  // the longest cached prefix of the prompt, leaving one token to prefill (its logits: the first token)
    std::lock_guard<std::mutex> lk(prefix_->mu);
    if (prefix_->cache.budget() > 0) {
      int64_t common = 0;
      const KvCache* src = prefix_->cache.lookup(prompt, static_cast<int64_t>(prompt.size()) - 1, &common);
      ++prefix_->lookups;
      if (src && common > 0) {
        s->kv_->copy_prefix(*src, common);
        ++prefix_->hits, prefix_->hit_tokens += common;
        s->stats_.prefix_cached_tokens = common;
      }
    }
  }
  s->rng_ = std::make_unique<Rng>(sampling.seed);
  s->sampling_ = sampling;
  const int32_t nodes = std::max(spec_.k_max, spec_.tree_nodes);  // the most draft rows of a pass
  s->context_.reserve(static_cast<size_t>(opts_.context + nodes + 2));
  s->context_ = prompt;
  s->rows_.reserve(static_cast<size_t>(nodes + 1));
  s->row_parent_.reserve(static_cast<size_t>(nodes + 1));
  s->keep_rows_.reserve(static_cast<size_t>(nodes + 1));
  s->committed_.reserve(static_cast<size_t>(nodes + 1));
  s->u_.reserve(static_cast<size_t>(nodes + 1));
  s->prop_ = std::make_unique<Proposal>();
  s->prop_->tokens.reserve(static_cast<size_t>(nodes));
  s->prop_->parent.reserve(static_cast<size_t>(nodes));
  s->prop_->q.resize(static_cast<size_t>(nodes));  // one-hot drafts reuse these (no allocation)
  s->tree_out_ = std::make_unique<TreeOutcome>();
  s->tree_nodes_ = spec_.tree_nodes;
  s->tree_out_->path.reserve(static_cast<size_t>(nodes));
  for (SparseDist& d : s->prop_->q) d.probs.reserve(1);
  s->prompt_len_ = static_cast<int64_t>(prompt.size());
  s->stop_ids_ = stop_ids;
  s->stats_.prompt_tokens = s->prompt_len_;
  s->stats_.accepted_by_position.assign(static_cast<size_t>(spec_.k_max), 0);
  s->logits_.resize(static_cast<size_t>((nodes + 1) * c.vocab_size));
  const ModelFile* draft_file = draft_model_ ? &draft_model_->file() : eagle_ ? &eagle_->file()
                                 : medusa_ ? &medusa_->file() : nullptr;  // its bytes read per draft token
  const double draft_cost = draft_file ? static_cast<double>(draft_file->mapped_bytes()) /
                                             static_cast<double>(model_->file().mapped_bytes())
                                       : 0.0;
  s->controller_ = std::make_unique<KController>(spec_, draft_cost, sampling.temperature > 0, controller_memory_.get());
  if (use_draft && spec_.draft == "ngram") s->drafter_ = make_ngram_drafter(spec_);
  else if (use_draft && draft_model_) s->drafter_ = make_model_drafter(*draft_model_, *backend_, opts_.context, kv_type_, spec_);
  else if (use_draft && eagle_) s->drafter_ = make_eagle_drafter(*eagle_, *model_, *backend_, opts_.context, kv_type_, spec_);
  else if (use_draft && medusa_) s->drafter_ = make_medusa_drafter(*medusa_, *backend_, spec_);
  if (s->drafter_ && spec_.lookup_min > 0 && spec_.draft != "ngram")
    s->drafter_ = make_lookup_first_drafter(spec_, std::move(s->drafter_));
  if (s->drafter_ && !s->drafter_->feature_layers().empty()) {
    s->feat_layers_ = s->drafter_->feature_layers();
    s->features_ = std::make_unique<Features>();
    s->features_->layers = s->feat_layers_.data();
    s->features_->n = static_cast<int64_t>(s->feat_layers_.size());
    s->feat_buf_.resize(static_cast<size_t>((nodes + 1) * s->features_->n * c.n_embd));  // a verify pass's rows
  }
  if (!spec_.trace_path.empty()) {
    s->trace_ = std::make_unique<std::ofstream>(spec_.trace_path, std::ios::app);
    if (!*s->trace_) throw IoError(spec_.trace_path + ": cannot open the trace file for writing");
  }
  return s;
}

int64_t Engine::max_batch_rows() { return Transformer::kMaxPass; }

size_t Engine::step_batch(Session* const* sessions, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!sessions[i] || sessions[i]->backend_ != backend_.get())
      throw InvalidArgument("step_batch: session " + std::to_string(i) + " does not belong to this engine");
    for (size_t j = 0; j < i; ++j)
      if (sessions[j] == sessions[i])
        throw InvalidArgument("step_batch: session " + std::to_string(i) + " is also session " + std::to_string(j));
  }
  std::lock_guard<std::mutex> lock(compute_mu_);
  std::vector<SeqRows> rows;  // small: one entry per session
  std::vector<Session*> ran;
  rows.reserve(n), ran.reserve(n);
  int64_t left = Transformer::kMaxPass, n_logits = 0;
  for (size_t i = 0; i < n; ++i) {
    Session* s = sessions[i];
    s->committed_.clear();
    s->committed_lp_.clear();
    SeqRows r;
    if (left < 1 || !s->plan(left, &r)) continue;
    rows.push_back(r), ran.push_back(s);
    left -= r.T, n_logits += r.n_logits;
  }
  if (ran.empty()) return 0;
  const int64_t vocab = model_->vocab_size();
  if (static_cast<int64_t>(batch_logits_.size()) < std::max<int64_t>(n_logits, 1) * vocab)
    batch_logits_.resize(static_cast<size_t>(std::max<int64_t>(n_logits, 1) * vocab));
  const auto t0 = std::chrono::steady_clock::now();
  model_->forward_batch(*backend_, rows.data(), static_cast<int64_t>(rows.size()), batch_logits_.data());
  const double pass_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const float* l = batch_logits_.data();
  for (size_t i = 0; i < ran.size(); ++i) {
    ran[i]->finish(l, pass_s);
    l += rows[i].n_logits * vocab;
  }
  return ran.size();
}

void Engine::set_prefix_cache_mb(int64_t mb) {
  if (mb < 0) throw InvalidArgument("prefix_cache_mb must be >= 0, 0 = off (got " + std::to_string(mb) + ")");
  std::lock_guard<std::mutex> lk(prefix_->mu);
  prefix_->cache.set_budget(mb << 20);
}

PrefixCacheStats Engine::prefix_cache_stats() const {
  std::lock_guard<std::mutex> lk(prefix_->mu);
  PrefixCacheStats st;
  st.lookups = prefix_->lookups, st.hits = prefix_->hits, st.hit_tokens = prefix_->hit_tokens;
  st.entries = static_cast<int64_t>(prefix_->cache.entries());
  st.bytes = prefix_->cache.bytes(), st.budget_bytes = prefix_->cache.budget();
  return st;
}

}  // namespace fastspec

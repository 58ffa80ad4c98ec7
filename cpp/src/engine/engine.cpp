// Engine and the plain decoding Session.
#include "fastspec/engine.h"

#include <chrono>

#include "backend/cpu/cpu_backend.h"
#include "fastspec/model_file.h"
#include "fastspec/status.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "spec/sampler.h"

namespace fastspec {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Engine::Engine(const std::string& path, const EngineOptions& opts) : opts_(opts) {
  std::shared_ptr<const ModelFile> file = ModelFile::open(path);
  model_ = std::make_unique<Transformer>(file);
  const ModelConfig& c = model_->config();
  if (opts_.context < 1) throw InvalidArgument("context must be >= 1 (got " + std::to_string(opts_.context) + ")");
  if (c.context_length > 0 && opts_.context > c.context_length) opts_.context = c.context_length;
  const int threads = opts_.threads > 0 ? opts_.threads : cpu::physical_cores();
  backend_ = std::make_unique<cpu::CpuBackend>(threads);
}

Engine::~Engine() = default;
Session::~Session() = default;

const ModelConfig& Engine::config() const { return model_->config(); }
int Engine::threads() const { return static_cast<cpu::CpuBackend*>(backend_.get())->threads(); }

std::vector<float> Engine::logits(const std::vector<int32_t>& ids) {
  const ModelConfig& c = model_->config();
  if (ids.empty()) throw InvalidArgument("logits: ids is empty");
  if (static_cast<int64_t>(ids.size()) > opts_.context)
    throw InvalidArgument("logits: " + std::to_string(ids.size()) + " tokens exceed the context of " +
                          std::to_string(opts_.context));
  KvCache kv(c.n_layers, static_cast<int64_t>(ids.size()), c.n_kv_heads, c.head_dim);
  std::vector<float> out(ids.size() * static_cast<size_t>(c.vocab_size));
  const int64_t T = static_cast<int64_t>(ids.size());
  model_->forward(*backend_, kv, ids.data(), T, out.data(), T);
  return out;
}

Context::~Context() = default;

std::unique_ptr<Context> Engine::new_context() {
  const ModelConfig& c = model_->config();
  std::unique_ptr<Context> ctx(new Context());
  ctx->model_ = model_.get();
  ctx->backend_ = backend_.get();
  ctx->kv_ = std::make_unique<KvCache>(c.n_layers, opts_.context, c.n_kv_heads, c.head_dim);
  return ctx;
}

std::vector<float> Context::forward(const std::vector<int32_t>& ids) {
  const int64_t vocab = model_->vocab_size(), T = static_cast<int64_t>(ids.size());
  if (T == 0) throw InvalidArgument("forward: ids is empty");
  for (int32_t id : ids)
    if (id < 0 || id >= vocab)
      throw InvalidArgument("token id " + std::to_string(id) + " outside the vocabulary of " + std::to_string(vocab));
  std::vector<float> out(static_cast<size_t>(T * vocab));
  model_->forward(*backend_, *kv_, ids.data(), T, out.data(), T);
  return out;
}

void Context::truncate(int64_t n) { kv_->truncate(n); }
int64_t Context::length() const { return kv_->length(); }

std::unique_ptr<Session> Engine::start(const std::vector<int32_t>& prompt, const SamplingOptions& sampling,
                                       const std::vector<int32_t>& stop_ids) {
  sampling_options_check(sampling);
  const ModelConfig& c = model_->config();
  if (prompt.empty()) throw InvalidArgument("the prompt is empty (it needs at least one token)");
  if (static_cast<int64_t>(prompt.size()) >= opts_.context)
    throw InvalidArgument("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " +
                          std::to_string(opts_.context) + " (prompt + at least one generated token)");
  for (int32_t id : prompt)
    if (id < 0 || id >= c.vocab_size)
      throw InvalidArgument("token id " + std::to_string(id) + " outside the vocabulary of " +
                            std::to_string(c.vocab_size));
  std::unique_ptr<Session> s(new Session());
  s->model_ = model_.get();
  s->backend_ = backend_.get();
  s->kv_ = std::make_unique<KvCache>(c.n_layers, opts_.context, c.n_kv_heads, c.head_dim);
  s->rng_ = std::make_unique<Rng>(sampling.seed);
  s->sampling_ = sampling;
  s->prompt_ = prompt;
  s->stop_ids_ = stop_ids;
  s->logits_.resize(static_cast<size_t>(c.vocab_size));
  s->stats_.prompt_tokens = static_cast<int64_t>(prompt.size());
  return s;
}

std::vector<int32_t> Session::step() {
  if (finished_) return {};
  const int64_t vocab = model_->vocab_size();
  const double t0 = now_s();
  if (last_ < 0) {  // prefill
    model_->forward(*backend_, *kv_, prompt_.data(), static_cast<int64_t>(prompt_.size()), logits_.data(), 1);
    stats_.prefill_s += now_s() - t0;
  } else {
    model_->forward(*backend_, *kv_, &last_, 1, logits_.data(), 1);
  }
  ++stats_.target_passes;
  const double t1 = now_s();
  const int32_t tok = sample_token(logits_.data(), vocab, sampling_, *rng_);
  const double t2 = now_s();
  stats_.sample_s += t2 - t1;
  if (stats_.target_passes > 1) stats_.decode_s += t2 - t0;
  else stats_.decode_s += t2 - t1;
  last_ = tok;
  ++stats_.tokens;
  for (int32_t s : stop_ids_)
    if (s == tok) {
      finished_ = true;
      finish_reason_ = "stop";
    }
  if (!finished_ && (stats_.tokens >= sampling_.max_tokens || kv_->length() + 1 > kv_->n_ctx())) {
    finished_ = true;
    finish_reason_ = "length";
  }
  return {tok};
}

}  // namespace fastspec

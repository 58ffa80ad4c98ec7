// ModelConfig from GGUF metadata ("{arch}.block_count", ...) and the tensors present.
#include <string>

#include "fastspec/status.h"
#include "io/gguf.h"

namespace fastspec {
namespace {

class Keys {
 public:
  Keys(const ModelFile& mf, std::string arch) : mf_(mf), arch_(std::move(arch)) {}
  const MetaValue* find(const std::string& suffix) const { return meta_find(mf_.metadata(), arch_ + "." + suffix); }
  int64_t i(const std::string& suffix, int64_t dflt) const {
    const MetaValue* v = find(suffix);
    if (!v) return dflt;
    if (!v->is_number()) bad(suffix, "a number");
    return v->as_int();
  }
  double f(const std::string& suffix, double dflt) const {
    const MetaValue* v = find(suffix);
    if (!v) return dflt;
    if (!v->is_number()) bad(suffix, "a number");
    return v->as_double();
  }
  std::string s(const std::string& suffix) const {
    const MetaValue* v = find(suffix);
    if (!v) return "";
    if (v->kind != MetaValue::Kind::String) bad(suffix, "a string");
    return v->s;
  }

 private:
  [[noreturn]] void bad(const std::string& suffix, const char* want) const {
    throw FormatError(mf_.path() + ": metadata '" + arch_ + "." + suffix + "' must be " + want);
  }
  const ModelFile& mf_;
  std::string arch_;
};

}  // namespace

ModelConfig config_from_gguf(const ModelFile& mf) {
  ModelConfig c;
  const MetaValue* arch = meta_find(mf.metadata(), "general.architecture");
  if (!arch) return c;  // a bare tensor container: nothing to configure
  if (arch->kind != MetaValue::Kind::String)
    throw FormatError(mf.path() + ": metadata 'general.architecture' must be a string");
  c.architecture = arch->s;
  const std::string& a = c.architecture;
  // fastspec-eagle: a draft head's decoder layer (model/eagle_head.h), a llama layer in the
  // rotate-half rope layout (not permuted by llama.cpp's converter).
  if (a == "llama" || a == "mistral" || a == "qwen2" || a == "smollm" || a == "fastspec-eagle") c.family = "llama";
  else if (a == "gemma3") c.family = "gemma3";

  Keys k(mf, a);
  c.n_layers = k.i("block_count", 0);
  c.n_embd = k.i("embedding_length", 0);
  c.n_ff = k.i("feed_forward_length", 0);
  c.n_heads = k.i("attention.head_count", 0);
  c.n_kv_heads = k.i("attention.head_count_kv", c.n_heads);
  c.head_dim = k.i("attention.key_length", c.n_heads > 0 ? c.n_embd / c.n_heads : 0);
  c.rope_dim = k.i("rope.dimension_count", c.head_dim);
  c.context_length = k.i("context_length", 0);
  c.rope_theta = k.f("rope.freq_base", 10000.0);
  c.norm_eps = k.f("attention.layer_norm_rms_epsilon", 1e-5);
  c.rope_scaling.type = k.s("rope.scaling.type");
  if (c.rope_scaling.type == "none") c.rope_scaling.type.clear();
  c.rope_scaling.factor = k.f("rope.scaling.factor", 1.0);
  c.rope_scaling.original_context = k.i("rope.scaling.original_context_length", 0);
  // llama-3 scaling: llama.cpp's converter bakes the per-frequency factors into rope_freqs.weight.
  if (mf.find("rope_freqs.weight") && c.rope_scaling.type.empty()) c.rope_scaling.type = "llama3";

  // Vocabulary: explicit key, else the tokenizer's token list, else the embedding's rows.
  c.vocab_size = k.i("vocab_size", 0);
  if (c.vocab_size == 0) {
    if (const MetaValue* toks = meta_find(mf.metadata(), "tokenizer.ggml.tokens"))
      c.vocab_size = static_cast<int64_t>(toks->array_size());
    else if (const TensorInfo* emb = mf.find("token_embd.weight"))
      c.vocab_size = emb->shape.front();
  }
  c.tied_embeddings = mf.find("token_embd.weight") && !mf.find("output.weight");
  c.qkv_bias = a == "qwen2";  // as llama.cpp: qwen2 layers have q/k/v biases; others may carry any
  // llama.cpp permutes Q/K rows of llama-architecture models into adjacent rotary pairs (ggml
  // "normal" rope); qwen2 and gemma3 keep the rotate-half ("neox") layout.
  c.rope_pairs_adjacent = (a == "llama" || a == "mistral" || a == "smollm");

  if (a == "gemma3") {
    c.sliding_window = k.i("attention.sliding_window", 0);
    c.sliding_window_pattern = k.i("attention.sliding_window_pattern", 6);
    c.rope_local_theta = k.f("rope.local_freq_base", 10000.0);
    c.query_pre_attn_scalar = static_cast<double>(c.head_dim);
    c.final_logit_softcap = k.f("final_logit_softcapping", 0.0);
    c.attn_logit_softcap = k.f("attn_logit_softcapping", 0.0);
    c.tied_embeddings = !mf.find("output.weight");
    c.norm_weight_plus_one = true;  // the converter stores gemma's (1 + w) norm weights
  }
  return c;
}

}  // namespace fastspec

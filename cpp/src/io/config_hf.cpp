// Hugging Face config.json -> ModelConfig. Missing keys take the transformers config class
// defaults (LlamaConfig, MistralConfig, Qwen2Config, Gemma3TextConfig), because real checkpoints
// omit keys equal to those defaults (gemma-3 text_config lists only a few). JSON null = absent.
#include "io/config_hf.h"

#include <cmath>

#include "fastspec/status.h"
#include "io/json.h"

namespace fastspec {
namespace {

// Typed access to one JSON object's fields. strict: a wrong type throws FormatError naming
// "<path>: field '<prefix><key>'"; not strict (unknown architectures): the field is ignored.
class Fields {
 public:
  Fields(const MetaValue* obj, std::string path, std::string prefix, bool strict)
      : obj_(obj), path_(std::move(path)), prefix_(std::move(prefix)), strict_(strict) {}

  const MetaValue* raw(const std::string& key) const {
    if (!obj_ || obj_->kind != MetaValue::Kind::Object) return nullptr;
    const MetaValue* v = obj_->get(key);
    return (v && v->kind != MetaValue::Kind::Null) ? v : nullptr;
  }
  bool has(const std::string& key) const { return raw(key) != nullptr; }

  // Non-negative integer (integral floats such as 2048.0 accepted).
  bool int_field(const std::string& key, int64_t& out) const {
    const MetaValue* v = raw(key);
    if (!v) return false;
    bool ok = v->is_number();
    int64_t x = 0;
    if (ok) {
      try { x = v->as_int(); } catch (const ModelError&) { ok = false; }
    }
    if (!ok || x < 0) return bad(key, "a non-negative integer", *v);
    out = x;
    return true;
  }
  bool float_field(const std::string& key, double& out) const {
    const MetaValue* v = raw(key);
    if (!v) return false;
    if (!v->is_number()) return bad(key, "a number", *v);
    out = v->as_double();
    return true;
  }
  bool bool_field(const std::string& key, bool& out) const {
    const MetaValue* v = raw(key);
    if (!v) return false;
    if (v->kind != MetaValue::Kind::Bool) return bad(key, "true or false", *v);
    out = v->b;
    return true;
  }
  bool string_field(const std::string& key, std::string& out) const {
    const MetaValue* v = raw(key);
    if (!v) return false;
    if (v->kind != MetaValue::Kind::String) return bad(key, "a string", *v);
    out = v->s;
    return true;
  }
  // A nested object's fields (absent/null/wrong type: an empty reader; wrong type throws if strict).
  Fields object_field(const std::string& key) const {
    const MetaValue* v = raw(key);
    if (v && v->kind != MetaValue::Kind::Object) {
      bad(key, "an object", *v);
      v = nullptr;
    }
    return Fields(v, path_, prefix_ + key + ".", strict_);
  }
  const MetaValue* array_field(const std::string& key) const {
    const MetaValue* v = raw(key);
    if (v && v->kind != MetaValue::Kind::Array) {
      bad(key, "an array", *v);
      return nullptr;
    }
    return v;
  }
  bool present() const { return obj_ && obj_->kind == MetaValue::Kind::Object; }
  bool strict() const { return strict_; }
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw FormatError(path_ + ": field '" + prefix_ + key + "' " + problem);
  }

 private:
  const MetaValue* obj_;
  std::string path_;
  std::string prefix_;
  bool strict_;

  static const char* kind_name(const MetaValue& v) {
    switch (v.kind) {
      case MetaValue::Kind::Bool: return "a bool";
      case MetaValue::Kind::Int: case MetaValue::Kind::UInt: return "an integer";
      case MetaValue::Kind::Float: return "a float";
      case MetaValue::Kind::String: return "a string";
      case MetaValue::Kind::Array: return "an array";
      case MetaValue::Kind::Object: return "an object";
      default: return "null";
    }
  }
  bool bad(const std::string& key, const char* want, const MetaValue& got) const {
    if (!strict_) return false;
    std::string shown;
    if (got.kind == MetaValue::Kind::Int) shown = " " + std::to_string(got.i);
    else if (got.kind == MetaValue::Kind::Float) shown = " " + std::to_string(got.f);
    else if (got.kind == MetaValue::Kind::String) shown = " \"" + json_snippet(got.s) + "\"";
    fail(key, std::string("must be ") + want + ", got " + kind_name(got) + shown);
  }
};

// Class defaults of the transformers config for one model_type.
struct Defaults {
  int64_t n_embd, n_ff, n_layers, n_heads, n_kv_heads, head_dim, vocab, context;
  double rope_theta, norm_eps;
  bool tied;
  int64_t sliding_window;
};

Defaults defaults_for(const std::string& model_type) {
  //                  embd  ff     layers heads kv  head_dim vocab   context  theta  eps   tied  window
  if (model_type == "mistral") return {4096, 14336, 32, 32, 8, 0, 32000, 131072, 1e4, 1e-6, false, 4096};
  if (model_type == "qwen2") return {4096, 22016, 32, 32, 32, 0, 151936, 32768, 1e4, 1e-6, false, 0};
  if (model_type == "gemma3_text" || model_type == "gemma3")
    return {2304, 9216, 26, 8, 4, 256, 262208, 131072, 1e6, 1e-6, true, 4096};
  if (model_type == "llama") return {4096, 11008, 32, 32, 0, 0, 32000, 2048, 1e4, 1e-6, false, 0};
  return {0, 0, 0, 0, 0, 0, 0, 0, 1e4, 1e-5, false, 0};  // unknown: only what the file says
}

// rope_scaling (transformers 4) or one rope_parameters entry (transformers 5).
void read_rope(const Fields& f, ModelConfig& cfg, bool local) {
  if (!f.present()) return;
  double theta = 0.0;
  if (f.float_field("rope_theta", theta)) (local ? cfg.rope_local_theta : cfg.rope_theta) = theta;
  if (local) return;  // sliding layers' scaling is not modelled (gemma3 keeps them default)
  RopeScaling& rs = cfg.rope_scaling;
  std::string type;
  if (f.string_field("rope_type", type) || f.string_field("type", type))
    rs.type = type == "default" ? "" : type;
  f.float_field("factor", rs.factor);
  f.float_field("low_freq_factor", rs.low_freq_factor);
  f.float_field("high_freq_factor", rs.high_freq_factor);
  f.int_field("original_max_position_embeddings", rs.original_context);
}

// layer_types ["sliding_attention", ..., "full_attention", ...] -> N where every N-th layer is
// global; 0 when no layer is global or the layout is not periodic.
int64_t pattern_from_layer_types(const MetaValue& types) {
  int64_t first_full = -1;
  for (size_t i = 0; i < types.array.size(); ++i) {
    if (types.array[i].kind == MetaValue::Kind::String && types.array[i].s == "full_attention") {
      first_full = static_cast<int64_t>(i);
      break;
    }
  }
  if (first_full < 0) return 0;
  int64_t n = first_full + 1;
  for (size_t i = 0; i < types.array.size(); ++i) {
    bool full = types.array[i].kind == MetaValue::Kind::String && types.array[i].s == "full_attention";
    if (full != ((static_cast<int64_t>(i) + 1) % n == 0)) return 0;
  }
  return n;
}

}  // namespace

ModelConfig config_from_hf(const MetaValue& config_json, const std::string& path) {
  ModelConfig cfg;
  if (config_json.kind != MetaValue::Kind::Object)
    throw FormatError(path + ": config.json is not a JSON object");
  Fields top(&config_json, path, "", true);
  std::string model_type;
  top.string_field("model_type", model_type);
  cfg.architecture = model_type;

  bool is_llama = model_type == "llama" || model_type == "mistral" || model_type == "qwen2";
  bool is_gemma3 = model_type == "gemma3" || model_type == "gemma3_text";
  cfg.family = is_llama ? "llama" : is_gemma3 ? "gemma3" : "";
  bool strict = is_llama || is_gemma3;

  // gemma3 (multimodal) nests the language model under text_config.
  Fields f = model_type == "gemma3" ? top.object_field("text_config")
                                    : Fields(&config_json, path, "", strict);
  Defaults d = defaults_for(model_type);

  cfg.n_embd = d.n_embd;
  cfg.n_ff = d.n_ff;
  cfg.n_layers = d.n_layers;
  cfg.n_heads = d.n_heads;
  cfg.vocab_size = d.vocab;
  cfg.context_length = d.context;
  cfg.rope_theta = d.rope_theta;
  cfg.norm_eps = d.norm_eps;
  cfg.tied_embeddings = d.tied;
  f.int_field("hidden_size", cfg.n_embd);
  f.int_field("intermediate_size", cfg.n_ff);
  f.int_field("num_hidden_layers", cfg.n_layers);
  f.int_field("num_attention_heads", cfg.n_heads);
  f.int_field("vocab_size", cfg.vocab_size);
  f.int_field("max_position_embeddings", cfg.context_length);
  f.float_field("rms_norm_eps", cfg.norm_eps);
  f.float_field("rope_theta", cfg.rope_theta);
  if (is_gemma3) {
    cfg.rope_local_theta = 10000.0;
    f.float_field("rope_local_base_freq", cfg.rope_local_theta);
  }

  cfg.n_kv_heads = d.n_kv_heads ? d.n_kv_heads : cfg.n_heads;
  f.int_field("num_key_value_heads", cfg.n_kv_heads);
  cfg.head_dim = d.head_dim ? d.head_dim : (cfg.n_heads > 0 ? cfg.n_embd / cfg.n_heads : 0);
  f.int_field("head_dim", cfg.head_dim);
  if (strict && cfg.n_heads > 0 && cfg.n_kv_heads > 0 && cfg.n_heads % cfg.n_kv_heads != 0)
    f.fail("num_key_value_heads", "(" + std::to_string(cfg.n_kv_heads) +
                                      ") must divide num_attention_heads (" +
                                      std::to_string(cfg.n_heads) + ")");

  // tie_word_embeddings: gemma3 may state it at the top level of the multimodal config.
  if (!f.bool_field("tie_word_embeddings", cfg.tied_embeddings) && model_type == "gemma3")
    top.bool_field("tie_word_embeddings", cfg.tied_embeddings);
  f.bool_field("attention_bias", cfg.qkv_bias);
  if (model_type == "qwen2") cfg.qkv_bias = true;  // Qwen2Attention: q/k/v always have biases

  // Rotary embedding: transformers 4 (rope_theta + rope_scaling) or 5 (rope_parameters).
  read_rope(f.object_field("rope_scaling"), cfg, false);
  Fields rp = f.object_field("rope_parameters");
  if (rp.present()) {
    Fields full = rp.object_field("full_attention");
    if (full.present()) {
      read_rope(full, cfg, false);
      read_rope(rp.object_field("sliding_attention"), cfg, true);
    } else {
      read_rope(rp, cfg, false);
    }
  }
  cfg.rope_dim = cfg.head_dim;
  double partial = 1.0;
  if (f.float_field("partial_rotary_factor", partial))
    cfg.rope_dim = static_cast<int64_t>(std::llround(static_cast<double>(cfg.head_dim) * partial));

  cfg.rope_pairs_adjacent = false;  // HF checkpoints use the rotate-half layout
  cfg.norm_weight_plus_one = false;  // HF stores gemma norm weights without the +1

  if (model_type == "mistral") {
    // Every layer uses the window (sliding_window_pattern 0: no global layers); null: none.
    const MetaValue* w = f.raw("sliding_window");
    bool explicit_null = config_json.get("sliding_window") != nullptr && !w;
    if (!explicit_null) cfg.sliding_window = d.sliding_window;
    f.int_field("sliding_window", cfg.sliding_window);
  } else if (model_type == "qwen2") {
    bool use = false;
    f.bool_field("use_sliding_window", use);
    if (use) f.int_field("sliding_window", cfg.sliding_window);
  } else if (is_gemma3) {
    cfg.sliding_window = d.sliding_window;
    cfg.sliding_window_pattern = 6;
    cfg.query_pre_attn_scalar = 256.0;
    f.int_field("sliding_window", cfg.sliding_window);
    const MetaValue* types = f.array_field("layer_types");
    if (!f.int_field("sliding_window_pattern", cfg.sliding_window_pattern) &&
        !f.int_field("_sliding_window_pattern", cfg.sliding_window_pattern) && types)
      cfg.sliding_window_pattern = pattern_from_layer_types(*types);
    f.float_field("query_pre_attn_scalar", cfg.query_pre_attn_scalar);
    f.float_field("final_logit_softcapping", cfg.final_logit_softcap);
    f.float_field("attn_logit_softcapping", cfg.attn_logit_softcap);
  }
  return cfg;
}

}  // namespace fastspec

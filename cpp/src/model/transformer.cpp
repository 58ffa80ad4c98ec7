// Weight binding and the forward pass.
//   llama:  x += Wo attn(rope(Wq n1(x)), rope(Wk n1(x)), Wv n1(x));  x += Wd (silu(Wg n2(x)) * Wu n2(x))
//           (Wq h stands for Wq h + bq wherever the file has that bias; likewise Wk, Wv, Wo)
//   gemma3: x = emb * sqrt(d); x += pn1(Wo attn(..qn(q), kn(k)..)); x += pn2(Wd (gelu(Wg n2(x)) * Wu n2(x)))
#include "model/transformer.h"

#include <algorithm>
#include <cstring>
#include <cmath>

#include "backend/cpu/dequant.h"
#include "fastspec/status.h"
#include "io/awq_config.h"

namespace fastspec {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t k = 0; k < s.size(); ++k) r += (k ? ", " : "") + std::to_string(s[k]);
  return r + "]";
}

}  // namespace

// A missing "<prefix>.weight" beside a "<prefix>.qweight" is a packed weight the loader did not
// unpack: say why (quantization_config) and what runs.
void Transformer::missing_matrix(const std::string& name) const {
  const std::string suffix = ".weight";
  if (!gguf_names_ && name.size() > suffix.size() &&
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    const std::string packed = name.substr(0, name.size() - suffix.size()) + ".qweight";
    if (const TensorInfo* q = file_->find(packed)) {
      AwqConfig c = awq_config(meta_find(file_->metadata(), "quantization_config"), file_->path());
      throw ModelError(file_->path() + ": tensor '" + packed + "' " + dtype_name(q->type) + " " + shape_str(q->shape) +
                       " is a packed quantized weight fastspec cannot run: " +
                       (c.unsupported.empty() ? std::string("its parts were not recognized") : c.unsupported) +
                       " (" + kAwqSupported + ")");
    }
  }
  throw ModelError(file_->path() + ": missing tensor '" + name + "'");
}

Weight Transformer::bind_matrix(const std::string& gguf_name, const std::string& hf_name, int64_t rows,
                                int64_t cols) const {
  const std::string& name = gguf_names_ ? gguf_name : hf_name;
  const TensorInfo* t = file_->find(name);
  if (!t) missing_matrix(name);
  return bind_weight(*file_, *t, rows, cols);
}

Weight bind_weight(const ModelFile& f, const TensorInfo& t, int64_t rows, int64_t cols) {
  if (t.shape.size() != 2 || t.shape[0] != rows || t.shape[1] != cols)
    throw ModelError(f.path() + ": tensor '" + t.name + "' has shape " + shape_str(t.shape) + ", expected [" +
                     std::to_string(rows) + ", " + std::to_string(cols) + "]");
  Weight w;
  w.info = &t;
  w.type = t.type;
  w.rows = rows;
  w.cols = cols;
  if (t.type == DType::AWQ_INT4) {
    const auto& ts = f.tensors();
    w.data = ts.at(t.awq.qweight).data;
    w.awq_qzeros = ts.at(t.awq.qzeros).data;
    w.awq_scales = ts.at(t.awq.scales).data;
    w.awq_group = t.awq.group_size;
    return w;
  }
  const DTypeTraits* tr = dtype_traits(t.type);
  if (!tr || !tr->dequantizable || tr->block_bytes == 0)
    throw ModelError(f.path() + ": tensor '" + t.name + "' has type " + dtype_name(t.type) +
                     ", which fastspec cannot run");
  w.data = t.data;
  w.row_bytes = static_cast<uint64_t>(cols / tr->block_size * tr->block_bytes);
  return w;
}

std::vector<float> Transformer::bind_vector(const std::string& gguf_name, const std::string& hf_name, int64_t n,
                                            bool required) const {
  const std::string& name = gguf_names_ ? gguf_name : hf_name;
  const TensorInfo* t = file_->find(name);
  if (!t) {
    if (required) throw ModelError(file_->path() + ": missing tensor '" + name + "'");
    return {};
  }
  if (t->n_elements() != n)
    throw ModelError(file_->path() + ": tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected [" +
                     std::to_string(n) + "]");
  std::vector<float> v(static_cast<size_t>(n));
  file_->dequantize(*t, v.data());
  return v;
}

Transformer::Transformer(std::shared_ptr<const ModelFile> file) : file_(std::move(file)), cfg_(file_->config()) {
  const ModelConfig& c = cfg_;
  if (c.family != "llama" && c.family != "gemma3")
    throw ModelError(file_->path() + ": unsupported architecture '" + c.architecture +
                     "' (supported: llama, mistral, qwen2, gemma3)");
  // Sizes beyond these are no model anyone runs, and products of them (q_dim, vocab * embd) must
  // not overflow int64.
  constexpr int64_t kMaxDim = int64_t{1} << 24, kMaxLayers = int64_t{1} << 16;
  auto out_of_range = [&](int64_t x, int64_t hi) { return x <= 0 || x > hi; };
  if (out_of_range(c.n_layers, kMaxLayers) || out_of_range(c.n_embd, kMaxDim) || out_of_range(c.n_heads, kMaxDim) ||
      out_of_range(c.n_kv_heads, kMaxDim) || out_of_range(c.head_dim, kMaxDim) || out_of_range(c.n_ff, kMaxDim) ||
      out_of_range(c.vocab_size, kMaxDim) || c.n_heads % c.n_kv_heads != 0 || c.rope_dim > c.head_dim ||
      c.rope_dim < 0 || c.rope_dim % 2 != 0)
    throw ModelError(file_->path() + ": inconsistent config (layers " + std::to_string(c.n_layers) + ", embd " +
                     std::to_string(c.n_embd) + ", heads " + std::to_string(c.n_heads) + "/" +
                     std::to_string(c.n_kv_heads) + ", head dim " + std::to_string(c.head_dim) + ", rope dim " +
                     std::to_string(c.rope_dim) + ", ff " + std::to_string(c.n_ff) + ", vocab " +
                     std::to_string(c.vocab_size) + "; each dimension must be in 1.." + std::to_string(kMaxDim) +
                     ", layers in 1.." + std::to_string(kMaxLayers) + ")");
  gguf_names_ = file_->format() == "gguf";
  const bool gemma = c.family == "gemma3";
  norm_plus_one_ = gemma && !c.norm_weight_plus_one;
  const int64_t d = c.n_embd, hd = c.head_dim, q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd;

  tok_embd_ = bind_matrix("token_embd.weight", "model.embed_tokens.weight", c.vocab_size, d);
  output_norm_ = bind_vector("output_norm.weight", "model.norm.weight", d);
  output_ = c.tied_embeddings ? tok_embd_ : bind_matrix("output.weight", "lm_head.weight", c.vocab_size, d);
  output_.is_output = true;
  if (c.tied_embeddings) tok_embd_.is_output = true;  // one matrix: whatever the backend stores serves both

  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string g = "blk." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
    LayerWeights L;
    L.wq = bind_matrix(g + "attn_q.weight", h + "self_attn.q_proj.weight", q_dim, d);
    L.wk = bind_matrix(g + "attn_k.weight", h + "self_attn.k_proj.weight", kv_dim, d);
    L.wv = bind_matrix(g + "attn_v.weight", h + "self_attn.v_proj.weight", kv_dim, d);
    L.wo = bind_matrix(g + "attn_output.weight", h + "self_attn.o_proj.weight", d, q_dim);
    L.w_gate = bind_matrix(g + "ffn_gate.weight", h + "mlp.gate_proj.weight", c.n_ff, d);
    L.w_up = bind_matrix(g + "ffn_up.weight", h + "mlp.up_proj.weight", c.n_ff, d);
    L.w_down = bind_matrix(g + "ffn_down.weight", h + "mlp.down_proj.weight", d, c.n_ff);
    L.attn_norm = bind_vector(g + "attn_norm.weight", h + "input_layernorm.weight", d);
    // Biases: q/k/v required when the config declares them (qwen2, attention_bias), else each
    // optional on its own; o_proj's always optional (llama attention_bias has it, qwen2 not).
    L.bq = bind_vector(g + "attn_q.bias", h + "self_attn.q_proj.bias", q_dim, c.qkv_bias);
    L.bk = bind_vector(g + "attn_k.bias", h + "self_attn.k_proj.bias", kv_dim, c.qkv_bias);
    L.bv = bind_vector(g + "attn_v.bias", h + "self_attn.v_proj.bias", kv_dim, c.qkv_bias);
    L.bo = bind_vector(g + "attn_output.bias", h + "self_attn.o_proj.bias", d, false);
    // MLP biases (llama mlp_bias=true) are not implemented: refuse them rather than run a wrong model.
    for (const char* p : {"gate", "up", "down"}) {
      const std::string name = gguf_names_ ? g + "ffn_" + p + ".bias" : h + "mlp." + p + "_proj.bias";
      if (file_->find(name))
        throw ModelError(file_->path() + ": tensor '" + name + "' (an MLP bias, e.g. llama mlp_bias=true) is not "
                         "supported: the MLP projections run without biases");
    }
    if (gemma) {
      L.ffn_norm = bind_vector(g + "ffn_norm.weight", h + "pre_feedforward_layernorm.weight", d);
      L.q_norm = bind_vector(g + "attn_q_norm.weight", h + "self_attn.q_norm.weight", hd);
      L.k_norm = bind_vector(g + "attn_k_norm.weight", h + "self_attn.k_norm.weight", hd);
      L.post_attn_norm = bind_vector(g + "post_attention_norm.weight", h + "post_attention_layernorm.weight", d);
      L.post_ffn_norm = bind_vector(g + "post_ffw_norm.weight", h + "post_feedforward_layernorm.weight", d);
      const int64_t pattern = c.sliding_window_pattern > 0 ? c.sliding_window_pattern : 6;
      L.sliding = c.sliding_window > 0 && (l + 1) % pattern != 0;
    } else {
      L.ffn_norm = bind_vector(g + "ffn_norm.weight", h + "post_attention_layernorm.weight", d);
    }
    layers_.push_back(std::move(L));
  }
  compute_inv_freq();
}

void Transformer::compute_inv_freq() {
  const ModelConfig& c = cfg_;
  const int64_t half = c.rope_dim / 2;
  auto base_freqs = [&](double theta) {
    std::vector<float> f(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i)
      f[i] = static_cast<float>(1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(c.rope_dim)));
    return f;
  };
  inv_freq_global_ = base_freqs(c.rope_theta);
  inv_freq_local_ = base_freqs(c.rope_local_theta > 0 ? c.rope_local_theta : c.rope_theta);
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type == "linear") {
    for (float& f : inv_freq_global_) f = static_cast<float>(f / rs.factor);
  } else if (rs.type == "llama3") {
    if (const TensorInfo* ff = gguf_names_ ? file_->find("rope_freqs.weight") : nullptr) {
      // llama.cpp's converter stored the per-pair divisors.
      if (ff->n_elements() != half)
        throw ModelError(file_->path() + ": rope_freqs.weight has " + std::to_string(ff->n_elements()) +
                         " elements, expected " + std::to_string(half));
      std::vector<float> div(static_cast<size_t>(half));
      file_->dequantize(*ff, div.data());
      for (int64_t i = 0; i < half; ++i) inv_freq_global_[i] /= div[i];
    } else {
      // The llama-3 rule: long wavelengths / factor, short ones kept, a smooth ramp between.
      const double lo_wl = rs.original_context / rs.low_freq_factor;
      const double hi_wl = rs.original_context / rs.high_freq_factor;
      for (float& f : inv_freq_global_) {
        const double wl = 2.0 * M_PI / f;
        if (wl > lo_wl) {
          f = static_cast<float>(f / rs.factor);
        } else if (wl >= hi_wl) {
          const double s = (rs.original_context / wl - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
          f = static_cast<float>((1.0 - s) * f / rs.factor + s * f);
        }
      }
    }
  } else if (!rs.type.empty() && rs.type != "default") {
    throw ModelError(file_->path() + ": rope scaling '" + rs.type + "' is not supported (linear, llama3 are)");
  }
}

int64_t Transformer::workspace_floats(int64_t T) const {
  const ModelConfig& c = cfg_;
  const int64_t q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  // x, h [T, d]; q, att [T, q_dim]; k, v [T, kv_dim]; gate [T, ff]; pos, tok [T] (int32 in float slots)
  return T * (2 * c.n_embd + 2 * q_dim + 2 * kv_dim + c.n_ff + 2);
}

void Transformer::bind(Backend& be) {
  be.prepare_weight(tok_embd_);
  if (cfg_.tied_embeddings) output_ = tok_embd_;  // the same (prepared) weight
  else be.prepare_weight(output_);
  for (LayerWeights& L : layers_)
    for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) be.prepare_weight(*w);
  const int64_t max_cols = std::max({cfg_.n_embd, cfg_.n_heads * cfg_.head_dim, cfg_.n_ff});
  be.reserve(kMaxPass, max_cols, workspace_floats(kMaxPass));
}

void Transformer::forward(Backend& be, KvCache& kv, const int32_t* tokens, int64_t T, float* logits,
                          int64_t n_logits, const Features* features) const {
  if (T < 1 || n_logits < 1 || n_logits > T)
    throw Error("forward: T=" + std::to_string(T) + " n_logits=" + std::to_string(n_logits));
  if (features)
    for (int64_t i = 0; i < features->n; ++i)
      if (features->layers[i] < 0 || features->layers[i] > cfg_.n_layers)
        throw InvalidArgument("forward: hidden state " + std::to_string(features->layers[i]) + " outside [0, " +
                              std::to_string(cfg_.n_layers) + "] (0: embeddings, " + std::to_string(cfg_.n_layers) +
                              ": the final norm's output)");
  if (kv.length() + T > kv.n_ctx())
    throw InvalidArgument("forward: " + std::to_string(kv.length() + T) + " positions exceed the context of " +
                         std::to_string(kv.n_ctx()));
  // Chunks of kMaxPass tokens; each writes the logits rows of its tokens among the last n_logits.
  const int64_t first_logit = T - n_logits;
  for (int64_t c0 = 0; c0 < T; c0 += kMaxPass) {
    const int64_t c1 = std::min(T, c0 + kMaxPass);
    const int64_t lo = std::max(c0, first_logit);  // first token of this chunk that needs logits
    float* out = lo < c1 ? logits + (lo - first_logit) * cfg_.vocab_size : nullptr;
    Features fc;
    if (features) fc = *features, fc.out = features->out + c0 * features->n * cfg_.n_embd;
    const SeqRows s{&kv, tokens + c0, c1 - c0, lo < c1 ? c1 - lo : 0, nullptr, features ? &fc : nullptr};
    forward_pass(be, &s, 1, out);
  }
}

void Transformer::embed(Backend& be, const int32_t* tokens, int64_t T, float* out) const {
  be.embed(tok_embd_, tokens, T, cfg_.family == "gemma3" ? std::sqrt(static_cast<float>(cfg_.n_embd)) : 1.0f, out);
}

void Transformer::forward_batch(Backend& be, const SeqRows* seqs, int64_t n_seqs, float* logits) const {
  int64_t rows = 0;
  for (int64_t i = 0; i < n_seqs; ++i) {
    const SeqRows& s = seqs[i];
    if (!s.kv || s.T < 1 || s.n_logits < 0 || s.n_logits > s.T)
      throw Error("forward_batch: sequence " + std::to_string(i) + ": T=" + std::to_string(s.T) +
                  " n_logits=" + std::to_string(s.n_logits));
    if (s.kv->length() + s.T > s.kv->n_ctx())
      throw InvalidArgument("forward_batch: sequence " + std::to_string(i) + ": " + std::to_string(s.kv->length()) +
                            " cached + " + std::to_string(s.T) + " new tokens exceed the context of " +
                            std::to_string(s.kv->n_ctx()));
    for (int64_t j = 0; j < i; ++j)
      if (seqs[j].kv == s.kv) throw Error("forward_batch: sequences " + std::to_string(j) + " and " +
                                          std::to_string(i) + " share one KV cache");
    rows += s.T;
  }
  if (n_seqs < 1 || rows > kMaxPass)
    throw Error("forward_batch: " + std::to_string(n_seqs) + " sequences of " + std::to_string(rows) +
                " rows in all (1 .. " + std::to_string(kMaxPass) + " rows per pass)");
  forward_pass(be, seqs, n_seqs, logits);
}

void Transformer::forward_pass(Backend& be, const SeqRows* seqs, int64_t n_seqs, float* logits) const {
  const ModelConfig& c = cfg_;
  int64_t T = 0, n_logits = 0;
  for (int64_t i = 0; i < n_seqs; ++i) T += seqs[i].T, n_logits += seqs[i].n_logits;
  const int64_t d = c.n_embd, hd = c.head_dim, q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd;
  const bool gemma = c.family == "gemma3";
  const float eps = static_cast<float>(c.norm_eps);

  float* ws = be.activations();
  float* x = ws;                    // [T, d] the residual stream
  float* h = x + T * d;             // [T, d]
  float* q = h + T * d;             // [T, n_heads, hd]
  float* att = q + T * q_dim;       // [T, n_heads, hd]
  float* k = att + T * q_dim;       // [T, n_kv, hd]
  float* v = k + T * kv_dim;        // [T, n_kv, hd]
  float* gate = v + T * kv_dim;     // [T, ff]
  int32_t* pos = reinterpret_cast<int32_t*>(gate + T * c.n_ff);  // [T] each row's position
  int32_t* tok = pos + T;                                          // [T] the rows' tokens
  for (int64_t i = 0, r = 0; i < n_seqs; ++i) {
    const int64_t r0 = r, len = seqs[i].kv->length();
    const int32_t* par = seqs[i].parent;
    for (int64_t t = 0; t < seqs[i].T; ++t, ++r) {  // a tree row: its parent's position + 1
      const int64_t p = par ? (par[t] < 0 || par[t] >= t ? len : pos[r0 + par[t]] + 1) : len + t;
      pos[r] = static_cast<int32_t>(p);
      tok[r] = seqs[i].tokens ? seqs[i].tokens[t] : 0;
    }
  }

  bool given = false;  // some sequence brings its own input rows (SeqRows::embd)
  for (int64_t i = 0; i < n_seqs; ++i) given |= seqs[i].embd != nullptr;
  const float emb_scale = gemma ? std::sqrt(static_cast<float>(d)) : 1.0f;
  if (!given) be.embed(tok_embd_, tok, T, emb_scale, x);
  else
    for (int64_t i = 0, r = 0; i < n_seqs; r += seqs[i].T, ++i) {
      if (seqs[i].embd) std::memcpy(x + r * d, seqs[i].embd, static_cast<size_t>(seqs[i].T * d) * sizeof(float));
      else be.embed(tok_embd_, tok + r, seqs[i].T, emb_scale, x + r * d);
    }
  // features: hidden state `number` of every row (Features), from src [T, d] (src row r of sequence i)
  auto record = [&](int64_t number, const float* src) {
    for (int64_t i = 0, r = 0; i < n_seqs; r += seqs[i].T, ++i) {
      const Features* f = seqs[i].features;
      if (!f) continue;
      for (int64_t j = 0; j < f->n; ++j)
        if (f->layers[j] == number)
          for (int64_t t = 0; t < seqs[i].T; ++t)
            std::memcpy(f->out + (t * f->n + j) * d, src + (r + t) * d, static_cast<size_t>(d) * sizeof(float));
    }
  };
  bool want_final = false;
  for (int64_t i = 0; i < n_seqs; ++i)
    if (seqs[i].features)
      for (int64_t j = 0; j < seqs[i].features->n; ++j) want_final |= seqs[i].features->layers[j] == c.n_layers;
  record(0, x);
  const float attn_scale =
      1.0f / std::sqrt(static_cast<float>(c.query_pre_attn_scalar > 0 ? c.query_pre_attn_scalar : hd));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = layers_[l];
    be.rms_norm(x, L.attn_norm.data(), h, T, d, eps, norm_plus_one_);
    MatmulOut qkv[3];
    qkv[0].w = &L.wq, qkv[0].y = q, qkv[0].bias = L.bq.empty() ? nullptr : L.bq.data();
    qkv[1].w = &L.wk, qkv[1].y = k, qkv[1].bias = L.bk.empty() ? nullptr : L.bk.data();
    qkv[2].w = &L.wv, qkv[2].y = v, qkv[2].bias = L.bv.empty() ? nullptr : L.bv.data();
    be.matmuls(h, T, qkv, 3);  // q: [T, n_heads, hd]; k, v: [T, n_kv, hd]
    if (gemma) {
      be.rms_norm(q, L.q_norm.data(), q, T * c.n_heads, hd, eps, norm_plus_one_);
      be.rms_norm(k, L.k_norm.data(), k, T * c.n_kv_heads, hd, eps, norm_plus_one_);
    }
    RopeParams rp;
    rp.dim = c.rope_dim;
    rp.pairs_adjacent = c.rope_pairs_adjacent;
    rp.inv_freq = L.sliding ? inv_freq_local_.data() : inv_freq_global_.data();
    be.rope(q, c.n_heads, k, c.n_kv_heads, T, hd, pos, rp);
    for (int64_t i = 0, r = 0; i < n_seqs; r += seqs[i].T, ++i) {  // each sequence over its own cache
      KvCache& kv = *seqs[i].kv;
      kv.store(l, kv.length(), seqs[i].T, k + r * kv_dim, v + r * kv_dim);
      be.attention(q + r * q_dim, kv.view(l), att + r * q_dim, seqs[i].T, c.n_heads, c.n_kv_heads, hd, pos + r,
                   attn_scale, L.sliding ? c.sliding_window : 0, static_cast<float>(c.attn_logit_softcap),
                   seqs[i].parent);
    }
    MatmulOut o;
    o.w = &L.wo;
    o.bias = L.bo.empty() ? nullptr : L.bo.data();
    if (gemma) {  // x += post_norm(Wo att)
      o.y = h;
      be.matmuls(att, T, &o, 1);
      be.rms_norm(h, L.post_attn_norm.data(), h, T, d, eps, norm_plus_one_);
      be.add(x, h, T * d);
    } else {      // x += Wo att, fused
      o.y = x, o.accumulate = true;
      be.matmuls(att, T, &o, 1);
    }

    be.rms_norm(x, L.ffn_norm.data(), h, T, d, eps, norm_plus_one_);
    be.matmul_glu(L.w_gate, L.w_up, h, gate, T, gemma);  // gate: [T, ff] = act(Wg h) * (Wu h)
    MatmulOut dn;
    dn.w = &L.w_down;
    if (gemma) {
      dn.y = h;
      be.matmuls(gate, T, &dn, 1);
      be.rms_norm(h, L.post_ffn_norm.data(), h, T, d, eps, norm_plus_one_);
      be.add(x, h, T * d);
    } else {
      dn.y = x, dn.accumulate = true;
      be.matmuls(gate, T, &dn, 1);
    }
    if (l + 1 < c.n_layers) record(l + 1, x);
  }
  if (want_final) {  // the final norm of every row (the logits below norm only their rows)
    be.rms_norm(x, output_norm_.data(), h, T, d, eps, norm_plus_one_);
    record(c.n_layers, h);
  }
  for (int64_t i = 0; i < n_seqs; ++i) seqs[i].kv->set_length(seqs[i].kv->length() + seqs[i].T);
  if (n_logits == 0) return;
  // h [n_logits, d]: the final norm of each sequence's last n_logits rows, gathered in order
  for (int64_t i = 0, r = 0, o = 0; i < n_seqs; r += seqs[i].T, o += seqs[i].n_logits, ++i)
    if (seqs[i].n_logits > 0)
      be.rms_norm(x + (r + seqs[i].T - seqs[i].n_logits) * d, output_norm_.data(), h + o * d, seqs[i].n_logits, d,
                  eps, norm_plus_one_);
  MatmulOut out;
  out.w = &output_;
  out.y = logits;
  be.matmuls(h, n_logits, &out, 1);  // logits: [n_logits, vocab]
  if (c.final_logit_softcap > 0)
    be.softcap(logits, n_logits * c.vocab_size, static_cast<float>(c.final_logit_softcap));
}

}  // namespace fastspec

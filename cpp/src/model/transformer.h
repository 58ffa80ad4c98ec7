// The decoder-only transformer (llama family, gemma3), written once against the Backend.
// forward() is the one code path for prefill, one-token decode and multi-token verify.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "fastspec/model_file.h"
#include "model/kv_cache.h"

namespace fastspec {

struct LayerWeights {
  Weight wq, wk, wv, wo;         // [n_heads*hd, d], [n_kv*hd, d], [n_kv*hd, d], [d, n_heads*hd]
  Weight w_gate, w_up, w_down;   // [ff, d], [ff, d], [d, ff]
  std::vector<float> attn_norm;  // [d]
  std::vector<float> ffn_norm;   // [d] (gemma3: pre-feedforward norm)
  // Projection biases, each applied iff its tensor is in the file (empty: none); q/k/v are
  // required when ModelConfig::qkv_bias declares them.
  std::vector<float> bq, bk, bv, bo;  // [n_heads*hd], [n_kv*hd], [n_kv*hd], [d] or empty
  std::vector<float> q_norm, k_norm;               // gemma3: [hd]
  std::vector<float> post_attn_norm, post_ffn_norm;  // gemma3: [d]
  bool sliding = false;          // gemma3 local-attention layer
};

// One sequence's rows in a batched pass: tokens[T] at positions [kv->length(), + T), appended to
// *kv; its last n_logits rows (0 <= n_logits <= T) get logits.
// Hidden states recorded during a pass, the features a draft head reads (EAGLE: the last one;
// EAGLE-3: a low/mid/high triple). Numbered as Hugging Face's output_hidden_states: 0 the
// (scaled) token embeddings, i in [1, n_layers) the residual stream after layer i - 1, n_layers
// the final norm's output (what the output layer reads).
struct Features {
  const int32_t* layers = nullptr;  // [n] hidden-state numbers, each in [0, n_layers]
  int64_t n = 0;
  float* out = nullptr;             // [T, n, n_embd] for the rows of the pass, in row order
};

struct SeqRows {
  KvCache* kv = nullptr;
  const int32_t* tokens = nullptr;
  int64_t T = 0;
  int64_t n_logits = 0;
  // nullptr: the rows continue the sequence one after another. A token tree's verify pass:
  // parent[T], each row's parent row (-1: a root at the cache's end; row 0 is one); a row's
  // position is length + its depth and it attends to the cache and its ancestors (backend.h).
  const int32_t* parent = nullptr;
  const Features* features = nullptr;  // hidden states to record for these rows (nullptr: none)
  // embd[T, n_embd]: the rows' input vectors instead of their tokens' embeddings (a draft head's
  // fused input; tokens are then unused); nullptr: embed the tokens.
  const float* embd = nullptr;
};

// A stored matrix of `f` as a Weight: ModelError naming the file, tensor and sizes unless its shape
// is [rows, cols] and its type runs (any dequantizable type, or AutoAWQ int4 parts).
Weight bind_weight(const ModelFile& f, const TensorInfo& t, int64_t rows, int64_t cols);

class Transformer {
 public:
  // Binds every weight of `file` (GGUF or Hugging Face names) and checks shapes; ModelError
  // naming the file, tensor and sizes on any mismatch or unsupported architecture.
  explicit Transformer(std::shared_ptr<const ModelFile> file);

  const ModelConfig& config() const { return cfg_; }
  const ModelFile& file() const { return *file_; }
  int64_t vocab_size() const { return cfg_.vocab_size; }

  // Passes longer than this run as consecutive chunks (prefill); the workspace is sized for it.
  static constexpr int64_t kMaxPass = 256;

  // Prepares every weight with the backend (which may move it into its own memory) and reserves
  // its workspace for this model (once, at load, before any forward).
  void bind(Backend& be);

  // Runs tokens[T] at positions [kv.length(), kv.length() + T), appends their K/V to the cache
  // and writes logits[n_logits, vocab] for the last n_logits tokens (1 <= n_logits <= T).
  // Allocates nothing: activations live in the backend's workspace (bind()).
  void forward(Backend& be, KvCache& kv, const int32_t* tokens, int64_t T, float* logits, int64_t n_logits,
               const Features* features = nullptr) const;

  // out[T, n_embd]: the input rows of tokens[T] as the first layer reads them (hidden state 0:
  // the embeddings, scaled by sqrt(n_embd) for gemma3).
  void embed(Backend& be, const int32_t* tokens, int64_t T, float* out) const;

  // Several sequences in one pass (continuous batching): the matmuls see all rows at once (each
  // weight is read once for every sequence), RoPE uses each row's own position, attention runs per
  // sequence over its own cache. logits: [sum of n_logits, vocab], sequences in order. The rows
  // of all sequences together are at most kMaxPass, and each cache appears once. A sequence's
  // results are bit-equal to running it alone (every op is row-invariant: backend.h).
  void forward_batch(Backend& be, const SeqRows* seqs, int64_t n_seqs, float* logits) const;

 private:
  Weight bind_matrix(const std::string& gguf_name, const std::string& hf_name, int64_t rows, int64_t cols) const;
  [[noreturn]] void missing_matrix(const std::string& name) const;
  std::vector<float> bind_vector(const std::string& gguf_name, const std::string& hf_name, int64_t n,
                                 bool required = true) const;
  void compute_inv_freq();
  int64_t workspace_floats(int64_t T) const;  // activations of a T-token pass
  // One pass of at most kMaxPass rows over n_seqs sequences (forward_batch without the checks).
  void forward_pass(Backend& be, const SeqRows* seqs, int64_t n_seqs, float* logits) const;

  std::shared_ptr<const ModelFile> file_;
  ModelConfig cfg_;
  bool gguf_names_ = false;
  Weight tok_embd_, output_;
  std::vector<float> output_norm_;
  std::vector<LayerWeights> layers_;
  std::vector<float> inv_freq_global_, inv_freq_local_;  // [rope_dim / 2]
  bool norm_plus_one_ = false;   // add 1 to norm weights at run time (gemma3 from HF files)
};

}  // namespace fastspec

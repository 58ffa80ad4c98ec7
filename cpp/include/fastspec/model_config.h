// The hyper-parameters of a transformer, filled from GGUF metadata or a Hugging Face config.json.
#pragma once
#include <cstdint>
#include <string>

namespace fastspec {

struct RopeScaling {
  std::string type;                  // "" (none) | "linear" | "llama3" | "yarn" | ...
  double factor = 1.0;               // context extension factor
  double low_freq_factor = 1.0;      // llama3
  double high_freq_factor = 4.0;     // llama3
  int64_t original_context = 0;      // llama3/yarn: original_max_position_embeddings
};

struct ModelConfig {
  std::string architecture;          // "llama" | "qwen2" | "mistral" | "gemma3" | ...; as the file names it
  std::string family;                // "llama" (llama/mistral/qwen2/smollm) | "gemma3" | "" (unknown)
  int64_t n_layers = 0;
  int64_t n_embd = 0;                // hidden size
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;              // usually n_embd / n_heads; gemma3 sets it explicitly
  int64_t n_ff = 0;                  // MLP intermediate size
  int64_t vocab_size = 0;
  int64_t context_length = 0;        // max positions the model was trained for
  double rope_theta = 10000.0;       // rope base frequency (global layers for gemma3)
  double rope_local_theta = 0.0;     // gemma3 sliding-window layers' base (0: same as rope_theta)
  int64_t rope_dim = 0;              // rotated dims per head (== head_dim unless partial rotary)
  RopeScaling rope_scaling;
  // true: rotary pairs are adjacent (x[2i], x[2i+1]) because llama.cpp's converter permuted the
  // Q/K rows of a llama-architecture GGUF; false: rotate-half pairs (x[i], x[i + d/2]) as in HF.
  bool rope_pairs_adjacent = false;
  double norm_eps = 1e-5;            // RMSNorm epsilon
  bool tied_embeddings = false;      // output projection reuses token_embd
  // The architecture declares q/k/v projection biases (qwen2; HF attention_bias): the transformer
  // then requires all three in every layer. Without it, each bias present in the file is applied.
  bool qkv_bias = false;
  // gemma3
  int64_t sliding_window = 0;        // local attention window (0: none)
  int64_t sliding_window_pattern = 0;  // every N-th layer is global (gemma3: 6)
  double query_pre_attn_scalar = 0.0;  // attention scale = 1/sqrt(this) (0: head_dim)
  double final_logit_softcap = 0.0;  // 0: none
  double attn_logit_softcap = 0.0;   // 0: none
  bool norm_weight_plus_one = false; // stored RMSNorm weights already include gemma's +1 (GGUF)
};

}  // namespace fastspec

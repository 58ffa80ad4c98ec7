// An EAGLE-style draft head: one decoder layer over the target's own features (EAGLE-1/2; Li et
// al. 2024), its output layer a subset of the target's (draft_head.h). For head row t, at rotary
// position t (rows causal, cached like any layer):
//   x_t      = W_fc [E(c_{t+1}); F_t] + b_fc       E: the target's input embedding (hidden state 0)
//                                                  F_t: the target's hidden state feature_layer at t
//   y_t      = llama decoder layer(x_t)            (pre-norm attention + SwiGLU, rotate-half RoPE)
//   g_t      = rms(y_t) * output_norm              ~ F_{t+1}: the next row's feature while drafting
//   logits_t = W_sub g_t                           [V_sub]: predicts c_{t+2}
// The file (python/fastspec/distill.py writes it): general.architecture "fastspec-eagle" with the
// llama keys of a 1-layer model, token_embd.weight [V_sub, d] = W_sub (tied output),
// fastspec_eagle.fc.weight [d, 2d] (columns 0..d-1 multiply E, d..2d-1 multiply F) and
// fastspec_eagle.fc.bias [d].
// EAGLE-3 (Li et al. 2025): with n_feat = |fastspec.head.feature_layers| > 1 the head reads several
// of the target's states per position, low to high, S_t = [s_low; ...; s_high] [n_feat * d], and
//   F_t      = W_feat S_t                          fastspec_eagle.feat.weight [d, n_feat * d]
// for the true rows; drafted rows still read their parent's g.
#pragma once
#include <memory>

#include "model/draft_head.h"
#include "model/transformer.h"

namespace fastspec {

class EagleHead {
 public:
  // ModelError / FormatError naming the file, tensor and sizes when it is not such a head.
  explicit EagleHead(std::shared_ptr<const ModelFile> file);

  const HeadMeta& meta() const { return meta_; }
  const ModelFile& file() const { return layer_.file(); }
  const ModelConfig& config() const { return layer_.config(); }  // the decoder layer's (1 layer)
  int64_t n_embd() const { return layer_.config().n_embd; }
  int64_t vocab() const { return static_cast<int64_t>(meta_.vocab_ids.size()); }  // V_sub
  static constexpr int64_t kMaxPass = Transformer::kMaxPass;

  void bind(Backend& be);  // prepares the weights, reserves the workspace (at load)

  int64_t n_feat() const { return static_cast<int64_t>(meta_.feature_layers.size()); }
  // F[T, d] from the target's recorded states S[T, n_feat, d] (a copy when n_feat is 1).
  void reduce(Backend& be, const float* S, int64_t T, float* F) const;

  // Appends rows at positions [kv.length(), + T) of the head's cache (1 layer, n_ctx >= T + length).
  //   emb:    [T, d] E(c_{t+1}) of each row          feat: [T, d] F_t of each row
  //   g:      [T, d] out, each row's g_t             logits: [n_logits, V_sub] out, the last n_logits rows
  //   scratch:[min(T, kMaxPass), 3d] the caller's (no allocation here)
  //   parent: nullptr (rows one after another) or [T] a token tree's rows (SeqRows::parent: a row
  //           at kv.length() + its depth attends to the cache and its ancestors; T <= kMaxPass)
  void forward(Backend& be, KvCache& kv, const float* emb, const float* feat, int64_t T, float* g, float* logits,
               int64_t n_logits, float* scratch, const int32_t* parent = nullptr) const;

 private:
  HeadMeta meta_;
  Transformer layer_;
  Weight fc_;                  // [d, 2d]
  Weight feat_;                // [d, n_feat * d] (n_feat > 1 only)
  std::vector<float> fc_bias_;  // [d]
};

}  // namespace fastspec

// Medusa draft heads (Cai et al. 2024): K residual blocks on the target's last hidden state, each
// guessing one token further ahead, their output layer a subset of the target's (draft_head.h).
// For the feature F_t of position t (the target's hidden state feature_layer):
//   h_i      = F_t + silu(W_i F_t + b_i)          i = 0..K-1
//   logits_i = W_sub h_i                           [V_sub]: predicts c_{t+2+i}
// (the target itself predicts c_{t+1} from F_t). The file: general.architecture "fastspec-medusa",
// keys fastspec-medusa.{embedding_length, vocab_size, head_count}; tensors token_embd.weight
// [V_sub, d] = W_sub, fastspec_medusa.{i}.weight [d, d] and fastspec_medusa.{i}.bias [d].
#pragma once
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "model/draft_head.h"

namespace fastspec {

class MedusaHead {
 public:
  static constexpr int64_t kMaxHeads = 16;
  explicit MedusaHead(std::shared_ptr<const ModelFile> file);  // ModelError / FormatError naming the file

  const HeadMeta& meta() const { return meta_; }
  const ModelFile& file() const { return *file_; }
  int64_t n_embd() const { return d_; }
  int64_t n_heads() const { return static_cast<int64_t>(w_.size()); }  // K
  int64_t vocab() const { return static_cast<int64_t>(meta_.vocab_ids.size()); }

  void bind(Backend& be);
  // feat: [d] F_t; logits: [K, V_sub] out; scratch: [2 K d] the caller's.
  void forward(Backend& be, const float* feat, float* logits, float* scratch) const;

 private:
  std::shared_ptr<const ModelFile> file_;
  HeadMeta meta_;
  int64_t d_ = 0;
  Weight out_;                            // [V_sub, d]
  std::vector<Weight> w_;                 // K x [d, d]
  std::vector<std::vector<float>> b_;     // K x [d]
};

}  // namespace fastspec

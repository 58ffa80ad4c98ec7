// What every draft head file shares: its kind, the target it was distilled from, and its output
// vocabulary. A head is a GGUF with general.architecture "fastspec-eagle" or "fastspec-medusa"
// (written by python/fastspec/distill.py); its metadata:
//   fastspec.head.kind           "eagle" | "medusa"
//   fastspec.head.target_sha256  sha256 of the target's file(s) (target_tie below)
//   fastspec.head.vocab_hash     sha256 of the target's vocabulary (target_tie below)
//   fastspec.head.target_name    the target's file name (for messages)
//   fastspec.head.feature_layer  the target hidden state it reads (Features numbering)
//   fastspec.head.feature_layers optional int32 array, ascending, ending with feature_layer: the
//                                states an EAGLE-3 head reads (low, mid, high); absent: just one
//   fastspec.head.vocab_ids      int32 [V_sub] target token ids of its output rows, ascending
//                                (an FR-Spec frequency-ranked subset; the head's logits row j is
//                                target token vocab_ids[j])
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "fastspec/model_file.h"

namespace fastspec {

struct HeadMeta {
  std::string kind;  // "eagle" | "medusa"
  std::string target_sha256, vocab_hash, target_name;
  int64_t feature_layer = -1;
  std::vector<int32_t> feature_layers;  // [n_feat] ascending, back() == feature_layer
  std::vector<int32_t> vocab_ids;  // [V_sub] ascending
};

// True when the file is a draft head (its architecture is fastspec-eagle or fastspec-medusa).
bool is_draft_head(const ModelFile& f);

// The head's metadata; FormatError naming the file and key when a key is missing or malformed
// (vocab_ids not strictly ascending, non-negative int32s).
HeadMeta read_head_meta(const ModelFile& head);

// A target's identity as a head records it:
//   sha256:     of the file's bytes (GGUF, single .safetensors); a checkpoint directory (or its
//               index.json): of its *.safetensors files' bytes, in sorted name order, concatenated
//   vocab_hash: sha256 over tokenizer.ggml.tokens, each token's UTF-8 bytes then one 0 byte;
//               without that key, of the ASCII text "vocab_size=<n>"
struct TargetTie {
  std::string sha256, vocab_hash;
};
TargetTie target_tie(const ModelFile& target);

// ModelError naming both files and both hashes when the head was not distilled from this target
// (or its ids, feature layer or width do not fit it).
void check_head_target(const ModelFile& head, const HeadMeta& m, int64_t head_n_embd, const ModelFile& target);

}  // namespace fastspec

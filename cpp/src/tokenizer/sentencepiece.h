// SentencePiece-style BPE with byte fallback (`tokenizer.ggml.model == "llama"`: Llama 2,
// Mistral, Gemma), as tokenizer_load.py's _gguf_sentencepiece builds it.
//
// Spelling: a token made only of spaces is respelled with U+2581 ('▁') when that spelling is not
// itself a token (Gemma stores runs of spaces as real spaces). Normalization of a segment: every
// ' ' becomes '▁'; with add_space_prefix, a '▁' is prepended to the segment that begins the text
// unless it already starts with one. The segment is one word: each character is its token, else
// its bytes' <0xXX> tokens, else the unknown token (consecutive unknowns fused into one), then
// merges: the file's (rank = position), or ones derived from the vocabulary (spm_merges.h).
#pragma once
#include <array>

#include "tokenizer/segment_model.h"
#include "tokenizer/vocab.h"

namespace fastspec::tok {

class SentencePieceModel : public SegmentModel {
 public:
  explicit SentencePieceModel(const Vocab& v);  // ModelError naming the file and key

  void encode(std::string_view text, bool at_start, EncodeScratch& s, std::vector<int32_t>& out) const override;

  // Token spellings after the space respelling, [n].
  const std::vector<std::string>& spelled() const { return spelled_; }
  // The id of a spelled token, or -1.
  int32_t find(std::string_view spelled) const {
    auto it = vocab_.find(spelled);
    return it == vocab_.end() ? -1 : it->second;
  }

 private:
  std::string where_;
  std::vector<std::string> spelled_;
  TokenMap vocab_;
  std::array<int32_t, 256> byte_ids_;  // id of <0xXX>, -1 when absent
  int32_t unk_ = -1;                   // the unknown token's id; -1 when none
  std::string unk_missing_;            // an unknown token named but not in the vocabulary
  bool space_prefix_ = true;
  MergeTable merges_;
};

}  // namespace fastspec::tok

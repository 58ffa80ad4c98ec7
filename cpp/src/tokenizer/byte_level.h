// Byte-level BPE (`tokenizer.ggml.model == "gpt2"`: GPT-2, SmolLM2, Llama 3, Qwen 2, ...).
//
// Tokens are byte strings spelled with GPT-2's byte -> printable character table. A segment is
// cut into words by the pre-tokenizer of `tokenizer.ggml.pre`; a word's bytes start as one
// symbol each (the single-byte tokens; a byte without one is dropped, as tokenizers does without
// an unknown token) and are merged by the file's merges (rank = position in the list). With
// ignore_merges (Llama 3), a word that is a token is that token.
#pragma once
#include <array>
#include <memory>

#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/segment_model.h"
#include "tokenizer/vocab.h"

namespace fastspec::tok {

// GPT-2's bytes_to_unicode: byte -> the code point that spells it in a token.
const std::array<uint32_t, 256>& byte_to_unicode();
// The inverse: the byte a code point spells, or -1 when it is outside the byte alphabet.
int unicode_to_byte(uint32_t cp);
// The bytes a token spelled in the byte alphabet stands for; false (out untouched) when a
// character is outside the alphabet.
bool byte_level_unspell(std::string_view spelled, std::string& out);

class ByteLevelModel : public SegmentModel {
 public:
  // ModelError naming the file and the key (no merges, a merge naming an unknown token, an
  // unsupported pre-tokenizer).
  explicit ByteLevelModel(const Vocab& v);

  void encode(std::string_view text, bool at_start, EncodeScratch& s, std::vector<int32_t>& out) const override;

  // The raw bytes -> id map (added tokens are looked up by their spelled text, see tokenizer.cpp).
  const TokenMap& bytes_map() const { return by_bytes_; }
  // The id of a token spelled `spelled` (the file's spelling), or -1.
  int32_t find_spelled(std::string_view spelled) const;

 private:
  std::vector<std::string> raw_;  // [n] the bytes of each token
  TokenMap by_bytes_;
  std::array<int32_t, 256> byte_ids_;  // single-byte token of each byte, -1 when none
  MergeTable merges_;
  std::unique_ptr<PreTokenizer> pre_;
};

}  // namespace fastspec::tok

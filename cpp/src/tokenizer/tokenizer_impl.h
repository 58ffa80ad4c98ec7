// The state of a Tokenizer (shared, immutable once built): the vocabulary, the segment model,
// the added tokens and the decoding tables.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/decode.h"
#include "tokenizer/segment_model.h"
#include "tokenizer/vocab.h"

namespace fastspec::tok {

struct TokenizerImpl {
  Vocab vocab;
  std::unique_ptr<SegmentModel> model;
  AddedTokens added;
  PieceTable pieces;
  std::vector<uint8_t> special;  // [n] 1 for control tokens and BOS/EOS/UNK/PAD (skip_special)
  std::vector<int32_t> eog;      // sorted
  bool strip_first_space = false;
};

// Builds it from a vocabulary (tokenizer_build.cpp).
std::shared_ptr<const TokenizerImpl> tokenizer_build(Vocab v);

}  // namespace fastspec::tok

// Token ids -> text: the byte string of every token, and UTF-8 decoding with replacement.
//
// A token is a fixed byte string (detokenize.py): byte-level vocabularies spell bytes with the
// GPT-2 alphabet; SentencePiece ones write '▁' for a space and <0xXX> for a raw byte; added and
// special tokens are their text. The text of ids is the UTF-8 decoding of their concatenated
// bytes, each maximal ill-formed subsequence replaced by one U+FFFD (Unicode's recommended
// practice, which Python's decode("utf-8", "replace") follows), so decoding streams exactly.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace fastspec::tok {

struct PieceTable {
  std::string data;           // all tokens' bytes, back to back
  std::vector<uint32_t> off;  // [n + 1]: token i is data[off[i], off[i + 1])
  std::string_view at(int32_t i) const { return std::string_view(data).substr(off[i], off[i + 1] - off[i]); }
};

// literal: [n], 1 where the token is its own text (added and special tokens).
PieceTable piece_table(const Vocab& v, const std::vector<uint8_t>& literal);

// Decodes bytes as UTF-8 with replacement, appending to out. When !final, a trailing sequence
// that is incomplete but could still become valid is held back (and ED A0..BF, as CPython
// does): returns the bytes consumed.
size_t utf8_replace_append(std::string_view bytes, bool final, std::string& out);

}  // namespace fastspec::tok

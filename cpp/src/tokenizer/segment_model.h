// What the byte-level and SentencePiece-style models share: the interface that encodes one
// segment of text (the text between added tokens), the scratch buffers of one encode call, and
// the reading of a `tokenizer.ggml.merges` line.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/unicode.h"

namespace fastspec::tok {

// Token text (or bytes) -> id; the views point into strings the model owns. A text that occurs
// twice maps to its later id (as a Python dict built in file order).
using TokenMap = std::unordered_map<std::string_view, int32_t>;

// Buffers reused across the segments of one encode call.
struct EncodeScratch {
  std::vector<uint32_t> cps, offsets;                 // [n], [n + 1]
  std::vector<uint8_t> props;                         // [n]
  std::vector<std::pair<uint32_t, uint32_t>> pieces;  // pre-tokenizer pieces (code point ranges)
  std::vector<int32_t> symbols;                       // a word's initial ids
  std::string normalized;
  BpeScratch bpe;
};

class SegmentModel {
 public:
  virtual ~SegmentModel() = default;
  // Appends the ids of `text` (valid UTF-8, no added token in it); `at_start`: the segment
  // begins the input text.
  virtual void encode(std::string_view text, bool at_start, EncodeScratch& s, std::vector<int32_t>& out) const = 0;
};

// A merges line "left right": split at the first space after the first character (a left part
// may itself be a space). False when there is none (the line is skipped).
inline bool merge_line_split(const std::string& m, std::string_view& left, std::string_view& right) {
  if (m.empty()) return false;
  const size_t k = m.find(' ', utf8_len(static_cast<uint8_t>(m[0])));
  if (k == std::string::npos) return false;
  left = std::string_view(m).substr(0, k);
  right = std::string_view(m).substr(k + 1);
  return true;
}

}  // namespace fastspec::tok

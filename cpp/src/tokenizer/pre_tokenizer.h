// Byte-level pre-tokenizers by `tokenizer.ggml.pre`: the regexes that cut text into words before
// BPE, applied in turn (each one splits the pieces of the previous one "isolated"), as
// python/fastspec/tokenizer_load.py's _pre_table builds them for Hugging Face tokenizers.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/pre_regex.h"

namespace fastspec::tok {

class PreTokenizer {
 public:
  // The pre-tokenizer of `pre`; ModelError naming `where` and the key when the name is unknown.
  static PreTokenizer by_name(const std::string& pre, const std::string& where);
  // From explicit regexes (tests).
  explicit PreTokenizer(const std::vector<std::string>& regexes, bool ignore_merges = false);

  // Pieces of text[0, n) as [begin, end) code point ranges, in order, covering the text.
  void split(const CodeText& text, std::vector<std::pair<uint32_t, uint32_t>>& out) const;

  // Whether a word that is itself a vocabulary entry skips the merges (Llama 3, Tekken).
  bool ignore_merges() const { return ignore_merges_; }

  // The supported `tokenizer.ggml.pre` names, space-separated.
  static std::string supported_names();

 private:
  std::vector<PreRegex> regexes_;
  bool ignore_merges_ = false;
};

}  // namespace fastspec::tok

// The tokenizer's vocabulary as a GGUF file's metadata states it (tokenizer.ggml.*), read and
// checked once; the models (byte_level.h, sentencepiece.h) and decoding build on it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "fastspec/metadata.h"

namespace fastspec::tok {

// GGUF token types (llama.cpp's llama_token_type)
enum TokenType : int32_t {
  kTokenNormal = 1,
  kTokenUnknown = 2,
  kTokenControl = 3,
  kTokenUserDefined = 4,
  kTokenUnused = 5,
  kTokenByte = 6,
};

enum class VocabModel { kByteLevel, kSentencePiece };  // tokenizer.ggml.model "gpt2" / "llama"

struct Vocab {
  std::string where;                 // the file, for messages
  std::string model_name;            // tokenizer.ggml.model
  VocabModel model = VocabModel::kSentencePiece;
  std::string arch;                  // general.architecture ("" when absent)
  std::string pre;                   // tokenizer.ggml.pre ("default" when absent or empty)
  std::vector<std::string> tokens;   // [n] as the file spells them (valid UTF-8)
  std::vector<int32_t> types;        // [n] TokenType (all kTokenNormal when the file has none)
  std::vector<std::string> merges;   // tokenizer.ggml.merges lines, in order (may be empty)
  bool has_scores = false;           // tokenizer.ggml.scores present
  std::vector<double> scores;        // [<= n] tokenizer.ggml.scores
  bool add_space_prefix = true;      // tokenizer.ggml.add_space_prefix
  bool add_bos = false;              // BOS prepended by encode (model default applied, bos exists)
  bool add_eos = false;              // EOS appended by encode (eos exists)
  // Special ids, -1 when absent or outside [0, n).
  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1, eom = -1;

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
};

// Reads the tokenizer keys of a GGUF file's metadata. ModelError naming `where` and the key when
// a key is missing or holds the wrong kind of value (the checks of tokenizer_load.py).
Vocab vocab_from_metadata(const MetaMap& md, const std::string& where);

}  // namespace fastspec::tok

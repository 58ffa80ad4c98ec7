// The C++ tokenizer: text <-> token ids from the vocabulary in a GGUF file's metadata, with no
// Python and no external library. Ids are those of the Python tokenizer
// (fastspec.Tokenizer.from_model, Hugging Face `tokenizers`), checked by tests/test_cpp_tokenizer.py.
//
//   auto tok = fastspec::Tokenizer::from_file("SmolLM2-135M-Instruct.Q4_1.gguf");
//   std::vector<int32_t> ids = tok.encode("<|im_start|>user\nHi<|im_end|>\n");
//   std::string text = tok.decode(ids);
//   fastspec::StreamDecoder dec(tok, ids);        // streaming, continuing after the prompt
//   for (int32_t id : generated) std::cout << dec.push(id);
//   std::cout << dec.flush();
//
// Supported: `tokenizer.ggml.model` "gpt2" (byte-level BPE with the file's merges and the
// pre-tokenizer regexes of `tokenizer.ggml.pre`: gpt2, smollm, llama3, qwen2, tekken, gpt-4o,
// falcon, default and their aliases) and "llama" (SentencePiece-style BPE with byte fallback;
// merges from the file or derived from the vocabulary, as Gemma needs). Anything else throws
// ModelError at load. A Tokenizer is immutable: share it between threads freely (copies share
// the tables).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fastspec/metadata.h"

namespace fastspec {

class ModelFile;
namespace tok {
struct TokenizerImpl;
}

class Tokenizer {
 public:
  // From a GGUF file (opened and mapped; only its metadata is read), an opened model file, or
  // GGUF metadata (`where` names it in errors). ModelError naming the file and the key when the
  // vocabulary is missing, malformed or unsupported; IoError / FormatError from opening the file.
  static Tokenizer from_file(const std::string& path);
  static Tokenizer from_model_file(const ModelFile& mf);
  static Tokenizer from_metadata(const MetaMap& md, const std::string& where);

  // Token ids of UTF-8 text. Added tokens written in the text (<|im_start|>, <start_of_turn>,
  // Gemma's "\n\n" and tag tokens) are matched whole and become their ids; with parse_special
  // false, CONTROL tokens are ordinary text instead (for untrusted input). With add_special,
  // BOS (and EOS) are added when the metadata says so (add_bos(), add_eos()), as Python's
  // Tokenizer.encode. InvalidArgument when the text is not valid UTF-8.
  std::vector<int32_t> encode(std::string_view text, bool add_special = true, bool parse_special = true) const;

  // The text of ids: their bytes concatenated, decoded as UTF-8 (each ill-formed sequence -> one
  // U+FFFD); skip_special drops special tokens (control tokens, BOS, EOS, UNK, PAD). With a space
  // prefix (Llama 2 style, not Gemma 3) one leading space of the first token is dropped.
  // InvalidArgument for an id outside [0, vocab_size()).
  std::string decode(const int32_t* ids, size_t n, bool skip_special = false) const;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const {
    return decode(ids.data(), ids.size(), skip_special);
  }

  std::string token_bytes(int32_t id) const;        // the exact bytes `id` contributes to text
  const std::string& token_text(int32_t id) const;  // its vocabulary entry as the file spells it

  int32_t vocab_size() const;
  int32_t bos_id() const;    // -1 when the model has none
  int32_t eos_id() const;    // -1 when the model has none
  bool add_bos() const;      // encode(text) prepends BOS
  bool add_eos() const;      // encode(text) appends EOS
  bool is_special(int32_t id) const;
  // End-of-generation ids: EOS, EOT, EOM and the end-of-turn tokens (<|im_end|>, <end_of_turn>,
  // <|endoftext|>, <|eot_id|>, ...), sorted.
  const std::vector<int32_t>& eog_ids() const;
  bool is_eog(int32_t id) const;
  const std::string& model() const;   // tokenizer.ggml.model: "gpt2" | "llama"
  const std::string& source() const;  // the file it came from

 private:
  explicit Tokenizer(std::shared_ptr<const tok::TokenizerImpl> impl) : impl_(std::move(impl)) {}
  void check_id(int32_t id) const;
  std::shared_ptr<const tok::TokenizerImpl> impl_;
  friend class StreamDecoder;
};

// Streaming decoding: push(id) returns the text that id completes ("" while a UTF-8 character
// is still incomplete); flush() returns what remains (U+FFFD for an unfinished character). The
// pieces of a stream concatenate to decode(ids) exactly; after prompt_ids, to
// decode(prompt_ids + ids) minus the prompt's text (when the prompt ends on a whole character).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, const std::vector<int32_t>& prompt_ids = {},
                         bool skip_special = false);
  std::string push(int32_t id);
  std::string flush();

 private:
  std::string_view bytes_of(int32_t id);
  Tokenizer tok_;
  bool skip_special_;
  bool first_ = true;   // no token decoded yet (the space-prefix strip applies to the first)
  std::string pending_; // bytes of an unfinished UTF-8 character
};

}  // namespace fastspec

// The pre-tokenizer table (tokenizer.ggml.pre -> regexes, ignore_merges) and the sequential
// split: pieces_0 = [text]; pieces_k = every piece of pieces_{k-1} split by regex k (matches and
// the gaps between them). A regex sees one piece at a time: its lookahead stops at the piece end.
#include "tokenizer/pre_tokenizer.h"

#include <sstream>

#include "fastspec/status.h"

namespace fastspec::tok {
namespace {

const char* const kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
    R"(|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
    R"(|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kTekken =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)"
    R"(|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kGpt4o =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct PreEntry {
  const char* names;  // space-separated
  std::vector<const char*> regexes;
  bool ignore_merges;
};

const std::vector<PreEntry>& pre_table() {
  static const std::vector<PreEntry> t = {
      {"gpt2 gpt-2 phi-2 mpt olmo jais roberta-bpe jina-es jina-de gigachat jina-v1-en jina-v2-es "
       "jina-v2-de jina-v2-code trillion", {kGpt2}, false},
      // individual digits first, then GPT-2 (SmolLM2's tokenizer.json: Digits + ByteLevel)
      {"smollm starcoder refact command-r codeshell exaone minerva-7b", {R"(\p{N})", kGpt2}, false},
      {"llama3 llama-v3 llama-bpe falcon3 pixtral", {kLlama3}, true},
      {"dbrx smaug-bpe chatglm-bpe", {kLlama3}, false},
      {"qwen2 stablelm2 megrez deepseek-r1-qwen", {kQwen2}, false},
      {"tekken", {kTekken}, true},
      {"gpt-4o llama4", {kGpt4o}, false},
      {"falcon", {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}, false},
      {"default", {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}, false},
  };
  return t;
}

bool has_name(const char* names, const std::string& name) {
  std::istringstream in(names);
  std::string w;
  while (in >> w)
    if (w == name) return true;
  return false;
}

}  // namespace

PreTokenizer::PreTokenizer(const std::vector<std::string>& regexes, bool ignore_merges)
    : ignore_merges_(ignore_merges) {
  for (const auto& r : regexes) regexes_.emplace_back(r);
}

PreTokenizer PreTokenizer::by_name(const std::string& pre, const std::string& where) {
  for (const auto& e : pre_table()) {
    if (!has_name(e.names, pre)) continue;
    return PreTokenizer(std::vector<std::string>(e.regexes.begin(), e.regexes.end()), e.ignore_merges);
  }
  throw ModelError(where + ": tokenizer.ggml.pre '" + pre + "' is not supported by the C++ tokenizer "
                   "(known: " + supported_names() + "); the Python tokenizer falls back to the GPT-2 "
                   "regex with a warning, which may not be how the model was trained");
}

std::string PreTokenizer::supported_names() {
  std::string out;
  for (const auto& e : pre_table()) {
    if (!out.empty()) out += ' ';
    out += e.names;
  }
  return out;
}

void PreTokenizer::split(const CodeText& text, std::vector<std::pair<uint32_t, uint32_t>>& out) const {
  out.clear();
  if (text.n == 0) return;
  out.push_back({0, static_cast<uint32_t>(text.n)});
  std::vector<std::pair<uint32_t, uint32_t>> next;
  for (const PreRegex& re : regexes_) {
    next.clear();
    for (const auto& piece : out) re.split(text, piece.first, piece.second, next);
    out.swap(next);
  }
}

}  // namespace fastspec::tok

// SentencePiece-style BPE: spelling, model construction, and the encoding of a segment
//   normalize (' ' -> '▁', space prefix) -> per character: token | <0xXX> bytes | unknown -> merges.
// The unknown-token bookkeeping follows tokenizers' BPE: a run of unknown characters becomes one
// unknown token, emitted before the next known character (byte-fallback tokens do not flush it).
#include "tokenizer/sentencepiece.h"

#include <cstdio>
#include <unordered_set>

#include "fastspec/status.h"
#include "tokenizer/spm_merges.h"

namespace fastspec::tok {
namespace {

const std::string kMeta = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

bool all_spaces(const std::string& t) {
  if (t.empty()) return false;
  for (char c : t)
    if (c != ' ') return false;
  return true;
}

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  for (size_t k = 0; k < n; ++k) out += s;
  return out;
}

}  // namespace

SentencePieceModel::SentencePieceModel(const Vocab& v) : where_(v.where), space_prefix_(v.add_space_prefix) {
  const int32_t n = v.size();
  std::unordered_set<std::string_view> present(v.tokens.begin(), v.tokens.end());
  spelled_.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    const std::string& t = v.tokens[i];
    std::string meta;
    if (all_spaces(t) && !present.count(meta = repeat(kMeta, t.size()))) spelled_[i] = meta;
    else spelled_[i] = t;
  }
  vocab_.reserve(2 * static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) vocab_[spelled_[i]] = i;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    byte_ids_[b] = find(name);
  }
  const std::string unk_text = v.unk >= 0 ? v.tokens[v.unk] : (find("<unk>") >= 0 ? "<unk>" : "");
  if (!unk_text.empty() || v.unk >= 0) {
    unk_ = find(unk_text);
    if (unk_ < 0) unk_missing_ = unk_text;
  }

  if (!v.merges.empty()) {
    merges_.reserve(v.merges.size());
    int32_t rank = 0;
    for (size_t k = 0; k < v.merges.size(); ++k) {
      std::string_view l, r;
      if (!merge_line_split(v.merges[k], l, r)) continue;
      const int32_t a = find(l), b = find(r), m = find(std::string(l) + std::string(r));
      if (a < 0 || b < 0 || m < 0)
        throw ModelError(v.where + ": tokenizer.ggml.merges[" + std::to_string(k) + "] '" + v.merges[k] +
                         "': '" + std::string(a < 0 ? l : b < 0 ? r : std::string(l) + std::string(r)) +
                         "' is not in the vocabulary (tokenizer.ggml.tokens, " + std::to_string(n) + " tokens)");
      merges_.put(a, b, rank++, m);
    }
  } else {
    // Gemma: by file position (its scores do not follow its merge order); others: by score
    const bool gemma = v.arch.compare(0, 5, "gemma") == 0;
    const bool by_position = gemma || !v.has_scores;
    spm_merges_from_vocab(spelled_, vocab_, by_position ? nullptr : &v.scores, merges_);
  }
}

void SentencePieceModel::encode(std::string_view text, bool at_start, EncodeScratch& s,
                                std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::string& norm = s.normalized;
  norm.clear();
  if (space_prefix_ && at_start && text[0] != ' ' && text.compare(0, kMeta.size(), kMeta) != 0) norm += kMeta;
  for (char c : text) {
    if (c == ' ') norm += kMeta;
    else norm += c;
  }
  auto& sym = s.symbols;
  sym.clear();
  bool unk_pending = false;
  for (size_t i = 0; i < norm.size();) {
    const size_t len = utf8_len(static_cast<uint8_t>(norm[i]));
    const std::string_view ch(norm.data() + i, len);
    i += len;
    const int32_t id = find(ch);
    if (id >= 0) {
      if (unk_pending) sym.push_back(unk_);
      unk_pending = false;
      sym.push_back(id);
      continue;
    }
    bool bytes = true;
    for (unsigned char c : ch) bytes = bytes && byte_ids_[c] >= 0;
    if (bytes) {
      for (unsigned char c : ch) sym.push_back(byte_ids_[c]);
      continue;
    }
    if (!unk_missing_.empty())
      throw ModelError(where_ + ": the unknown token '" + unk_missing_ + "' (tokenizer.ggml.unknown_token_id) "
                       "is not in the vocabulary, and the text holds a character without a token");
    if (unk_ >= 0) unk_pending = true;  // no unknown token: the character is dropped
  }
  if (unk_pending) sym.push_back(unk_);
  bpe_merge(sym.data(), sym.size(), merges_, s.bpe, out);
}

}  // namespace fastspec::tok

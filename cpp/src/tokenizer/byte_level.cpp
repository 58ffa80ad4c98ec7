// Byte-level BPE: the byte alphabet, the model built from the vocabulary and merges, and the
// encoding of a segment: pre-tokenize -> per word: [ignore_merges lookup] -> bytes -> merges.
//
// Byte alphabet (GPT-2): the printable bytes '!'..'~', 0xA1..0xAC, 0xAE..0xFF spell themselves;
// the other 68 bytes, in increasing order, are spelled U+0100, U+0101, ...
#include "tokenizer/byte_level.h"

#include "fastspec/status.h"

namespace fastspec::tok {

const std::array<uint32_t, 256>& byte_to_unicode() {
  static const std::array<uint32_t, 256> t = [] {
    std::array<uint32_t, 256> a{};
    uint32_t extra = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      a[b] = printable ? b : 256 + extra++;
    }
    return a;
  }();
  return t;
}

int unicode_to_byte(uint32_t cp) {
  static const std::array<int16_t, 324> inv = [] {
    std::array<int16_t, 324> a{};
    a.fill(-1);
    for (int b = 0; b < 256; ++b) a[byte_to_unicode()[b]] = static_cast<int16_t>(b);
    return a;
  }();
  return cp < inv.size() ? inv[cp] : -1;
}

bool byte_level_unspell(std::string_view spelled, std::string& out) {
  std::string bytes;
  bytes.reserve(spelled.size());
  const auto* p = reinterpret_cast<const uint8_t*>(spelled.data());
  for (size_t i = 0; i < spelled.size();) {
    const size_t len = utf8_len(p[i]);
    uint32_t cp = len == 1 ? p[i] : p[i] & (0x7F >> len);
    for (size_t k = 1; k < len && i + k < spelled.size(); ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
    const int b = unicode_to_byte(cp);
    if (b < 0) return false;
    bytes += static_cast<char>(b);
    i += len;
  }
  out.swap(bytes);
  return true;
}

ByteLevelModel::ByteLevelModel(const Vocab& v) {
  const int32_t n = v.size();
  raw_.resize(n);
  for (int32_t i = 0; i < n; ++i)
    if (!byte_level_unspell(v.tokens[i], raw_[i])) raw_[i] = v.tokens[i];  // spelled from its UTF-8
  by_bytes_.reserve(2 * static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) by_bytes_[raw_[i]] = i;
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    auto it = by_bytes_.find(std::string_view(&c, 1));
    byte_ids_[b] = it == by_bytes_.end() ? -1 : it->second;
  }

  if (v.merges.empty())
    throw ModelError(v.where + ": byte-level BPE vocabulary without tokenizer.ggml.merges");
  merges_.reserve(v.merges.size());
  int32_t rank = 0;
  std::string joined;
  for (size_t k = 0; k < v.merges.size(); ++k) {
    std::string_view l, r;
    if (!merge_line_split(v.merges[k], l, r)) continue;
    const int32_t a = find_spelled(l), b = find_spelled(r);
    auto fail = [&](std::string_view part) {
      throw ModelError(v.where + ": tokenizer.ggml.merges[" + std::to_string(k) + "] '" + v.merges[k] +
                       "': '" + std::string(part) + "' is not in the vocabulary (tokenizer.ggml.tokens, " +
                       std::to_string(n) + " tokens)");
    };
    if (a < 0) fail(l);
    if (b < 0) fail(r);
    joined = raw_[a] + raw_[b];
    auto it = by_bytes_.find(joined);
    if (it == by_bytes_.end()) fail(std::string(l) + std::string(r));
    merges_.put(a, b, rank++, it->second);
  }
  pre_ = std::make_unique<PreTokenizer>(PreTokenizer::by_name(v.pre, v.where));
}

int32_t ByteLevelModel::find_spelled(std::string_view spelled) const {
  std::string raw;
  if (!byte_level_unspell(spelled, raw)) return -1;
  auto it = by_bytes_.find(raw);
  return it == by_bytes_.end() ? -1 : it->second;
}

void ByteLevelModel::encode(std::string_view text, bool at_start, EncodeScratch& s,
                            std::vector<int32_t>& out) const {
  utf8_decode(text, s.cps, s.offsets);  // the caller checked the text is valid UTF-8
  const size_t n = s.cps.size();
  s.props.resize(n);
  for (size_t i = 0; i < n; ++i) s.props[i] = unicode_props(s.cps[i]);
  pre_->split(CodeText{s.cps.data(), s.props.data(), n}, s.pieces);
  for (const auto& piece : s.pieces) {
    const std::string_view word = text.substr(s.offsets[piece.first], s.offsets[piece.second] - s.offsets[piece.first]);
    if (pre_->ignore_merges()) {
      auto it = by_bytes_.find(word);
      if (it != by_bytes_.end()) {
        out.push_back(it->second);
        continue;
      }
    }
    s.symbols.clear();
    for (unsigned char c : word)
      if (byte_ids_[c] >= 0) s.symbols.push_back(byte_ids_[c]);
    bpe_merge(s.symbols.data(), s.symbols.size(), merges_, s.bpe, out);
  }
}

}  // namespace fastspec::tok

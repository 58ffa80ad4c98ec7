// The per-token byte table and UTF-8 decoding with replacement.
//
// Well-formed UTF-8 (Unicode Table 3-7): 00..7F | C2..DF 80..BF | E0 A0..BF 80..BF |
// E1..EC 80..BF 80..BF | ED 80..9F 80..BF | EE..EF 80..BF 80..BF | F0 90..BF 80..BF 80..BF |
// F1..F3 80..BF 80..BF 80..BF | F4 80..8F 80..BF 80..BF. Decoding: at each position take the
// longest prefix of a well-formed sequence; a whole one is a character, a partial one (or a byte
// that cannot begin one) is a single U+FFFD and decoding resumes right after it. Streaming emits
// the same text, piece for piece as Python's incremental decoder (codecs' "utf-8", "replace").
#include "tokenizer/decode.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/unicode.h"

namespace fastspec::tok {
namespace {

bool hex_digit(char c, int& v) {
  if (c >= '0' && c <= '9') v = c - '0';
  else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
  else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
  else return false;
  return true;
}

// <0xXX> with any case of hex digits -> the byte; -1 otherwise.
int byte_token(const std::string& t) {
  int hi, lo;
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>' || !hex_digit(t[3], hi) || !hex_digit(t[4], lo))
    return -1;
  return hi * 16 + lo;
}

const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

PieceTable piece_table(const Vocab& v, const std::vector<uint8_t>& literal) {
  PieceTable t;
  const int32_t n = v.size();
  t.off.reserve(n + 1);
  t.off.push_back(0);
  std::string bytes;
  for (int32_t i = 0; i < n; ++i) {
    const std::string& tok = v.tokens[i];
    if (literal[i]) {
      t.data += tok;
    } else if (v.model == VocabModel::kByteLevel) {
      t.data += byte_level_unspell(tok, bytes) ? bytes : tok;
    } else if (int b = byte_token(tok); b >= 0) {
      t.data += static_cast<char>(b);
    } else {
      for (size_t k = 0; k < tok.size(); ++k) {
        if (tok.compare(k, 3, "\xE2\x96\x81") == 0) {
          t.data += ' ';
          k += 2;
        } else {
          t.data += tok[k];
        }
      }
    }
    t.off.push_back(static_cast<uint32_t>(t.data.size()));
  }
  return t;
}

size_t utf8_replace_append(std::string_view bytes, bool final, std::string& out) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      out += kReplacement;
      ++i;
      continue;
    }
    size_t k = 1;
    for (; k < len && i + k < n; ++k) {
      const uint8_t b = p[i + k];
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
    }
    if (k == len) {
      out.append(bytes.data() + i, len);
      i += len;
    } else if (!final && (i + k == n || (c == 0xED && i + 2 == n && p[i + 1] >= 0xA0 && p[i + 1] <= 0xBF))) {
      // incomplete at the end: wait for more bytes. Like CPython's incremental decoder, hold ED
      // A0..BF too (a truncated surrogate, ill-formed but only reported once more bytes come)
      return i;
    } else {
      out += kReplacement;
      i += k;
    }
  }
  return n;
}

}  // namespace fastspec::tok

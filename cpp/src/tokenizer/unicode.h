// Unicode facts for the tokenizer: UTF-8 decoding of input text, the general category and
// White_Space flag of a code point (tables generated from Python's unicodedata, see
// gen_unicode_tables.py), and the code points that case-fold to an ASCII letter.
//
// A code point's "props" byte is (general category index | 32 when White_Space); category
// indices are those of kCategoryNames in unicode_tables.inc (Lu=0 ... Cn=29), so a set of
// props values fits one 64-bit mask (bit p set = props value p belongs to the set).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/utf8.h"

namespace fastspec::tok {

constexpr uint8_t kPropWhiteSpace = 32;
constexpr int kCategoryCount = 30;

// props of cp (category | kPropWhiteSpace); ASCII from a 128-entry table, the rest by binary
// search over the generated ranges.
uint8_t unicode_props(uint32_t cp);

// Name of category index k ("Lu" for 0); k in [0, kCategoryCount).
const char* unicode_category_name(int k);

// Category index of a name ("Lu", "Nd", ...), or -1.
int unicode_category_index(std::string_view name);

// The Unicode version of the tables ("14.0.0").
const char* unicode_version();

// Code points other than `letter` whose case folding is the ASCII lower-case letter `letter`
// ('S' and U+017F for 's').
std::vector<uint32_t> unicode_case_variants(uint32_t letter);

// Decodes well-formed UTF-8 (RFC 3629) into code points, with each code point's byte offset
// (offsets gets n + 1 entries, the last = text.size()). Returns the byte offset of the first
// ill-formed sequence, or npos when the whole text is well-formed.
size_t utf8_decode(std::string_view text, std::vector<uint32_t>& cps, std::vector<uint32_t>& offsets);

// Byte offset of the first ill-formed UTF-8 sequence of text, or npos when it is well-formed.
size_t utf8_check(std::string_view text);

// utf8_append (the UTF-8 encoding of a code point): io/utf8.h.
using fastspec::utf8_append;

// Byte length of the UTF-8 sequence starting with lead byte c (1 for bytes that cannot lead).
inline size_t utf8_len(uint8_t c) {
  return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
}

}  // namespace fastspec::tok

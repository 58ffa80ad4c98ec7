// Unicode lookups over the generated tables (unicode_tables.inc) and UTF-8 decoding.
//   props(cp) = value of the last range whose first code point <= cp (binary search).
#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace fastspec::tok {
namespace {

#include "tokenizer/unicode_tables.inc"

uint8_t props_search(uint32_t cp) {
  // first entry whose start is > cp, then step back one
  const uint32_t key = (cp << 8) | 0xFF;
  const uint32_t* end = kUnicodeRanges + sizeof(kUnicodeRanges) / sizeof(kUnicodeRanges[0]);
  const uint32_t* it = std::upper_bound(kUnicodeRanges, end, key);
  return static_cast<uint8_t>(it[-1] & 0xFF);  // kUnicodeRanges[0] starts at 0, so it > begin
}

const std::array<uint8_t, 128>& ascii_props() {
  static const std::array<uint8_t, 128> t = [] {
    std::array<uint8_t, 128> a{};
    for (uint32_t c = 0; c < 128; ++c) a[c] = props_search(c);
    return a;
  }();
  return t;
}

}  // namespace

uint8_t unicode_props(uint32_t cp) {
  if (cp < 128) return ascii_props()[cp];
  if (cp > 0x10FFFF) return static_cast<uint8_t>(unicode_category_index("Cn"));
  return props_search(cp);
}

const char* unicode_category_name(int k) { return kCategoryNames[k]; }

int unicode_category_index(std::string_view name) {
  for (int k = 0; k < kCategoryCount; ++k)
    if (name == kCategoryNames[k]) return k;
  return -1;
}

const char* unicode_version() { return kUnicodeVersion; }

std::vector<uint32_t> unicode_case_variants(uint32_t letter) {
  std::vector<uint32_t> out;
  for (const auto& f : kCaseFolds)
    if (f[0] == letter) out.push_back(f[1]);
  return out;
}

namespace {

// Decodes the sequence at p[i] (n bytes in all): its length, or 0 when ill-formed.
inline size_t utf8_one(const uint8_t* p, size_t i, size_t n, uint32_t& cp) {
  const uint8_t c = p[i];
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  const size_t len = utf8_len(c);
  if (len == 1 || i + len > n) return 0;
  cp = c & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    if ((p[i + k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i + k] & 0x3F);
  }
  static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

}  // namespace

size_t utf8_check(std::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  uint32_t cp;
  for (size_t i = 0; i < n;) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const size_t len = utf8_one(p, i, n, cp);
    if (!len) return i;
    i += len;
  }
  return std::string_view::npos;
}

size_t utf8_decode(std::string_view text, std::vector<uint32_t>& cps, std::vector<uint32_t>& offsets) {
  cps.clear();
  offsets.clear();
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  uint32_t cp;
  while (i < n) {
    offsets.push_back(static_cast<uint32_t>(i));
    const size_t len = utf8_one(p, i, n, cp);
    if (!len) return i;
    cps.push_back(cp);
    i += len;
  }
  offsets.push_back(static_cast<uint32_t>(n));
  return std::string_view::npos;
}

}  // namespace fastspec::tok

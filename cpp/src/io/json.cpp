// Strict RFC 8259 JSON parser: recursive descent with an explicit depth limit (json_depth_max),
// a value-count limit (json_values_max), UTF-8 validation and locale-independent numbers.
#include "io/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>
#include <system_error>

#include "fastspec/status.h"
#include "io/utf8.h"

namespace fastspec {
namespace {

class Parser {
 public:
  Parser(const char* data, size_t n, const std::string& what) : p_(data), n_(n), what_(what) {}

  MetaValue parse_document() {
    skip_ws();
    MetaValue v;
    parse_value(v, 0);
    skip_ws();
    if (pos_ != n_) fail("unexpected data after the JSON value");
    return v;
  }

 private:
  const char* p_;
  size_t n_;
  const std::string& what_;
  size_t pos_ = 0;
  uint64_t n_values_ = 0;

  [[noreturn]] void fail(const std::string& reason) const { fail_at(pos_, reason); }
  [[noreturn]] void fail_at(size_t at, const std::string& reason) const {
    throw FormatError(what_ + ": malformed JSON at byte " + std::to_string(at) + ": " + reason);
  }

  static std::string describe(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
    static const char* hex = "0123456789abcdef";
    return std::string("byte 0x") + hex[u >> 4] + hex[u & 15];
  }

  bool at_end() const { return pos_ >= n_; }
  char peek() const { return p_[pos_]; }

  void skip_ws() {
    while (pos_ < n_) {
      char c = p_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  void expect_literal(const char* lit) {
    size_t start = pos_;
    for (const char* q = lit; *q; ++q) {
      if (at_end() || p_[pos_] != *q) fail_at(start, std::string("invalid literal (expected '") + lit + "')");
      ++pos_;
    }
  }

  void parse_value(MetaValue& v, int depth) {
    if (++n_values_ > json_values_max)
      fail("too many values (limit " + std::to_string(json_values_max) + ")");
    if (at_end()) fail("unexpected end of input, expected a value");
    char c = peek();
    switch (c) {
      case '{': parse_object(v, depth + 1); return;
      case '[': parse_array(v, depth + 1); return;
      case '"': v.kind = MetaValue::Kind::String; parse_string(v.s); return;
      case 't': expect_literal("true"); v.kind = MetaValue::Kind::Bool; v.b = true; return;
      case 'f': expect_literal("false"); v.kind = MetaValue::Kind::Bool; v.b = false; return;
      case 'n': expect_literal("null"); v.kind = MetaValue::Kind::Null; return;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) { parse_number(v); return; }
        fail("unexpected " + describe(c) + ", expected a value");
    }
  }

  void check_depth(int depth) {
    if (depth > json_depth_max) fail("nesting deeper than " + std::to_string(json_depth_max));
  }

  void parse_array(MetaValue& v, int depth) {
    check_depth(depth);
    v.kind = MetaValue::Kind::Array;
    ++pos_;  // '['
    skip_ws();
    if (!at_end() && peek() == ']') { ++pos_; return; }
    for (;;) {
      skip_ws();
      v.array.emplace_back();
      parse_value(v.array.back(), depth);
      skip_ws();
      if (at_end()) fail("unexpected end of input in array");
      char c = peek();
      ++pos_;
      if (c == ']') return;
      if (c != ',') { --pos_; fail("expected ',' or ']' in array, got " + describe(c)); }
    }
  }

  void parse_object(MetaValue& v, int depth) {
    check_depth(depth);
    v.kind = MetaValue::Kind::Object;
    size_t start = pos_;
    ++pos_;  // '{'
    skip_ws();
    if (!at_end() && peek() == '}') { ++pos_; return; }
    for (;;) {
      skip_ws();
      if (at_end()) fail("unexpected end of input in object");
      if (peek() != '"') fail("expected a string key in object, got " + describe(peek()));
      v.object.emplace_back();
      parse_string(v.object.back().first);
      skip_ws();
      if (at_end() || peek() != ':') fail("expected ':' after object key");
      ++pos_;
      skip_ws();
      parse_value(v.object.back().second, depth);
      skip_ws();
      if (at_end()) fail("unexpected end of input in object");
      char c = peek();
      ++pos_;
      if (c == '}') break;
      if (c != ',') { --pos_; fail("expected ',' or '}' in object, got " + describe(c)); }
    }
    check_duplicate_keys(v, start);
  }

  void check_duplicate_keys(const MetaValue& v, size_t start) const {
    if (v.object.size() < 2) return;
    std::vector<std::string_view> keys;
    keys.reserve(v.object.size());
    for (const auto& kv : v.object) keys.emplace_back(kv.first);
    std::sort(keys.begin(), keys.end());
    auto dup = std::adjacent_find(keys.begin(), keys.end());
    if (dup != keys.end())
      fail_at(start, "duplicate key \"" + json_snippet(std::string(*dup)) + "\" in object");
  }

  int hex4() {
    if (n_ - pos_ < 4) fail("truncated \\u escape");
    int v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = p_[pos_ + k];
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else fail("invalid hex digit " + describe(c) + " in \\u escape");
      v = v * 16 + d;
    }
    pos_ += 4;
    return v;
  }

  // Validates one raw UTF-8 sequence starting at pos_ (lead byte >= 0x80) and appends it.
  void copy_utf8(std::string& out) {
    size_t start = pos_;
    auto b = [&](size_t k) { return static_cast<unsigned char>(p_[start + k]); };
    unsigned char c0 = b(0);
    size_t len;
    uint32_t cp, min;
    if (c0 >= 0xC2 && c0 <= 0xDF) { len = 2; cp = c0 & 0x1F; min = 0x80; }
    else if (c0 >= 0xE0 && c0 <= 0xEF) { len = 3; cp = c0 & 0x0F; min = 0x800; }
    else if (c0 >= 0xF0 && c0 <= 0xF4) { len = 4; cp = c0 & 0x07; min = 0x10000; }
    else fail("invalid UTF-8 lead " + describe(static_cast<char>(c0)) + " in string");
    if (n_ - start < len) fail("truncated UTF-8 sequence in string");
    for (size_t k = 1; k < len; ++k) {
      if ((b(k) & 0xC0) != 0x80) fail("invalid UTF-8 continuation byte in string");
      cp = (cp << 6) | (b(k) & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      fail("invalid UTF-8 sequence (overlong, surrogate or out of range) in string");
    out.append(p_ + start, len);
    pos_ += len;
  }

  void parse_string(std::string& out) {
    size_t start = pos_;
    ++pos_;  // opening quote
    for (;;) {
      if (at_end()) fail_at(start, "unterminated string");
      unsigned char c = static_cast<unsigned char>(peek());
      if (c == '"') { ++pos_; return; }
      if (c < 0x20) fail("unescaped control character " + describe(static_cast<char>(c)) + " in string");
      if (c >= 0x80) { copy_utf8(out); continue; }
      if (c != '\\') {
        // Copy a run of plain ASCII at once.
        size_t run = pos_;
        while (run < n_) {
          unsigned char d = static_cast<unsigned char>(p_[run]);
          if (d == '"' || d == '\\' || d < 0x20 || d >= 0x80) break;
          ++run;
        }
        out.append(p_ + pos_, run - pos_);
        pos_ = run;
        continue;
      }
      ++pos_;  // backslash
      if (at_end()) fail_at(start, "unterminated string");
      char e = peek();
      ++pos_;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          size_t esc = pos_ - 2;
          uint32_t cp = static_cast<uint32_t>(hex4());
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at(esc, "lone low surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (n_ - pos_ < 2 || p_[pos_] != '\\' || p_[pos_ + 1] != 'u')
              fail_at(esc, "high surrogate not followed by a \\u low surrogate");
            pos_ += 2;
            uint32_t lo = static_cast<uint32_t>(hex4());
            if (lo < 0xDC00 || lo > 0xDFFF) fail_at(esc, "high surrogate followed by a non-low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8_append(out, cp);
          break;
        }
        default:
          --pos_;
          if (static_cast<unsigned char>(e) >= 0x20 && static_cast<unsigned char>(e) < 0x7f)
            fail("invalid escape '\\" + std::string(1, e) + "' in string");
          fail("invalid escape: backslash followed by " + describe(e) + " in string");
      }
    }
  }

  void parse_number(MetaValue& v) {
    size_t start = pos_;
    bool neg = false;
    if (peek() == '-') { neg = true; ++pos_; }
    auto digits = [&]() {
      size_t d0 = pos_;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
      return pos_ - d0;
    };
    if (at_end() || !(peek() >= '0' && peek() <= '9')) fail("expected a digit in number");
    size_t int_start = pos_;
    size_t n_int = digits();
    if (n_int > 1 && p_[int_start] == '0') fail_at(int_start, "leading zero in number");
    bool is_float = false;
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (digits() == 0) fail("expected a digit after the decimal point");
      is_float = true;
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (digits() == 0) fail("expected a digit in the exponent");
      is_float = true;
    }
    const char* b = p_ + start;
    const char* e = p_ + pos_;
    if (!is_float) {
      if (neg) {
        int64_t x;
        auto r = std::from_chars(b, e, x);
        if (r.ec == std::errc() && r.ptr == e) { v.kind = MetaValue::Kind::Int; v.i = x; return; }
      } else {
        uint64_t x;
        auto r = std::from_chars(b, e, x);
        if (r.ec == std::errc() && r.ptr == e) {
          if (x <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            v.kind = MetaValue::Kind::Int;
            v.i = static_cast<int64_t>(x);
          } else {
            v.kind = MetaValue::Kind::UInt;
            v.u = x;
          }
          return;
        }
      }
      // Overflowed 64 bits: fall through to a double.
    }
    v.kind = MetaValue::Kind::Float;
    double x = 0.0;
    auto r = std::from_chars(b, e, x);
    if (r.ec == std::errc::result_out_of_range) {
      x = overflows(b, e) ? std::numeric_limits<double>::infinity() : 0.0;
      if (neg) x = -x;
    } else if (r.ec != std::errc() || r.ptr != e) {
      fail_at(start, "invalid number");
    }
    v.f = x;
  }

  // For a syntactically valid number that does not fit a double: true if too large, false if
  // too small (decimal exponent of the leading significant digit decides).
  static bool overflows(const char* b, const char* e) {
    int64_t lead = 0;      // position of the first nonzero digit relative to the point
    bool seen_point = false, seen_nonzero = false;
    int64_t int_digits = 0, zeros_after_point = 0;
    const char* q = b;
    if (*q == '-') ++q;
    for (; q < e && *q != 'e' && *q != 'E'; ++q) {
      if (*q == '.') { seen_point = true; continue; }
      if (!seen_nonzero) {
        if (*q != '0') seen_nonzero = true;
        else if (seen_point) ++zeros_after_point;
      }
      if (!seen_point && seen_nonzero) ++int_digits;
    }
    lead = int_digits > 0 ? int_digits : -zeros_after_point;
    int64_t exp = 0;
    if (q < e) {
      ++q;
      bool eneg = false;
      if (*q == '+' || *q == '-') { eneg = *q == '-'; ++q; }
      for (; q < e; ++q) exp = std::min<int64_t>(exp * 10 + (*q - '0'), int64_t(1) << 40);
      if (eneg) exp = -exp;
    }
    return lead + exp > 0;
  }
};

}  // namespace

std::string json_snippet(const std::string& s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not mid-character
  return s.substr(0, cut) + "...";
}

MetaValue json_parse(const char* data, size_t n, const std::string& what) {
  Parser parser(data, n, what);
  return parser.parse_document();
}

}  // namespace fastspec

// The pre-tokenizer matcher: a small backtracking regex engine for the subset of syntax the
// pre-tokenizer patterns use (tokenizer_load.py's regexes, run by Hugging Face tokenizers through
// Oniguruma), with Unicode classes from the generated tables. No std::regex.
//
// Syntax: alternation `|`; groups `(?:...)`, `(?i:...)` (ASCII letters match their case
// variants), `(?!...)` (negative lookahead); character classes `[...]` / `[^...]` holding
// characters, ranges `a-z`, `\p{X}`, `\s`; outside classes: characters, `\s`, `\S`, `\p{X}`,
// `\P{X}`; escapes `\r \n \t \f \v` and any escaped punctuation; quantifiers `? * + {n} {n,}
// {n,m}` (greedy) on a character or class, and `?` on a group. \p{X}: a general category (Lu, Nd,
// ...) or its major class (L, M, N, P, S, Z, C). Anything else throws InvalidArgument naming
// the pattern and the position.
//
// Semantics are those of a backtracking engine (Perl, Oniguruma): alternatives are tried in
// order, quantifiers take as many characters as they can and give them back one at a time, and
// the first way to match wins. A match is searched from each start position in turn.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace fastspec::tok {

// A text to match: code points and their props bytes (tokenizer/unicode.h), [n] each.
struct CodeText {
  const uint32_t* cps = nullptr;
  const uint8_t* props = nullptr;
  size_t n = 0;
};

class PreRegex {
 public:
  explicit PreRegex(const std::string& pattern);  // InvalidArgument on unsupported syntax

  // End of the match starting at `pos` in text[0, end), or -1 when none starts there.
  long match_at(const CodeText& text, size_t pos, size_t end) const;

  // Splits text[begin, end) "isolated" (as tokenizers' Split(behavior="isolated")): every match
  // and every gap between matches is a piece; appends the pieces' [begin, end) to out.
  void split(const CodeText& text, size_t begin, size_t end,
             std::vector<std::pair<uint32_t, uint32_t>>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Class {
    uint64_t props_mask = 0;                            // props values that belong
    std::vector<std::pair<uint32_t, uint32_t>> ranges;  // code point ranges that belong
    bool negate = false;
    bool has(uint32_t cp, uint8_t props) const;
  };
  struct Node;
  using Seq = std::vector<Node>;
  struct Node {
    enum Kind { kClass, kGroup, kNotAhead } kind = kClass;
    int cls = -1;             // kClass: index into classes_
    std::vector<Seq> alts;    // kGroup / kNotAhead
    int min = 1, max = 1;     // quantifier (max -1: unbounded)
  };

  struct Cont;
  long match_seq(const Seq& seq, size_t i, size_t pos, const Cont* k, const CodeText& t,
                 size_t end) const;

  std::string pattern_;
  std::vector<Class> classes_;
  std::vector<Seq> top_;  // alternatives of the whole pattern
  friend class PreRegexParser;
};

}  // namespace fastspec::tok

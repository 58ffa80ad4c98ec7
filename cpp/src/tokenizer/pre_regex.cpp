// PreRegex: parser of the supported regex subset and its backtracking matcher.
//
// Matching seq[i..] at pos with continuation k (what must match after this sequence ends):
//   class{min,max}: run = the longest run of class members (<= max); try run, run-1, ..., min
//                   for the rest (greedy with backtracking; the run alone when nothing follows);
//   group:          each alternative, followed by seq[i+1..] then k; a `?` group may be skipped;
//   (?!alts):       fails if any alternative matches at pos (on its own), else goes on at pos.
// The first success is the match (alternatives in order), as in Perl and Oniguruma.
#include "tokenizer/pre_regex.h"

#include <algorithm>

#include "fastspec/status.h"
#include "tokenizer/unicode.h"

namespace fastspec::tok {

bool PreRegex::Class::has(uint32_t cp, uint8_t props) const {
  bool in = (props_mask >> props) & 1;
  for (size_t k = 0; !in && k < ranges.size(); ++k) in = cp >= ranges[k].first && cp <= ranges[k].second;
  return in != negate;
}

struct PreRegex::Cont {
  const Seq* seq;
  size_t i;
  const Cont* up;
};

namespace {

// Props mask of the categories whose names match `name` exactly or, for a one-letter major
// class (L, N, ...), by their first letter. 0 when no category matches.
uint64_t category_mask(const std::string& name) {
  uint64_t mask = 0;
  for (int p = 0; p < 64; ++p) {
    const int cat = p & 31;
    if (cat >= kCategoryCount) continue;
    const std::string c = unicode_category_name(cat);
    if (c == name || (name.size() == 1 && c[0] == name[0])) mask |= uint64_t{1} << p;
  }
  return mask;
}

uint64_t white_space_mask() {
  uint64_t mask = 0;
  for (int p = 0; p < 64; ++p)
    if (p & kPropWhiteSpace) mask |= uint64_t{1} << p;
  return mask;
}

}  // namespace

class PreRegexParser {
 public:
  PreRegexParser(PreRegex& re) : re_(re) {
    std::vector<uint32_t> offsets;
    if (utf8_decode(re.pattern_, c_, offsets) != std::string::npos) fail("the pattern is not valid UTF-8");
  }

  void parse() {
    re_.top_ = alternatives(false);
    if (i_ != c_.size()) fail("unbalanced ')'");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw InvalidArgument("pre-tokenizer regex '" + re_.pattern_ + "': " + what + " at character " +
                          std::to_string(i_) + " (the tokenizer's regex subset: see tokenizer/pre_regex.h)");
  }
  bool more() const { return i_ < c_.size(); }
  uint32_t peek() const { return more() ? c_[i_] : 0; }
  uint32_t next() {
    if (!more()) fail("unexpected end");
    return c_[i_++];
  }
  void expect(uint32_t ch) {
    if (next() != ch) fail(std::string("expected '") + static_cast<char>(ch) + "'");
  }

  int add_class(PreRegex::Class c) {
    re_.classes_.push_back(std::move(c));
    return static_cast<int>(re_.classes_.size()) - 1;
  }

  void add_char(PreRegex::Class& c, uint32_t ch, bool icase) {
    c.ranges.push_back({ch, ch});
    if (!icase) return;
    uint32_t lower = (ch >= 'A' && ch <= 'Z') ? ch + 32 : ch;
    if (lower < 'a' || lower > 'z') return;
    if (lower != ch) c.ranges.push_back({lower, lower});
    for (uint32_t v : unicode_case_variants(lower))
      if (v != ch) c.ranges.push_back({v, v});
  }

  std::vector<PreRegex::Seq> alternatives(bool icase) {
    std::vector<PreRegex::Seq> alts;
    alts.push_back(sequence(icase));
    while (peek() == '|') {
      ++i_;
      alts.push_back(sequence(icase));
    }
    return alts;
  }

  PreRegex::Seq sequence(bool icase) {
    PreRegex::Seq seq;
    while (more() && peek() != '|' && peek() != ')') {
      PreRegex::Node n = atom(icase);
      quantifier(n);
      seq.push_back(std::move(n));
    }
    return seq;
  }

  PreRegex::Node atom(bool icase) {
    PreRegex::Node n;
    const uint32_t ch = next();
    if (ch == '(') {
      if (next() != '?') fail("capturing groups are not supported (use (?:...))");
      uint32_t g = next();
      bool inner_icase = icase;
      if (g == 'i') {
        inner_icase = true;
        g = next();
      }
      if (g == ':') n.kind = PreRegex::Node::kGroup;
      else if (g == '!' && !inner_icase) n.kind = PreRegex::Node::kNotAhead;
      else fail("unsupported group");
      n.alts = alternatives(inner_icase);
      expect(')');
      return n;
    }
    PreRegex::Class c;
    if (ch == '[') {
      bracket(c, icase);
    } else if (ch == '\\') {
      escape(c, icase, false);
    } else if (ch == '.' || ch == '^' || ch == '$') {
      fail("'.', '^' and '$' are not supported");
    } else if (ch == '*' || ch == '+' || ch == '?' || ch == '{') {
      fail("nothing to repeat");
    } else {
      add_char(c, ch, icase);
    }
    n.kind = PreRegex::Node::kClass;
    n.cls = add_class(std::move(c));
    return n;
  }

  // After a backslash. Adds to c; in a bracket only positive forms are allowed.
  void escape(PreRegex::Class& c, bool icase, bool in_bracket) {
    const uint32_t e = next();
    switch (e) {
      case 'p':
      case 'P': {
        expect('{');
        std::string name;
        while (peek() != '}') name += static_cast<char>(next());
        expect('}');
        const uint64_t m = category_mask(name);
        if (!m || name.size() > 2) fail("unknown Unicode category '" + name + "'");
        if (e == 'P') {
          if (in_bracket) fail("\\P inside [...] is not supported");
          c.negate = true;
        }
        c.props_mask |= m;
        return;
      }
      case 's': c.props_mask |= white_space_mask(); return;
      case 'S':
        if (in_bracket) fail("\\S inside [...] is not supported");
        c.props_mask |= white_space_mask();
        c.negate = true;
        return;
      case 'd': c.props_mask |= category_mask("Nd"); return;
      case 'r': c.ranges.push_back({'\r', '\r'}); return;
      case 'n': c.ranges.push_back({'\n', '\n'}); return;
      case 't': c.ranges.push_back({'\t', '\t'}); return;
      case 'f': c.ranges.push_back({'\f', '\f'}); return;
      case 'v': c.ranges.push_back({'\v', '\v'}); return;
      default:
        if (e < 128 && !((e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z'))) {
          add_char(c, e, icase);
          return;
        }
        fail("unsupported escape");
    }
  }

  // After '[': items up to the closing ']'.
  void bracket(PreRegex::Class& c, bool icase) {
    if (peek() == '^') {
      ++i_;
      c.negate = true;
    }
    bool first = true;
    while (true) {
      uint32_t ch = next();
      if (ch == ']' && !first) return;
      first = false;
      if (ch == '[') fail("nested classes are not supported");
      if (ch == '\\') {
        const size_t at = i_;
        const uint32_t e = peek();
        if (e == 'p' || e == 's' || e == 'd' || e == 'P' || e == 'S') {
          escape(c, icase, true);
          continue;
        }
        PreRegex::Class one;
        escape(one, false, true);
        if (one.ranges.size() != 1) { i_ = at; fail("bad escape in [...]"); }
        ch = one.ranges[0].first;
      }
      if (peek() == '-' && i_ + 1 < c_.size() && c_[i_ + 1] != ']') {
        ++i_;
        uint32_t hi = next();
        if (hi == '\\') fail("escaped range ends are not supported");
        if (hi < ch) fail("reversed range");
        if (icase) fail("ranges inside (?i:...) are not supported");
        c.ranges.push_back({ch, hi});
        continue;
      }
      add_char(c, ch, icase);
    }
  }

  int number() {
    if (!(peek() >= '0' && peek() <= '9')) fail("expected a number");
    long v = 0;
    while (peek() >= '0' && peek() <= '9') {
      v = v * 10 + (next() - '0');
      if (v > 100000) fail("repeat count too large");
    }
    return static_cast<int>(v);
  }

  void quantifier(PreRegex::Node& n) {
    if (!more()) return;
    const uint32_t q = peek();
    int lo, hi;
    if (q == '?') { lo = 0; hi = 1; }
    else if (q == '*') { lo = 0; hi = -1; }
    else if (q == '+') { lo = 1; hi = -1; }
    else if (q == '{') {
      ++i_;
      lo = number();
      hi = lo;
      if (peek() == ',') {
        ++i_;
        hi = peek() == '}' ? -1 : number();
      }
      if (peek() != '}') fail("expected '}'");  // the ++i_ below steps past it
      if (hi >= 0 && hi < lo) fail("{n,m} with m < n");
    } else {
      return;
    }
    ++i_;
    if (n.kind == PreRegex::Node::kNotAhead) fail("a lookahead cannot be repeated");
    if (n.kind == PreRegex::Node::kGroup && !(lo == 0 && hi == 1)) fail("a group can only take '?'");
    if (more() && (peek() == '?' || peek() == '+')) fail("lazy and possessive quantifiers are not supported");
    n.min = lo;
    n.max = hi;
  }

  PreRegex& re_;
  std::vector<uint32_t> c_;
  size_t i_ = 0;
};

PreRegex::PreRegex(const std::string& pattern) : pattern_(pattern) {
  PreRegexParser(*this).parse();
}

long PreRegex::match_seq(const Seq& seq0, size_t i, size_t pos, const Cont* k, const CodeText& t,
                         size_t end) const {
  const Seq* seq = &seq0;
  while (true) {
    if (i == seq->size()) {
      if (!k) return static_cast<long>(pos);
      seq = k->seq;
      i = k->i;
      k = k->up;
      continue;
    }
    const Node& nd = (*seq)[i];
    if (nd.kind == Node::kClass) {
      const Class& c = classes_[nd.cls];
      const size_t room = end - pos;
      const size_t limit = nd.max < 0 ? room : std::min(room, static_cast<size_t>(nd.max));
      size_t run = 0;
      while (run < limit && c.has(t.cps[pos + run], t.props[pos + run])) ++run;
      if (run < static_cast<size_t>(nd.min)) return -1;
      if (nd.min == nd.max || (i + 1 == seq->size() && !k)) {  // no choice, or nothing follows
        pos += run;
        ++i;
        continue;
      }
      for (size_t r = run + 1; r-- > static_cast<size_t>(nd.min);) {
        const long m = match_seq(*seq, i + 1, pos + r, k, t, end);
        if (m >= 0) return m;
      }
      return -1;
    }
    if (nd.kind == Node::kGroup) {
      const Cont after{seq, i + 1, k};
      for (const Seq& alt : nd.alts) {
        const long m = match_seq(alt, 0, pos, &after, t, end);
        if (m >= 0) return m;
      }
      if (nd.min != 0) return -1;
      ++i;
      continue;
    }
    for (const Seq& alt : nd.alts)  // kNotAhead
      if (match_seq(alt, 0, pos, nullptr, t, end) >= 0) return -1;
    ++i;
  }
}

long PreRegex::match_at(const CodeText& text, size_t pos, size_t end) const {
  for (const Seq& alt : top_) {
    const long m = match_seq(alt, 0, pos, nullptr, text, end);
    if (m >= 0) return m;
  }
  return -1;
}

void PreRegex::split(const CodeText& text, size_t begin, size_t end,
                     std::vector<std::pair<uint32_t, uint32_t>>& out) const {
  size_t gap = begin, pos = begin;
  while (pos < end) {
    const long m = match_at(text, pos, end);
    if (m > static_cast<long>(pos)) {
      if (gap < pos) out.push_back({static_cast<uint32_t>(gap), static_cast<uint32_t>(pos)});
      out.push_back({static_cast<uint32_t>(pos), static_cast<uint32_t>(m)});
      pos = gap = static_cast<size_t>(m);
    } else {
      ++pos;  // no match here (an empty match is no piece either)
    }
  }
  if (gap < end) out.push_back({static_cast<uint32_t>(gap), static_cast<uint32_t>(end)});
}

}  // namespace fastspec::tok

// Merges derived from a vocabulary (see spm_merges.h for the order).
#include "tokenizer/spm_merges.h"

#include <algorithm>
#include <tuple>

namespace fastspec::tok {
namespace {

// Byte offsets of the character boundaries of a UTF-8 string (0 and size included).
void char_bounds(const std::string& t, std::vector<uint32_t>& out) {
  out.clear();
  for (size_t i = 0; i < t.size(); i += utf8_len(static_cast<uint8_t>(t[i]))) out.push_back(static_cast<uint32_t>(i));
  out.push_back(static_cast<uint32_t>(t.size()));
}

int32_t lookup(const TokenMap& vocab, std::string_view s) {
  auto it = vocab.find(s);
  return it == vocab.end() ? -1 : it->second;
}

struct Cand {
  int32_t left, right, merged;
  double score;
  int32_t len_left, len_right;  // characters
};

}  // namespace

void spm_merges_from_vocab(const std::vector<std::string>& spelled, const TokenMap& vocab,
                           const std::vector<double>* scores, MergeTable& out) {
  std::vector<uint32_t> b;
  if (!scores && vocab.size() == spelled.size()) {
    out.reserve(spelled.size() * 2);
    int32_t rank = 0;
    for (size_t i = 0; i < spelled.size(); ++i) {
      const std::string& t = spelled[i];
      char_bounds(t, b);
      const std::string_view tv(t);
      for (size_t k = b.size() - 2; k >= 1 && k < b.size(); --k) {  // longest left part first
        const int32_t l = lookup(vocab, tv.substr(0, b[k]));
        if (l < 0) continue;
        const int32_t r = lookup(vocab, tv.substr(b[k]));
        if (r < 0) continue;
        out.put(l, r, rank++, static_cast<int32_t>(i));
      }
    }
    return;
  }
  // rank of each distinct spelling: its score (the later one of a repeated spelling), or minus
  // its last position; visited in first-occurrence order
  const size_t n = scores ? std::min(scores->size(), spelled.size()) : spelled.size();
  TokenMap first;
  std::vector<size_t> order;
  std::vector<double> value(spelled.size());
  for (size_t i = 0; i < n; ++i) {
    auto ins = first.emplace(spelled[i], static_cast<int32_t>(i));
    if (ins.second) order.push_back(i);
    value[ins.first->second] = scores ? (*scores)[i] : -static_cast<double>(i);
  }
  std::vector<Cand> cands, local;
  for (size_t i : order) {
    const std::string& t = spelled[i];
    char_bounds(t, b);
    const std::string_view tv(t);
    local.clear();
    for (size_t k = 1; k + 1 < b.size(); ++k) {
      const int32_t l = lookup(vocab, tv.substr(0, b[k]));
      const int32_t r = l < 0 ? -1 : lookup(vocab, tv.substr(b[k]));
      if (r < 0) continue;
      local.push_back({l, r, lookup(vocab, tv), value[i], static_cast<int32_t>(k),
                       static_cast<int32_t>(b.size() - 1 - k)});
    }
    std::stable_sort(local.begin(), local.end(), [](const Cand& x, const Cand& y) {
      return std::tie(x.left, x.right) < std::tie(y.left, y.right);
    });
    cands.insert(cands.end(), local.begin(), local.end());
  }
  std::stable_sort(cands.begin(), cands.end(), [](const Cand& x, const Cand& y) {
    return std::tie(x.score, x.len_left, x.len_right) > std::tie(y.score, y.len_left, y.len_right);
  });
  out.reserve(cands.size());
  for (size_t k = 0; k < cands.size(); ++k) out.put(cands[k].left, cands[k].right, static_cast<int32_t>(k), cands[k].merged);
}

}  // namespace fastspec::tok

// AddedTokens: trie insertion and the leftmost-longest scan
//   pos = 0; while pos < n: walk the trie from pos, remembering the last node that ends a token;
//   found: a match [pos, end), pos = end; else pos += 1.
#include "tokenizer/added_tokens.h"

#include <algorithm>

namespace fastspec::tok {

int32_t AddedTokens::child(int32_t node, uint8_t c) const {
  if (node == 0) return root_next_[c];
  const auto& nx = nodes_[node].next;
  auto it = std::lower_bound(nx.begin(), nx.end(), std::make_pair(c, int32_t{-1}));
  return it != nx.end() && it->first == c ? it->second : -1;
}

void AddedTokens::add(std::string_view text, int32_t id, bool special) {
  if (text.empty()) return;
  int32_t node = 0;
  for (unsigned char c : text) {
    int32_t nx = child(node, c);
    if (nx < 0) {
      nx = static_cast<int32_t>(nodes_.size());
      nodes_.emplace_back();
      if (node == 0) {
        root_next_[c] = nx;
      } else {
        auto& v = nodes_[node].next;
        v.insert(std::lower_bound(v.begin(), v.end(), std::make_pair(c, int32_t{-1})), {c, nx});
      }
    }
    node = nx;
  }
  if (nodes_[node].id >= 0) return;
  nodes_[node].id = id;
  nodes_[node].special = special;
  ++count_;
}

void AddedTokens::find(std::string_view text, bool parse_special, std::vector<Match>& out) const {
  out.clear();
  if (count_ == 0) return;
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t pos = 0;
  while (pos < n) {
    int32_t node = root_next_[p[pos]];
    int32_t best = -1;
    size_t best_end = 0;
    for (size_t i = pos + 1; node >= 0; ++i) {
      if (nodes_[node].id >= 0) {
        best = node;
        best_end = i;
      }
      if (i >= n) break;
      node = child(node, p[i]);
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    if (parse_special || !nodes_[best].special) out.push_back({pos, best_end, nodes_[best].id});
    pos = best_end;
  }
}

}  // namespace fastspec::tok

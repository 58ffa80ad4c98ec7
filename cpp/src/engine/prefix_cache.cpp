#include "engine/prefix_cache.h"

#include <algorithm>

namespace fastspec {

const KvCache* PrefixCache::lookup(const std::vector<int32_t>& tokens, int64_t max_len, int64_t* common) {
  *common = 0;
  auto best = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const int64_t n = std::min<int64_t>({static_cast<int64_t>(it->tokens.size()), static_cast<int64_t>(tokens.size()), max_len});
    int64_t c = 0;
    while (c < n && it->tokens[c] == tokens[c]) ++c;
    if (c > *common) *common = c, best = it;
  }
  if (best == entries_.end()) return nullptr;
  entries_.splice(entries_.begin(), entries_, best);  // most recently used
  return entries_.front().kv.get();
}

void PrefixCache::insert(const std::vector<int32_t>& tokens, std::unique_ptr<KvCache> kv) {
  const int64_t n = kv->length();
  if (n < 1 || static_cast<int64_t>(tokens.size()) < n || kv->bytes_used() > budget_) return;  // (budget 0: off)
  std::vector<int32_t> held(tokens.begin(), tokens.begin() + n);
  for (auto it = entries_.begin(); it != entries_.end(); ++it)  // already covered by a longer entry
    if (it->tokens.size() >= held.size() && std::equal(held.begin(), held.end(), it->tokens.begin())) {
      entries_.splice(entries_.begin(), entries_, it);
      return;
    }
  for (auto it = entries_.begin(); it != entries_.end();) {  // drop entries this one subsumes
    const bool prefix = it->tokens.size() <= held.size() && std::equal(it->tokens.begin(), it->tokens.end(), held.begin());
    if (prefix) bytes_ -= it->kv->bytes_used(), it = entries_.erase(it);
    else ++it;
  }
  bytes_ += kv->bytes_used();
  entries_.push_front(Entry{std::move(held), std::move(kv)});
  set_budget(budget_);
}

void PrefixCache::set_budget(int64_t budget_bytes) {
  budget_ = budget_bytes;
  while (bytes_ > budget_ && !entries_.empty()) {
    bytes_ -= entries_.back().kv->bytes_used();
    entries_.pop_back();
  }
}

}  // namespace fastspec

// The prefix cache: finished sequences' KV caches, keyed by the tokens they hold, so that a new
// request (or the next chat turn) whose prompt starts with cached tokens copies their K/V instead
// of recomputing them. The copied bits are those a prefill would compute (every op is
// row-invariant), so a hit never changes the output. Bounded by bytes of K/V held, least recently
// used evicted first; an entry whose tokens are a prefix of a newer entry's is dropped (subsumed).
// Not thread-safe: SharedPrefixCache below pairs it with a mutex.
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <vector>

#include "model/kv_cache.h"

namespace fastspec {

class PrefixCache {
 public:
  explicit PrefixCache(int64_t budget_bytes) : budget_(budget_bytes) {}

  // The entry sharing the longest prefix with tokens, that prefix's length (capped at max_len) in
  // *common; nullptr when no entry shares a token. Marks the entry most recently used.
  const KvCache* lookup(const std::vector<int32_t>& tokens, int64_t max_len, int64_t* common);
  // Keeps kv, holding tokens[0, kv->length()); evicts over budget (an entry larger than the whole
  // budget is not kept).
  void insert(const std::vector<int32_t>& tokens, std::unique_ptr<KvCache> kv);

  // A new budget (0: off), evicting the least recently used entries over it.
  void set_budget(int64_t budget_bytes);
  int64_t bytes() const { return bytes_; }
  size_t entries() const { return entries_.size(); }
  int64_t budget() const { return budget_; }

 private:
  struct Entry {
    std::vector<int32_t> tokens;  // [kv->length()]
    std::unique_ptr<KvCache> kv;
  };
  int64_t budget_, bytes_ = 0;
  std::list<Entry> entries_;  // most recently used first
};

// The engine's cache, shared by its sessions (Engine::start looks up, ~Session inserts) under
// its own mutex (never held while computing).
struct SharedPrefixCache {
  explicit SharedPrefixCache(int64_t budget_bytes) : cache(budget_bytes) {}
  std::mutex mu;
  PrefixCache cache;
  int64_t lookups = 0, hits = 0, hit_tokens = 0;
};

}  // namespace fastspec

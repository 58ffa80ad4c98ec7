#include "model/kv_cache.h"

#include "fastspec/status.h"

namespace fastspec {

KvCache::KvCache(int64_t n_layers, int64_t n_ctx, int64_t n_kv_heads, int64_t head_dim)
    : n_ctx_(n_ctx), row_(n_kv_heads * head_dim) {
  for (int64_t l = 0; l < n_layers; ++l) {
    // new float[] without () leaves the memory untouched: large blocks stay uncommitted.
    k_.emplace_back(new float[static_cast<size_t>(n_ctx * row_)]);
    v_.emplace_back(new float[static_cast<size_t>(n_ctx * row_)]);
  }
}

void KvCache::truncate(int64_t n) {
  if (n < 0 || n > length_)
    throw Error("kv_cache_truncate: " + std::to_string(n) + " outside [0, " + std::to_string(length_) + "]");
  length_ = n;
}

void KvCache::set_length(int64_t n) {
  if (n < 0 || n > n_ctx_)
    throw Error("kv_cache: length " + std::to_string(n) + " outside the context of " + std::to_string(n_ctx_));
  length_ = n;
}

}  // namespace fastspec

#include "model/kv_cache.h"

#include <cstring>

#include "backend/cpu/attention.h"
#include "fastspec/status.h"

namespace fastspec {

KvCache::KvCache(int64_t n_layers, int64_t n_ctx, int64_t n_kv_heads, int64_t head_dim, DType type)
    : n_ctx_(n_ctx), row_(n_kv_heads * head_dim), type_(type) {
  if (type != DType::F32 && type != DType::F16)
    throw InvalidArgument(std::string("KV cache type must be F32 or F16 (got ") + dtype_name(type) + ")");
  elem_ = type == DType::F32 ? 4 : 2;
  for (int64_t l = 0; l < n_layers; ++l) {
    // new T[] without () leaves the memory untouched: large blocks stay uncommitted.
    k_.emplace_back(new uint8_t[static_cast<size_t>(n_ctx * row_) * elem_]);
    v_.emplace_back(new uint8_t[static_cast<size_t>(n_ctx * row_) * elem_]);
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

void KvCache::store(int64_t layer, int64_t start, int64_t T, const float* k, const float* v) {
  if (start < 0 || start + T > n_ctx_)
    throw Error("kv_cache_store: positions [" + std::to_string(start) + ", " + std::to_string(start + T) +
                ") outside the context of " + std::to_string(n_ctx_));
  if (layer < 0 || layer >= static_cast<int64_t>(k_.size()))
    throw Error("kv_cache_store: layer " + std::to_string(layer) + " outside [0, " + std::to_string(k_.size()) + ")");
  const size_t off = static_cast<size_t>(start * row_) * elem_, bytes = static_cast<size_t>(T * row_) * elem_;
  if (type_ == DType::F32) {
    std::memcpy(k_[layer].get() + off, k, bytes);
    std::memcpy(v_[layer].get() + off, v, bytes);
    return;
  }
  // F16: round to nearest even (F16C on the SIMD paths, the same bits from the portable code)
  const int64_t n = T * row_;
  cpu::f32_to_f16(k, reinterpret_cast<uint16_t*>(k_[layer].get() + off), n);
  cpu::f32_to_f16(v, reinterpret_cast<uint16_t*>(v_[layer].get() + off), n);
}

void KvCache::compact(int64_t base, const int32_t* rows, int64_t n) {
  if (base < 0 || n < 0 || base + n > length_)
    throw Error("kv_cache_compact: " + std::to_string(n) + " rows from " + std::to_string(base) + " in a cache of " +
                std::to_string(length_));
  for (int64_t e = 0; e < n; ++e) {
    if (rows[e] < e || base + rows[e] >= length_ || (e > 0 && rows[e] <= rows[e - 1]))
      throw Error("kv_cache_compact: row " + std::to_string(rows[e]) + " at " + std::to_string(e) +
                  " (rows ascend from >= their index, inside the pass of " + std::to_string(length_ - base) + ")");
    if (rows[e] == e) continue;
    const size_t bytes = static_cast<size_t>(row_) * elem_;
    const size_t dst = static_cast<size_t>((base + e) * row_) * elem_, src = static_cast<size_t>((base + rows[e]) * row_) * elem_;
    for (size_t l = 0; l < k_.size(); ++l) {
      std::memcpy(k_[l].get() + dst, k_[l].get() + src, bytes);
      std::memcpy(v_[l].get() + dst, v_[l].get() + src, bytes);
    }
  }
  length_ = base + n;
}

void KvCache::copy_prefix(const KvCache& src, int64_t n) {
  if (src.k_.size() != k_.size() || src.row_ != row_ || src.type_ != type_ || n < 0 || n > src.length_ || n > n_ctx_)
    throw Error("kv_cache_copy_prefix: " + std::to_string(n) + " positions from a cache of " +
                std::to_string(src.k_.size()) + " layers x " + std::to_string(src.row_) + " (" +
                std::to_string(src.length_) + " cached) into " + std::to_string(k_.size()) + " x " +
                std::to_string(row_) + " of context " + std::to_string(n_ctx_));
  const size_t bytes = static_cast<size_t>(n * row_) * elem_;
  for (size_t l = 0; l < k_.size(); ++l) {
    std::memcpy(k_[l].get(), src.k_[l].get(), bytes);
    std::memcpy(v_[l].get(), src.v_[l].get(), bytes);
  }
  length_ = n;
}

KvView KvCache::view(int64_t layer) const {
  KvView kv;
  kv.k = k_[layer].get();
  kv.v = v_[layer].get();
  kv.type = type_;
  return kv;
}

}  // namespace fastspec

// Per-layer K/V cache, F32 or F16 (EngineOptions::kv_type). Memory is reserved for the whole
// context but only the pages of positions actually written are committed by the OS.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "fastspec/tensor.h"

namespace fastspec {

class KvCache {
 public:
  // type: DType::F32 or DType::F16 (InvalidArgument otherwise).
  KvCache(int64_t n_layers, int64_t n_ctx, int64_t n_kv_heads, int64_t head_dim, DType type = DType::F32);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t length() const { return length_; }  // committed positions [0, length)
  DType type() const { return type_; }
  // Rollback: keep positions [0, n). n <= length().
  void truncate(int64_t n);
  void set_length(int64_t n);  // after a forward wrote positions [length, n)
  // After a tree's verify pass wrote its rows at positions [base, length): keeps the accepted
  // path, slot base + rows[e] moved to base + e for e < n (rows ascending, rows[e] >= e), in every
  // layer; the length becomes base + n. The path's K/V then sit where decoding it alone puts them.
  void compact(int64_t base, const int32_t* rows, int64_t n);

  // Writes k, v [T, n_kv_heads * head_dim] (float32) at positions [start, start + T) of `layer`,
  // converted to type() (F16: round to nearest even, the same on every CPU path).
  void store(int64_t layer, int64_t start, int64_t T, const float* k, const float* v);
  KvView view(int64_t layer) const;  // [n_ctx, n_kv_heads, head_dim] of type()
  int64_t row() const { return row_; }  // n_kv_heads * head_dim
  // Positions [0, n) of every layer copied from src (same shape and type; n <= src.length(),
  // n <= n_ctx()); this cache's length becomes n (a prefix-cache hit: the bits src computed).
  void copy_prefix(const KvCache& src, int64_t n);
  // Bytes of K/V that positions [0, length) occupy (what a prefix-cache entry holds).
  int64_t bytes_used() const { return 2 * static_cast<int64_t>(k_.size()) * length_ * row_ * static_cast<int64_t>(elem_); }

 private:
  int64_t n_ctx_, row_, length_ = 0;
  DType type_;
  size_t elem_;  // bytes per element
  std::vector<std::unique_ptr<uint8_t[]>> k_, v_;
};

}  // namespace fastspec

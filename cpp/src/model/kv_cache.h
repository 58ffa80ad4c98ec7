// Per-layer K/V cache, float32. Memory is reserved for the whole context but only the pages of
// positions actually written are committed by the OS.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fastspec {

class KvCache {
 public:
  KvCache(int64_t n_layers, int64_t n_ctx, int64_t n_kv_heads, int64_t head_dim);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t length() const { return length_; }  // committed positions [0, length)
  // Rollback: keep positions [0, n). n <= length().
  void truncate(int64_t n);
  void set_length(int64_t n);  // after a forward wrote positions [length, n)

  float* k(int64_t layer) { return k_[layer].get(); }  // [n_ctx, n_kv_heads, head_dim]
  float* v(int64_t layer) { return v_[layer].get(); }  // [n_ctx, n_kv_heads, head_dim]
  int64_t row() const { return row_; }                  // n_kv_heads * head_dim

 private:
  int64_t n_ctx_, row_, length_ = 0;
  std::vector<std::unique_ptr<float[]>> k_, v_;
};

}  // namespace fastspec

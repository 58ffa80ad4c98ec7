// Attention over the KV cache on the CPU (decode, verify and prefill), batch-invariant: the result
// for query t does not depend on T or on which other queries share the pass.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "backend/cpu/thread_pool.h"

namespace fastspec::cpu {

struct AttentionArgs {
  const float* q = nullptr;  // [T, n_heads, head_dim]
  KvView kv;                 // this layer's cache: [n_ctx, n_kv_heads, head_dim] of kv.type (F32 | F16)
  float* out = nullptr;      // [T, n_heads, head_dim]
  int64_t T = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  const int32_t* pos = nullptr;  // [T] position of each query (its keys: [max(0, pos - window + 1), pos])
  float scale = 1.0f;            // multiplies q.k
  int64_t window = 0;            // > 0: sliding window length
  float softcap = 0.0f;          // > 0: score = softcap * tanh(score / softcap)
};

// out[t, h, :] = sum_j softmax_j(score(t, h, j)) v[j, h / (n_heads / n_kv_heads), :]
void attention_cpu(ThreadPool& pool, const AttentionArgs& a);

}  // namespace fastspec::cpu

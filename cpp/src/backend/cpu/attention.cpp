// Attention over the KV cache (see attention.h). Tasks: one per (query, head); keys in position
// order, so a query's result is the same whatever T is.
//   out[t, h, :] = sum_j softmax_j(softcap(scale * q[t,h,:].k[j,h/g,:])) v[j, h/g, :]
#include "backend/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/dequant.h"
#include "backend/cpu/dequant_fast.h"
#include "fastspec/status.h"

namespace fastspec::cpu {

void attention_cpu(ThreadPool& pool, const AttentionArgs& a) {
  if (a.kv.type != DType::F32) throw Error("attention: only an F32 KV cache is implemented so far");
  const int64_t group = a.n_heads / a.n_kv_heads, hd = a.head_dim;
  const int64_t kv_stride = a.n_kv_heads * hd;
  const float* k_cache = static_cast<const float*>(a.kv.k);
  const float* v_cache = static_cast<const float*>(a.kv.v);
  pool.run(a.T * a.n_heads, [&](int64_t task) {
    const int64_t t = task / a.n_heads, h = task % a.n_heads, kvh = h / group;
    const int64_t last = a.pos[t];
    const int64_t first = a.window > 0 ? std::max<int64_t>(0, last - a.window + 1) : 0;
    thread_local std::vector<float> scores;
    scores.resize(static_cast<size_t>(last - first + 1));
    const float* qv = a.q + (t * a.n_heads + h) * hd;
    float mx = -INFINITY;
    for (int64_t j = first; j <= last; ++j) {
      float s = dot_f32(qv, k_cache + j * kv_stride + kvh * hd, hd) * a.scale;
      if (a.softcap > 0) s = a.softcap * std::tanh(s / a.softcap);
      scores[j - first] = s;
      mx = std::max(mx, s);
    }
    float sum = 0;
    for (float& s : scores) {
      s = std::exp(s - mx);
      sum += s;
    }
    const float inv = 1.0f / sum;
    float* o = a.out + (t * a.n_heads + h) * hd;
    std::fill(o, o + hd, 0.0f);
    for (int64_t j = first; j <= last; ++j) {
      const float p = scores[j - first] * inv;
      const float* vv = v_cache + j * kv_stride + kvh * hd;
      for (int64_t d = 0; d < hd; ++d) o[d] += p * vv[d];
    }
  });
}

}  // namespace fastspec::cpu

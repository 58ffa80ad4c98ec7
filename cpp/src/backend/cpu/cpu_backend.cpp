// CPU ops. Parallel over independent rows/heads; each output element is reduced in one fixed
// order whatever T is, so decode and multi-token verify give bit-equal results per token.
#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <vector>


#include "backend/cpu/attention.h"
#include "backend/cpu/dequant.h"
#include "backend/cpu/dequant_awq.h"
#include "backend/cpu/dequant_fast.h"
#include "backend/cpu/qpack.h"
#include "fastspec/status.h"

namespace fastspec::cpu {

CpuBackend::CpuBackend(int n_threads, Precision precision, bool copy_weights, bool output_q8)
    : pool_(n_threads), precision_(precision), copy_weights_(copy_weights), output_q8_(output_q8) {}

namespace {
// Elements of elementwise work per task; a pass smaller than this runs inline on the caller (a
// dispatch costs more than the work).
constexpr int64_t kInlineElems = 16384;
}  // namespace

void dequant_weight_row(const Weight& w, int64_t r, float* dst) {
  if (w.packed) return dequant_packed_row(w.type, w.data, w.row_bytes, w.cols, r, dst);
  if (w.type != DType::AWQ_INT4) {
    const uint8_t* src = w.data + static_cast<uint64_t>(r) * w.row_bytes;
    if (!dequantize_row_fast(w.type, src, dst, w.cols)) dequantize_row(w.type, src, dst, w.cols);
    return;
  }
  AwqParts p;  // AWQ: the three packed parts, read in place (dequant_awq.h)
  p.qweight = w.data, p.qzeros = w.awq_qzeros, p.scales = w.awq_scales;
  p.in = w.cols, p.out = w.rows, p.group = w.awq_group;
  dequantize_awq_row(p, r, dst);
}

// Splits rows [0, T) of n elements into tasks (one row each when the pass is big, else inline).
template <typename F>
void for_rows(ThreadPool& pool, int64_t T, int64_t n, const F& f) {
  if (T * n < kInlineElems || T == 1) {
    for (int64_t t = 0; t < T; ++t) f(t);
    return;
  }
  pool.run(T, [&](int64_t t) { f(t); });
}

void CpuBackend::embed(const Weight& w, const int32_t* tokens, int64_t T, float scale, float* out) {
  for (int64_t t = 0; t < T; ++t)
    if (tokens[t] < 0 || tokens[t] >= w.rows)
      throw ModelError("embed: token id " + std::to_string(tokens[t]) + " outside the vocabulary [0, " +
                       std::to_string(w.rows) + ")");
  for_rows(pool_, T, w.cols, [&](int64_t t) {
    float* o = out + t * w.cols;
    dequant_weight_row(w, tokens[t], o);
    if (scale != 1.0f)
      for (int64_t i = 0; i < w.cols; ++i) o[i] *= scale;
  });
}

void CpuBackend::rms_norm(const float* x, const float* w, float* out, int64_t T, int64_t n, float eps,
                          bool plus_one) {
  for_rows(pool_, T, n, [&](int64_t t) {
    const float* xt = x + t * n;
    float* ot = out + t * n;
    const float ms = dot_f32(xt, xt, n) / static_cast<float>(n);
    const float inv = 1.0f / std::sqrt(ms + eps);
    if (plus_one)
      for (int64_t i = 0; i < n; ++i) ot[i] = (xt[i] * inv) * (1.0f + w[i]);
    else
      for (int64_t i = 0; i < n; ++i) ot[i] = (xt[i] * inv) * w[i];
  });
}

void CpuBackend::rope(float* q, int64_t n_heads, float* k, int64_t n_kv_heads, int64_t T, int64_t head_dim,
                      const int32_t* pos, const RopeParams& rp) {
  // x' = (x_a cos - x_b sin, x_a sin + x_b cos) on each pair (a, b), angle = pos * inv_freq[i]
  const int64_t half = rp.dim / 2;
  for_rows(pool_, T, (n_heads + n_kv_heads) * head_dim * 8, [&](int64_t t) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(pos[t]) * rp.inv_freq[i];
      const float c = std::cos(angle), s = std::sin(angle);
      const int64_t a = rp.pairs_adjacent ? 2 * i : i, b = rp.pairs_adjacent ? 2 * i + 1 : i + half;
      auto rot = [&](float* base, int64_t heads) {
        for (int64_t h = 0; h < heads; ++h) {
          float* v = base + (t * heads + h) * head_dim;
          const float x0 = v[a], x1 = v[b];
          v[a] = x0 * c - x1 * s;
          v[b] = x0 * s + x1 * c;
        }
      };
      rot(q, n_heads);
      if (k) rot(k, n_kv_heads);
    }
  });
}

void CpuBackend::attention(const float* q, const KvView& kv, float* out, int64_t T, int64_t n_heads,
                           int64_t n_kv_heads, int64_t head_dim, const int32_t* pos, float scale, int64_t window,
                           float softcap, const int32_t* parent) {
  AttentionArgs a;
  a.q = q, a.kv = kv, a.out = out, a.T = T, a.n_heads = n_heads, a.n_kv_heads = n_kv_heads, a.head_dim = head_dim;
  a.pos = pos, a.scale = scale, a.window = window, a.softcap = softcap, a.parent = parent;
  attention_cpu(pool_, a);
}

// Elementwise ops over n elements in chunks of kInlineElems (one task each).
template <typename F>
void for_chunks(ThreadPool& pool, int64_t n, const F& f) {
  const int64_t chunks = (n + kInlineElems - 1) / kInlineElems;
  pool.run(chunks, [&](int64_t c) { f(c * kInlineElems, std::min(n, (c + 1) * kInlineElems)); });
}

void CpuBackend::add(float* x, const float* y, int64_t n) {
  for_chunks(pool_, n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) x[i] += y[i];
  });
}

void CpuBackend::softcap(float* x, int64_t n, float cap) {
  for_chunks(pool_, n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) x[i] = cap * std::tanh(x[i] / cap);
  });
}

}  // namespace fastspec::cpu

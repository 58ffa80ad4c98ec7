// CPU ops. Parallel over independent rows/heads; each output element is reduced in one fixed
// order whatever T is, so decode and multi-token verify give bit-equal results per token.
#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "backend/cpu/dequant.h"
#include "backend/cpu/dequant_fast.h"
#include "fastspec/status.h"

namespace fastspec::cpu {

CpuBackend::CpuBackend(int n_threads) : pool_(n_threads) {}

float dot_f32(const float* a, const float* b, int64_t n) {
  // sum_i a[i] * b[i]: four 8-lane accumulators over 32-element steps, fixed combine order.
#if defined(__AVX2__) && defined(__FMA__)
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
         acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  __m256 acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  float s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
#else
  float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) part[l] += a[i + l] * b[i + l];
  float s = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
#endif
}

void dequant_weight_row(const Weight& w, int64_t r, float* dst) {
  if (w.type != DType::AWQ_INT4) {
    const uint8_t* src = w.data + static_cast<uint64_t>(r) * w.row_bytes;
    if (!dequantize_row_fast(w.type, src, dst, w.cols)) dequantize_row(w.type, src, dst, w.cols);
    return;
  }
  // AWQ: W[o, i] = (q[i, o] - z[i/g, o]) * s[i/g, o]; column o sits in nibble kRev[o % 8] of the
  // int32 at [i, o / 8] (AutoAWQ packs columns in the order 0 2 4 6 1 3 5 7).
  static const int kRev[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  const auto* qw = reinterpret_cast<const int32_t*>(w.data);              // [in, out/8]
  const auto* qz = reinterpret_cast<const int32_t*>(w.awq_qzeros);        // [in/g, out/8]
  const auto* sc = reinterpret_cast<const uint16_t*>(w.awq_scales);       // [in/g, out]
  const int64_t out8 = w.rows / 8, shift = 4 * kRev[r % 8], j = r / 8;
  for (int64_t i = 0; i < w.cols; ++i) {
    const int64_t g = i / w.awq_group;
    const int q = (qw[i * out8 + j] >> shift) & 0xF;
    const int z = (qz[g * out8 + j] >> shift) & 0xF;
    dst[i] = static_cast<float>(q - z) * fp16_to_f32(sc[g * w.rows + r]);
  }
}

void CpuBackend::matmul(const Weight& w, const float* x, float* y, int64_t T) {
  constexpr int64_t kRowsPerTask = 16;
  const int64_t n_tasks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  pool_.run(n_tasks, [&](int64_t task) {
    thread_local std::vector<float> row;
    row.resize(static_cast<size_t>(w.cols));
    const int64_t r0 = task * kRowsPerTask, r1 = std::min(w.rows, r0 + kRowsPerTask);
    for (int64_t r = r0; r < r1; ++r) {
      // Up to kMaxFusedRows activation rows: the fused kernel (bit-equal to the path below).
      if (w.type != DType::AWQ_INT4 &&
          dot_rows_fast(w.type, w.data + static_cast<uint64_t>(r) * w.row_bytes, x, T, w.cols, y + r, w.rows))
        continue;
      dequant_weight_row(w, r, row.data());
      for (int64_t t = 0; t < T; ++t) y[t * w.rows + r] = dot_f32(row.data(), x + t * w.cols, w.cols);
    }
  });
}

void CpuBackend::embed(const Weight& w, const int32_t* tokens, int64_t T, float* out) {
  for (int64_t t = 0; t < T; ++t) {
    if (tokens[t] < 0 || tokens[t] >= w.rows)
      throw ModelError("embed: token id " + std::to_string(tokens[t]) + " outside the vocabulary [0, " +
                       std::to_string(w.rows) + ")");
    dequant_weight_row(w, tokens[t], out + t * w.cols);
  }
}

void CpuBackend::rms_norm(const float* x, const float* w, float* out, int64_t T, int64_t n, float eps,
                          bool plus_one) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * n;
    float* ot = out + t * n;
    const float ms = dot_f32(xt, xt, n) / static_cast<float>(n);
    const float inv = 1.0f / std::sqrt(ms + eps);
    for (int64_t i = 0; i < n; ++i) ot[i] = (xt[i] * inv) * (plus_one ? 1.0f + w[i] : w[i]);
  }
}

void CpuBackend::rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int32_t* pos,
                      const RopeParams& rp) {
  const int64_t half = rp.dim / 2;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(pos[t]) * rp.inv_freq[i];
      const float c = std::cos(angle), s = std::sin(angle);
      for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + (t * n_heads + h) * head_dim;
        const int64_t a = rp.pairs_adjacent ? 2 * i : i, b = rp.pairs_adjacent ? 2 * i + 1 : i + half;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
      }
    }
  }
}

void CpuBackend::attention(const float* q, const float* k_cache, const float* v_cache, float* out, int64_t T,
                           int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, const int32_t* pos, float scale,
                           int64_t window, float softcap) {
  const int64_t group = n_heads / n_kv_heads;
  const int64_t kv_stride = n_kv_heads * head_dim;
  pool_.run(T * n_heads, [&](int64_t task) {
    const int64_t t = task / n_heads, h = task % n_heads, kvh = h / group;
    const int64_t last = pos[t];
    const int64_t first = window > 0 ? std::max<int64_t>(0, last - window + 1) : 0;
    thread_local std::vector<float> scores;
    scores.resize(static_cast<size_t>(last - first + 1));
    const float* qv = q + (t * n_heads + h) * head_dim;
    float mx = -INFINITY;
    for (int64_t j = first; j <= last; ++j) {
      float s = dot_f32(qv, k_cache + j * kv_stride + kvh * head_dim, head_dim) * scale;
      if (softcap > 0) s = softcap * std::tanh(s / softcap);
      scores[j - first] = s;
      mx = std::max(mx, s);
    }
    float sum = 0;
    for (float& s : scores) {
      s = std::exp(s - mx);
      sum += s;
    }
    const float inv = 1.0f / sum;
    float* o = out + (t * n_heads + h) * head_dim;
    std::fill(o, o + head_dim, 0.0f);
    for (int64_t j = first; j <= last; ++j) {
      const float p = scores[j - first] * inv;
      const float* vv = v_cache + j * kv_stride + kvh * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) o[d] += p * vv[d];
    }
  });
}

void CpuBackend::glu(const float* gate, const float* up, float* out, int64_t n, bool gelu) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    float a;
    if (gelu) {  // gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))
      a = 0.5f * g * (1.0f + std::tanh(0.7978845608028654f * (g + 0.044715f * g * g * g)));
    } else {     // silu(g) = g / (1 + exp(-g))
      a = g / (1.0f + std::exp(-g));
    }
    out[i] = a * up[i];
  }
}

void CpuBackend::add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void CpuBackend::softcap(float* x, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

}  // namespace fastspec::cpu

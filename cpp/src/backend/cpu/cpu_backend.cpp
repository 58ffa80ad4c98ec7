// CPU ops. Parallel over independent rows/heads; each output element is reduced in one fixed
// order whatever T is, so decode and multi-token verify give bit-equal results per token.
#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <vector>


#include "backend/cpu/attention.h"
#include "backend/cpu/dequant.h"
#include "backend/cpu/dequant_fast.h"
#include "fastspec/status.h"

namespace fastspec::cpu {

CpuBackend::CpuBackend(int n_threads) : pool_(n_threads) {}

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

void CpuBackend::attention(const float* q, const KvView& kv, float* out, int64_t T, int64_t n_heads,
                           int64_t n_kv_heads, int64_t head_dim, const int32_t* pos, float scale, int64_t window,
                           float softcap) {
  AttentionArgs a;
  a.q = q, a.kv = kv, a.out = out, a.T = T, a.n_heads = n_heads, a.n_kv_heads = n_kv_heads, a.head_dim = head_dim;
  a.pos = pos, a.scale = scale, a.window = window, a.softcap = softcap;
  attention_cpu(pool_, a);
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

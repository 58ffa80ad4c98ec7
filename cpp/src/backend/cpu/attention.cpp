// Attention over the KV cache (see attention.h for the split-K scheme).
//   out[t, h, :] = sum_j softmax_j(softcap(scale * q[t,h,:].k[j,h/g,:])) v[j, h/g, :]
// Tasks. T <= kAttnSplitMaxT (decode, verify): one task per (kv head, chunk, block of queries)
// writes the partials of those queries' G = n_heads / n_kv_heads heads into the shared scratch, a
// second pass combines them per (query, head). Larger T (prefill): one task per (query, kv head)
// computes its chunks one after the other into its thread's slot and combines them itself. Both
// run the same per-chunk and combine code, so the mode (and the task split) never shows in the bits.
// The query heads of a group are processed together: each K/V row is read once per group.
#include "backend/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/dequant.h"
#include "backend/cpu/isa.h"
#include "fastspec/status.h"

namespace fastspec::cpu {
namespace {

inline bool use_avx2() { return isa_is_x86_simd(isa_active()); }

enum class Kern { scalar, avx2, avx512 };
inline Kern kern_active() {
  const Isa isa = isa_active();
  return isa == Isa::avx512_vnni ? Kern::avx512 : isa_is_x86_simd(isa) ? Kern::avx2 : Kern::scalar;
}

inline int64_t align16(int64_t n) { return (n + 15) & ~int64_t{15}; }

// Per-thread slot: scores/probabilities [n_heads, kAttnChunk], a row buffer [8, head_dim], the
// partials of one (query, kv head) in prefill mode [n_heads, n_chunks, head_dim + 2], then (tree
// passes of up to tree_rows rows) one query's ancestor K and V rows of one kv head [2, tree_rows, hd].
inline int64_t slot_floats_core(int64_t n_heads, int64_t n_chunks, int64_t hd) {
  return align16(n_heads * kAttnChunk) + align16(8 * hd) + align16(n_chunks * n_heads * (hd + 2));
}
inline int64_t slot_floats(int64_t n_heads, int64_t n_chunks, int64_t hd, int64_t tree_rows) {
  return slot_floats_core(n_heads, n_chunks, hd) + align16(2 * tree_rows * hd);
}

struct Plan {
  const AttentionArgs* a;
  int64_t G, hd, row;      // heads per kv head, head_dim, n_kv_heads * head_dim
  int64_t nch;             // partials per (query, head): the most chunks any query spans
  int64_t slot;            // floats per thread slot
  float* scratch;          // [n_threads, slot] then (split mode) [T, n_heads, nch, hd + 2]
  float* split;            // split-mode partials
  bool f16;
  Kern kern;
  // tree mode (AttentionArgs::parent): positions >= base are ancestors, anc[t * kAttnTreeMaxRows + e]
  // the row of query t's ancestor at depth e; gather: the slot offset of the ancestor-row buffer
  const int32_t* anc = nullptr;
  int64_t base = 0, gather = 0;
  int64_t first(int64_t t) const {
    return a->window > 0 ? std::max<int64_t>(0, a->pos[t] - a->window + 1) : 0;
  }
};

// Partials of query t, heads [kvh * G, kvh * G + G), keys at positions [j0, j1] (inside chunk c):
//   part[g * hstride + 0] = m, [1] = l, [2 .. 2 + hd) = o
// The keys are read in runs of rows: the cache rows [j0, j1] (tree mode: those below base), then in
// tree mode the query's ancestors at positions >= base, gathered into the slot. Scores are per key
// and p.v continues its chain across runs, so the runs never show in the bits.
void chunk_partial(const Plan& P, int64_t t, int64_t kvh, int64_t j0, int64_t j1, float* part, int64_t hstride,
                   float* slot) {
  const AttentionArgs& a = *P.a;
  const int64_t G = P.G, hd = P.hd, n = j1 - j0 + 1;
  const float* q = a.q + (t * a.n_heads + kvh * G) * hd;
  const size_t esz = P.f16 ? 2 : 4;
  const auto* kc = static_cast<const uint8_t*>(a.kv.k);
  const auto* vc = static_cast<const uint8_t*>(a.kv.v);
  struct Run {
    const void *k, *v;
    int64_t stride, n;
  } runs[2];
  int nr = 0;
  const int64_t jc = P.anc ? std::min(j1, P.base - 1) : j1;  // the last position read from the cache as is
  if (jc >= j0) {
    const size_t off = static_cast<size_t>(j0 * P.row + kvh * hd) * esz;
    runs[nr++] = {kc + off, vc + off, P.row, jc - j0 + 1};
  }
  if (jc < j1) {  // tree mode: ancestors at depths [max(j0, base) - base, j1 - base]
    const int64_t e0 = std::max(j0, P.base) - P.base, ne = j1 - P.base - e0 + 1;
    auto* gk = reinterpret_cast<uint8_t*>(slot + P.gather);
    uint8_t* gv = gk + static_cast<size_t>(ne * hd) * esz;
    const size_t rb = static_cast<size_t>(hd) * esz;
    for (int64_t e = 0; e < ne; ++e) {
      const int64_t slot_j = P.base + P.anc[t * kAttnTreeMaxRows + e0 + e];
      const size_t off = static_cast<size_t>(slot_j * P.row + kvh * hd) * esz;
      std::memcpy(gk + e * rb, kc + off, rb);
      std::memcpy(gv + e * rb, vc + off, rb);
    }
    runs[nr++] = {gk, gv, hd, ne};
  }
  float* s = slot;                                   // [G, kAttnChunk]
  float* kbuf = slot + align16(a.n_heads * kAttnChunk);  // [8, hd]
  for (int r = 0, j = 0; r < nr; j += runs[r].n, ++r) {
    const Run& R = runs[r];
    switch (P.kern) {
      case Kern::avx512: attn_scores_avx512(q, G, hd, R.k, P.f16, R.stride, R.n, s + j, kAttnChunk, kbuf); break;
      case Kern::avx2: attn_scores_avx2(q, G, hd, R.k, P.f16, R.stride, R.n, s + j, kAttnChunk, kbuf); break;
      case Kern::scalar: attn_scores_scalar(q, G, hd, R.k, P.f16, R.stride, R.n, s + j, kAttnChunk, kbuf); break;
    }
  }
  for (int64_t g = 0; g < G; ++g) {
    float* sg = s + g * kAttnChunk;
    float* ml = part + g * hstride;
    switch (P.kern) {
      case Kern::avx512: attn_softmax_avx512(sg, n, a.scale, a.softcap, ml, ml + 1); break;
      case Kern::avx2: attn_softmax_avx2(sg, n, a.scale, a.softcap, ml, ml + 1); break;
      case Kern::scalar: attn_softmax_scalar(sg, n, a.scale, a.softcap, ml, ml + 1); break;
    }
  }
  for (int r = 0, j = 0; r < nr; j += runs[r].n, ++r) {
    const Run& R = runs[r];
    const float* pr = s + j;
    float* o = part + 2;
    switch (P.kern) {
      case Kern::avx512: attn_pv_avx512(pr, kAttnChunk, G, hd, R.v, P.f16, R.stride, R.n, o, hstride, kbuf, r > 0); break;
      case Kern::avx2: attn_pv_avx2(pr, kAttnChunk, G, hd, R.v, P.f16, R.stride, R.n, o, hstride, kbuf, r > 0); break;
      case Kern::scalar: attn_pv_scalar(pr, kAttnChunk, G, hd, R.v, P.f16, R.stride, R.n, o, hstride, kbuf, r > 0); break;
    }
  }
}

// out[hd] = (sum_c w_c o_c) / (sum_c w_c l_c), w_c = exp(m_c - max m), chunks in order.
void combine(const float* part, int64_t n_chunks, int64_t hd, float* out) {
  float M = -INFINITY;
  for (int64_t c = 0; c < n_chunks; ++c) M = std::max(M, part[c * (hd + 2)]);
  float L = 0.0f;
  for (int64_t d = 0; d < hd; ++d) out[d] = 0.0f;
  for (int64_t c = 0; c < n_chunks; ++c) {
    const float* pc = part + c * (hd + 2);
    const float w = attn_exp_neg(pc[0] - M);
    L = L + w * pc[1];
    for (int64_t d = 0; d < hd; ++d) out[d] = out[d] + w * pc[2 + d];
  }
  for (int64_t d = 0; d < hd; ++d) out[d] = out[d] / L;
}

// Prefill mode: query t, kv head kvh, all its chunks in order, then the combine.
void query_group(const Plan& P, int64_t t, int64_t kvh, float* slot) {
  const AttentionArgs& a = *P.a;
  const int64_t first = P.first(t), last = a.pos[t];
  const int64_t c0 = first / kAttnChunk, c1 = last / kAttnChunk, nc = c1 - c0 + 1;
  float* part = slot + align16(a.n_heads * kAttnChunk) + align16(8 * P.hd);  // [G, nc, hd + 2]
  const int64_t hstride = nc * (P.hd + 2);
  for (int64_t c = c0; c <= c1; ++c)
    chunk_partial(P, t, kvh, std::max(first, c * kAttnChunk), std::min(last, c * kAttnChunk + kAttnChunk - 1),
                  part + (c - c0) * (P.hd + 2), hstride, slot);
  for (int64_t g = 0; g < P.G; ++g)
    combine(part + g * hstride, nc, P.hd, a.out + (t * a.n_heads + kvh * P.G + g) * P.hd);
}

}  // namespace

int64_t attention_scratch_floats(int64_t T, int64_t n_heads, int64_t max_pos, int64_t head_dim, int n_threads) {
  const int64_t nch = std::max<int64_t>(0, max_pos) / kAttnChunk + 1;
  const int64_t split = std::min(T, kAttnSplitMaxT) * n_heads * nch * (head_dim + 2);
  return std::max(1, n_threads) * slot_floats(n_heads, nch, head_dim, std::min(T, kAttnTreeMaxRows)) + split;
}

void attention_cpu(ThreadPool& pool, const AttentionArgs& a) {
  if (a.kv.type != DType::F32 && a.kv.type != DType::F16)
    throw Error(std::string("attention: KV cache type must be F32 or F16 (got ") + dtype_name(a.kv.type) + ")");
  if (a.T <= 0) return;
  if (a.n_kv_heads <= 0 || a.n_heads % a.n_kv_heads != 0 || a.head_dim <= 0)
    throw Error("attention: n_heads " + std::to_string(a.n_heads) + " is not a multiple of n_kv_heads " +
                std::to_string(a.n_kv_heads) + " (head_dim " + std::to_string(a.head_dim) + ")");
  int64_t max_pos = 0, nch = 1, c_lo = INT64_MAX, c_hi = 0;
  Plan P;
  P.a = &a;
  // tree mode: each query's ancestor rows by depth (checked: parents earlier, positions base + depth)
  thread_local std::vector<int32_t> anc;  // [kAttnTreeMaxRows, kAttnTreeMaxRows]; grows once
  if (a.parent) {
    if (a.T > kAttnTreeMaxRows)
      throw Error("attention: a tree pass of " + std::to_string(a.T) + " rows (at most " +
                  std::to_string(kAttnTreeMaxRows) + ")");
    if (anc.size() < static_cast<size_t>(kAttnTreeMaxRows * kAttnTreeMaxRows))
      anc.resize(static_cast<size_t>(kAttnTreeMaxRows * kAttnTreeMaxRows));
    for (int64_t t = 0; t < a.T; ++t) {
      const int32_t par = a.parent[t];
      if (par < -1 || par >= t || (t == 0 && par != -1))
        throw Error("attention: tree row " + std::to_string(t) + " has parent " + std::to_string(par) +
                    " (parents are earlier rows, -1 for a root; row 0 is a root)");
      const int64_t depth = a.pos[t] - a.pos[0];
      const int64_t want_depth = par < 0 ? 0 : a.pos[par] - a.pos[0] + 1;
      if (depth != want_depth)
        throw Error("attention: tree row " + std::to_string(t) + " at position " + std::to_string(a.pos[t]) +
                    ", its depth puts it at " + std::to_string(a.pos[0] + want_depth));
      int32_t* row = anc.data() + t * kAttnTreeMaxRows;
      if (par >= 0) std::copy(anc.data() + par * kAttnTreeMaxRows, anc.data() + par * kAttnTreeMaxRows + depth, row);
      row[depth] = static_cast<int32_t>(t);
    }
  }
  for (int64_t t = 0; t < a.T; ++t) {
    if (a.pos[t] < 0) throw Error("attention: negative position " + std::to_string(a.pos[t]));
    const int64_t c0 = P.first(t) / kAttnChunk, c1 = a.pos[t] / kAttnChunk;
    max_pos = std::max<int64_t>(max_pos, a.pos[t]);
    nch = std::max(nch, c1 - c0 + 1);
    c_lo = std::min(c_lo, c0);
    c_hi = std::max(c_hi, c1);
  }
  const int n_threads = pool.size();
  const int64_t need = attention_scratch_floats(a.T, a.n_heads, max_pos, a.head_dim, n_threads);
  float* scratch = a.scratch;
  if (scratch) {
    if (a.scratch_floats < need)
      throw Error("attention: scratch of " + std::to_string(a.scratch_floats) + " floats, " + std::to_string(need) +
                  " needed (T " + std::to_string(a.T) + ", max pos " + std::to_string(max_pos) + ")");
  } else {
    thread_local std::vector<float> fallback;
    if (fallback.size() < static_cast<size_t>(need)) fallback.resize(static_cast<size_t>(need));
    scratch = fallback.data();
  }
  P.G = a.n_heads / a.n_kv_heads;
  P.hd = a.head_dim;
  P.row = a.n_kv_heads * a.head_dim;
  P.nch = nch;
  P.slot = slot_floats(a.n_heads, max_pos / kAttnChunk + 1, a.head_dim, std::min(a.T, kAttnTreeMaxRows));
  P.gather = slot_floats_core(a.n_heads, max_pos / kAttnChunk + 1, a.head_dim);
  if (a.parent) {
    P.anc = anc.data();
    P.base = a.pos[0];
  }
  P.scratch = scratch;
  P.split = scratch + n_threads * P.slot;
  P.f16 = a.kv.type == DType::F16;
  P.kern = kern_active();

  if (a.T > kAttnSplitMaxT) {
    pool.run(a.T * a.n_kv_heads, [&P](int64_t task, int thread) {
      query_group(P, task / P.a->n_kv_heads, task % P.a->n_kv_heads, P.scratch + thread * P.slot);
    });
    return;
  }
  // Split-K: tasks (kv head, chunk, query block); partials at split[((t * n_heads + h) * nch + c - c0(t))].
  // Queries are split into blocks only as far as needed for ~4 tasks per thread: a task keeps its
  // chunk of K/V in cache for all its queries (the split changes which thread computes what, never
  // the arithmetic).
  const int64_t n_c = c_hi - c_lo + 1;
  const int64_t want = (4 * n_threads + a.n_kv_heads * n_c - 1) / (a.n_kv_heads * n_c);
  const int64_t blocks = n_threads > 1 ? std::min(a.T, want) : 1, qblock = (a.T + blocks - 1) / blocks;
  struct Split {
    const Plan* P;
    int64_t c_lo, n_c, n_qb, qblock;
  } sp{&P, c_lo, n_c, (a.T + qblock - 1) / qblock, qblock};
  pool.run(a.n_kv_heads * n_c * sp.n_qb, [&sp](int64_t task, int thread) {
    const Plan& P = *sp.P;
    const AttentionArgs& a = *P.a;
    const int64_t qb = task % sp.n_qb, c = sp.c_lo + (task / sp.n_qb) % sp.n_c, kvh = task / (sp.n_qb * sp.n_c);
    float* slot = P.scratch + thread * P.slot;
    const int64_t t_end = std::min(a.T, (qb + 1) * sp.qblock);
    for (int64_t t = qb * sp.qblock; t < t_end; ++t) {
      const int64_t first = P.first(t), last = a.pos[t];
      const int64_t j0 = std::max(first, c * kAttnChunk), j1 = std::min(last, c * kAttnChunk + kAttnChunk - 1);
      if (j0 > j1) continue;
      const int64_t hstride = P.nch * (P.hd + 2);
      float* part = P.split + (t * a.n_heads + kvh * P.G) * hstride + (c - first / kAttnChunk) * (P.hd + 2);
      chunk_partial(P, t, kvh, j0, j1, part, hstride, slot);
    }
  });
  auto combine_task = [&P](int64_t task) {
    const AttentionArgs& a = *P.a;
    const int64_t t = task / a.n_heads, h = task % a.n_heads;
    const int64_t nc = a.pos[t] / kAttnChunk - P.first(t) / kAttnChunk + 1;
    combine(P.split + (t * a.n_heads + h) * P.nch * (P.hd + 2), nc, P.hd, a.out + (t * a.n_heads + h) * P.hd);
  };
  // The combine is small (T * n_heads * chunks * head_dim adds): inline unless there is a lot of it.
  if (a.T * a.n_heads * nch * a.head_dim < (1 << 15)) {
    for (int64_t task = 0; task < a.T * a.n_heads; ++task) combine_task(task);
  } else {
    pool.run(a.T * a.n_heads, combine_task);
  }
}

// ---- scalar kernels: the lane order of attention_avx2.cpp, with std::fma for its FMAs ----

float attn_exp_neg(float x) {
  const float t = std::fma(x, 1.44269504088896341f, 12582912.0f);  // 1.5 * 2^23 + round(x log2 e)
  const float nf = t - 12582912.0f;
  float r = std::fma(nf, -0.693359375f, x);
  r = std::fma(nf, 2.12194440e-4f, r);
  const float z = r * r;
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  float y = std::fma(p, z, r) + 1.0f;
  uint32_t tb;
  std::memcpy(&tb, &t, 4);
  const uint32_t eb = (tb - 0x4B400000u + 127u) << 23;  // 2^n
  float e;
  std::memcpy(&e, &eb, 4);
  y = y * e;
  return x < -80.0f ? 0.0f : y;
}

void act_glu_scalar(const float* g, const float* u, float* out, int64_t n, bool gelu) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = g[i];
    float v = x;
    if (gelu) {
      float c = 0.044715f * x;
      c = c * x;
      c = c * x;
      v = 2.0f * (0.7978845608028654f * (x + c));
    }
    const float e = attn_exp_neg(-std::fabs(v));
    const float sig = (v >= 0.0f ? 1.0f : e) / (1.0f + e);
    out[i] = (x * sig) * u[i];
  }
}

void attn_softmax_scalar(float* s, int64_t n, float scale, float softcap, float* m_out, float* l_out) {
  auto vmax = [](float a, float b) { return a > b ? a : b; };
  const int64_t n16 = (n + 15) & ~int64_t{15};
  float mx[16];
  for (int l = 0; l < 16; ++l) mx[l] = -INFINITY;
  for (int64_t j = 0; j < n16; ++j) {
    float x = -INFINITY;
    if (j < n) {
      x = s[j] * scale;
      if (softcap > 0) x = softcap * tanhf(x / softcap);
      s[j] = x;
    }
    mx[j & 15] = vmax(mx[j & 15], x);
  }
  float w[8];
  for (int l = 0; l < 8; ++l) w[l] = vmax(mx[l], mx[l + 8]);
  const float m = vmax(vmax(vmax(w[0], w[1]), vmax(w[2], w[3])), vmax(vmax(w[4], w[5]), vmax(w[6], w[7])));
  float acc[16] = {};
  for (int64_t j = 0; j < n16; ++j) {
    const float p = j < n ? attn_exp_neg(s[j] - m) : 0.0f;
    if (j < n) s[j] = p;
    acc[j & 15] += p;
  }
  for (int l = 0; l < 8; ++l) w[l] = acc[l] + acc[l + 8];
  *m_out = m;
  *l_out = ((w[0] + w[1]) + (w[2] + w[3])) + ((w[4] + w[5]) + (w[6] + w[7]));
}

void attn_scores_scalar(const float* q, int64_t G, int64_t hd, const void* k, bool f16, int64_t stride,
                        int64_t n, float* s, int64_t lds, float* kbuf) {
  const int64_t hd16 = hd & ~int64_t{15}, hd8 = hd & ~int64_t{7};
  for (int64_t j = 0; j < n; ++j) {
    const float* kr;
    if (f16) {
      const uint16_t* src = static_cast<const uint16_t*>(k) + j * stride;
      for (int64_t i = 0; i < hd; ++i) kbuf[i] = fp16_to_f32(src[i]);
      kr = kbuf;
    } else {
      kr = static_cast<const float*>(k) + j * stride;
    }
    for (int64_t g = 0; g < G; ++g) {
      const float* qg = q + g * hd;
      float acc[16] = {};
      for (int64_t i = 0; i < hd16; i += 16)
        for (int l = 0; l < 16; ++l) acc[l] = std::fma(qg[i + l], kr[i + l], acc[l]);
      if (hd8 > hd16)
        for (int l = 0; l < 8; ++l) acc[l] = std::fma(qg[hd16 + l], kr[hd16 + l], acc[l]);
      float v[8];
      for (int l = 0; l < 8; ++l) v[l] = acc[l] + acc[l + 8];
      float x = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
      for (int64_t i = hd8; i < hd; ++i) x += qg[i] * kr[i];
      s[g * lds + j] = x;
    }
  }
}

void attn_pv_scalar(const float* p, int64_t ldp, int64_t G, int64_t hd, const void* v, bool f16, int64_t stride,
                    int64_t n, float* o, int64_t ldo, float* kbuf, bool accumulate) {
  if (!accumulate)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t d = 0; d < hd; ++d) o[g * ldo + d] = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    const float* vr;
    if (f16) {
      const uint16_t* src = static_cast<const uint16_t*>(v) + j * stride;
      for (int64_t d = 0; d < hd; ++d) kbuf[d] = fp16_to_f32(src[d]);
      vr = kbuf;
    } else {
      vr = static_cast<const float*>(v) + j * stride;
    }
    for (int64_t g = 0; g < G; ++g) {
      const float pj = p[g * ldp + j];
      float* og = o + g * ldo;
      for (int64_t d = 0; d < hd; ++d) og[d] = std::fma(pj, vr[d], og[d]);
    }
  }
}

// float32 -> float16 bits, round to nearest even, integer arithmetic only (no FP environment).
void f32_to_f16_scalar(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, &x[i], 4);
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    uint32_t h;
    if (a > 0x7f800000u) {
      h = 0x7e00u | ((a >> 13) & 0x3ffu);  // NaN: quieted, upper payload bits kept (vcvtps2ph)
    } else if (a >= 0x477ff000u) {
      h = 0x7c00u;  // >= 65520 (the midpoint above the largest half, 65504) and inf: inf
    } else if (a >= 0x38800000u) {  // >= 2^-14: a normal half
      const uint32_t r = a - (112u << 23);  // rebias the exponent 127 -> 15
      h = r >> 13;
      const uint32_t rem = r & 0x1fffu;
      if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: exact
    } else if (a >= 0x33000000u) {  // [2^-25, 2^-14): a subnormal half (or the smallest normal)
      const uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
      const uint32_t sh = 126 - e;  // value = m * 2^(e - 150), half units of 2^-24: m >> (126 - e)
      h = m >> sh;
      const uint32_t rem = m & ((1u << sh) - 1), half = 1u << (sh - 1);
      if (rem > half || (rem == half && (h & 1u))) ++h;
    } else {
      h = 0;  // < 2^-25 (2^-25 itself ties to even 0 through the branch above)
    }
    y[i] = static_cast<uint16_t>(sign | h);
  }
}

void f32_to_f16(const float* x, uint16_t* y, int64_t n) {
  if (use_avx2()) f32_to_f16_avx2(x, y, n);
  else f32_to_f16_scalar(x, y, n);
}

}  // namespace fastspec::cpu

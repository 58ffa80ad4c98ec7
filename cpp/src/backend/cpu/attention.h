// Attention over the KV cache on the CPU (decode, verify and prefill), batch-invariant: the result
// for query t does not depend on T, on which other queries share the pass, on the thread count or
// on the CPU path (the scalar fallback reproduces the AVX2 and AVX-512 kernels' bits).
//
// Split-K ("flash decoding"): the keys of query t are cut at fixed chunk boundaries, multiples of
// kAttnChunk counted from position 0 (never from T, the window start or the thread count). Each
// (query, head, chunk) gives a partial (m = max score, l = sum exp(s - m), o = sum exp(s - m) v);
// the partials are combined in chunk order. The arithmetic of one (query, head) is therefore a
// function of q[t], pos[t] and the cache only, whichever task computed which chunk.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "backend/cpu/thread_pool.h"

namespace fastspec::cpu {

constexpr int64_t kAttnChunk = 256;     // keys per split-K chunk: [c * 256, c * 256 + 255]
constexpr int64_t kAttnSplitMaxT = 32;  // T <= this: tasks (kv head, chunk, query block); else (query, kv head)
constexpr int64_t kAttnTreeMaxRows = 64;  // rows of a tree pass (AttentionArgs::parent)

struct AttentionArgs {
  const float* q = nullptr;  // [T, n_heads, head_dim]
  KvView kv;                 // this layer's cache: [n_ctx, n_kv_heads, head_dim] of kv.type (F32 | F16)
  float* out = nullptr;      // [T, n_heads, head_dim]
  int64_t T = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  const int32_t* pos = nullptr;  // [T] position of each query (its keys: [max(0, pos - window + 1), pos])
  float scale = 1.0f;            // multiplies q.k
  int64_t window = 0;            // > 0: sliding window length
  float softcap = 0.0f;          // > 0: score = softcap * tanh(score / softcap)
  // Tree mode (a token tree's verify pass), nullptr: causal. parent[t] < t is the row of query t's
  // parent in this pass, -1 for a root (row 0 is one), whose parent is the last cached position.
  // The rows' K/V sit at cache slots base + t (base = pos[0]), and pos[t] = base + depth(t), roots at
  // depth 0. Query t attends to positions [first, base) of the cache and to its ancestors (and
  // itself): the key at position base + e is its ancestor at depth e. Those keys are taken in
  // position order, so a node's result is bit-equal to decoding its path alone (a causal pass over
  // the path), wherever its ancestors sit in the pass. At most kAttnTreeMaxRows rows.
  const int32_t* parent = nullptr;
  // Workspace: [scratch_floats] floats, at least attention_scratch_floats(T, n_heads, max pos[t],
  // head_dim, pool.size()) (Error otherwise). nullptr: a thread_local vector of the calling thread
  // that grows on first use (allocates then, never after at the same sizes).
  float* scratch = nullptr;
  int64_t scratch_floats = 0;
};

// Floats of workspace attention_cpu needs for up to T queries at positions <= max_pos with
// n_threads threads (tree passes included). Monotone in every argument, so size it once for the
// largest pass.
int64_t attention_scratch_floats(int64_t T, int64_t n_heads, int64_t max_pos, int64_t head_dim, int n_threads);

// out[t, h, :] = sum_j softmax_j(score(t, h, j)) v[j, h / (n_heads / n_kv_heads), :]
//   score = scale * dot(q[t,h], k[j]) (then softcap * tanhf(score / softcap) when softcap > 0)
//   per chunk c: m_c = max score, p = exp(score - m_c), l_c = sum p, o_c = sum p v
//   combined in chunk order: w_c = exp(m_c - M), M = max_c m_c,
//   out = (sum_c w_c o_c) / (sum_c w_c l_c)   (a division at the end, not a multiply by 1/sum)
// exp is attn_exp_neg (below) everywhere, so no libm exp enters the result.
void attention_cpu(ThreadPool& pool, const AttentionArgs& a);

// float32 -> float16 bits, round to nearest even (overflow -> inf, subnormals exact, NaN quieted
// with its upper payload bits, as F16C's vcvtps2ph does); the same bits on every CPU path.
void f32_to_f16(const float* x, uint16_t* y, int64_t n);

// ---- kernels (attention.cpp: scalar; attention_avx2.cpp: AVX2+FMA+F16C, call only when
// isa_is_x86_simd(isa_active()); attention_avx512_vnni.cpp: AVX-512, only when isa_active() is
// avx512_vnni). All bit-equal to the scalar ones. k/v point at a cache row of one KV head (float
// or uint16 f16 bits), row j at k + j * stride elements. ----

// s[g * lds + j] = dot(q[g * hd : (g + 1) * hd], k[j])  for g < G, j < n. Per dot: a 16-lane FMA
// accumulator (lane l takes elements 16i + l; then one 8-element step into lanes 0..7 when
// hd % 16 >= 8), halves added (v[l] = acc[l] + acc[l + 8]), lanes summed ((v0 + v1) + (v2 + v3)) +
// ((v4 + v5) + (v6 + v7)), then the hd % 8 tail added in order. kbuf: [8 * hd] floats of scratch
// (unused by the AVX-512 kernel, which widens f16 rows in registers).
void attn_scores_scalar(const float* q, int64_t G, int64_t hd, const void* k, bool f16, int64_t stride,
                        int64_t n, float* s, int64_t lds, float* kbuf);
void attn_scores_avx2(const float* q, int64_t G, int64_t hd, const void* k, bool f16, int64_t stride,
                      int64_t n, float* s, int64_t lds, float* kbuf);
void attn_scores_avx512(const float* q, int64_t G, int64_t hd, const void* k, bool f16, int64_t stride,
                        int64_t n, float* s, int64_t lds, float* kbuf);
// o[g * ldo + d] = sum_j p[g * ldp + j] * v[j][d]  for g < G, d < hd: one fma per j in order from +0,
// or (accumulate) from the o given, which continues a chain over earlier keys exactly as one call
// over all of them would. kbuf: [hd] floats of scratch (the scalar path widens an f16 row there).
void attn_pv_scalar(const float* p, int64_t ldp, int64_t G, int64_t hd, const void* v, bool f16, int64_t stride,
                    int64_t n, float* o, int64_t ldo, float* kbuf, bool accumulate);
void attn_pv_avx2(const float* p, int64_t ldp, int64_t G, int64_t hd, const void* v, bool f16, int64_t stride,
                  int64_t n, float* o, int64_t ldo, float* kbuf, bool accumulate);
void attn_pv_avx512(const float* p, int64_t ldp, int64_t G, int64_t hd, const void* v, bool f16, int64_t stride,
                    int64_t n, float* o, int64_t ldo, float* kbuf, bool accumulate);
// Softmax of one head's chunk in place: x = s[j] * scale (softcap: x = softcap * tanhf(x / softcap)),
// m = max x, s[j] = exp_neg(x - m), l = sum s[j]. Max and sum run in 16 lanes (lane l takes
// j = 16i + l, a partial last block padded with -inf / 0), then lanes l and l + 8 are combined,
// then ((v0 . v1) . (v2 . v3)) . ((v4 . v5) . (v6 . v7)); max(a, b) = a > b ? a : b (maxps).
// s: [n rounded up to 16] floats (the pad is scratch).
void attn_softmax_scalar(float* s, int64_t n, float scale, float softcap, float* m, float* l);
void attn_softmax_avx2(float* s, int64_t n, float scale, float softcap, float* m, float* l);
void attn_softmax_avx512(float* s, int64_t n, float scale, float softcap, float* m, float* l);
// exp(x) for x <= 0 in float32, the same bits on every path: n = round(x log2 e) (the 1.5 * 2^23 add),
// r = x - n ln2 (two FMAs, Cephes' split), Cephes' degree-5 polynomial in FMAs, times 2^n; 0 for
// x < -80 (e^-80 < 2e-35: nothing a softmax over the chunk's max can see). Error < 1 ulp over
// (-80, 0] against the exact exp.
float attn_exp_neg(float x);

// ---- GLU activations (they share exp_neg with the softmax) ----
// out[i] = (g[i] * sig(v)) * u[i], sig(v) = (v >= 0 ? 1 : e) / (1 + e), e = exp_neg(-|v|), with
//   SiLU: v = g;   GELU-tanh: v = 2 * 0.7978845608 * (g + ((0.044715 * g) * g) * g)
//   (0.5 g (1 + tanh z) = g * sig(2z) exactly). The same bits on every path.
void act_glu_scalar(const float* g, const float* u, float* out, int64_t n, bool gelu);
void act_glu_avx2(const float* g, const float* u, float* out, int64_t n, bool gelu);

void f32_to_f16_scalar(const float* x, uint16_t* y, int64_t n);
void f32_to_f16_avx2(const float* x, uint16_t* y, int64_t n);

}  // namespace fastspec::cpu

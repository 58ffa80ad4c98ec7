// The op interface the transformer is written against. One implementation per device (cpu/ is
// complete; cuda/ may refuse an op with a clear error). All tensors are row-major float32 in the
// backend's memory unless a comment says otherwise. Every op reduces in the same order however
// many rows it is given (batch invariance: a token's result is bit-equal alone or in a batch).
#pragma once
#include <cstdint>

#include "fastspec/tensor.h"

namespace fastspec {

// A weight matrix as stored in the model file (any dequantizable type), Linear layout.
struct Weight {
  const TensorInfo* info = nullptr;  // the stored tensor (name/type for messages; AWQ parts)
  DType type = DType::F32;
  const uint8_t* data = nullptr;     // [rows, row_bytes] stored blocks
  int64_t rows = 0;                  // output features
  int64_t cols = 0;                  // input features
  uint64_t row_bytes = 0;            // bytes per stored row (0 for AWQ_INT4)
  // The backend's own layout, set by prepare_weight (CPU: 16-row panels, backend/cpu/qpack.h;
  // data then holds the rows rounded up to 16, row_bytes (the packed size) each); false: as stored.
  bool packed = false;
  // The output layer (or the embedding tied to it): a backend may store it in another type when
  // asked to (EngineOptions::output_q8).
  bool is_output = false;
  // AWQ_INT4 only: data = qweight int32 [cols, rows/8]; these are the other packed parts.
  const uint8_t* awq_qzeros = nullptr;  // int32 [cols/group, rows/8]
  const uint8_t* awq_scales = nullptr;  // f16 [cols/group, rows]
  int64_t awq_group = 0;
};

// One layer of the KV cache as the attention op reads it.
struct KvView {
  const void* k = nullptr;  // [n_ctx, n_kv_heads, head_dim] of `type`
  const void* v = nullptr;  // [n_ctx, n_kv_heads, head_dim] of `type`
  DType type = DType::F32;  // F32 or F16
};

// Rotary embedding of one layer kind.
struct RopeParams {
  int64_t dim = 0;              // rotated dims per head (<= head_dim)
  bool pairs_adjacent = false;  // (x[2i], x[2i+1]) instead of rotate-half (x[i], x[i + dim/2])
  const float* inv_freq = nullptr;  // [dim / 2] angle per position for each pair
};

// One output of a multi-matmul over a shared input: y[T, w->rows] (=|+=) x @ dequant(w)^T + bias.
struct MatmulOut {
  const Weight* w = nullptr;
  float* y = nullptr;           // [T, w->rows]
  const float* bias = nullptr;  // [w->rows] added to every row, or nullptr
  bool accumulate = false;      // y += (the residual add fused into the matmul) instead of y =
};

// Matmul precision (EngineOptions::precision).
enum class Precision : int {
  q8 = 0,   // activations quantized per row to 8-bit blocks, integer dots (default, fast)
  f32 = 1,  // float32 activations against dequantized weights (reference)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // ---- memory: sized once at load, nothing allocates on the hot path ----
  // Reserves the workspace for passes of up to max_rows tokens whose matmul inputs are at most
  // max_cols wide, plus act_floats floats of activations (the model's buffers). Called again with
  // larger sizes (a second model on the same backend) it grows; never shrinks.
  virtual void reserve(int64_t max_rows, int64_t max_cols, int64_t act_floats) = 0;
  // The activation buffer reserved above: [act_floats] floats, valid until the next reserve().
  virtual float* activations() = 0;
  // Load-time preparation of a weight: checks that this backend can run it (ModelError naming the
  // tensor otherwise) and may move it into the backend's own memory (w.data then points there;
  // the file's pages are released, so a weight is held once).
  virtual void prepare_weight(Weight& w) = 0;

  // ---- ops (every op reduces in one fixed order, whatever T) ----
  // y[T, w.rows] = x[T, w.cols] @ dequant(w)^T
  virtual void matmul(const Weight& w, const float* x, float* y, int64_t T) = 0;
  // Several matmuls over the same input x[T, cols] in one pass (the input is quantized once, the
  // rows of all outputs are shared out over the threads together): q/k/v, or the output layer.
  virtual void matmuls(const float* x, int64_t T, const MatmulOut* outs, int n_outs) = 0;
  // out[T, gate.rows] = act(x @ gate^T) * (x @ up^T), act = gelu_tanh if gelu else silu; fused.
  virtual void matmul_glu(const Weight& gate, const Weight& up, const float* x, float* out, int64_t T,
                          bool gelu) = 0;
  // out[T, w.cols] = dequant(w)[tokens[t], :] * scale
  virtual void embed(const Weight& w, const int32_t* tokens, int64_t T, float scale, float* out) = 0;
  // out[T, n] = x / sqrt(mean(x^2) + eps) * (plus_one ? 1 + w : w);  w: [n]; out may alias x
  virtual void rms_norm(const float* x, const float* w, float* out, int64_t T, int64_t n, float eps,
                        bool plus_one) = 0;
  // q[T, n_heads, head_dim] and k[T, n_kv_heads, head_dim] rotated in place by angle
  // pos[t] * inv_freq[i] on each pair (k may be nullptr)
  virtual void rope(float* q, int64_t n_heads, float* k, int64_t n_kv_heads, int64_t T, int64_t head_dim,
                    const int32_t* pos, const RopeParams& rp) = 0;
  // Causal attention of T new queries over a cache holding positions [0, pos[t]] per query:
  //   out[t, h, :] = sum_j softmax_j(scale * q[t,h,:].k[j,h/g,:] (softcap)) v[j, h/g, :]
  // q: [T, n_heads, head_dim]; kv: this layer's cache (positions [0, max pos] written);
  // window > 0 limits keys to positions > pos[t] - window. out: [T, n_heads, head_dim].
  // parent: nullptr (causal), or a token tree's verify pass: parent[T] the row of each row's parent
  // (-1: a root; row 0 is one), the rows' K/V at cache slots pos[0] + t, pos[t] = pos[0] + depth;
  // a row attends to the cache below pos[0] and to its ancestors, bit-equal to its path decoded alone.
  virtual void attention(const float* q, const KvView& kv, float* out, int64_t T, int64_t n_heads,
                         int64_t n_kv_heads, int64_t head_dim, const int32_t* pos, float scale, int64_t window,
                         float softcap, const int32_t* parent = nullptr) = 0;
  // x[n] += y[n]
  virtual void add(float* x, const float* y, int64_t n) = 0;
  // x[n] = cap * tanh(x / cap)
  virtual void softcap(float* x, int64_t n, float cap) = 0;
};

}  // namespace fastspec

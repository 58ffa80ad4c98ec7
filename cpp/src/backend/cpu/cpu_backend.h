// The CPU backend: complete, threaded, batch-invariant. The reference every other backend is
// compared against. Memory: a workspace sized by reserve() at load (activations, quantized
// matmul inputs, per-thread scratch); the ops allocate nothing.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/qdot.h"
#include "backend/cpu/thread_pool.h"

namespace fastspec::cpu {

class CpuBackend final : public Backend {
 public:
  // copy_weights: prepare_weight() copies each weight into huge-page anonymous memory and
  // releases the file's pages (reads from it are faster than from the file mapping); false keeps
  // reading the mapping.
  // output_q8: an F16/BF16/F32 weight marked is_output is quantized to Q8_0 at load (q8 precision).
  CpuBackend(int n_threads, Precision precision, bool copy_weights = true, bool output_q8 = false);
  ~CpuBackend() override;
  const char* name() const override { return "cpu"; }
  int threads() const { return pool_.size(); }
  Precision precision() const { return precision_; }
  ThreadPool& pool() { return pool_; }

  void reserve(int64_t max_rows, int64_t max_cols, int64_t act_floats) override;
  float* activations() override { return act_.data(); }
  void prepare_weight(Weight& w) override;

  void matmul(const Weight& w, const float* x, float* y, int64_t T) override;
  void matmuls(const float* x, int64_t T, const MatmulOut* outs, int n_outs) override;
  void matmul_glu(const Weight& gate, const Weight& up, const float* x, float* out, int64_t T, bool gelu) override;
  void embed(const Weight& w, const int32_t* tokens, int64_t T, float scale, float* out) override;
  void rms_norm(const float* x, const float* w, float* out, int64_t T, int64_t n, float eps,
                bool plus_one) override;
  void rope(float* q, int64_t n_heads, float* k, int64_t n_kv_heads, int64_t T, int64_t head_dim,
            const int32_t* pos, const RopeParams& rp) override;
  void attention(const float* q, const KvView& kv, float* out, int64_t T, int64_t n_heads, int64_t n_kv_heads,
                 int64_t head_dim, const int32_t* pos, float scale, int64_t window, float softcap,
                 const int32_t* parent = nullptr) override;
  void add(float* x, const float* y, int64_t n) override;
  void softcap(float* x, int64_t n, float cap) override;

 private:
  // The quantized copy of one matmul input in one activation format (cpu_matmul.cpp).
  struct ActBuf {
    std::vector<int8_t> q;   // [max_rows, q_stride]
    std::vector<float> d;    // [max_rows, d_stride]
    std::vector<int32_t> s;  // [max_rows, s_stride]
    std::vector<float> ds;   // [max_rows, d_stride]
  };
  // Quantizes x[T, cols] into the formats `outs` need; returns the views (cpu_matmul.cpp).
  void quantize_inputs(const float* x, int64_t T, int64_t cols, const Weight* const* ws, int n_ws, ActQ* views,
                       bool* has);
  // How one weight's rows are dotted in this call: its integer kernel and quantized input, or
  // (fn == nullptr) the float32 path. Resolved once per call, not per row.
  struct RowDot {
    const Weight* w = nullptr;
    QRowsFn fn = nullptr;
    const ActQ* a = nullptr;
  };
  RowDot row_dot(const Weight& w, const ActQ* views, const bool* has) const;
  // y[t * y_t + (r - r0) * y_r] = dot(row r of w, input row t) for r in [r0, r1), t < T.
  void dot_rows(const RowDot& rd, int64_t r0, int64_t r1, const float* x, int64_t T, float* y, int64_t y_t,
                int64_t y_r, int thread);
  void check_rows(const char* op, int64_t T, int64_t cols) const;

  ThreadPool pool_;
  Precision precision_;
  bool copy_weights_;
  bool output_q8_;
  void requantize_q8_0(Weight& w, const std::string& name);     // cpu_weights.cpp
  struct Region {
    void* p;
    size_t bytes;
  };
  uint8_t* arena_alloc(size_t bytes, const std::string& name);  // 64-byte aligned, in regions_
  void prepare_awq(Weight& w, const std::string& name);         // cpu_weights.cpp
  std::vector<Region> regions_;  // arenas of the weights copied at load (cpu_weights.cpp)
  size_t arena_used_ = 0;        // bytes used in regions_.back()
  int64_t max_rows_ = 0, max_cols_ = 0;
  std::vector<float> act_;                // [act_floats] the model's activations
  ActBuf qbuf_[2];                        // by ActFormat
  std::vector<std::vector<float>> tmp_;   // [threads][2 * max_rows * 16 + max_cols] per-thread scratch
};

// dst[cols] = row r of dequant(w) (any stored type, AWQ included).
void dequant_weight_row(const Weight& w, int64_t r, float* dst);

}  // namespace fastspec::cpu

// The CPU backend: complete, threaded, batch-invariant. The reference every other backend is
// compared against.
#pragma once
#include <memory>

#include "backend/backend.h"
#include "backend/cpu/thread_pool.h"

namespace fastspec::cpu {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int n_threads);
  const char* name() const override { return "cpu"; }
  int threads() const { return pool_.size(); }

  void matmul(const Weight& w, const float* x, float* y, int64_t T) override;
  void embed(const Weight& w, const int32_t* tokens, int64_t T, float* out) override;
  void rms_norm(const float* x, const float* w, float* out, int64_t T, int64_t n, float eps,
                bool plus_one) override;
  void rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int32_t* pos,
            const RopeParams& rp) override;
  void attention(const float* q, const KvView& kv, float* out, int64_t T,
                 int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, const int32_t* pos, float scale,
                 int64_t window, float softcap) override;
  void glu(const float* gate, const float* up, float* out, int64_t n, bool gelu) override;
  void add(float* x, const float* y, int64_t n) override;
  void softcap(float* x, int64_t n, float cap) override;

 private:
  ThreadPool pool_;
};

// dst[cols] = row r of dequant(w) (any stored type, AWQ included).
void dequant_weight_row(const Weight& w, int64_t r, float* dst);

}  // namespace fastspec::cpu

// CPU matmuls: y[T, rows] = x[T, cols] @ dequant(W)^T, several weights over one input at once.
//   q8 precision: x is quantized once per call into the activation formats the weights need
//   (qdot.h), then the weight's 16-row panels (qpack.h) are dotted with all T rows by the active
//   ISA's integer kernel.
//   f32 precision (and weights not packed: F16, BF16, F32, AWQ with a group not a multiple of
//   32): fused dequant-dot.
// Work: tasks of kRowsPerTask output rows (over all the outputs of the call), claimed dynamically.
// A row's result depends only on its weight row and its own input row, never on T or the split:
// decode, verify and prefill give bit-equal results per token (batch invariance).
#include <algorithm>
#include <cmath>

#include "backend/cpu/attention.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/dequant.h"
#include "backend/cpu/dequant_fast.h"
#include "fastspec/status.h"

namespace fastspec::cpu {
namespace {

constexpr int64_t kRowsPerTask = 16;  // the unit of work (and of the per-thread scratch)
constexpr int64_t kTasksPerThread = 8;  // a big matrix is cut into about this many tasks per thread

// Rows per task for a weight of `rows` rows: units of kRowsPerTask, large enough that each thread
// streams long contiguous runs of the weight (the hardware prefetchers follow those), small
// enough that a thread slowed by another process only delays its share.
int64_t rows_per_task(int64_t rows, int threads) {
  const int64_t units = (rows + kRowsPerTask - 1) / kRowsPerTask;
  const int64_t per = std::max<int64_t>(1, units / (static_cast<int64_t>(threads) * kTasksPerThread));
  return per * kRowsPerTask;
}
constexpr int64_t kQuantInline = 16384;  // quantize inline (no dispatch) below this many elements

std::string weight_name(const Weight& w) { return w.info ? "'" + w.info->name + "'" : "a weight"; }

}  // namespace

void CpuBackend::reserve(int64_t max_rows, int64_t max_cols, int64_t act_floats) {
  max_rows_ = std::max(max_rows_, max_rows);
  max_cols_ = std::max(max_cols_, max_cols);
  if (static_cast<int64_t>(act_.size()) < act_floats) act_.assign(static_cast<size_t>(act_floats), 0.0f);
  for (int f = 0; f < 2; ++f) {
    const ActLayout lay = act_layout(static_cast<ActFormat>(f), (max_cols_ + 255) / 256 * 256);  // >= any row's
    qbuf_[f].q.resize(static_cast<size_t>(max_rows_ * lay.q_stride));
    qbuf_[f].d.resize(static_cast<size_t>(max_rows_ * lay.d_stride));
    qbuf_[f].s.resize(static_cast<size_t>(max_rows_ * lay.s_stride));
    qbuf_[f].ds.resize(static_cast<size_t>(max_rows_ * lay.d_stride));
  }
  tmp_.resize(static_cast<size_t>(pool_.size()));
  for (auto& t : tmp_) t.resize(static_cast<size_t>(2 * max_rows_ * kRowsPerTask + max_cols_));
}

void CpuBackend::check_rows(const char* op, int64_t T, int64_t cols) const {
  if (T > max_rows_ || cols > max_cols_)
    throw Error(std::string(op) + ": a pass of " + std::to_string(T) + " rows x " + std::to_string(cols) +
                " columns exceeds the workspace reserved at load (" + std::to_string(max_rows_) + " x " +
                std::to_string(max_cols_) + ")");
}

void CpuBackend::quantize_inputs(const float* x, int64_t T, int64_t cols, const Weight* const* ws, int n_ws,
                                 ActQ* views, bool* has) {
  has[0] = has[1] = false;
  if (precision_ != Precision::q8) return;
  const QKernels& k = qkernels(isa_active());
  for (int i = 0; i < n_ws; ++i) {
    ActFormat f;
    QType qt;
    // the integer kernels read panels: a weight takes them iff prepare_weight packed it (q8 precision)
    if (ws[i]->packed && act_format_for(ws[i]->type, &f) && qtype_of(ws[i]->type, &qt) && k.rows[static_cast<int>(qt)])
      has[static_cast<int>(f)] = true;
  }
  for (int f = 0; f < 2; ++f) {
    if (!has[f]) continue;
    const ActLayout lay = act_layout(static_cast<ActFormat>(f), cols);
    ActBuf& b = qbuf_[f];
    const QuantFn quant = k.quant[f];
    auto row = [&](int64_t t) {
      quant(x + t * cols, lay, b.q.data() + t * lay.q_stride, b.d.data() + t * lay.d_stride,
            b.s.data() + t * lay.s_stride, b.ds.data() + t * lay.d_stride);
    };
    if (T * cols < kQuantInline) {
      for (int64_t t = 0; t < T; ++t) row(t);
    } else {
      pool_.run(T, [&](int64_t t) { row(t); });
    }
    views[f].lay = lay;
    views[f].q = b.q.data();
    views[f].d = b.d.data();
    views[f].s = b.s.data();
    views[f].ds = b.ds.data();
  }
}

CpuBackend::RowDot CpuBackend::row_dot(const Weight& w, const ActQ* views, const bool* has) const {
  RowDot rd;
  rd.w = &w;
  ActFormat f;
  QType qt;
  if (w.packed && act_format_for(w.type, &f) && has[static_cast<int>(f)] && qtype_of(w.type, &qt)) {
    rd.fn = qkernels(isa_active()).rows[static_cast<int>(qt)];
    rd.a = &views[static_cast<int>(f)];
  }
  return rd;
}

void CpuBackend::dot_rows(const RowDot& rd, int64_t r0, int64_t r1, const float* x, int64_t T, float* y, int64_t y_t,
                          int64_t y_r, int thread) {
  const Weight& w = *rd.w;
  if (rd.fn) {  // integer path: the kernel walks the rows itself
    const ActQ& a = *rd.a;
    const uint8_t* wr = w.data + static_cast<uint64_t>(r0) * w.row_bytes;
    for (int64_t t0 = 0; t0 < T; t0 += kQDotMaxRows) {
      rd.fn(wr, static_cast<int64_t>(w.row_bytes), r1 - r0, a.from_row(t0), std::min(kQDotMaxRows, T - t0), y + t0 * y_t, y_t, y_r);
    }
    return;
  }
  // float32 path: the fused dequant-dot (up to kMaxFusedRows rows), else dequantize the row once
  // and dot it with every input row (bit-equal to the fused kernel).
  float* row = tmp_[static_cast<size_t>(thread)].data() + 2 * max_rows_ * kRowsPerTask;
  for (int64_t r = r0; r < r1; ++r) {
    float* yr = y + (r - r0) * y_r;
    if (w.type != DType::AWQ_INT4 && !w.packed && dot_rows_fast(w.type, w.data + static_cast<uint64_t>(r) * w.row_bytes, x, T, w.cols, yr, y_t))
      continue;
    dequant_weight_row(w, r, row);
    for (int64_t t = 0; t < T; ++t) yr[t * y_t] = dot_f32(row, x + t * w.cols, w.cols);
  }
}

void CpuBackend::matmul(const Weight& w, const float* x, float* y, int64_t T) {
  MatmulOut o;
  o.w = &w;
  o.y = y;
  matmuls(x, T, &o, 1);
}

void CpuBackend::matmuls(const float* x, int64_t T, const MatmulOut* outs, int n_outs) {
  constexpr int kMaxOuts = 8;
  if (n_outs < 1 || n_outs > kMaxOuts) throw Error("matmuls: 1.." + std::to_string(kMaxOuts) + " outputs");
  const int64_t cols = outs[0].w->cols;
  const Weight* ws[kMaxOuts];
  int64_t first_task[kMaxOuts + 1], rpt[kMaxOuts];
  first_task[0] = 0;
  for (int i = 0; i < n_outs; ++i) {
    ws[i] = outs[i].w;
    if (ws[i]->cols != cols)
      throw Error("matmuls: " + weight_name(*ws[i]) + " has " + std::to_string(ws[i]->cols) + " columns, the input " +
                  std::to_string(cols));
    rpt[i] = rows_per_task(ws[i]->rows, pool_.size());
    first_task[i + 1] = first_task[i] + (ws[i]->rows + rpt[i] - 1) / rpt[i];
  }
  check_rows("matmul", T, cols);
  ActQ views[2];
  bool has[2];
  quantize_inputs(x, T, cols, ws, n_outs, views, has);
  RowDot rds[kMaxOuts];
  for (int i = 0; i < n_outs; ++i) rds[i] = row_dot(*ws[i], views, has);
  pool_.run(first_task[n_outs], [&](int64_t task, int thread) {
    int i = 0;
    while (task >= first_task[i + 1]) ++i;
    const MatmulOut& o = outs[i];
    const int64_t rows = o.w->rows;
    const int64_t r0 = (task - first_task[i]) * rpt[i], r1 = std::min(rows, r0 + rpt[i]);
    if (!o.bias && !o.accumulate) return dot_rows(rds[i], r0, r1, x, T, o.y + r0, rows, 1, thread);
    float* tmp = tmp_[static_cast<size_t>(thread)].data();  // [T, n]
    for (int64_t s0 = r0; s0 < r1; s0 += kRowsPerTask) {
      const int64_t s1 = std::min(r1, s0 + kRowsPerTask), n = s1 - s0;
      dot_rows(rds[i], s0, s1, x, T, tmp, n, 1, thread);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t r = s0; r < s1; ++r) {
          float& yr = o.y[t * rows + r];
          float v = o.accumulate ? yr + tmp[t * n + (r - s0)] : tmp[t * n + (r - s0)];
          if (o.bias) v += o.bias[r];
          yr = v;
        }
    }
  });
}

void CpuBackend::matmul_glu(const Weight& gate, const Weight& up, const float* x, float* out, int64_t T, bool gelu) {
  if (gate.rows != up.rows || gate.cols != up.cols)
    throw Error("matmul_glu: " + weight_name(gate) + " [" + std::to_string(gate.rows) + ", " +
                std::to_string(gate.cols) + "] and " + weight_name(up) + " [" + std::to_string(up.rows) + ", " +
                std::to_string(up.cols) + "] differ");
  check_rows("matmul_glu", T, gate.cols);
  const Weight* ws[2] = {&gate, &up};
  ActQ views[2];
  bool has[2];
  quantize_inputs(x, T, gate.cols, ws, 2, views, has);
  const RowDot rg = row_dot(gate, views, has), ru = row_dot(up, views, has);
  const int64_t rows = gate.rows;
  const int64_t rpt = rows_per_task(rows, pool_.size());
  pool_.run((rows + rpt - 1) / rpt, [&](int64_t task, int thread) {
   const int64_t t_r0 = task * rpt, t_r1 = std::min(rows, t_r0 + rpt);
   for (int64_t r0 = t_r0; r0 < t_r1; r0 += kRowsPerTask) {
    const int64_t r1 = std::min(t_r1, r0 + kRowsPerTask), n = r1 - r0;
    float* g = tmp_[static_cast<size_t>(thread)].data();  // [T, n]
    float* u = g + max_rows_ * kRowsPerTask;              // [T, n]
    dot_rows(rg, r0, r1, x, T, g, n, 1, thread);
    dot_rows(ru, r0, r1, x, T, u, n, 1, thread);
    for (int64_t t = 0; t < T; ++t) {  // out = act(g) * u (attention.h: act_glu)
      if (isa_is_x86_simd(isa_active())) act_glu_avx2(g + t * n, u + t * n, out + t * rows + r0, n, gelu);
      else act_glu_scalar(g + t * n, u + t * n, out + t * rows + r0, n, gelu);
    }
   }
  });
}

}  // namespace fastspec::cpu

// Test hooks for the CPU attention and the F16 KV cache: each call builds a one-layer KvCache,
// stores K/V through KvCache::store and runs attention_cpu on a fresh ThreadPool.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/attention.h"
#include "backend/cpu/thread_pool.h"
#include "bindings.h"
#include "fastspec/status.h"
#include "model/kv_cache.h"

namespace py = pybind11;

namespace fastspec::py_bind {
namespace {

DType kv_dtype(const std::string& name) {
  if (name == "F32") return DType::F32;
  if (name == "F16") return DType::F16;
  throw InvalidArgument("kv_type must be 'F32' or 'F16' (got '" + name + "')");
}

}  // namespace

void bind_attention(py::module_& m) {
  m.def(
      "_attention",
      [](F32Array q, F32Array k, F32Array v, I32Array pos, float scale, int64_t window, float softcap,
         const std::string& kv_type, int threads, bool use_scratch, int repeat, py::object parent_obj) {
        if (q.ndim() != 3 || k.ndim() != 3 || v.ndim() != 3 || pos.ndim() != 1)
          throw InvalidArgument("_attention: q [T, n_heads, hd], k/v [n_pos, n_kv, hd], pos [T]");
        const int64_t T = q.shape(0), n_heads = q.shape(1), hd = q.shape(2);
        const int64_t n_pos = k.shape(0), n_kv = k.shape(1);
        if (k.shape(2) != hd || v.shape(0) != n_pos || v.shape(1) != n_kv || v.shape(2) != hd || pos.shape(0) != T)
          throw InvalidArgument("_attention: shapes of q, k, v, pos disagree");
        if (n_kv <= 0 || n_heads % n_kv != 0) throw InvalidArgument("_attention: n_heads % n_kv != 0");
        int64_t max_pos = 0;
        for (int64_t t = 0; t < T; ++t) {
          if (pos.data()[t] < 0 || pos.data()[t] >= n_pos)
            throw InvalidArgument("_attention: pos " + std::to_string(pos.data()[t]) + " outside [0, " +
                                  std::to_string(n_pos) + ")");
          max_pos = std::max<int64_t>(max_pos, pos.data()[t]);
        }
        if (threads < 1 || repeat < 1) throw InvalidArgument("_attention: threads and repeat must be >= 1");
        std::vector<int32_t> parent;
        if (!parent_obj.is_none()) {
          parent = parent_obj.cast<std::vector<int32_t>>();
          if (static_cast<int64_t>(parent.size()) != T)
            throw InvalidArgument("_attention: parent has " + std::to_string(parent.size()) + " rows, q " +
                                  std::to_string(T));
        }
        py::array_t<float> out({T, n_heads, hd});
        double seconds = 0;
        {
          py::gil_scoped_release nogil;
          KvCache cache(1, n_pos, n_kv, hd, kv_dtype(kv_type));
          cache.store(0, 0, n_pos, k.data(), v.data());
          cpu::ThreadPool pool(threads);
          std::vector<float> scratch;
          cpu::AttentionArgs a;
          a.q = q.data(), a.kv = cache.view(0), a.out = out.mutable_data();
          a.T = T, a.n_heads = n_heads, a.n_kv_heads = n_kv, a.head_dim = hd;
          a.pos = pos.data(), a.scale = scale, a.window = window, a.softcap = softcap;
          a.parent = parent.empty() ? nullptr : parent.data();
          if (use_scratch) {
            scratch.resize(static_cast<size_t>(cpu::attention_scratch_floats(T, n_heads, max_pos, hd, threads)));
            a.scratch = scratch.data(), a.scratch_floats = static_cast<int64_t>(scratch.size());
          }
          cpu::attention_cpu(pool, a);  // warm (and the result when repeat == 1)
          if (repeat > 1) {
            const auto t0 = std::chrono::steady_clock::now();
            for (int r = 0; r < repeat; ++r) cpu::attention_cpu(pool, a);
            seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repeat;
          }
        }
        if (repeat > 1) return py::object(py::make_tuple(out, seconds));
        return py::object(out);
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("pos"), py::arg("scale"), py::arg("window") = 0,
      py::arg("softcap") = 0.0f, py::arg("kv_type") = "F32", py::arg("threads") = 1, py::arg("use_scratch") = true,
      py::arg("repeat") = 1, py::arg("parent") = py::none(),
      "Test hook: attention_cpu over a one-layer KvCache holding k, v (q f32 [T, n_heads, hd], k/v f32 "
      "[n_pos, n_kv, hd], pos int32 [T]) -> out f32 [T, n_heads, hd]. use_scratch=False uses the "
      "thread_local fallback; repeat > 1 returns (out, seconds per attention_cpu call). parent: None "
      "(causal) or [T] int rows of a tree pass (AttentionArgs::parent; its rows' K/V at slots pos[0] + t).");
  m.def(
      "_kv_store_f16",
      [](F32Array x) {
        const int64_t n = x.size();
        std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
        py::array_t<uint16_t> out(shape);
        if (n == 0) return out;
        KvCache cache(1, 1, 1, n, DType::F16);
        cache.store(0, 0, 1, x.data(), x.data());
        std::memcpy(out.mutable_data(), cache.view(0).k, static_cast<size_t>(n) * 2);
        return out;
      },
      py::arg("x"), "Test hook: KvCache::store into an F16 cache -> the stored float16 bits (uint16, x's shape).");
}

}  // namespace fastspec::py_bind

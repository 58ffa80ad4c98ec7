// Test hooks for the CPU kernels: the 8-bit-activation integer dots per ISA path, the activation
// quantizers, and the ISA registry. Shapes: x float32 [T, n]; w uint8 [rows, row_bytes] (stored blocks).
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <string>
#include <vector>

#include "backend/cpu/dequant_fast.h"
#include "backend/cpu/isa.h"
#include "backend/cpu/dequant_awq.h"
#include "backend/cpu/qdot.h"
#include "backend/cpu/qpack.h"
#include "backend/cpu/thread_pool.h"
#include "bindings.h"
#include "fastspec/status.h"
#include "fastspec/tensor.h"

namespace py = pybind11;

namespace fastspec::py_bind {

DType dtype_by_name(const std::string& name) {
  for (uint32_t id = 0; id < 64; ++id)
    if (const DTypeTraits* tr = dtype_traits_from_ggml_id(id); tr && name == tr->name) return static_cast<DType>(id);
  throw InvalidArgument("unknown type " + name);
}

namespace {

using U8Array = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

cpu::Isa isa_by_name(const std::string& name) {
  cpu::Isa isa;
  if (!cpu::isa_from_name(name.c_str(), &isa)) throw InvalidArgument("unknown CPU path '" + name + "'");
  if (!cpu::isa_supported(isa)) throw InvalidArgument("CPU path '" + name + "' is not supported by this CPU");
  return isa;
}

// Owned quantized rows [T, ...] for one format.
struct ActBuf {
  cpu::ActLayout lay;
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int32_t> s;
  std::vector<float> ds;
  cpu::ActQ view() const {
    cpu::ActQ a;
    a.lay = lay, a.q = q.data(), a.d = d.data(), a.s = s.data(), a.ds = ds.data();
    return a;
  }
};

ActBuf quantize(const cpu::QKernels& k, cpu::ActFormat f, const F32Array& x) {
  if (x.ndim() != 2) throw InvalidArgument("x must be float32 [T, n]");
  const int64_t T = x.shape(0), n = x.shape(1);
  const int64_t block = f == cpu::ActFormat::q8 ? 32 : 256;
  if (n % block != 0) throw InvalidArgument("x: n=" + std::to_string(n) + " is not a multiple of " + std::to_string(block));
  ActBuf b;
  b.lay = cpu::act_layout(f, n);
  b.q.resize(static_cast<size_t>(T * b.lay.q_stride));
  b.d.resize(static_cast<size_t>(T * b.lay.d_stride));
  b.s.resize(static_cast<size_t>(T * b.lay.s_stride));
  b.ds.resize(static_cast<size_t>(T * b.lay.d_stride));
  for (int64_t t = 0; t < T; ++t)
    k.quant[static_cast<int>(f)](x.data() + t * n, b.lay, b.q.data() + t * b.lay.q_stride,
                                 b.d.data() + t * b.lay.d_stride, b.s.data() + t * b.lay.s_stride,
                                 b.ds.data() + t * b.lay.d_stride);
  return b;
}

}  // namespace

void bind_kernels(py::module_& m) {
  m.def("cpu_paths", [] {
    std::vector<std::string> out;
    for (int k = 0; k < cpu::kIsaCount; ++k)
      if (cpu::isa_supported(static_cast<cpu::Isa>(k))) out.push_back(cpu::isa_name(static_cast<cpu::Isa>(k)));
    return out;
  }, "The CPU kernel paths this machine supports, worst to best (scalar first).");
  m.def("cpu_path", [] { return std::string(cpu::isa_name(cpu::isa_active())); },
        "The CPU kernel path in use (FASTSPEC_ISA forces one).");
  m.def("_set_cpu_path", [](const std::string& name) { cpu::isa_set(isa_by_name(name)); },
        py::arg("name"), "Test hook: switch the CPU kernel path of this process.");

  m.def("_dequant_fast_types", [] {
    // Asks dequantize_row_fast itself (on a zero row of 256 elements, a multiple of every block
    // size), so the list is the dispatch's own switch on the active CPU path, not a copy of it.
    std::vector<std::string> out;
    std::vector<float> dst(256);
    for (uint32_t id = 0; id < 64; ++id) {
      const DTypeTraits* tr = dtype_traits_from_ggml_id(id);
      if (!tr || !tr->dequantizable || tr->block_size <= 0 || 256 % tr->block_size != 0) continue;
      std::vector<uint8_t> src(static_cast<size_t>(256 / tr->block_size * tr->block_bytes), 0);
      if (cpu::dequantize_row_fast(static_cast<DType>(id), src.data(), dst.data(), 256)) out.push_back(tr->name);
    }
    return out;
  }, "Test hook: the types whose matmul row dequantizer is the vectorized one on the active CPU path.");

  m.def("_pool_solo_switches", [](int64_t jobs, double worker_delay_us) {
    // A 2-thread pool whose worker takes worker_delay_us longer than the caller on each job (as
    // when another process holds its core): how often the load adaptation switched to the caller
    // alone. The caller's first task waits (up to 1 s) until the worker has claimed a task of the
    // job, so the delay is not lost to a caller that drained every task before the worker woke.
    py::gil_scoped_release nogil;
    cpu::ThreadPool pool(2);
    pool.set_adaptive(true);
    for (int64_t j = 0; j < jobs; ++j) {
      std::atomic<bool> claimed{false};
      pool.run(8, [&](int64_t, int thread) {
        if (thread != 0) {
          claimed.store(true);
          std::this_thread::sleep_for(std::chrono::duration<double, std::micro>(worker_delay_us));
          return;
        }
        const auto t0 = std::chrono::steady_clock::now();
        while (!claimed.load() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1))
          std::this_thread::yield();
      });
      if (pool.solo_switches() > 0) break;  // the next jobs run solo: nothing more to learn
    }
    return pool.solo_switches();
  }, py::arg("jobs"), py::arg("worker_delay_us"),
     "Test hook: solo-mode switches of a 2-thread pool over `jobs` jobs of 8 empty tasks when the "
     "worker is delayed by worker_delay_us on each job.");

  m.def("_pool_policy", [](const std::vector<double>& waits_us, double own_us, bool enabled) {
    // Drives the pool's load policy with given times: job j (unless the policy runs it solo)
    // reports that the caller's own share took own_us and its wait for the workers waits_us[j].
    // Returns one flag per job (true: ran solo) and the number of switches.
    cpu::SoloPolicy p;
    p.set_enabled(enabled);
    std::vector<bool> solo;
    solo.reserve(waits_us.size());
    for (double w : waits_us) {
      const bool s = p.take_solo();
      solo.push_back(s);
      if (!s) p.observe(w, own_us);
    }
    return py::make_tuple(solo, p.switches());
  }, py::arg("waits_us"), py::arg("own_us"), py::arg("enabled") = true,
     "Test hook: (solo flag per job, switches) of the thread pool's load policy fed the given times.");

  m.def("_pool_dispatch_us", [](int threads, int64_t jobs, int64_t tasks) {
    // Mean wall time of one ThreadPool::run of `tasks` empty tasks: the per-op dispatch overhead.
    py::gil_scoped_release nogil;
    cpu::ThreadPool pool(threads);
    pool.set_adaptive(false);
    std::atomic<int64_t> sink{0};
    for (int64_t j = 0; j < 100; ++j) pool.run(tasks, [&](int64_t t) { sink.fetch_add(t, std::memory_order_relaxed); });
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t j = 0; j < jobs; ++j) pool.run(tasks, [&](int64_t t) { sink.fetch_add(t, std::memory_order_relaxed); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return s / static_cast<double>(jobs) * 1e6;
  }, py::arg("threads"), py::arg("jobs") = 20000, py::arg("tasks") = 64,
     "Bench hook: mean microseconds per thread-pool dispatch of `tasks` empty tasks (back to back).");

  m.def("_quantize_act", [](const std::string& format, F32Array x, const std::string& isa) {
    const cpu::ActFormat f = format == "q8k" ? cpu::ActFormat::q8k : cpu::ActFormat::q8;
    if (format != "q8" && format != "q8k") throw InvalidArgument("format must be 'q8' or 'q8k'");
    ActBuf b = quantize(cpu::qkernels(isa_by_name(isa)), f, x);
    const int64_t T = x.shape(0);
    py::array_t<int8_t> q({T, b.lay.q_stride});
    py::array_t<float> d({T, b.lay.d_stride});
    py::array_t<int32_t> s({T, b.lay.s_stride});
    std::copy(b.q.begin(), b.q.end(), q.mutable_data());
    std::copy(b.d.begin(), b.d.end(), d.mutable_data());
    std::copy(b.s.begin(), b.s.end(), s.mutable_data());
    return py::make_tuple(q, d, s);
  }, py::arg("format"), py::arg("x"), py::arg("isa"),
     "Test hook: x float32 [T, n] -> (codes int8 [T, q_stride], scales float32 [T, d_stride], "
     "sums int32 [T, s_stride]) in the Q8 (32-blocks) or Q8K (256-blocks) activation format.");

  m.def("_qpack_roundtrip", [](const std::string& type_name, U8Array w) {
    const DType t = dtype_by_name(type_name);
    if (!cpu::qpack_type(t)) throw InvalidArgument("type " + type_name + " has no panel layout");
    if (w.ndim() != 2) throw InvalidArgument("w must be uint8 [rows, row_bytes]");
    const DTypeTraits* tr = dtype_traits(t);
    const int64_t rows = w.shape(0);
    const uint64_t rb = static_cast<uint64_t>(w.shape(1));
    const int64_t cols = static_cast<int64_t>(rb) / tr->block_bytes * tr->block_size;
    std::vector<uint8_t> packed(cpu::qpack_bytes(t, rows, cols));
    cpu::qpack_matrix(t, w.data(), rb, rows, cols, packed.data());
    py::object back = py::none();
    if (tr->block_size == 32) {  // the 32-element types unpack to their stored bytes
      py::array_t<uint8_t> b({rows, static_cast<int64_t>(rb)});
      for (int64_t r = 0; r < rows; ++r) cpu::qunpack_row(t, packed.data(), rb, r, b.mutable_data() + r * rb);
      back = b;
    }
    py::array_t<float> deq({rows, cols});
    for (int64_t r = 0; r < rows; ++r)
      cpu::dequant_packed_row(t, packed.data(), cpu::qpack_row_bytes(t, cols), cols, r, deq.mutable_data() + r * cols);
    return py::make_tuple(back, deq);
  }, py::arg("type"), py::arg("w"),
     "Test hook: stored rows uint8 [rows, row_bytes] -> packed into 16-row panels (qpack.h) -> "
     "(32-element types: the rows unpacked back, uint8 [rows, row_bytes], else None; the rows "
     "dequantized from the panels, float32 [rows, cols]).");

  m.def("_awq_pack_row_bytes", [](int64_t in, int64_t group) { return cpu::awq_pack_row_bytes(in, group); },
        py::arg("in_features"), py::arg("group"),
        "Test hook: bytes per output row of AWQ weights packed into panels (qpack.h), in groups of `group` inputs.");

  m.def("_qdot_awq", [](py::array_t<int32_t, py::array::c_style | py::array::forcecast> qweight,
                        py::array_t<int32_t, py::array::c_style | py::array::forcecast> qzeros,
                        py::array_t<uint16_t, py::array::c_style | py::array::forcecast> scales, int64_t group,
                        F32Array x, const std::string& isa) {
    if (qweight.ndim() != 2 || qzeros.ndim() != 2 || scales.ndim() != 2 || x.ndim() != 2)
      throw InvalidArgument("_qdot_awq: qweight int32 [in, out/8], qzeros int32 [in/group, out/8], scales f16 bits "
                            "[in/group, out], x float32 [T, in]");
    cpu::AwqParts p;
    p.qweight = reinterpret_cast<const uint8_t*>(qweight.data());
    p.qzeros = reinterpret_cast<const uint8_t*>(qzeros.data());
    p.scales = reinterpret_cast<const uint8_t*>(scales.data());
    p.in = qweight.shape(0), p.out = scales.shape(1), p.group = group;
    cpu::check_awq_sizes(p);
    if (x.shape(1) != p.in || qweight.shape(1) * 8 != p.out || qzeros.shape(0) != p.in / group ||
        scales.shape(0) != p.in / group || qzeros.shape(1) * 8 != p.out)
      throw InvalidArgument("_qdot_awq: shapes disagree (in " + std::to_string(p.in) + ", out " + std::to_string(p.out) +
                            ", group " + std::to_string(group) + ", x cols " + std::to_string(x.shape(1)) + ")");
    if (!cpu::awq_packable(p.in, group)) throw InvalidArgument("_qdot_awq: in and group must be multiples of 32");
    const cpu::QKernels& k = cpu::qkernels(isa_by_name(isa));
    const cpu::QRowsFn fn = k.rows[static_cast<int>(cpu::QType::awq4)];
    const uint64_t rb = cpu::awq_pack_row_bytes(p.in, group);
    std::vector<uint8_t> packed(cpu::awq_pack_bytes(p.out, p.in, group));
    for (int64_t panel = 0; panel * cpu::kPanelRows < p.out; ++panel)
      cpu::awq_pack_panel(p, panel, packed.data() + panel * cpu::kPanelRows * rb);
    ActBuf b = quantize(k, cpu::ActFormat::q8, x);
    const int64_t T = x.shape(0);
    py::array_t<float> y({T, p.out});
    const cpu::ActQ a = b.view();
    for (int64_t t0 = 0; t0 < T; t0 += cpu::kQDotMaxRows)
      fn(packed.data(), static_cast<int64_t>(rb), p.out, a.from_row(t0), std::min<int64_t>(cpu::kQDotMaxRows, T - t0),
         y.mutable_data() + t0 * p.out, p.out, 1);
    py::array_t<float> deq({p.out, p.in});
    for (int64_t o = 0; o < p.out; ++o) cpu::dequant_packed_row(DType::AWQ_INT4, packed.data(), rb, p.in, o, deq.mutable_data() + o * p.in);
    return py::make_tuple(y, deq);
  }, py::arg("qweight"), py::arg("qzeros"), py::arg("scales"), py::arg("group"), py::arg("x"), py::arg("isa"),
     "Test hook: AutoAWQ parts packed into panels (qpack.h) -> (y float32 [T, out] by the integer kernel of "
     "`isa`, x quantized to Q8 on the same path; W float32 [out, in] dequantized from the panels).");

  m.def("_qdot", [](const std::string& type_name, U8Array w, F32Array x, const std::string& isa) {
    const DType t = dtype_by_name(type_name);
    cpu::QType qt;
    cpu::ActFormat f;
    if (!cpu::qtype_of(t, &qt) || !cpu::act_format_for(t, &f))
      throw InvalidArgument("type " + type_name + " has no integer dot");
    const cpu::QKernels& k = cpu::qkernels(isa_by_name(isa));
    const cpu::QRowsFn fn = k.rows[static_cast<int>(qt)];
    if (!fn) throw InvalidArgument("no integer dot kernel for " + type_name + " on " + isa);
    if (w.ndim() != 2 || x.ndim() != 2) throw InvalidArgument("w must be uint8 [rows, row_bytes], x float32 [T, n]");
    const DTypeTraits* tr = dtype_traits(t);
    const int64_t rows = w.shape(0), T = x.shape(0), n = x.shape(1);
    const uint64_t rb = static_cast<uint64_t>(w.shape(1));
    if (n % tr->block_size != 0 || w.shape(1) != n / tr->block_size * tr->block_bytes)
      throw InvalidArgument("_qdot: w rows of " + std::to_string(w.shape(1)) + " bytes do not hold " +
                            std::to_string(n) + " " + type_name + " values");
    // the 32-element types run on 16-row panels, packed as the backend packs them at load
    std::vector<uint8_t> packed;
    const uint8_t* wd = w.data();
    uint64_t wrb = rb;
    if (cpu::qpack_type(t)) {
      wrb = cpu::qpack_row_bytes(t, n);
      packed.resize(cpu::qpack_bytes(t, rows, n));
      cpu::qpack_matrix(t, w.data(), rb, rows, n, packed.data());
      wd = packed.data();
    }
    ActBuf b = quantize(k, f, x);
    py::array_t<float> y({T, rows});
    const cpu::ActQ a = b.view();
    for (int64_t t0 = 0; t0 < T; t0 += cpu::kQDotMaxRows)
      fn(wd, static_cast<int64_t>(wrb), rows, a.from_row(t0), std::min<int64_t>(cpu::kQDotMaxRows, T - t0),
         y.mutable_data() + t0 * rows, rows, 1);
    return y;
  }, py::arg("type"), py::arg("w"), py::arg("x"), py::arg("isa"),
     "Test hook: y float32 [T, rows] = integer dot of each stored weight row with each row of x "
     "(x quantized to the type's activation format on the same path).");
}

}  // namespace fastspec::py_bind
